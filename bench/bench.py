#!/usr/bin/env python3
"""`make bench`: tollgate against Envoy without a filter, a do-nothing Wasm filter and Envoy's
native jwt_authn, in one interleaved run on this machine.

Two token families: HS256 tokens of the master secret (against jwt_authn with the same `oct`
key), and an identity provider's ("issuer") RS256 and ES256 tokens, signed with the fixed test
keys of tests/data/issuer-keys, against jwt_authn with the same public keys inline
(`local_jwks`) and fetched through a cluster (`remote_jwks`) from a small HTTP server in this
process, and tollgate with the keys inline (`jwks`) and fetched (`jwks_uri`) from that server.

Every arm is an Envoy 1.40 with one worker pinned to CPU 1 and a route answered by Envoy
itself (direct_response), so the filter's cost dominates; wrk runs pinned to CPU 0. Each
round drives every (workload, arm) pair for the same time, round after round, and the table
reports medians and the ratios the project holds itself to. Absolute numbers move from run
to run and machine to machine; compare ratios within one run.

Standard library only. Paths come from the environment (the Makefile sets them):
ENVOY, TOLLGATE_WASM, NOOP_WASM, MINT_TOKEN, and OHA for the latency part (optional).
"""

import argparse
import hashlib
import json
import os
import re
import http.server
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
KID = "bench"
ENVOY_CPU = "1"
LOAD_CPU = "0"
# The issuer of the asymmetric workloads, and its keys (PKCS#8 PEM, fixed test keys).
ISSUER = "https://idp.bench"
AUDIENCE = "api://bench"
ISSUER_KEYS = {  # alg: (kid, PEM file)
    "RS256": ("bench-rsa", os.path.join(ROOT, "tests", "data", "issuer-keys", "rsa-2048.pem")),
    "ES256": ("bench-ec", os.path.join(ROOT, "tests", "data", "issuer-keys", "ec-p256.pem")),
}
# The arms that check tokens (so refuse the workloads that expect refusals).
AUTHENTICATING = ("jwt_authn", "jwt_authn_cached", "tollgate", "jwt_local", "jwt_local_cached", "jwt_remote",
                  "tollgate_uri", "tollgate_revoked", "native")


def die(message):
    print(f"bench: {message}", file=sys.stderr)
    sys.exit(1)


def need(name):
    value = os.environ.get(name)
    if not value or not os.path.exists(value):
        die(f"{name} is not set to an existing file (run `make bench`)")
    return value


# ---------------------------------------------------------------- Envoy configurations

def hcm(http_filters):
    return {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "bench",
        "codec_type": "HTTP1",
        "generate_request_id": False,
        "route_config": {"virtual_hosts": [{
            "name": "all",
            "domains": ["*"],
            "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}],
        }]},
        "http_filters": http_filters + [{
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        }],
    }


def wasm_filter(path, configuration, env=None):
    return {
        "name": "wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "wasm",
                "failure_policy": "FAIL_CLOSED",
                "vm_config": {
                    "vm_id": "bench",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": path}},
                    "environment_variables": {"key_values": env or {}},
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": json.dumps(configuration),
                },
            },
        },
    }


def native_filter(configuration):
    """tollgate's native module (found through ENVOY_DYNAMIC_MODULES_SEARCH_PATH)."""
    return {
        "name": "tollgate",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
            "dynamic_module_config": {"name": "tollgate_native", "do_not_close": True,
                                      "metrics_namespace": "wasmcustom"},
            "filter_name": "tollgate",
            "filter_config": {
                "@type": "type.googleapis.com/google.protobuf.StringValue",
                "value": json.dumps(configuration),
            },
        },
    }


def noop_native_filter():
    """The do-nothing native module (bench/noop-native): every hook lets the stream on."""
    return {
        "name": "noop_native",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
            "dynamic_module_config": {"name": "noop_native", "do_not_close": True},
            "filter_name": "noop",
        },
    }


def cached(filter_):
    """A jwt_authn filter with its verified-token cache on (it is off unless configured)."""
    filter_ = json.loads(json.dumps(filter_))
    for provider in filter_["typed_config"]["providers"].values():
        provider["jwt_cache_config"] = {"jwt_cache_size": 100_000}
    return filter_


def jwt_authn_filter(secret):
    # The same HS256 key as a JWK; the same checks the filter makes that jwt_authn can make
    # (signature, exp/nbf), the subject copied to x-auth-user, the token not forwarded.
    k = __import__("base64").urlsafe_b64encode(secret.encode()).decode().rstrip("=")
    jwks = {"keys": [{"kty": "oct", "alg": "HS256", "kid": KID, "k": k}]}
    return {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"bench": {
                "local_jwks": {"inline_string": json.dumps(jwks)},
                "forward": False,
                "clock_skew_seconds": 60,
                "claim_to_headers": [{"header_name": "x-auth-user", "claim_name": "sub"}],
            }},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "bench"}}],
        },
    }


