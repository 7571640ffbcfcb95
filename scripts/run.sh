#!/usr/bin/env bash
# Starts echo-upstream and Envoy with the filter on envoy/envoy.yaml (run from the repository
# root; `make run` builds everything first). Stops both on Ctrl-C.
set -euo pipefail

ENVOY=${ENVOY:-.venv/bin/envoy}
mkdir -p .run

# A random demo secret, made once and kept out of the repository.
if [ ! -s .run/secret ]; then
  python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > .run/secret
  chmod 600 .run/secret
fi
TOLLGATE_SECRET=$(cat .run/secret)
export TOLLGATE_SECRET

cleanup() { kill "${upstream_pid:-}" "${envoy_pid:-}" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

target/release/echo-upstream --listen 127.0.0.1:18080 > .run/echo-upstream.log 2>&1 &
upstream_pid=$!

"$ENVOY" -c envoy/envoy.yaml --concurrency 2 --disable-hot-restart -l warning \
  --component-log-level wasm:info > .run/envoy.log 2>&1 &
envoy_pid=$!

for _ in $(seq 100); do
  if curl -fsS http://127.0.0.1:9901/ready >/dev/null 2>&1; then break; fi
  if ! kill -0 "$envoy_pid" 2>/dev/null; then
    echo "Envoy did not start; its log:" >&2
    cat .run/envoy.log >&2
    exit 1
  fi
  sleep 0.1
done

token=$(target/release/mint-token --sub lUpa --ttl 2h --kid demo)
expired=$(target/release/mint-token --sub lUpa --ttl 5m --issued-ago 1h --kid demo)
cat <<MSG

tollgate is serving http://127.0.0.1:10000 (Envoy admin: http://127.0.0.1:9901)
Logs: .run/envoy.log, .run/echo-upstream.log. Ctrl-C stops everything.

Try:
  curl -i http://127.0.0.1:10000/api/orders                      # 401 MISSING_CREDENTIALS
  curl -i http://127.0.0.1:10000/public/hello                    # 200, never checked
  curl -i http://127.0.0.1:10000/feed                            # 200 as anonymous
  curl -i -H "Authorization: Bearer $token" http://127.0.0.1:10000/api/orders
  curl -i "http://127.0.0.1:10000/api/orders?access_token=$token&page=2"
  curl -i -H "Authorization: Bearer $expired" http://127.0.0.1:10000/api/orders   # 401 TOKEN_EXPIRED

More tokens: TOLLGATE_SECRET=\$(cat .run/secret) target/release/mint-token --sub someone --ttl 15m --kid demo
MSG

wait "$envoy_pid"
