//! The revocation endpoints: the feed (`/auth/revocations`), a token's revocation
//! (`/auth/revoke`) and a subject's (`/auth/revoke-subject`, admin).

use super::*;

impl Service {
    /// Whether the request carries the admin key (`Authorization: Bearer <key>`), compared
    /// in constant time (as digests, so that its length does not show either). A wrong key
    /// counts as a failed sign-in of its client address; past that address's limit, keys
    /// are not compared until its window ends (`Err`: a 429 to answer).
    pub(super) fn admin(&self, request: &Incoming, now: u64) -> Result<bool, Reply> {
        let given = request
            .header("authorization")
            .and_then(|a| a.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, key)| hmac_sha256::Hash::hash(key.trim().as_bytes()));
        let (Some(expected), Some(given)) = (&self.admin_key, given) else {
            return Ok(false);
        };
        let client = self.client(request);
        match self.limiter.admin_allowed(&self.store, client, now) {
            Ok(Ok(())) => {}
            Ok(Err(wait)) => {
                return Err(Reply::error(429, "too many wrong admin keys")
                    .with("Retry-After", wait.to_string()))
            }
            Err(e) => {
                eprintln!("tollgate-signin: cannot count admin attempts: {e}");
                return Err(Reply::error(503, "cannot check the admin key now"));
            }
        }
        let matches: bool = subtle::ConstantTimeEq::ct_eq(&expected[..], &given[..]).into();
        if !matches {
            eprintln!("tollgate-signin: a wrong admin key from {client}");
            if let Err(e) = self.limiter.admin_failed(&self.store, client, now) {
                eprintln!("tollgate-signin: cannot count a wrong admin key: {e}");
            }
        }
        Ok(matches)
    }

    /// `GET /auth/revocations[?cursor=C]`: the live entries after `cursor`, all of them
    /// (`reset`) without a cursor, or all of them added to the poller's (not a reset) with a
    /// cursor of another database.
    /// Answered to the trusted proxies (the Envoys that poll it; through Envoy, the
    /// filter's rule asks for an admin) and to the admin key.
    pub(super) fn revocations(&self, request: &Incoming, now: u64) -> Reply {
        let from_proxy = self
            .settings
            .trusted_proxies
            .contains(&canonical(request.peer));
        if !from_proxy {
            match self.admin(request, now) {
                Ok(true) => {}
                Ok(false) => {
                    return Reply::error(401, "admin credential required")
                        .with("WWW-Authenticate", "Bearer".into())
                }
                Err(reply) => return reply,
            }
        }
        let cursor = form::field(&request.query, "cursor");
        let page = self
            .store
            .feed(cursor.as_deref(), now)
            .map_err(|e| e.to_string())
            .and_then(|page| serde_json::to_value(page).map_err(|e| e.to_string()));
        match page {
            Ok(page) => Reply::json(200, page),
            Err(e) => {
                eprintln!("tollgate-signin: cannot read the revocation feed: {e}");
                Reply::error(503, "the revocation feed is unavailable")
            }
        }
    }

    /// `POST /auth/revoke` (RFC 7009): `token` (+ `token_type_hint`) revokes itself; 200
    /// whatever the token is (section 2.2). An admin may send `jti` (+ `expires_at`) instead.
    pub(super) fn revoke(&self, request: &Incoming, now: u64) -> Reply {
        let oauth_error = |status: u16, error: &str, description: &str| {
            Reply::json(
                status,
                json!({"error": error, "error_description": description}),
            )
        };
        let token = request.field("token").filter(|t| !t.is_empty());
        let jti = request.field("jti").filter(|t| !t.is_empty());
        let done = match (token, jti) {
            (Some(token), _) => {
                let refresh_first =
                    request.field("token_type_hint").as_deref() == Some("refresh_token");
                self.revoke_token(&token, refresh_first, now)
            }
            (None, Some(jti)) => {
                match self.admin(request, now) {
                    Ok(true) => {}
                    Ok(false) => {
                        return oauth_error(
                            401,
                            "invalid_client",
                            "revoking by jti is for an admin",
                        )
                        .with("WWW-Authenticate", "Bearer".into())
                    }
                    Err(reply) => return reply,
                }
                if jti.len() > MAX_NAME {
                    return oauth_error(400, "invalid_request", "jti is too long");
                }
                let default = now
                    .saturating_add(self.settings.max_token_lifetime_seconds)
                    .saturating_add(FILTER_SKEW);
                let expires_at = request
                    .field("expires_at")
                    .and_then(|e| e.parse::<u64>().ok())
                    .unwrap_or(default);
                eprintln!("tollgate-signin: an admin revoked jti {}", loggable(&jti));
                self.store.revoke_jti(&jti, expires_at, now)
            }
            (None, None) => return oauth_error(400, "invalid_request", "token is required"),
        };
        match done {
            Ok(()) => Reply::json(200, json!({})),
            Err(e) => {
                eprintln!("tollgate-signin: cannot revoke: {e}");
                Reply::error(503, "cannot revoke now")
            }
        }
    }

    /// A token of this service revokes itself: an access token by its `jti`, a refresh token
    /// by ending its session (and revoking the session's live access tokens). Anything else
    /// (invalid, expired, foreign) is ignored.
    pub(super) fn revoke_token(
        &self,
        token: &str,
        refresh_first: bool,
        now: u64,
    ) -> Result<(), StoreError> {
        let refresh = |s: &Service| -> Result<bool, StoreError> {
            match s.token_id(token, "refresh", now) {
                Some(jti) => s.store.revoke_session_of(&jti, now).map(|_| true),
                None => Ok(false),
            }
        };
        if refresh_first && refresh(self)? {
            return Ok(());
        }
        // RFC 7009 2.1: revoking an access token may leave its refresh token alone; it does.
        if self.revoke_access(token, false, now)? {
            return Ok(());
        }
        if !refresh_first {
            refresh(self)?;
        }
        Ok(())
    }

    /// `POST /auth/revoke-subject` (admin): revokes every token of `subject` issued until
    /// now and ends its sessions.
    pub(super) fn revoke_subject(&self, request: &Incoming, now: u64) -> Reply {
        match self.admin(request, now) {
            Ok(true) => {}
            Ok(false) => {
                return Reply::error(401, "admin credential required")
                    .with("WWW-Authenticate", "Bearer".into())
            }
            Err(reply) => return reply,
        }
        let Some(subject) = request.field("subject").filter(|s| !s.is_empty()) else {
            return Reply::error(400, "subject is required");
        };
        if subject.len() > MAX_NAME {
            return Reply::error(400, "subject is too long");
        }
        // `before` is exclusive (a token is revoked when its `iat` is earlier) and counted in
        // seconds: tokens issued during this second are covered too.
        // It lasts as long as any token it covers may be valid.
        let before = now.saturating_add(1);
        let expires_at = now
            .saturating_add(self.settings.max_token_lifetime_seconds)
            .saturating_add(FILTER_SKEW);
        match self.store.revoke_subject(&subject, before, expires_at, now) {
            Ok(ended) => {
                eprintln!(
                    "tollgate-signin: an admin revoked subject {} ({ended} session(s) ended)",
                    loggable(&subject)
                );
                Reply::json(
                    200,
                    json!({
                        "code": 0,
                        "data": {
                            "subject": subject,
                            "before": before,
                            "expires_at": expires_at,
                            "sessions_ended": ended
                        },
                        "msg": ""
                    }),
                )
            }
            Err(e) => {
                eprintln!("tollgate-signin: cannot revoke a subject: {e}");
                Reply::error(503, "cannot revoke now")
            }
        }
    }
}