def jwt_authn_issuer_filter(jwks=None, jwks_url=None):
    # The issuer's public keys inline (local_jwks) or fetched through the cluster `jwks`
    # (remote_jwks, fetched when Envoy starts and kept a day); issuer and audience required.
    if jwks is not None:
        source = {"local_jwks": {"inline_string": json.dumps(jwks)}}
    else:
        source = {"remote_jwks": {
            "http_uri": {"uri": jwks_url, "cluster": "jwks", "timeout": "5s"},
            "cache_duration": "86400s",
            "async_fetch": {},
        }}
    return {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"idp": {
                "issuer": ISSUER,
                "audiences": [AUDIENCE],
                **source,
                "forward": False,
                "clock_skew_seconds": 60,
                "claim_to_headers": [{"header_name": "x-auth-user", "claim_name": "sub"}],
            }},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}}],
        },
    }


def issuer_entry(jwks=None, jwks_url=None):
    entry = {"name": "idp", "issuer": ISSUER, "audiences": [AUDIENCE]}
    if jwks is not None:
        entry["jwks"] = jwks
    else:
        entry.update({"jwks_uri": jwks_url, "cluster": "jwks", "refresh_seconds": 86400})
    return entry


def tollgate_config(api_key, issuer=None):
    return {
        "secrets": [{"kid": KID, "key_env": "TOLLGATE_SECRET"}],
        **({"issuers": [issuer]} if issuer else {}),
        "api_keys": [{"name": "bench-backend", "key": api_key}],
        "rules": [
            {"prefix": "/public", "mode": "none"},
            {"path": "/healthz", "mode": "none"},
            {"prefix": "/feed", "mode": "optional"},
            {"prefix": "/admin", "mode": "required", "roles": ["admin"]},
        ],
    }


def jwks_cluster(port):
    return {
        "name": "jwks",
        "type": "STATIC",
        "connect_timeout": "2s",
        "load_assignment": {"cluster_name": "jwks", "endpoints": [{"lb_endpoints": [{"endpoint": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]},
    }


def bootstrap(filters, clusters=()):
    return {
        "static_resources": {"clusters": list(clusters), "listeners": [{
            "name": "bench",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": hcm(filters),
            }]}],
        }]},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
    }


