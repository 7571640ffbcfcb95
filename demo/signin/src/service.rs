//! The sign-in service's endpoints, as functions from a request read whole to a reply.
//!
//! - `GET /login?redirect=<url>`: the login page (with a CSRF token).
//! - `POST /login`: a form post (browser: sets the token cookies and redirects back) or JSON
//!   `{"username","password"}` (API: answers the token pair).
//! - `POST /auth/refresh`: a refresh token (JSON `{"refresh_token"}`, a form field or the
//!   `refresh_token` cookie) in, the next pair of its session out; a reused one ends it.
//! - `POST /logout`: ends the session of the refresh or access token sent, revokes the
//!   session's live access tokens (and the one sent), clears cookies.
//! - `GET /auth/revocations[?cursor=N]`: the revocation feed (`docs/revocation-feed.md`).
//! - `POST /auth/revoke`: RFC 7009 token revocation (`token=`, `token_type_hint=`); a token
//!   revokes itself. An admin may name a `jti` instead.
//! - `POST /auth/revoke-subject` (admin): every token of `subject` issued until now, and its
//!   sessions.
//!
//! Cross-site checks: every POST, the revocation endpoints included, is refused when a
//! browser says it comes from another site (`Origin`, `Sec-Fetch-Site`). The revocation
//! endpoints read no cookie, so a page of another site could only revoke a token it already
//! holds or act with an admin key it already has; they are API calls, and no page of another
//! site has a reason to make them, so they are refused like the others (defence in depth).
//! Clients that are not browsers send neither header and pass.

use std::net::IpAddr;

use serde_json::{json, Value};
use tollgate_core::verify::revocation::TokenMarks;
use tollgate_core::verify::token::{claims_for, SigningKey, TokenVerifier};

use crate::csrf::{self, Csrf};
use crate::form;
use crate::pages;
use crate::password;
use crate::random;
use crate::ratelimit::{canonical, Limiter};
use crate::reply::Reply;
use crate::return_url::safe_return;
use crate::settings::{Settings, User};
use crate::store::{Caps, OwnToken, Refused, Store, StoreError, FILTER_SKEW};

/// The cookie that carries the refresh token, sent only to the endpoints that take it.
const REFRESH_COOKIE: &str = "refresh_token";
const REFRESH_PATH: &str = "/auth/refresh";
const LOGOUT_PATH: &str = "/logout";
const REFRESH_COOKIE_PATHS: [&str; 2] = [REFRESH_PATH, LOGOUT_PATH];
const REVOCATIONS_PATH: &str = "/auth/revocations";
const REVOKE_PATH: &str = "/auth/revoke";
const REVOKE_SUBJECT_PATH: &str = "/auth/revoke-subject";
/// The longest `jti` or subject a revocation may name (the filter refuses a feed with longer).
const MAX_NAME: usize = 256;

/// What the service needs to answer.
pub struct Service {
    pub settings: Settings,
    key: SigningKey,
    csrf: Csrf,
    store: Store,
    limiter: Limiter,
    /// SHA-256 of the admin key, when there is one.
    admin_key: Option<[u8; 32]>,
    /// Checked when the username is unknown, so that both cases take the same time.
    dummy_hash: String,
    /// Whether the login page names the demo user: only when it is configured with the demo
    /// password.
    demo_hint: bool,
    /// How many password hashes were checked.
    #[cfg(test)]
    verifications: std::sync::atomic::AtomicUsize,
}

/// A request, read whole.
#[derive(Debug)]
pub struct Incoming {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The address the connection came from.
    pub peer: IpAddr,
}

impl Incoming {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn is_json(&self) -> bool {
        self.header("content-type")
            .is_some_and(|t| t.starts_with("application/json"))
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n == "cookie")
            .find_map(|(_, v)| form::cookie(v, name))
    }

    /// A field of the JSON or form body.
    fn field(&self, name: &str) -> Option<String> {
        if self.is_json() {
            let body: Value = serde_json::from_str(&self.body).ok()?;
            body.get(name).and_then(Value::as_str).map(str::to_owned)
        } else {
            form::field(&self.body, name)
        }
    }
}

/// A freshly issued pair.
struct Pair {
    access: String,
    refresh: String,
    access_expires: u64,
    refresh_expires: u64,
}

/// A name written to the log: at most 64 characters, quoted with control characters escaped.
fn loggable(name: &str) -> String {
    format!("{:?}", name.chars().take(64).collect::<String>())
}

