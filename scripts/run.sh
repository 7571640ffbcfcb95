#!/usr/bin/env bash
# Starts echo-upstream, the demo sign-in service, the demo OpenID provider (tests/idp, under
# Node.js; its tokens are the issuer demo-idp's) and Envoy with the filter on envoy/envoy.yaml
# (run from the repository root; `make run` builds everything first: the native programs as
# debug builds, in BIN_DIR, and the provider's node_modules). NATIVE=1 runs the native
# module instead of the .wasm (`make run NATIVE=1`). Stops them all on Ctrl-C.
set -euo pipefail

ENVOY=${ENVOY:-.venv/bin/envoy}
NODE=${NODE:-node}
BIN_DIR=${BIN_DIR:-target/debug}
mkdir -p .run

# Random demo secrets, made once and kept out of the repository.
. scripts/demo-secrets.sh

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

"$BIN_DIR"/echo-upstream --listen 127.0.0.1:18080 > .run/echo-upstream.log 2>&1 &
pids+=($!)
# Sessions and revocations persist in .run/signin.db; TOLLGATE_SIGNIN_ADMIN_KEY (exported by
# demo-secrets.sh) is its admin key.
TOLLGATE_SIGNIN_ADMIN_KEY=$TOLLGATE_SIGNIN_ADMIN_KEY "$BIN_DIR"/tollgate-signin \
  --config demo/signin/signin.json --database .run/signin.db > .run/signin.log 2>&1 &
pids+=($!)
# The provider exits when its standard input closes: this loop holds it open while this
# script runs. Its browser client tollgate-web (the filter's oidc) comes back to
# /oauth/callback and, after logout, to /public/signed-out; its secret is the demo's.
"$NODE" tests/idp/server.mjs --port 9400 --issuer http://127.0.0.1:9400 \
  --web-redirect http://127.0.0.1:10000/oauth/callback \
  --web-post-logout http://127.0.0.1:10000/public/signed-out \
  --web-secret-env TOLLGATE_OIDC_CLIENT_SECRET \
  < <(while kill -0 $$ 2>/dev/null; do sleep 1; done) > .run/idp.log 2>&1 &
idp_pid=$!
pids+=("$idp_pid")
# NATIVE=1: the same configuration with the native module in place of the .wasm.
config=envoy/envoy.yaml
if [ "${NATIVE:-}" = 1 ]; then
  config=.run/envoy.native.yaml
  python3 scripts/native-config.py envoy/envoy.yaml > "$config"
  export ENVOY_DYNAMIC_MODULES_SEARCH_PATH=$PWD/target/release
fi
"$ENVOY" -c "$config" --concurrency 2 --disable-hot-restart -l warning \
  --component-log-level wasm:info,dynamic_modules:info > .run/access.log 2> .run/envoy.log &
envoy_pid=$!
pids+=("$envoy_pid")

for _ in $(seq 100); do
  if curl -fsS http://127.0.0.1:9901/ready >/dev/null 2>&1; then break; fi
  if ! kill -0 "$envoy_pid" 2>/dev/null; then
    echo "Envoy did not start; its log:" >&2
    cat .run/envoy.log >&2
    exit 1
  fi
  sleep 0.1
done

for _ in $(seq 100); do
  if grep -q '^listening' .run/idp.log 2>/dev/null; then break; fi
  if ! kill -0 "$idp_pid" 2>/dev/null; then
    echo "The OpenID provider did not start (Node.js 20 and tests/idp/node_modules: make run); its log:" >&2
    cat .run/idp.log >&2
    exit 1
  fi
  sleep 0.1
done

token=$("$BIN_DIR"/mint-token --sub lUpa --ttl 2h --kid demo)
expired=$("$BIN_DIR"/mint-token --sub lUpa --ttl 5m --issued-ago 1h --kid demo)
base=http://127.0.0.1:10000
cat <<MSG

tollgate is serving $base (Envoy admin: http://127.0.0.1:9901)
Open $base/app in a browser: you sign in at the demo OpenID provider (any login and
password), and the page shows who the upstream was told you are; $base/oauth/logout ends it.
The demo sign-in service (demo / demo-password) serves tokens: POST $base/login, below.
Logs: .run/envoy.log, .run/access.log, .run/signin.log, .run/idp.log, .run/echo-upstream.log.
Counters: curl -s http://127.0.0.1:9901/stats/prometheus | grep tollgate
Ctrl-C stops everything.

Try:
  curl -i $base/api/orders                           # 401 MISSING_CREDENTIALS
  curl -i $base/public/hello                         # 200, never checked
  curl -i $base/feed                                 # 200 as anonymous
  curl -i -H "Authorization: Bearer $token" $base/api/orders
  curl -i "$base/api/orders?access_token=$token&page=2"
  curl -i -H "Authorization: Bearer $expired" $base/api/orders   # 401 TOKEN_EXPIRED
  curl -i -H "Authorization: Bearer $TOLLGATE_API_KEY" $base/admin/stats
  curl -i -H "Authorization: Bearer $TOLLGATE_PUBLISHABLE_KEY" $base/catalog/items
  curl -i "$base/reports/daily?client_id=reporting-job&client_secret=$TOLLGATE_CLIENT_SECRET"
  curl -i -H 'Accept: text/html' $base/app                # 302 to the provider's sign-in
  curl -i -H 'Content-Type: application/json' -d '{"username":"demo","password":"demo-password"}' $base/login
  curl -i -d "token=$token" $base/auth/revoke                # RFC 7009: the token revokes itself
  curl -i -H "Authorization: Bearer $token" $base/api/orders   # within 2 s: 401 TOKEN_REVOKED
  curl -s -H "Authorization: Bearer $TOLLGATE_API_KEY" $base/auth/revocations   # the feed (admin)
  curl -i -H "Authorization: Bearer \$(cat .run/signin-admin-key)" -d subject=lUpa \
    http://127.0.0.1:18081/auth/revoke-subject              # admin: every token of lUpa until now

A token of the identity provider (issuer demo-idp, http://127.0.0.1:9400; its roles come from
realm_access.roles, its email claim becomes x-auth-email):
  idp_token=\$(curl -s -u tollgate-rs256:idp-test-secret-rs256-4qV8mZ2xKp7LwN3c \\
    -d grant_type=client_credentials -d scope=read -d resource=api://tollgate-tests \\
    http://127.0.0.1:9400/token | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -i -H "Authorization: Bearer \$idp_token" $base/inventory/items   # 200, x-auth-role: reader,writer
  curl -i -H "Authorization: Bearer \$idp_token" $base/api/orders        # 403: that rule admits user and admin
Its keys: curl -s http://127.0.0.1:9901/stats | grep issuer_keys

More tokens: TOLLGATE_SECRET=\$(cat .run/secret) $BIN_DIR/mint-token --sub someone --ttl 15m --kid demo
MSG

wait "$envoy_pid"