class Envoy:
    def __init__(self, name, config, workdir, concurrency=1, cpus=None, env=None):
        self.name = name
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir)
        path = os.path.join(self.dir, "envoy.json")
        with open(path, "w") as f:
            json.dump(config, f)
        admin_file = os.path.join(self.dir, "admin")
        self.log = open(os.path.join(self.dir, "envoy.log"), "w")
        self.proc = subprocess.Popen(
            ["taskset", "-c", cpus or ENVOY_CPU, ENVOY, "-c", path, "--concurrency", str(concurrency),
             "--disable-hot-restart", "-l", "warning", "--admin-address-path", admin_file],
            stdout=self.log, stderr=subprocess.STDOUT, env=dict(os.environ, **(env or {})))
        deadline = time.time() + 60
        while True:
            if self.proc.poll() is not None:
                die(f"Envoy ({name}) exited; see {self.dir}/envoy.log")
            if os.path.exists(admin_file) and open(admin_file).read().strip():
                self.admin = "http://" + open(admin_file).read().strip()
                try:
                    listeners = json.load(urllib.request.urlopen(self.admin + "/listeners?format=json"))
                    port = listeners["listener_statuses"][0]["local_address"]["socket_address"]["port_value"]
                    if port:
                        self.port = port
                        break
                except Exception:
                    pass
            if time.time() > deadline:
                die(f"Envoy ({name}) did not come up")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self):
        """User plus system CPU time of the Envoy process so far."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stats(self, prefix):
        text = urllib.request.urlopen(self.admin + "/stats?filter=" + prefix).read().decode()
        return {k: int(v) for k, v in (l.split(": ", 1) for l in text.splitlines() if ": " in l)
                if v.strip().lstrip("-").isdigit()}

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# ---------------------------------------------------------------- load

LUA_STATIC = """
wrk.method = "GET"
wrk.path = "{path}"
{headers}
"""

LUA_POOL = """
local tokens = {{}}
for line in io.lines("{file}") do tokens[#tokens + 1] = line end
local n = #tokens
local i = 0
{start}
request = function()
  i = i % n + 1
  return wrk.format("GET", "{path}", {{["Authorization"] = "Bearer " .. tokens[i], ["x-auth-user"] = "mallory"}})
end
"""


# A run of an issuer's distinct tokens starts where the arm's run before stopped (`{offset}`,
# filled in before each run), so that a run does not meet the tokens the runs before left in
# the filter's cache: the pool is walked once, not from its start on every run.
LUA_CONTINUE = """
i = {offset} % n
"""


def lua_pool(file, path, resume=False):
    return LUA_POOL.format(file=file, path=path, start=LUA_CONTINUE if resume else "")


def lua_static(path, headers):
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    return LUA_STATIC.format(path=path, headers=lines)


def wrk(url, script, seconds, connections):
    out = subprocess.run(
        ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-s", script, url],
        capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "total": total, "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "errors": errors.group(1) if errors else None}


TOKEN_STORE = os.path.join(ROOT, ".run", "bench-tokens")
POOL_TTL = "30d"
POOL_REUSE_SECONDS = 7 * 86400


def issuer_pool(alg, count, mint_issuer):
    """A file of `count` distinct tokens of `alg`, kept in .run/bench-tokens and reused for a
    week (they are valid for 30 days): RSA signing in pure Rust takes ~3 ms a token, too slow
    to mint tens of thousands on every run. Anything that changes the tokens (key, kid, issuer,
    audience, count) names another file."""
    kid, pem = ISSUER_KEYS[alg]
    digest = hashlib.sha256("\0".join([alg, kid, ISSUER, AUDIENCE, str(count), POOL_TTL,
                                       open(pem).read()]).encode()).hexdigest()[:16]
    path = os.path.join(TOKEN_STORE, f"{alg}-{count}-{digest}.txt")
    if os.path.exists(path) and time.time() - os.path.getmtime(path) < POOL_REUSE_SECONDS:
        return path
    os.makedirs(TOKEN_STORE, exist_ok=True)
    started = time.time()
    text = mint_issuer(alg, count, "bench-user", ttl=POOL_TTL)
    if len(text.splitlines()) != count:
        die(f"minting {alg} tokens gave {len(text.splitlines())} lines, not {count}")
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
    print(f"minted {count:,} {alg} tokens in {time.time() - started:.1f}s (kept in {path})",
          file=sys.stderr)
    return path


class DocumentServer:
    """Serves JSON documents by path on 127.0.0.1 (a thread of this process), counting the
    requests of each path. `unchanged`, by path: the answer to a request that carries a
    query (a feed's cursor: nothing new since)."""

    def __init__(self, documents, unchanged=None):
        bodies = {path: json.dumps(document).encode() for path, document in documents.items()}
        later = {path: json.dumps(document).encode() for path, document in (unchanged or {}).items()}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                path, _, query = self.path.partition("?")
                server.requests[path] = server.requests.get(path, 0) + 1
                if path not in bodies:
                    self.send_error(404)
                    return
                body = later[path] if query and path in later else bodies[path]
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.requests = {}
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        self.httpd.shutdown()


class JwksServer(DocumentServer):
    """The issuer's JWKS at /jwks.json, counting fetches."""

    def __init__(self, document):
        super().__init__({"/jwks.json": document})
        self.url = DocumentServer.url(self, "/jwks.json")

    @property
    def fetches(self):
        return self.requests.get("/jwks.json", 0)


REVOKED_ENTRIES = 10_000


def revocation_feed(count):
    """A revocation feed page of `count` revoked token ids, none of them the bench's tokens."""
    expires = int(time.time()) + 86_400
    return {"cursor": "1", "reset": True,
            "revoked": [{"jti": f"revoked-{i:06d}", "expires_at": expires} for i in range(count)]}


def named_cluster(name, port):
    cluster = jwks_cluster(port)
    cluster["name"] = name
    cluster["load_assignment"]["cluster_name"] = name
    return cluster


# ---------------------------------------------------------------- the run

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--memory-requests", type=int, default=1_000_000,
                        help="requests with distinct tokens for the memory check (0 skips it)")
    parser.add_argument("--latency-seconds", type=int, default=10,
                        help="length of each fixed-rate latency run (0 skips it)")
    parser.add_argument("--latency-rounds", type=int, default=2)
    parser.add_argument("--only", help="comma-separated workloads to run (names as in the table, "
                        "or `hs256` / `issuer` for each family)")
    parser.add_argument("--issuer-tokens", type=int, default=20_000,
                        help="distinct tokens of each issuer algorithm (more than the filter's "
                        "cache of 10,000, so that nearly every request is a full verification)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=WASM",
                        help="another build of the filter to compare, with the same configuration")
    parser.add_argument("--arms", help="comma-separated arms to drive (with `tollgate`, e.g. "
                        "`tollgate` to compare it with the variants alone); default: every arm")
    args = parser.parse_args()

    global ENVOY
    ENVOY = need("ENVOY")
    tollgate_wasm = need("TOLLGATE_WASM")
    noop_wasm = need("NOOP_WASM")
    native_so = need("NATIVE_SO")
    noop_native_so = need("NOOP_NATIVE_SO")
    mint = need("MINT_TOKEN")
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            die(f"{tool} is not installed")

    workdir = tempfile.mkdtemp(prefix="tollgate-bench-")
    secret = secrets.token_urlsafe(32)
    api_key = "sk_bench_" + secrets.token_urlsafe(24)
    env = dict(os.environ, TOLLGATE_SECRET=secret)

    def mint_tokens(count, sub):
        args_ = [mint, "--sub", sub, "--ttl", "2h", "--kid", KID]
        if count > 1:
            args_ += ["--count", str(count)]
        return subprocess.run(args_, env=env, capture_output=True, text=True, check=True).stdout

    def mint_issuer(alg, count, sub, ttl="2h"):
        kid, pem = ISSUER_KEYS[alg]
        args_ = [mint, "--alg", alg, "--key-file", pem, "--kid", kid, "--iss", ISSUER,
                 "--aud", AUDIENCE, "--sub", sub, "--ttl", ttl]
        if count > 1:
            args_ += ["--count", str(count)]
        return subprocess.run(args_, capture_output=True, text=True, check=True).stdout

    only = None
    if args.only:
        only = set()
        for w in args.only.split(","):
            w = w.strip()
            only |= {"hs256": set(HS256_WORKLOADS), "issuer": set(ISSUER_WORKLOADS)}.get(w, {w})
    wanted = lambda names: only is None or any(n in only for n in names)

    token = mint_tokens(1, "bench-user").strip()
    # One signature character changed: a well-formed token with a bad signature.
    at = len(token) - 10
    invalid = token[:at] + ("B" if token[at] == "A" else "A") + token[at + 1:]
    pool_file = os.path.join(workdir, "tokens.txt")
    if wanted(["distinct tokens"]) or args.memory_requests:
        with open(pool_file, "w") as f:
            f.write(mint_tokens(200_000, "bench-user"))

    # The issuer's public keys, as the minting tool prints them: one JWKS for both arms of
    # jwt_authn and both arms of tollgate.
    jwks = {"keys": []}
    for alg, (kid, pem) in ISSUER_KEYS.items():
        out = subprocess.run([mint, "--alg", alg, "--key-file", pem, "--kid", kid, "--print-jwks"],
                             capture_output=True, text=True, check=True).stdout
        jwks["keys"] += json.loads(out)["keys"]
    issuer_tokens = {}
    issuer_pools = {}
    for alg in ISSUER_KEYS:
        if wanted([f"{alg} token", f"distinct {alg}"]):
            issuer_tokens[alg] = mint_issuer(alg, 1, "bench-user").strip()
        if wanted([f"distinct {alg}"]):
            issuer_pools[alg] = issuer_pool(alg, args.issuer_tokens, mint_issuer)
    jwks_server = JwksServer(jwks)
    cluster = [jwks_cluster(jwks_server.port)]
    # The whole list on the first poll, then "nothing new" for the cursor, as a feed answers.
    feed_server = DocumentServer({"/revocations": revocation_feed(REVOKED_ENTRIES)},
                                 {"/revocations": {"cursor": "1", "reset": False, "revoked": []}})
    revoked_config = tollgate_config(api_key, issuer_entry(jwks=jwks))
    revoked_config["revocation"] = {"cluster": "feed", "path": "/revocations", "poll_seconds": 1}
    # A revocation feed requires max_lifetime_seconds: above the pools' POOL_TTL (30 days).
    revoked_config["max_lifetime_seconds"] = 31 * 86400

    tollgate_env = {"TOLLGATE_SECRET": secret}
    arms = {
        "none": bootstrap([]),
        "noop": bootstrap([wasm_filter(noop_wasm, {})]),
        # The do-nothing native module: what any dynamic module costs Envoy per stream.
        "noop_native": bootstrap([noop_native_filter()]),
        "jwt_authn": bootstrap([jwt_authn_filter(secret)]),
        "jwt_authn_cached": bootstrap([cached(jwt_authn_filter(secret))]),
        "jwt_local": bootstrap([jwt_authn_issuer_filter(jwks=jwks)]),
        "jwt_local_cached": bootstrap([cached(jwt_authn_issuer_filter(jwks=jwks))]),
        # The native module, with the same configuration as `tollgate`.
        "native": bootstrap([native_filter(tollgate_config(api_key, issuer_entry(jwks=jwks)))]),
        "jwt_remote": bootstrap([jwt_authn_issuer_filter(jwks_url=jwks_server.url)], cluster),
        # One configuration for every token: the master secret and the issuer, keys inline.
        "tollgate": bootstrap([wasm_filter(tollgate_wasm, tollgate_config(api_key, issuer_entry(jwks=jwks)),
                                           tollgate_env)]),
        "tollgate_uri": bootstrap([wasm_filter(tollgate_wasm,
                                               tollgate_config(api_key, issuer_entry(jwks_url=jwks_server.url)),
                                               tollgate_env)], cluster),
        # The same as `tollgate`, with a revocation feed of 10,000 entries polled every second.
        "tollgate_revoked": bootstrap([wasm_filter(tollgate_wasm, revoked_config, tollgate_env)],
                                      [named_cluster("feed", feed_server.port)]),
    }
    variants = []
    for spec in args.variant:
        name, path = spec.split("=", 1)
        arms[name] = bootstrap([wasm_filter(os.path.abspath(path), tollgate_config(api_key, issuer_entry(jwks=jwks)),
                                            tollgate_env)])
        variants.append(name)
    spoof = {"x-auth-user": "mallory"}
    hs_arms = ["none", "noop", "noop_native", "jwt_authn", "jwt_authn_cached", "tollgate", "native"]
    issuer_arms = ["jwt_local", "jwt_local_cached", "jwt_remote", "tollgate", "tollgate_uri", "native"]
    # workload: (script, arms, expected non-2xx for the authenticating arms)
    workloads = {
        "valid token": (lua_static("/api/orders", {"Authorization": f"Bearer {token}", **spoof}),
                        hs_arms + ["tollgate_revoked"], False),
        "distinct tokens": (lua_pool(pool_file, "/api/orders"), hs_arms + ["tollgate_revoked"], False),
        "missing token": (lua_static("/api/orders", spoof), list(hs_arms), True),
        "invalid token": (lua_static("/api/orders", {"Authorization": f"Bearer {invalid}", **spoof}),
                          list(hs_arms), True),
        "API key": (lua_static("/admin/stats", {"Authorization": f"Bearer {api_key}", **spoof}),
                    ["none", "noop", "tollgate", "native"], False),
    }
    for alg in ISSUER_KEYS:
        if alg in issuer_tokens:
            workloads[f"{alg} token"] = (
                lua_static("/api/orders", {"Authorization": f"Bearer {issuer_tokens[alg]}", **spoof}),
                list(issuer_arms), False)
    for alg in ISSUER_KEYS:
        if alg in issuer_pools:
            workloads[f"distinct {alg}"] = (lua_pool(issuer_pools[alg], "/api/orders", resume=True),
                                            list(issuer_arms), False)
    if only is not None:
        workloads = {k: v for k, v in workloads.items() if k in only}
        if not workloads:
            die(f"--only {args.only}: no such workload (workloads: "
                f"{', '.join(HS256_WORKLOADS + ISSUER_WORKLOADS)}, or hs256, issuer)")
    if args.arms:
        kept = set(args.arms.split(",")) | {"tollgate"}
        for _, arm_names, _ in workloads.values():
            arm_names[:] = [a for a in arm_names if a in kept]
    used = {arm for _, arm_names, _ in workloads.values() for arm in arm_names}
    arms = {name: config for name, config in arms.items() if name in used or name in variants}
    for name in variants:
        for _, arm_names, _ in workloads.values():
            arm_names.append(name)
    scripts = {}
    for name, (lua, _, _) in workloads.items():
        path = os.path.join(workdir, re.sub(r"\W+", "-", name) + ".lua")
        with open(path, "w") as f:
            f.write(lua)
        scripts[name] = path

    envoys = {}
    try:
        native_env = {"TOLLGATE_SECRET": secret,
                      "ENVOY_DYNAMIC_MODULES_SEARCH_PATH": os.path.dirname(os.path.abspath(native_so))}
        noop_native_env = {"ENVOY_DYNAMIC_MODULES_SEARCH_PATH": os.path.dirname(os.path.abspath(noop_native_so))}
        envs = {"native": native_env, "noop_native": noop_native_env}
        for name, config in arms.items():
            envoys[name] = Envoy(name, config, workdir, env=envs.get(name))
        started = time.time()
        run(args, envoys, workloads, scripts, tollgate_wasm, noop_wasm, native_so, variants)
        if "jwt_remote" in envoys or "tollgate_uri" in envoys:
            print(f"JWKS server: {jwks_server.fetches} fetches in the whole run")
        if "tollgate_revoked" in envoys:
            polls = feed_server.requests.get("/revocations", 0)
            elapsed = time.time() - started
            entries = envoys["tollgate_revoked"].stats("tollgate.revocation.entries")
            print(f"revocation feed: {polls} polls in {elapsed:.0f} s (poll_seconds 1: about one "
                  f"per second for the one Envoy process); list entries: "
                  f"{entries.get('wasmcustom.tollgate.revocation.entries', 0):,}")
        if args.latency_seconds:
            latency(args, envoys, workloads, scripts)
        if args.memory_requests and "tollgate" in envoys:
            # With the revocation list when there is one: everything tollgate keeps.
            measured = envoys.get("tollgate_revoked", envoys["tollgate"])
            memory(args, measured, workdir, mint_tokens)
        if args.memory_requests and "native" in envoys:
            memory(args, envoys["native"], workdir, mint_tokens)
    finally:
        for e in envoys.values():
            e.stop()
        jwks_server.stop()
        feed_server.stop()
    print(f"\n(work files: {workdir})")


HS256_WORKLOADS = ["valid token", "distinct tokens", "missing token", "invalid token", "API key"]
ISSUER_WORKLOADS = [f"{alg} token" for alg in ISSUER_KEYS] + [f"distinct {alg}" for alg in ISSUER_KEYS]
# The ratio columns: (tollgate's arm, jwt_authn's arm) for HS256 and for issuers' tokens.
RATIO_LOCAL = {"hs256": ("tollgate", "jwt_authn"), "issuer": ("tollgate", "jwt_local")}
RATIO_REMOTE = {"issuer": ("tollgate_uri", "jwt_remote")}
# The native module against jwt_authn (without and with its cache) and against no filter.
NATIVE_VS_JWT = {"hs256": ("native", "jwt_authn"), "issuer": ("native", "jwt_local")}
NATIVE_VS_JWT_CACHED = {"hs256": ("native", "jwt_authn_cached"), "issuer": ("native", "jwt_local_cached")}
NATIVE_VS_NONE = {"hs256": ("native", "none"), "issuer": ("native", "none")}


def family(workload):
    return "issuer" if workload in ISSUER_WORKLOADS else "hs256"


def cache_counts(envoy):
    stats = envoy.stats("tollgate.token_cache")
    return (stats.get("wasmcustom.tollgate.token_cache.hit", 0),
            stats.get("wasmcustom.tollgate.token_cache.miss", 0))


def run(args, envoys, workloads, scripts, tollgate_wasm, noop_wasm, native_so, variants):
    print(f"machine: {os.uname().machine}, {os.cpu_count()} CPUs, "
          f"{open('/proc/cpuinfo').read().split('model name')[1].split(':')[1].splitlines()[0].strip()}")
    print(f"Envoy: {subprocess.run([ENVOY, '--version'], capture_output=True, text=True).stdout.split('version:')[1].strip()}")
    print(f"tollgate.wasm: {os.path.getsize(tollgate_wasm):,} bytes; noop.wasm: {os.path.getsize(noop_wasm):,} bytes; "
          f"libtollgate_native.so: {os.path.getsize(native_so):,} bytes")
    print(f"{args.rounds} interleaved rounds x {args.seconds}s, wrk -t1 -c{args.connections}, "
          f"Envoy --concurrency 1 on CPU {ENVOY_CPU}, wrk on CPU {LOAD_CPU}\n")
    # Where each (workload, arm) stands in its token pool (scripts that resume).
    offsets = {}

    def drive(name, arm, seconds):
        script = scripts[name]
        text = open(script).read()
        if "{offset}" in text:
            script = script[:-len(".lua")] + "-" + re.sub(r"\W+", "-", arm) + ".lua"
            with open(script, "w") as f:
                f.write(text.replace("{offset}", str(offsets.get((name, arm), 0))))
        res = wrk(envoys[arm].url, script, seconds, args.connections)
        offsets[(name, arm)] = offsets.get((name, arm), 0) + res["total"]
        return res

    # Warm every pair once (JIT, caches, connection pools).
    for name, (_, arm_names, _) in workloads.items():
        for arm in arm_names:
            drive(name, arm, 1)
    results = {}
    cpu_us = {}
    # Token cache hits and misses of tollgate's arms, by workload.
    cache = {}
    for r in range(args.rounds):
        for name, (_, arm_names, rejects) in workloads.items():
            for arm in arm_names:
                counted = arm.startswith(("tollgate", "native")) and name.startswith("distinct")
                cache_before = cache_counts(envoys[arm]) if counted else None
                cpu_before = envoys[arm].cpu_seconds()
                res = drive(name, arm, args.seconds)
                cpu = envoys[arm].cpu_seconds() - cpu_before
                if counted:
                    after = cache_counts(envoys[arm])
                    total = cache.setdefault((name, arm), [0, 0])
                    total[0] += after[0] - cache_before[0]
                    total[1] += after[1] - cache_before[1]
                cpu_us.setdefault((name, arm), []).append(cpu / max(res["total"], 1) * 1e6)
                authenticating = arm in AUTHENTICATING or arm in variants
                expect_rejects = rejects and authenticating
                bad = (res["non2xx"] != (res["total"] if expect_rejects else 0)) or res["errors"]
                if bad:
                    die(f"{name} / {arm}: unexpected statuses {res} (expected "
                        f"{'all' if expect_rejects else 'no'} non-2xx)")
                results.setdefault((name, arm), []).append(res["rps"])
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

    median = {k: statistics.median(v) for k, v in results.items()}
    arms = [a for a in ["none", "noop", "noop_native", "jwt_authn", "jwt_authn_cached", "jwt_local", "jwt_local_cached",
                        "jwt_remote", "tollgate", "tollgate_uri", "tollgate_revoked", "native"]
            if a in envoys] + variants

    def ratio(name, other, width, pairs=None):
        mine = "tollgate"
        if pairs is not None:
            if family(name) not in pairs:
                return f"{'-':>{width}}"
            mine, other = pairs[family(name)]
        t, o = median.get((name, mine)), median.get((name, other))
        return f"{t / o:>{width}.2f}" if t and o else f"{'-':>{width}}"

    def extra_cpu(name):
        if (name, "noop") not in cpu:
            return ""
        return f"{cpu[(name, 'tollgate')] - cpu[(name, 'noop')]:>+15.1f}"

    cpu = {k: statistics.median(v) for k, v in cpu_us.items()}
    table("median requests/s", 17, median, ",.0f", arms, workloads,
          f"{'vs jwt local':>14}{'vs jwt remote':>15}{'vs noop':>10}"
          f"{'native/jwt':>12}{'native/jwt cached':>19}{'native/none':>13}",
          lambda name: ratio(name, None, 14, RATIO_LOCAL) + ratio(name, None, 15, RATIO_REMOTE)
          + ratio(name, "noop", 10) + ratio(name, None, 12, NATIVE_VS_JWT)
          + ratio(name, None, 19, NATIVE_VS_JWT_CACHED) + ratio(name, None, 13, NATIVE_VS_NONE))
    print("(vs jwt local: tollgate / jwt_authn with the same keys inline: `jwt_authn` for HS256, "
          "`jwt_local` for the issuer's tokens;\n vs jwt remote: tollgate_uri / jwt_remote, both "
          "fetching the issuer's keys through a cluster)")
    print()
    table("median Envoy CPU us/request", 27, cpu, ".1f", arms, workloads,
          f"{'tollgate-noop':>15}", extra_cpu)
    print("\nspread (min-max requests/s of tollgate): " + ", ".join(
        f"{name}: {min(results[(name, 'tollgate')]):,.0f}-{max(results[(name, 'tollgate')]):,.0f}"
        for name in workloads))
    for name in ("valid token", "distinct tokens"):
        base, revoked = median.get((name, "tollgate")), median.get((name, "tollgate_revoked"))
        if base and revoked:
            print(f"revocation, {name}: tollgate_revoked / tollgate = {revoked / base:.2f} "
                  f"({revoked:,.0f} vs {base:,.0f} requests/s; {REVOKED_ENTRIES:,} revoked entries)")
    if "tollgate" in envoys:
        hits, misses = cache_counts(envoys["tollgate"])
        print(f"token cache (tollgate, whole run): {hits:,} hits, {misses:,} misses")
    for (name, arm), (hits, misses) in cache.items():
        print(f"token cache, {name} on {arm} (measured runs): {misses / max(hits + misses, 1):.1%} "
              f"misses ({misses:,} of {hits + misses:,})")
    print("\ntargets: valid token >= 1.30 x jwt_authn and >= 0.95 x noop; missing/invalid token "
          ">= 1.30 x jwt_authn; API key >= 0.95 x noop; an issuer's repeated token at least the "
          "HS256 valid token's ratio vs jwt_authn;\n native: valid token >= 1.30 x jwt_authn, >= 1.0 x "
          "jwt_authn cached, >= 0.85 x none; a new RS256 or ES256 token on every request >= 0.9 x "
          "jwt_authn")


def table(title, label_width, values, number, arms, workloads, extra_heading, extra):
    """Prints one row per workload and one column per arm, then the `extra` columns."""
    width = {a: max(12, len(a) + 2) for a in arms}
    print(title + "".join(f"{a:>{width[a]}}" for a in arms) + extra_heading)
    for name in workloads:
        row = f"{name:<{label_width}}"
        for a in arms:
            row += f"{values[(name, a)]:>{width[a]}{number}}" if (name, a) in values else f"{'-':>{width[a]}}"
        print(row + extra(name))


def latency(args, envoys, workloads, scripts):
    oha = os.environ.get("OHA")
    if not oha or not os.path.exists(oha):
        print("\nlatency: oha is not installed (make bench installs it); skipped")
        return
    name = "valid token"
    if name not in workloads:
        return
    token_header = open(scripts[name]).read()
    auth = re.search(r'wrk.headers\["Authorization"\] = "([^"]+)"', token_header).group(1)
    # A fixed offered load well below every arm's knee: half of the slowest arm's capacity.
    probe = {arm: wrk(envoys[arm].url, scripts[name], 3, args.connections)["rps"]
             for arm in ("jwt_authn", "tollgate")}
    rate = int(min(probe.values()) * 0.5)
    arms = ["noop", "jwt_authn", "tollgate"] + [
        a for a in envoys if a not in ("none", "noop", "jwt_authn", "tollgate") and not a.startswith("jwt_")
        and a != "tollgate_uri"]
    print(f"\nlatency at a fixed {rate:,} requests/s (open loop, oha --latency-correction, "
          f"{args.latency_rounds} interleaved rounds x {args.latency_seconds}s, medians), valid token")
    print(f"{'arm':<12}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'p99.9 ms':>10}")
    samples = {}
    for _ in range(args.latency_rounds):
        for arm in arms:
            out = subprocess.run(
                ["taskset", "-c", LOAD_CPU, oha, "-z", f"{args.latency_seconds}s", "-c", str(args.connections),
                 "-q", str(rate), "--latency-correction", "--no-tui", "--output-format", "json",
                 "-H", f"Authorization: {auth}", "-H", "x-auth-user: mallory",
                 envoys[arm].url + "/api/orders"],
                capture_output=True, text=True)
            if out.returncode != 0:
                print(f"{arm:<12} oha failed: {out.stderr.strip()[:200]}")
                continue
            p = json.loads(out.stdout)["latencyPercentiles"]
            samples.setdefault(arm, []).append([p[k] * 1000 for k in ("p50", "p90", "p99", "p99.9")])
    for arm in arms:
        if arm in samples:
            columns = zip(*samples[arm])
            print(f"{arm:<12}" + "".join(f"{statistics.median(c):>10.3f}" for c in columns))


def memory(args, envoy, workdir, mint_tokens):
    count = args.memory_requests
    pool = os.path.join(workdir, "memory-tokens.txt")
    if not os.path.exists(pool):
        with open(pool, "w") as f:
            f.write(mint_tokens(count, "memory-user"))
    script = os.path.join(workdir, "memory.lua")
    with open(script, "w") as f:
        f.write(lua_pool(pool, "/api/orders").replace(
            "i = i % n + 1", "i = i + 1; if i > n then wrk.thread:stop(); i = 1 end"))
    # Warm up past the cache's capacity first, then measure across the distinct tokens.
    warm = os.path.join(workdir, "memory-warm.lua")
    with open(warm, "w") as f:
        f.write(lua_pool(os.path.join(workdir, "tokens.txt"), "/api/orders"))
    wrk(envoy.url, warm, 3, args.connections)
    before = envoy.rss_kib()
    served_before = envoy.stats("http.bench.downstream_rq_total").get("http.bench.downstream_rq_total", 0)
    samples = []
    deadline = time.time() + 600
    proc = subprocess.Popen(["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{args.connections}", "-d600s",
                             "-s", script, envoy.url], stdout=subprocess.PIPE, text=True)
    while proc.poll() is None and time.time() < deadline:
        time.sleep(2)
        samples.append(envoy.rss_kib())
    proc.wait()
    served = envoy.stats("http.bench.downstream_rq_total").get("http.bench.downstream_rq_total", 0) - served_before
    after = envoy.rss_kib()
    growth = (after - before) / before * 100
    quarters = [samples[len(samples) * q // 4] for q in range(1, 4)] if len(samples) >= 4 else []
    print(f"\nmemory ({envoy.name}): {served:,} requests with distinct tokens; Envoy RSS {before / 1024:.1f} MiB -> "
          f"{after / 1024:.1f} MiB ({growth:+.1f}%), peak {max(samples + [after]) / 1024:.1f} MiB; at each quarter: "
          f"{', '.join(f'{q / 1024:.1f}' for q in quarters)} MiB (target: under 5% growth)")


if __name__ == "__main__":
    main()
