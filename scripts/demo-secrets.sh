#!/usr/bin/env bash
# Makes the demo's random secrets once (.run/, ignored by git), exports them, and writes .env
# for docker-compose. Source it: `. scripts/demo-secrets.sh`.
mkdir -p .run

demo_secret() {
  local file=.run/$1
  if [ ! -s "$file" ]; then
    python3 -c "import secrets; print('$2' + secrets.token_urlsafe(32))" > "$file"
    chmod 600 "$file"
  fi
  cat "$file"
}

TOLLGATE_SECRET=$(demo_secret secret "")
TOLLGATE_API_KEY=$(demo_secret api-key sk_demo_)
TOLLGATE_PUBLISHABLE_KEY=$(demo_secret publishable-key pk_demo_)
TOLLGATE_CLIENT_SECRET=$(demo_secret client-secret cs_demo_)
# The sign-in service's admin key (revocation by jti and by subject).
TOLLGATE_SIGNIN_ADMIN_KEY=$(demo_secret signin-admin-key ak_demo_)
# Browser sign-in (oidc): the client secret the demo provider and the filter share, and the
# key that seals the session cookies (`kid:key`, 32 random bytes in base64url).
TOLLGATE_OIDC_CLIENT_SECRET=$(demo_secret oidc-client-secret oc_demo_)
TOLLGATE_COOKIE_KEYS=$(demo_secret cookie-keys demo:)
export TOLLGATE_SECRET TOLLGATE_API_KEY TOLLGATE_PUBLISHABLE_KEY TOLLGATE_CLIENT_SECRET \
  TOLLGATE_SIGNIN_ADMIN_KEY TOLLGATE_OIDC_CLIENT_SECRET TOLLGATE_COOKIE_KEYS

umask 077
cat > .env <<ENV
TOLLGATE_SECRET=$TOLLGATE_SECRET
TOLLGATE_API_KEY=$TOLLGATE_API_KEY
TOLLGATE_PUBLISHABLE_KEY=$TOLLGATE_PUBLISHABLE_KEY
TOLLGATE_CLIENT_SECRET=$TOLLGATE_CLIENT_SECRET
TOLLGATE_SIGNIN_ADMIN_KEY=$TOLLGATE_SIGNIN_ADMIN_KEY
TOLLGATE_OIDC_CLIENT_SECRET=$TOLLGATE_OIDC_CLIENT_SECRET
TOLLGATE_COOKIE_KEYS=$TOLLGATE_COOKIE_KEYS
ENV
