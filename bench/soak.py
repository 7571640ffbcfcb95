#!/usr/bin/env python3
"""`make soak`: Envoy with the filter (two workers) driven at full rate for a set time by a
mix of valid, invalid and hostile requests, while its memory and the filter's counters are
sampled. Fails on any 5xx, on socket errors, on a request kind that never showed up in the
counters, or when memory keeps growing after the warm-up (the first quarter of the run).

Standard library, wrk and Envoy only. ENVOY and TOLLGATE_WASM come from the environment (the
Makefile sets them); SOAK_SECONDS (default 300) sets the duration.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the Envoy launcher and configuration helpers)

SECRET = "soak-secret-" + os.urandom(16).hex()
API_KEY = "sk_soak_" + os.urandom(16).hex()
PUBLISHABLE = "pk_soak_" + os.urandom(16).hex()
CLIENT_SECRET = "cs_soak_" + os.urandom(16).hex()

CONFIG = {
    "secrets": [{"key_env": "TOLLGATE_SECRET"}],
    "api_keys": [{"name": "soak-backend", "key": API_KEY}],
    "publishable_keys": [{"name": "soak-web", "key": PUBLISHABLE}],
    "clients": [{"client_id": "soak-client", "client_secret": CLIENT_SECRET}],
    "rules": [
        {"prefix": "/public", "mode": "none"},
        {"prefix": "/feed", "mode": "optional"},
        {"prefix": "/admin", "mode": "required", "roles": ["admin"]},
    ],
    "login_url": "https://auth.example.com/login",
}


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(sub, token_type="access", ttl=3600, key=SECRET):
    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": sub, "token_type": token_type, "iat": now - 10,
                           "nbf": now - 10, "exp": now + ttl}).encode())
    signing_input = f"{head}.{body}".encode()
    return f"{head}.{body}.{b64(hmac.new(key.encode(), signing_input, hashlib.sha256).digest())}"


def raw(method, target, headers=()):
    lines = [f"{method} ".encode() + target + b" HTTP/1.1", b"Host: api.example.com"]
    lines += [name.encode() + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def workload(distinct):
    """(kind, request bytes) pairs: the mix, one request of each per round."""
    good = token("soak-user").encode()
    expired = token("soak-user", ttl=-600).encode()
    forged = token("soak-user", key="not-the-secret-cWEaq69ctbiEHnUS").encode()
    refresh = token("soak-user", "refresh").encode()
    bearer = lambda v: ("Authorization", b"Bearer " + v)
    mix = [
        ("valid token", raw("GET", b"/api/orders", [bearer(good)])),
        ("valid token, spoofed identity", raw("GET", b"/api/orders", [bearer(good), ("x-auth-user", b"root"), ("x_auth_role", b"admin")])),
        ("token in the query", raw("GET", b"/api/orders?access_token=" + good + b"&page=2")),
        ("token cookie", raw("GET", b"/api/orders", [("Cookie", b"theme=dark; access_token=" + good)])),
        ("API key", raw("GET", b"/admin/stats", [bearer(API_KEY.encode())])),
        ("publishable key on an admin path", raw("GET", b"/admin/stats", [bearer(PUBLISHABLE.encode())])),
        ("client credentials", raw("GET", b"/api/orders?client_id=soak-client&client_secret=" + CLIENT_SECRET.encode())),
        ("wrong client secret", raw("GET", b"/api/orders?client_id=soak-client&client_secret=nope")),
        ("missing", raw("GET", b"/api/orders")),
        ("browser, missing", raw("GET", b"/app/page?x=1", [("Accept", b"text/html")])),
        ("expired", raw("GET", b"/api/orders", [bearer(expired)])),
        ("forged", raw("GET", b"/api/orders", [bearer(forged)])),
        ("refresh token", raw("GET", b"/api/orders", [bearer(refresh)])),
        ("alg none", raw("GET", b"/api/orders", [bearer(b"eyJhbGciOiJub25lIn0." + good.split(b".")[1] + b".")])),
        ("non-UTF-8 credential", raw("GET", b"/api/orders", [("Authorization", b"Bearer \xc0\xa7\xff\xfe")])),
        ("two Authorization headers", raw("GET", b"/api/orders", [bearer(good), bearer(refresh)])),
        ("two methods", raw("GET", b"/api/orders?access_token=" + good, [bearer(good)])),
        ("traversal", raw("GET", b"/public/../admin/stats")),
        ("encoded slash", raw("GET", b"/public%2F..%2Fadmin/stats")),
        ("path parameter", raw("GET", b"/admin;x=1/stats")),
        ("above the root", raw("GET", b"/public/../../etc/passwd")),
        ("oversized credential", raw("GET", b"/api/orders", [bearer(b"A" * 9000)])),
        ("none path", raw("GET", b"/public/index.html", [("x-auth-user", b"root")])),
        ("optional path, anonymous", raw("GET", b"/feed/latest")),
        ("CORS preflight", raw("OPTIONS", b"/api/orders", [("Origin", b"https://app.example.com"), ("Access-Control-Request-Method", b"GET")])),
    ]
    # Distinct valid tokens, so that the cache of verified tokens fills and must stay bounded.
    mix += [("distinct valid tokens", raw("GET", b"/api/orders", [bearer(token(f"user-{i}").encode())]))
            for i in range(distinct)]
    return mix


LUA = """
local requests = {}
for line in io.lines("%s") do
  requests[#requests + 1] = (line:gsub("..", function(h) return string.char(tonumber(h, 16)) end))
end
local n = #requests
local i = 0
statuses = {}
request = function()
  i = i %% n + 1
  return requests[i]
end
response = function(status)
  statuses[status] = (statuses[status] or 0) + 1
end
local threads = {}
setup = function(thread) threads[#threads + 1] = thread end
done = function()
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses") or {}
    for status, count in pairs(counts) do io.write(string.format("status %%d %%d\\n", status, count)) end
  end
end
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("SOAK_SECONDS", "300")))
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--distinct-tokens", type=int, default=40000)
    args = parser.parse_args()
    bench.ENVOY = bench.need("ENVOY")
    wasm = bench.need("TOLLGATE_WASM")
    workdir = tempfile.mkdtemp(prefix="tollgate-soak-")
    mix = workload(args.distinct_tokens)
    # Interleave the fixed kinds with the distinct tokens: 25 fixed, then 25 distinct, ...
    fixed = [r for k, r in mix if k != "distinct valid tokens"]
    distinct = [r for k, r in mix if k == "distinct valid tokens"]
    ordered = []
    for start in range(0, len(distinct), len(fixed)):
        ordered += fixed + distinct[start:start + len(fixed)]
    requests_file = os.path.join(workdir, "requests.hex")
    with open(requests_file, "w") as f:
        f.writelines(r.hex() + "\n" for r in ordered)
    script = os.path.join(workdir, "soak.lua")
    with open(script, "w") as f:
        f.write(LUA % requests_file)

    filters = [bench.wasm_filter(wasm, CONFIG, {"TOLLGATE_SECRET": SECRET})]
    config = bench.bootstrap(filters)
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["stat_prefix"] = "soak"
    envoy = bench.Envoy("soak", config, workdir, concurrency=2, cpus="0,1")
    samples = []
    stop = threading.Event()

    def sample():
        start = time.time()
        while not stop.wait(0 if not samples else 5):
            samples.append((time.time() - start, envoy.rss_kib()))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        run = subprocess.run(["wrk", "-t2", f"-c{args.connections}", f"-d{args.seconds}s", "-s", script,
                              envoy.url], capture_output=True, text=True)
        if run.returncode != 0:
            bench.die(f"wrk failed: {run.stdout}{run.stderr}")
        out = run.stdout
        stop.set()
        sampler.join()
        samples.append((args.seconds, envoy.rss_kib()))
        time.sleep(1.5)  # counters reach Envoy's stats within a second
        # Envoy names them wasmcustom.tollgate.*.
        counters = {"tollgate." + k.split("tollgate.", 1)[1]: v
                    for k, v in envoy.stats("tollgate.").items()}
        rq = envoy.stats("http.soak.downstream_rq_")
        alive = envoy.proc.poll() is None
    finally:
        stop.set()
        envoy.stop()
    return report(args, out, samples, counters, rq, alive, len(fixed) + 1, workdir)


