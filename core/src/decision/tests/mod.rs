//! The decision on whole requests, natively: shared helpers, then one file per concern.

mod browser;
mod conditions;
mod credentials;
mod hosts;
mod scrub;
mod token_sources;
mod trace;

use super::*;
use crate::denial::BadCredential;
use crate::response::LocalResponse;
use crate::verify::token::{claims_for, sign_raw, SigningKey, TokenError};
use crate::worker::WorkerState;

const K: &str = "Hq3vXo9TzK7rWm2pLc8dNs5yFb4gJe6A";
const OLD: &str = "previous-secret-4TqrxYCoq6TBUrbbswc";
const API_KEY: &str = "sk_test_4f9d2c7a8b1e6f3d0a5c9e2b7f4a1d8c";
const PUBLISHABLE: &str = "pk_test_7c3e9a1f5b2d8e4a6c0f3b9d1e7a5c2f";
const CLIENT_SECRET: &str = "cs_test_Zr4Qm8Vn2Lp6Xw1Ty9Hs3Kd7Bf5Gj0";
const NOW: u64 = 1_750_000_000;

fn config_with(extra: &str) -> &'static Config {
    let json = format!(
        r#"{{
        "secrets": [{{"kid": "current", "key": "{K}"}}, {{"kid": "old", "key": "{OLD}"}}],
        "api_keys": [{{"name": "backend", "key": "{API_KEY}"}}],
        "publishable_keys": [{{"name": "web", "key": "{PUBLISHABLE}"}}],
        "clients": [{{"client_id": "client-a", "client_secret": "{CLIENT_SECRET}", "role": "reporting"}}],
        "rules": [
            {{"prefix": "/public", "mode": "none"}},
            {{"path": "/login", "mode": "none"}},
            {{"path": "/healthz", "mode": "none"}},
            {{"prefix": "/feed", "mode": "optional"}},
            {{"prefix": "/admin", "mode": "required", "roles": ["admin"]}},
            {{"prefix": "/reports", "mode": "required", "roles": ["reporting", "admin"]}},
            {{"prefix": "/catalog", "mode": "required", "roles": ["user", "admin", "anonymous"]}},
            {{"prefix": "/orders", "mode": "none", "methods": ["GET"]}}
        ]{extra}
    }}"#
    );
    Box::leak(Box::new(Config::parse(json.as_bytes(), &|_| None).unwrap()))
}

fn config() -> &'static Config {
    config_with(r#", "login_url": "https://auth.example.com/login", "return_param": "return_to""#)
}

fn token(sub: &str) -> String {
    SigningKey::new(Some("current".into()), K.as_bytes())
        .sign(claims_for(sub, "access", NOW - 60, 3600))
        .unwrap()
}

struct Req {
    headers: Vec<(String, Vec<u8>)>,
}

fn req(method: &str, target: &str) -> Req {
    Req {
        headers: vec![
            (":method".into(), method.as_bytes().to_vec()),
            (":path".into(), target.as_bytes().to_vec()),
            (":authority".into(), b"api.example.com".to_vec()),
            (":scheme".into(), b"https".to_vec()),
        ],
    }
}

fn get(target: &str) -> Req {
    req("GET", target)
}

impl Req {
    fn with(mut self, name: &str, value: impl AsRef<[u8]>) -> Req {
        self.headers.push((name.into(), value.as_ref().to_vec()));
        self
    }
    fn bearer(self, credential: &str) -> Req {
        self.with("authorization", format!("Bearer {credential}"))
    }
    fn browser(self) -> Req {
        self.with("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
    }
    /// Decides (the request is leaked so the decision can borrow it for the test).
    fn run(self, config: &'static Config) -> Decision<'static> {
        let headers: &'static [(String, Vec<u8>)] = Box::leak(self.headers.into_boxed_slice());
        decide(config, &mut WorkerState::default(), headers, NOW)
    }
}

fn edits<'d>(d: &'d Decision<'_>) -> &'d [HeaderEdit<'d>] {
    match &d.action {
        Action::Forward(edits) => edits,
        Action::Respond(r, _) => panic!("responded {} {}", r.status, r.body),
    }
}

fn response<'d>(d: &'d Decision<'_>) -> &'d LocalResponse {
    match &d.action {
        Action::Respond(r, _) => r,
        Action::Forward(e) => panic!("forwarded with {e:?}"),
    }
}

/// The value an identity header (or the rebuilt cookie) is set to.
fn added<'d>(d: &'d Decision<'_>, name: &str) -> Option<&'d str> {
    edits(d).iter().find_map(|e| match e {
        HeaderEdit::Set(n, v) | HeaderEdit::Add(n, v) if *n == name => {
            std::str::from_utf8(v.as_bytes()).ok()
        }
        _ => None,
    })
}

fn removed(d: &Decision, name: &str) -> bool {
    edits(d)
        .iter()
        .any(|e| matches!(e, HeaderEdit::Remove(n) if *n == name))
}

fn new_path(d: &Decision) -> Option<String> {
    edits(d).iter().find_map(|e| match e {
        HeaderEdit::SetPath(p) => Some(String::from_utf8_lossy(p).into_owned()),
        _ => None,
    })
}

fn code(d: &Decision) -> String {
    let r = response(d);
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    format!("{} {}", r.status, body["code"].as_str().unwrap())
}