impl Service {
    /// A service signing with `secret` (the filter's current master key, already checked).
    pub fn new(settings: Settings, secret: &str) -> Result<Service, String> {
        let key = SigningKey::new(settings.kid.clone(), secret.as_bytes());
        let dummy_hash = password::hash("not a password of anyone")?;
        let demo_hint = settings
            .user("demo")
            .is_some_and(|u| password::verify("demo-password", &u.password_hash));
        if demo_hint {
            eprintln!(
                "tollgate-signin: the user demo has the documented demo password, and the \
                 login page shows it: for demos only"
            );
        }
        let caps = Caps {
            subject_revocation_seconds: settings
                .max_token_lifetime_seconds
                .saturating_add(FILTER_SKEW),
            ..Caps::default()
        };
        let store = Store::open(&settings.database, caps)
            .map_err(|e| format!("{}: {e}", settings.database))?;
        Ok(Service {
            limiter: Limiter::new(settings.sign_in_limits.clone()),
            settings,
            key,
            csrf: Csrf::new(secret.as_bytes()),
            store,
            admin_key: None,
            dummy_hash,
            demo_hint,
            #[cfg(test)]
            verifications: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// The same service, with `key` as the admin key of the revocation endpoints.
    pub fn with_admin_key(mut self, key: &str) -> Service {
        self.admin_key = Some(hmac_sha256::Hash::hash(key.as_bytes()));
        self
    }

    /// Answers one request at unix time `now`.
    pub fn handle(&self, request: &Incoming, now: u64) -> Reply {
        let reply = match (request.method.as_str(), request.path.as_str()) {
            ("GET" | "HEAD", "/login") => self.login_page(request, None, 200, now),
            ("GET" | "HEAD", "/healthz") => Reply::json(200, json!({"status": "ok"})),
            ("GET" | "HEAD", REVOCATIONS_PATH) => self.revocations(request, now),
            ("POST", "/login" | REFRESH_PATH | LOGOUT_PATH | REVOKE_PATH | REVOKE_SUBJECT_PATH)
                if !self.is_same_site(request) =>
            {
                eprintln!(
                    "tollgate-signin: refused a cross-site POST {} from {}",
                    request.path,
                    self.client(request)
                );
                if request.path == "/login" && !request.is_json() {
                    self.login_page(
                        request,
                        Some("This form was sent from another site."),
                        403,
                        now,
                    )
                } else {
                    Reply::error(403, "cross-site request refused")
                }
            }
            ("POST", "/login") => self.login(request, now),
            ("POST", REFRESH_PATH) => self.refresh(request, now),
            ("POST", LOGOUT_PATH) => self.logout(request, now),
            ("POST", REVOKE_PATH) => self.revoke(request, now),
            ("POST", REVOKE_SUBJECT_PATH) => self.revoke_subject(request, now),
            (
                _,
                "/login" | "/healthz" | REFRESH_PATH | LOGOUT_PATH | REVOCATIONS_PATH | REVOKE_PATH
                | REVOKE_SUBJECT_PATH,
            ) => Reply::error(405, "method not allowed"),
            _ => Reply::error(404, "not found"),
        };
        reply.secured(&self.settings.trusted_hosts)
    }

    fn is_same_site(&self, request: &Incoming) -> bool {
        csrf::from_this_site(
            request.header("origin"),
            request.header("sec-fetch-site"),
            request.header("host"),
            &self.settings.trusted_hosts,
        )
    }

    /// The client's address: the connection's or, from a trusted proxy, the last
    /// `X-Forwarded-For` entry that is not a trusted proxy (when it is an address). An
    /// IPv4-mapped IPv6 address (a dual-stack listener's IPv4 client) is its IPv4 address.
    fn client(&self, request: &Incoming) -> IpAddr {
        let proxies = &self.settings.trusted_proxies;
        let peer = canonical(request.peer);
        if !proxies.contains(&peer) {
            return peer;
        }
        let forwarded = request
            .header("x-forwarded-for")
            .unwrap_or_default()
            .rsplit(',')
            .map(|a| a.trim().parse::<IpAddr>().ok().map(canonical))
            .find(|a| a.is_none_or(|a| !proxies.contains(&a)));
        forwarded.flatten().unwrap_or(peer)
    }

    /// The login page with a form token (the nonce cookie kept when the browser has one).
    fn login_page(&self, request: &Incoming, error: Option<&str>, status: u16, now: u64) -> Reply {
        let redirect = if request.method == "POST" {
            request.field("redirect")
        } else {
            form::field(&request.query, "redirect")
        };
        let redirect = redirect.unwrap_or_default();
        // A nonce this service issued is kept (several tabs share it); any other replaced.
        let kept = request
            .cookie(csrf::COOKIE)
            .filter(|n| self.csrf.is_issued(n));
        let Some(nonce) = kept.or_else(|| self.csrf.issue()) else {
            return Reply::error(500, "no randomness available");
        };
        let token = self.csrf.token_for(&nonce, now);
        let page = pages::login(&redirect, error, &token, self.demo_hint);
        Reply::html(status, page).with(
            "Set-Cookie",
            format!(
                "{}={nonce}; Path=/login; Max-Age={}; HttpOnly; SameSite=Strict{}",
                csrf::COOKIE,
                csrf::FORM_LIFETIME,
                self.secure_flag()
            ),
        )
    }

    fn secure_flag(&self) -> &'static str {
        if self.settings.cookie_secure {
            "; Secure"
        } else {
            ""
        }
    }

    /// `POST /login`, JSON or form.
    fn login(&self, request: &Incoming, now: u64) -> Reply {
        let json = request.is_json();
        let refuse = |status: u16, message: &str| {
            if json {
                Reply::error(status, &message.to_lowercase())
            } else {
                self.login_page(request, Some(message), status, now)
            }
        };
        if !json
            && !self.csrf.check(
                request.cookie(csrf::COOKIE).as_deref(),
                request.field(csrf::FIELD).as_deref(),
                now,
            )
        {
            return refuse(
                403,
                "This form has expired or was sent from another site. Please try again.",
            );
        }
        let username = request.field("username").unwrap_or_default();
        let password = request.field("password").unwrap_or_default();
        let client = self.client(request);
        let reserved = self.limiter.reserve(&self.store, &username, client, now);
        let reserved = match reserved {
            Ok(reserved) => reserved,
            Err(e) => {
                eprintln!("tollgate-signin: cannot count sign-in attempts: {e}");
                return Reply::error(503, "cannot sign in now");
            }
        };
        if let Err(wait) = reserved {
            eprintln!(
                "tollgate-signin: sign-in refused (too many failures) for account {} from {client}",
                loggable(&username)
            );
            let minutes = wait.div_ceil(60);
            return refuse(
                429,
                &format!("Too many failed sign-ins. Try again in {minutes} minute(s)."),
            )
            .with("Retry-After", wait.to_string());
        }
        let Some(user) = self.authenticate(&username, &password) else {
            // The failure was counted by the reservation.
            eprintln!(
                "tollgate-signin: sign-in failed for account {} from {client}",
                loggable(&username)
            );
            return refuse(401, "Invalid username or password.");
        };
        if let Err(e) = self.limiter.succeeded(&self.store, &username, client) {
            eprintln!("tollgate-signin: cannot count a sign-in: {e}");
        }
        let Some(pair) = self.start_session(user, now) else {
            return Reply::error(503, "cannot start a session");
        };
        eprintln!(
            "tollgate-signin: signed in account {} from {client}",
            loggable(&username)
        );
        if json {
            return Service::pair_reply(user, &pair);
        }
        let redirect = request.field("redirect").unwrap_or_default();
        let mut reply = Reply::redirect(safe_return(&redirect, &self.settings.trusted_hosts));
        reply.headers.extend(self.cookies(&pair));
        reply
    }

    /// The user with these credentials; a hash is checked whether or not the user exists.
    fn authenticate(&self, username: &str, password: &str) -> Option<&User> {
        let user = self.settings.user(username);
        let hash = user.map_or(self.dummy_hash.as_str(), |u| u.password_hash.as_str());
        #[cfg(test)]
        self.verifications
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let matches = password::verify(password, hash);
        user.filter(|_| matches)
    }

    fn start_session(&self, user: &User, now: u64) -> Option<Pair> {
        let family = random::token_id()?;
        let expires = now.saturating_add(self.settings.refresh_ttl_seconds);
        if let Err(e) = self.store.begin(&family, &user.sub, expires, now) {
            eprintln!("tollgate-signin: cannot start a session: {e}");
            return None;
        }
        self.issue(user, &family, now)
    }

    /// A new pair in session `family`, each token with its own `jti`.
    fn issue(&self, user: &User, family: &str, now: u64) -> Option<Pair> {
        let ttl = self.settings.access_ttl_seconds;
        let refresh_ttl = self.settings.refresh_ttl_seconds;
        let (access_id, refresh_id) = (random::token_id()?, random::token_id()?);
        let mut access = claims_for(&user.sub, "access", now, ttl);
        access.jwt_id = Some(access_id.clone());
        let mut refresh = claims_for(&user.sub, "refresh", now, refresh_ttl);
        refresh.jwt_id = Some(refresh_id.clone());
        let pair = Pair {
            access: self.key.sign(access).ok()?,
            refresh: self.key.sign(refresh).ok()?,
            access_expires: now.saturating_add(ttl),
            refresh_expires: now.saturating_add(refresh_ttl),
        };
        let store = &self.store;
        let stored = store
            .add_token(family, &access_id, false, pair.access_expires)
            .and_then(|live| {
                Ok(live && store.add_token(family, &refresh_id, true, pair.refresh_expires)?)
            });
        match stored {
            Ok(true) => Some(pair),
            // The session ended while this pair was made (a logout or a reused refresh token
            // raced it): nothing could revoke these tokens, so they are not handed out.
            Ok(false) => None,
            Err(e) => {
                eprintln!("tollgate-signin: cannot record issued tokens: {e}");
                None
            }
        }
    }

    /// The response shape clients know: `{"code": 0, "data": {user, token}, "msg": ""}`.
    fn pair_reply(user: &User, pair: &Pair) -> Reply {
        Reply::json(
            200,
            json!({
                "code": 0,
                "data": {
                    "user": {"id": user.sub, "username": user.username, "name": user.name},
                    "token": {
                        "access_token": pair.access,
                        "refresh_token": pair.refresh,
                        "access_expires": pair.access_expires,
                        "refresh_expires": pair.refresh_expires
                    }
                },
                "msg": ""
            }),
        )
    }

    /// The token cookies; `None` clears them.
    fn cookies(&self, pair: &Pair) -> Vec<(String, String)> {
        self.cookie_headers(Some(pair))
    }

    fn cookie_headers(&self, pair: Option<&Pair>) -> Vec<(String, String)> {
        let flags = format!("HttpOnly; SameSite=Lax{}", self.secure_flag());
        let (access, access_age) = pair.map_or(("", 0), |p| {
            (p.access.as_str(), self.settings.access_ttl_seconds)
        });
        let (refresh, refresh_age) = pair.map_or(("", 0), |p| {
            (p.refresh.as_str(), self.settings.refresh_ttl_seconds)
        });
        let mut headers = vec![(
            "Set-Cookie".to_owned(),
            format!(
                "{}={access}; Path=/; Max-Age={access_age}; {flags}",
                self.settings.cookie
            ),
        )];
        for path in REFRESH_COOKIE_PATHS {
            headers.push((
                "Set-Cookie".to_owned(),
                format!("{REFRESH_COOKIE}={refresh}; Path={path}; Max-Age={refresh_age}; {flags}"),
            ));
        }
        headers
    }

    /// A verifier of this service's tokens (built per use: it holds a cache that is not
    /// shared between threads).
    fn verifier(&self) -> TokenVerifier {
        TokenVerifier::new(vec![self.key.clone()], 60, None)
    }

    /// The claims of a token of `token_type` this service's key signed, still valid at `now`.
    fn claims(&self, token: &str, token_type: &str, now: u64) -> Option<Value> {
        self.verifier().verify_typed(token, token_type, now).ok()?;
        let parts = tollgate_core::verify::jws::split(token)?;
        let payload = tollgate_core::verify::base64url::decode(parts.payload.as_bytes())?;
        serde_json::from_slice(&payload).ok()
    }

    /// The `jti` of a token of `token_type` this service signed, still valid at `now`.
    fn token_id(&self, token: &str, token_type: &str, now: u64) -> Option<String> {
        let claims = self.claims(token, token_type, now)?;
        claims.get("jti")?.as_str().map(str::to_owned)
    }

    fn refresh(&self, request: &Incoming, now: u64) -> Reply {
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
    fn logout(&self, request: &Incoming, now: u64) -> Reply {
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
    fn revoke_access(&self, token: &str, end_session: bool, now: u64) -> Result<bool, StoreError> {
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

    /// Whether the request carries the admin key (`Authorization: Bearer <key>`), compared
    /// in constant time (as digests, so that its length does not show either). A wrong key
    /// counts as a failed sign-in of its client address; past that address's limit, keys
    /// are not compared until its window ends (`Err`: a 429 to answer).
    fn admin(&self, request: &Incoming, now: u64) -> Result<bool, Reply> {
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
    fn revocations(&self, request: &Incoming, now: u64) -> Reply {
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
    fn revoke(&self, request: &Incoming, now: u64) -> Reply {
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
    fn revoke_token(&self, token: &str, refresh_first: bool, now: u64) -> Result<(), StoreError> {
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
    fn revoke_subject(&self, request: &Incoming, now: u64) -> Reply {
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

#[cfg(test)]
mod tests;
