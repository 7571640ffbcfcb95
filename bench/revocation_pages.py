#!/usr/bin/env python3
"""Envoy's CPU to take in a large revocation list served in many pages: a feed of --entries
revoked token ids in pages of --page entries, polled by an Envoy of 2 workers. Prints the CPU
Envoy spent (utime + stime from /proc) and the time until the `entries` gauge reaches the
list's size.

Standard library and Envoy only. ENVOY and TOLLGATE_WASM come from the environment.
"""

import argparse
import http.server
import json
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the Envoy launcher and configuration helpers)


def feed(entries, page):
    """A feed on 127.0.0.1: the cursor is the position; pages say more until the last."""
    expires = int(time.time()) + 86_400

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            _, _, query = self.path.partition("?cursor=")
            start = int(query) if query.isdigit() else 0
            end = min(entries, start + page)
            body = json.dumps({
                "cursor": str(end), "reset": start == 0, "more": end < entries,
                "revoked": [{"jti": f"revoked-{i:07d}", "expires_at": expires}
                            for i in range(start, end)],
            }).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--page", type=int, default=1_000)
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    bench.ENVOY = bench.need("ENVOY")
    wasm = bench.need("TOLLGATE_WASM")
    server = feed(args.entries, args.page)
    config = {
        "secrets": [{"key_env": "TOLLGATE_SECRET"}],
        "max_lifetime_seconds": 7200,
        "revocation": {"cluster": "feed", "path": "/r", "poll_seconds": 1},
    }
    filters = [bench.wasm_filter(wasm, config, {"TOLLGATE_SECRET": os.urandom(16).hex()})]
    clusters = [bench.named_cluster("feed", server.server_address[1])]
    workdir = tempfile.mkdtemp(prefix="tollgate-revocation-pages-")
    started = time.time()
    envoy = bench.Envoy("revocation-pages", bench.bootstrap(filters, clusters), workdir,
                        concurrency=2, cpus="0,1")
    try:
        entries = 0
        while time.time() < started + args.timeout:
            entries = envoy.stats("wasmcustom.tollgate.revocation.entries").get(
                "wasmcustom.tollgate.revocation.entries", 0)
            if entries >= args.entries:
                break
            time.sleep(0.1)
        elapsed = time.time() - started
        print(f"{args.entries} entries in pages of {args.page}, 2 workers: "
              f"{entries} taken in after {elapsed:.1f} s (Envoy started included), "
              f"Envoy CPU {envoy.cpu_seconds():.2f} s")
    finally:
        envoy.stop()
        server.shutdown()


if __name__ == "__main__":
    main()
