//! What the sign-in tests share: a configuration with an issuer and `oidc`, browsers, and
//! the redirect to the provider.

#![allow(dead_code)]

pub mod exchange;
#[allow(unused_imports)]
pub use exchange::*;

use jwt_simple::prelude::{Claims, Duration, Ed25519KeyPair, EdDSAKeyPairLike};
use serde_json::{json, Value};

use tollgate_core::config::Config;
use tollgate_core::decision::{decide, Action, Outcome};
use tollgate_core::worker::WorkerState;

pub const KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
pub const ISS: &str = "https://idp.test";

pub fn env(name: &str) -> Option<String> {
    match name {
        "COOKIE_KEYS" => Some(KEYS.into()),
        "CLIENT_SECRET" => Some("client-secret-value".into()),
        _ => None,
    }
}

pub fn pair() -> Ed25519KeyPair {
    let pem = include_str!("../../../tests/data/issuer-keys/ed25519.pem");
    Ed25519KeyPair::from_pem(pem).unwrap().with_key_id("k1")
}

/// An access token of the issuer for `sub`, expiring at unix time `exp`.
pub fn access_token(sub: &str, exp: u64) -> String {
    let mut claims = Claims::with_custom_claims(json!({}), Duration::from_mins(5))
        .with_issuer(ISS)
        .with_audience("web")
        .with_subject(sub);
    claims.issued_at = Some(Duration::from_secs(exp.min(now()).saturating_sub(120)));
    claims.expires_at = Some(Duration::from_secs(exp));
    pair().sign(claims).unwrap()
}

pub fn config_json(oidc: Value) -> Value {
    let mut jwk: Value = serde_json::from_str(&pair().public_key().to_jwk()).unwrap();
    jwk["kid"] = json!("k1");
    let mut base = json!({
        "client_id": "web", "authorization_endpoint": "https://idp.test/auth",
        "token_endpoint": "https://idp.test/token", "cluster": "idp",
        "redirect_path": "/oauth/callback", "logout_path": "/logout",
        "cookie_key_env": "COOKIE_KEYS", "issuer": "idp"
    });
    for (k, v) in oidc.as_object().unwrap() {
        base[k] = v.clone();
    }
    json!({
        "issuers": [{"name": "idp", "issuer": ISS, "audiences": ["web"], "jwks": {"keys": [jwk]}}],
        "rules": [{"prefix": "/public", "mode": "none"}],
        "oidc": base
    })
}

pub fn config(oidc: Value) -> Config {
    Config::parse(config_json(oidc).to_string().as_bytes(), &env).unwrap()
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn browser(path: &str, cookie: Option<&str>) -> Vec<(String, Vec<u8>)> {
    let mut headers = vec![
        (":method".to_owned(), b"GET".to_vec()),
        (":path".to_owned(), path.as_bytes().to_vec()),
        (":scheme".to_owned(), b"https".to_vec()),
        (":authority".to_owned(), b"app.test".to_vec()),
        ("accept".to_owned(), b"text/html".to_vec()),
    ];
    if let Some(cookie) = cookie {
        headers.push(("cookie".to_owned(), cookie.as_bytes().to_vec()));
    }
    headers
}

/// The browser sent to the provider from `path`: the redirect's location and the
/// transaction cookie (`name=value`).
pub fn start(config: &Config, path: &str) -> (String, String) {
    let headers = browser(path, None);
    let decision = decide(config, &mut WorkerState::default(), &headers, now());
    assert!(matches!(decision.outcome, Outcome::Redirected(_)));
    let Action::Respond(answer, _) = decision.action else {
        panic!("not answered")
    };
    assert_eq!(answer.status, 302);
    let cookie = answer.header("set-cookie").unwrap().to_owned();
    let pair = cookie.split(';').next().unwrap().to_owned();
    (answer.header("location").unwrap().to_owned(), pair)
}

pub fn param(url: &str, name: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    let value = query
        .split('&')
        .find_map(|p| p.strip_prefix(&format!("{name}=")))
        .unwrap();
    String::from_utf8(tollgate_core::request::query::percent_decode(value.as_bytes()).unwrap())
        .unwrap()
}
