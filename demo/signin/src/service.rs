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
}

mod revocations;
mod sessions;

#[cfg(test)]
mod tests;