def report(args, out, samples, counters, rq, alive, kinds, workdir):
    total = int(re.search(r"(\d+) requests in", out).group(1))
    statuses = {}
    for status, count in re.findall(r"status (\d+) (\d+)", out):
        statuses[int(status)] = statuses.get(int(status), 0) + int(count)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    fivexx = sum(c for s, c in statuses.items() if s >= 500) + rq.get("http.soak.downstream_rq_5xx", 0)
    warm = [kib for t, kib in samples if t >= args.seconds / 4] or [samples[-1][1]]
    baseline, final, peak = warm[0], samples[-1][1], max(k for _, k in samples)
    growth = (final - baseline) / baseline * 100 if baseline else 0.0
    decisions = {k.removeprefix("tollgate."): v for k, v in counters.items()
                 if not k.startswith(("tollgate.config", "tollgate.token_cache"))}
    print(f"soak: {args.seconds} s, 2 workers, {args.connections} connections, {kinds} request kinds "
          f"({args.distinct_tokens} distinct valid tokens among them)")
    print(f"  requests: {total} ({total / args.seconds:.0f}/s); statuses: "
          + ", ".join(f"{s}: {c}" for s, c in sorted(statuses.items())))
    print(f"  5xx: {fivexx}; socket errors: {socket_errors.group(1) if socket_errors else 'none'}")
    print("  filter decisions: " + ", ".join(f"{k} {v}" for k, v in sorted(decisions.items())))
    print(f"  token cache: hits {counters.get('tollgate.token_cache.hit', 0)}, "
          f"misses {counters.get('tollgate.token_cache.miss', 0)}")
    print(f"  Envoy RSS: {baseline / 1024:.1f} MiB after warm-up, {final / 1024:.1f} MiB at the end "
          f"({growth:+.1f}%), peak {peak / 1024:.1f} MiB; samples every 5 s: "
          + " ".join(f"{k / 1024:.0f}" for _, k in samples))
    failures = []
    if not alive:
        failures.append("Envoy died")
    if fivexx:
        failures.append(f"{fivexx} responses were 5xx")
    if socket_errors:
        failures.append(f"socket errors: {socket_errors.group(1)}")
    expected = ["allowed.access_token", "allowed.api_key", "allowed.client", "allowed.anonymous",
                "denied.missing_credentials", "denied.invalid_credentials", "denied.token_expired",
                "denied.invalid_request", "denied.permission_denied", "redirected", "unchecked",
                "preflight"]
    missing = [k for k in expected if not decisions.get(k)]
    if missing:
        failures.append("never counted: " + ", ".join(missing))
    if sum(decisions.values()) < total * 0.99:
        failures.append(f"the filter counted {sum(decisions.values())} decisions for {total} requests")
    if growth > 10 and final - baseline > 10 * 1024:
        failures.append(f"memory grew {growth:.1f}% after the warm-up")
    if failures:
        print("soak: FAILED: " + "; ".join(failures) + f" (files in {workdir})")
        return 1
    print("soak: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
