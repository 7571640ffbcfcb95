//! The sign-in service's endpoints, as pure functions from a request to a reply.
//!
//! - `GET /login?redirect=<url>`: the login page.
//! - `POST /login`: a form post (browser: sets the token cookie and redirects back) or JSON
//!   `{"username","password"}` (API: answers the token pair).
//! - `POST /auth/refresh`: a refresh token (JSON `{"refresh_token"}`, a form field or the
//!   `refresh_token` cookie) in, a new pair out.

use serde_json::{json, Value};
use tollgate::token::{claims_for, SigningKey, TokenVerifier};

use crate::form;
use crate::pages;
use crate::return_url::safe_return;
use crate::settings::{Settings, User};

/// The cookie that carries the refresh token, scoped to the refresh endpoint.
const REFRESH_COOKIE: &str = "refresh_token";
const REFRESH_PATH: &str = "/auth/refresh";

/// What the service needs to answer.
pub struct Service {
    pub settings: Settings,
    key: SigningKey,
    verifier: TokenVerifier,
}

/// A request, read whole.
#[derive(Debug, Default)]
pub struct Incoming {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
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

    fn over_https(&self) -> bool {
        self.header("x-forwarded-proto") == Some("https")
    }
}

/// A reply to send.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    fn json(status: u16, value: Value) -> Reply {
        Reply {
            status,
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("Cache-Control".into(), "no-store".into()),
            ],
            body: format!("{value}\n"),
        }
    }

    fn html(status: u16, body: String) -> Reply {
        Reply {
            status,
            headers: vec![
                ("Content-Type".into(), "text/html; charset=utf-8".into()),
                ("Cache-Control".into(), "no-store".into()),
            ],
            body,
        }
    }

    fn error(status: u16, message: &str) -> Reply {
        Reply::json(
            status,
            json!({"code": status, "data": null, "msg": message}),
        )
    }

    /// The value of header `name`.
    #[cfg(test)]
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A freshly issued pair.
struct Pair {
    access: String,
    refresh: String,
    access_expires: u64,
    refresh_expires: u64,
}

impl Service {
    /// A service signing with `secret` (the filter's current master key).
    pub fn new(settings: Settings, secret: &str) -> Service {
        let key = SigningKey::new(settings.kid.clone(), secret.as_bytes());
        let verifier = TokenVerifier::new(vec![key.clone()], 60, None);
        Service {
            settings,
            key,
            verifier,
        }
    }

    /// Answers one request at unix time `now`.
    pub fn handle(&self, request: &Incoming, now: u64) -> Reply {
        match (request.method.as_str(), request.path.as_str()) {
            ("GET", "/login") | ("HEAD", "/login") => {
                let redirect = form::field(&request.query, "redirect").unwrap_or_default();
                Reply::html(200, pages::login(&redirect, None))
            }
            ("POST", "/login") if request.is_json() => self.login_api(request, now),
            ("POST", "/login") => self.login_form(request, now),
            ("POST", REFRESH_PATH) => self.refresh(request, now),
            ("GET", "/healthz") => Reply::json(200, json!({"status": "ok"})),
            _ => Reply::error(404, "not found"),
        }
    }

