//! The session endpoints' work past sign-in: reading this service's tokens, the next pair
//! of a session (`/auth/refresh`), signing out (`/logout`).

use super::*;

impl Service {
    /// A verifier of this service's tokens (built per use: it holds a cache that is not
    /// shared between threads).
    pub(super) fn verifier(&self) -> TokenVerifier {
        TokenVerifier::new(vec![self.key.clone()], 60, None)
    }

    /// The claims of a token of `token_type` this service's key signed, still valid at `now`.
    pub(super) fn claims(&self, token: &str, token_type: &str, now: u64) -> Option<Value> {
        self.verifier().verify_typed(token, token_type, now).ok()?;
        let parts = tollgate_core::verify::jws::split(token)?;
        let payload = tollgate_core::verify::base64url::decode(parts.payload.as_bytes())?;
        serde_json::from_slice(&payload).ok()
    }

    /// The `jti` of a token of `token_type` this service signed, still valid at `now`.
    pub(super) fn token_id(&self, token: &str, token_type: &str, now: u64) -> Option<String> {
        let claims = self.claims(token, token_type, now)?;
        claims.get("jti")?.as_str().map(str::to_owned)
    }

    pub(super) fn refresh(&self, request: &Incoming, now: u64) -> Reply {
        let from_body = request.field("refresh_token");
        let from_cookie = request.cookie(REFRESH_COOKIE);
        let set_cookies = from_body.is_none() && from_cookie.is_some();
        let Some(token) = from_body.or(from_cookie) else {
            return Reply::error(400, "refresh_token is required");
        };
        let refused = || Reply::error(401, "invalid or expired refresh token");
        let Some(claims) = self.claims(&token, "refresh", now) else {
            return refused();
        };
        let Some(jti) = claims.get("jti").and_then(Value::as_str) else {
            return refused();
        };
        let (family, subject) = match self.store.use_refresh(jti, now) {
            Ok(found) => found,
            Err(Refused::Failed(e)) => {
                eprintln!("tollgate-signin: cannot refresh: {e}");
                return Reply::error(503, "cannot refresh now");
            }
            Err(Refused::Reused) => {
                eprintln!(
                    "tollgate-signin: a refresh token was used twice; its session is revoked \
                     (client {})",
                    self.client(request)
                );
                return refused();
            }
            Err(Refused::Unknown) => return refused(),
        };
        // A revoked subject's sessions ended with the revocation; a subject revoked after
        // this token was issued is refused all the same.
        let issued = claims.get("iat").and_then(Value::as_u64).unwrap_or(0);
        let revoked = self.store.subject_revoked(&subject, issued, now);
        let user = self.settings.users.iter().find(|u| u.sub == subject);
        let Some(user) = user.filter(|_| revoked == Ok(false)) else {
            if let Err(e) = self.store.revoke_session_of(jti, now) {
                eprintln!("tollgate-signin: cannot end a session: {e}");
            }
            return refused();
        };
        let Some(pair) = self.issue(user, &family, now) else {
            return Reply::error(503, "cannot sign tokens");
        };
        let mut reply = Service::pair_reply(user, &pair);
        if set_cookies {
            reply.headers.extend(self.cookies(&pair));
        }
        reply
    }

    /// Ends the session of whichever token the request carries, and clears the cookies.
    pub(super) fn logout(&self, request: &Incoming, now: u64) -> Reply {
        let bearer = request
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .map(str::to_owned);
        let refresh = [
            request.field("refresh_token"),
            request.cookie(REFRESH_COOKIE),
        ];
        let access = [bearer, request.cookie(&self.settings.cookie)];
        let mut ended = false;
        let mut failed = None;
        for jti in refresh
            .into_iter()
            .flatten()
            .filter_map(|t| self.token_id(&t, "refresh", now))
        {
            match self.store.revoke_session_of(&jti, now) {
                Ok(one) => ended |= one,
                Err(e) => failed = Some(e),
            }
        }
        for token in access.into_iter().flatten() {
            match self.revoke_access(&token, true, now) {
                Ok(one) => ended |= one,
                Err(e) => failed = Some(e),
            }
        }
        let mut reply = if let Some(e) = failed {
            eprintln!("tollgate-signin: sign-out incomplete: {e}");
            Reply::error(503, "cannot end the session now")
        } else if request.is_json() {
            Reply::json(
                200,
                json!({"code": 0, "data": {"signed_out": ended}, "msg": ""}),
            )
        } else {
            let redirect = request.field("redirect").unwrap_or_else(|| "/login".into());
            Reply::redirect(safe_return(&redirect, &self.settings.trusted_hosts))
        };
        reply.headers.extend(self.cookie_headers(None));
        reply
    }

    /// Revokes access token `token` (when this service's key signed it and it is still
    /// valid): its `jti` (or, without one, its digest) until its `exp` (plus the filter's
    /// clock skew, during which the filter still accepts it); with `end_session`, also its
    /// session and the session's other live access tokens. Whether it was a valid access
    /// token.
    pub(super) fn revoke_access(
        &self,
        token: &str,
        end_session: bool,
        now: u64,
    ) -> Result<bool, StoreError> {
        let Some(claims) = self.claims(token, "access", now) else {
            return Ok(false);
        };
        let expires_at = claims
            .get("exp")
            .and_then(Value::as_u64)
            .map_or(now, |exp| exp.saturating_add(FILTER_SKEW));
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match claims.get("jti").and_then(Value::as_str) {
            Some(jti) => {
                self.store
                    .revoke_own(subject, OwnToken::Jti(jti), expires_at, now)?;
                if end_session {
                    self.store.revoke_session_of(jti, now)?;
                }
            }
            None => {
                let signing_input = token.rsplit_once('.').map_or(token, |(input, _)| input);
                let digest = random::encode(&TokenMarks::digest_of(signing_input));
                self.store
                    .revoke_own(subject, OwnToken::Digest(&digest), expires_at, now)?;
            }
        }
        Ok(true)
    }
}
