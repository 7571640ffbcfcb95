#!/usr/bin/env python3
"""The memory of one Envoy worker fed many distinct long (about 8 KiB) valid tokens: each is
verified and cached, so the growth is what the cache of verified tokens holds at most.

Standard library and Envoy only. ENVOY and TOLLGATE_WASM come from the environment;
--tokens sets how many distinct tokens are sent (default 12000).
"""

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the Envoy launcher and configuration helpers)

SECRET = "cache-memory-" + os.urandom(16).hex()
CONFIG = {
    "secrets": [{"key_env": "TOLLGATE_SECRET"}],
    "rules": [{"prefix": "/", "mode": "required"}],
}


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def long_token(i, size=8100):
    """A valid HS256 access token of about `size` bytes (a padding claim)."""
    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": f"user-{i}", "token_type": "access", "iat": now - 10, "exp": now + 3600}
    pad = (size - 200) * 3 // 4
    claims["pad"] = ("%08d" % i) + "p" * (pad - 8)
    body = b64(json.dumps(claims).encode())
    signing_input = f"{head}.{body}".encode()
    return f"{head}.{body}.{b64(hmac.new(SECRET.encode(), signing_input, hashlib.sha256).digest())}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=12000)
    args = parser.parse_args()
    bench.ENVOY = bench.need("ENVOY")
    wasm = bench.need("TOLLGATE_WASM")
    workdir = tempfile.mkdtemp(prefix="tollgate-cache-memory-")
    filters = [bench.wasm_filter(wasm, CONFIG, {"TOLLGATE_SECRET": SECRET})]
    envoy = bench.Envoy("cache-memory", bench.bootstrap(filters), workdir, concurrency=1, cpus="0,1")
    try:
        connection = http.client.HTTPConnection("127.0.0.1", envoy.port)

        def send(i):
            connection.request("GET", "/", headers={"Authorization": "Bearer " + long_token(i)})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                bench.die(f"token {i}: status {response.status}")

        for i in range(200):
            send(i)
        time.sleep(1)
        before = envoy.rss_kib()
        for i in range(200, 200 + args.tokens):
            send(i)
        time.sleep(1)
        after = envoy.rss_kib()
        print(f"tokens of {len(long_token(0))} bytes: {args.tokens} sent; Envoy RSS {before} KiB "
              f"-> {after} KiB (+{(after - before) / 1024:.1f} MiB)")
    finally:
        envoy.stop()


if __name__ == "__main__":
    main()