    fn issue(&self, user: &User, now: u64) -> Option<Pair> {
        let ttl = self.settings.access_ttl_seconds;
        let refresh_ttl = self.settings.refresh_ttl_seconds;
        Some(Pair {
            access: self
                .key
                .sign(claims_for(&user.sub, "access", now, ttl))
                .ok()?,
            refresh: self
                .key
                .sign(claims_for(&user.sub, "refresh", now, refresh_ttl))
                .ok()?,
            access_expires: now + ttl,
            refresh_expires: now + refresh_ttl,
        })
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

    fn cookies(&self, pair: &Pair, secure: bool) -> Vec<(String, String)> {
        let flags = if secure {
            "HttpOnly; SameSite=Lax; Secure"
        } else {
            "HttpOnly; SameSite=Lax"
        };
        vec![
            (
                "Set-Cookie".into(),
                format!(
                    "{}={}; Path=/; Max-Age={}; {flags}",
                    self.settings.cookie, pair.access, self.settings.access_ttl_seconds
                ),
            ),
            (
                "Set-Cookie".into(),
                format!(
                    "{REFRESH_COOKIE}={}; Path={REFRESH_PATH}; Max-Age={}; {flags}",
                    pair.refresh, self.settings.refresh_ttl_seconds
                ),
            ),
        ]
    }

    fn login_api(&self, request: &Incoming, now: u64) -> Reply {
        let body: Value = serde_json::from_str(&request.body).unwrap_or(Value::Null);
        let username = body
            .get("username")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let password = body
            .get("password")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match self.settings.authenticate(username, password) {
            Some(user) => match self.issue(user, now) {
                Some(pair) => Service::pair_reply(user, &pair),
                None => Reply::error(500, "cannot sign tokens"),
            },
            None => Reply::error(401, "invalid username or password"),
        }
    }

    fn login_form(&self, request: &Incoming, now: u64) -> Reply {
        let field = |name| form::field(&request.body, name).unwrap_or_default();
        let redirect = field("redirect");
        let Some(user) = self
            .settings
            .authenticate(&field("username"), &field("password"))
        else {
            return Reply::html(
                401,
                pages::login(&redirect, Some("Invalid username or password.")),
            );
        };
        let Some(pair) = self.issue(user, now) else {
            return Reply::error(500, "cannot sign tokens");
        };
        let mut headers = vec![
            (
                "Location".into(),
                safe_return(&redirect, &self.settings.trusted_hosts),
            ),
            ("Cache-Control".into(), "no-store".into()),
        ];
        headers.extend(self.cookies(&pair, request.over_https()));
        Reply {
            status: 302,
            headers,
            body: String::new(),
        }
    }

    fn refresh(&self, request: &Incoming, now: u64) -> Reply {
        let from_body = if request.is_json() {
            serde_json::from_str::<Value>(&request.body)
                .ok()
                .and_then(|v| {
                    v.get("refresh_token")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
        } else {
            form::field(&request.body, "refresh_token")
        };
        let from_cookie = request
            .header("cookie")
            .and_then(|c| form::cookie(c, REFRESH_COOKIE));
        let set_cookies = from_body.is_none() && from_cookie.is_some();
        let Some(token) = from_body.or(from_cookie) else {
            return Reply::error(400, "refresh_token is required");
        };
        let user = self
            .verifier
            .verify_typed(&token, "refresh", now)
            .ok()
            .and_then(|t| self.settings.users.iter().find(|u| *u.sub == *t.subject));
        let Some(user) = user else {
            return Reply::error(401, "invalid or expired refresh token");
        };
        let Some(pair) = self.issue(user, now) else {
            return Reply::error(500, "cannot sign tokens");
        };
        let mut reply = Service::pair_reply(user, &pair);
        if set_cookies {
            reply
                .headers
                .extend(self.cookies(&pair, request.over_https()));
        }
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "demo-secret-for-unit-tests-5WXvYpho4fE6FTgvtEDxvVsnu5eU";
    const NOW: u64 = 1_800_000_000;

    fn service() -> Service {
        let settings: Settings = serde_json::from_str(include_str!("../signin.json")).unwrap();
        Service::new(settings, SECRET)
    }

    fn post(path: &str, content_type: &str, body: &str) -> Incoming {
        Incoming {
            method: "POST".into(),
            path: path.into(),
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
            ..Default::default()
        }
    }

    fn filter_verifier() -> TokenVerifier {
        TokenVerifier::new(
            vec![SigningKey::new(Some("demo".into()), SECRET.as_bytes())],
            60,
            None,
        )
    }

    #[test]
    fn json_login_answers_the_token_pair() {
        let reply = service().handle(
            &post(
                "/login",
                "application/json",
                r#"{"username":"demo","password":"demo-password"}"#,
            ),
            NOW,
        );
        assert_eq!(reply.status, 200);
        let body: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(body["code"], 0);
        assert_eq!(body["msg"], "");
        assert_eq!(body["data"]["user"]["id"], "lUpa");
        let token = &body["data"]["token"];
        assert_eq!(token["access_expires"], NOW + 900);
        assert_eq!(token["refresh_expires"], NOW + 604800);
        let access = token["access_token"].as_str().unwrap();
        assert_eq!(
            filter_verifier()
                .verify(access, NOW)
                .unwrap()
                .subject
                .as_ref(),
            "lUpa"
        );
        let refresh = token["refresh_token"].as_str().unwrap();
        assert!(
            filter_verifier().verify(refresh, NOW).is_err(),
            "the filter refuses refresh tokens"
        );
    }

    #[test]
    fn wrong_password_is_401() {
        let reply = service().handle(
            &post(
                "/login",
                "application/json",
                r#"{"username":"demo","password":"nope"}"#,
            ),
            NOW,
        );
        assert_eq!(reply.status, 401);
        assert!(reply.body.contains("invalid username or password"));
        let reply = service().handle(
            &post(
                "/login",
                "application/x-www-form-urlencoded",
                "username=demo&password=nope&redirect=%2F",
            ),
            NOW,
        );
        assert_eq!(reply.status, 401);
        assert!(reply.body.contains("Invalid username or password"));
    }

    #[test]
    fn form_login_sets_the_cookie_and_goes_back_to_trusted_hosts_only() {
        let s = service();
        let body = "username=demo&password=demo-password&redirect=http%3A%2F%2F127.0.0.1%3A10000%2Fapp%3Fx%3D1";
        let reply = s.handle(
            &post("/login", "application/x-www-form-urlencoded", body),
            NOW,
        );
        assert_eq!(reply.status, 302);
        assert_eq!(
            reply.header("location"),
            Some("http://127.0.0.1:10000/app?x=1")
        );
        let cookie = reply.header("set-cookie").unwrap();
        assert!(cookie.starts_with("access_token=ey"));
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
        assert!(!cookie.contains("Secure"));
        let evil = "username=demo&password=demo-password&redirect=https%3A%2F%2Fevil.example%2F";
        let reply = s.handle(
            &post("/login", "application/x-www-form-urlencoded", evil),
            NOW,
        );
        assert_eq!(reply.header("location"), Some("/"));
        let mut https = post("/login", "application/x-www-form-urlencoded", body);
        https
            .headers
            .push(("x-forwarded-proto".into(), "https".into()));
        let reply = s.handle(&https, NOW);
        assert!(reply.header("set-cookie").unwrap().contains("Secure"));
    }

    #[test]
    fn refresh_gives_a_new_pair() {
        let s = service();
        let login = s.handle(
            &post(
                "/login",
                "application/json",
                r#"{"username":"demo","password":"demo-password"}"#,
            ),
            NOW,
        );
        let body: Value = serde_json::from_str(&login.body).unwrap();
        let refresh = body["data"]["token"]["refresh_token"].as_str().unwrap();
        let access = body["data"]["token"]["access_token"].as_str().unwrap();
        let later = NOW + 3600;
        let reply = s.handle(
            &post(
                "/auth/refresh",
                "application/json",
                &format!(r#"{{"refresh_token":"{refresh}"}}"#),
            ),
            later,
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        let body: Value = serde_json::from_str(&reply.body).unwrap();
        let new_access = body["data"]["token"]["access_token"].as_str().unwrap();
        assert_eq!(
            filter_verifier()
                .verify(new_access, later)
                .unwrap()
                .subject
                .as_ref(),
            "lUpa"
        );
        // An access token is not a refresh token.
        let reply = s.handle(
            &post(
                "/auth/refresh",
                "application/json",
                &format!(r#"{{"refresh_token":"{access}"}}"#),
            ),
            NOW,
        );
        assert_eq!(reply.status, 401);
        // Expired refresh token.
        let reply = s.handle(
            &post(
                "/auth/refresh",
                "application/json",
                &format!(r#"{{"refresh_token":"{refresh}"}}"#),
            ),
            NOW + 604800 + 120,
        );
        assert_eq!(reply.status, 401);
        let reply = s.handle(&post("/auth/refresh", "application/json", "{}"), NOW);
        assert_eq!(reply.status, 400);
    }

    #[test]
    fn login_page_carries_the_redirect() {
        let reply = service().handle(
            &Incoming {
                method: "GET".into(),
                path: "/login".into(),
                query: "redirect=http%3A%2F%2F127.0.0.1%3A10000%2Fapp".into(),
                ..Default::default()
            },
            NOW,
        );
        assert_eq!(reply.status, 200);
        assert!(reply.body.contains("value=\"http://127.0.0.1:10000/app\""));
    }
}
