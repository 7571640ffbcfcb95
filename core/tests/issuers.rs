//! Tokens of identity providers ("issuers"), decided natively with real keys: every supported
//! algorithm, the claims that make the identity, and each way a token must be refused
//! (algorithm confusion, another provider's key, a key the JWK restricts, a withdrawn key).

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashSet;

use jwt_simple::prelude::*;
use serde_json::{json, Value};
use tollgate_core::decision::{HeaderEdit, KeyWait, Outcome};
use tollgate_core::verify::issuer::KeysNeeded;
use tollgate_core::verify::jwks::KeySet;
use tollgate_testkit::prelude::*;

const ISS: &str = "https://idp.example.com";
const AUD: &str = "api://orders";

fn b64(bytes: &[u8]) -> String {
    use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Encoder};
    Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap()
}

fn pem(name: &str) -> String {
    std::fs::read_to_string(root().join("tests/data/issuer-keys").join(name)).unwrap()
}

/// A signer for one algorithm, with its public JWK (carrying `kid`).
struct Signer {
    jwk: Value,
    sign: Box<dyn Fn(JWTClaims<Value>) -> String>,
}

fn signer(alg: &str, kid: &str) -> Signer {
    let kid_owned = kid.to_owned();
    macro_rules! signer_of {
        ($pair:ty, $file:expr) => {{
            let pair = <$pair>::from_pem(&pem($file))
                .unwrap()
                .with_key_id(&kid_owned);
            let mut jwk: Value = serde_json::from_str(&pair.public_key().to_jwk()).unwrap();
            jwk["kid"] = json!(kid_owned);
            Signer {
                jwk,
                sign: Box::new(move |claims| pair.sign(claims).unwrap()),
            }
        }};
    }
    match alg {
        "RS256" => signer_of!(RS256KeyPair, "rsa-2048.pem"),
        "RS384" => signer_of!(RS384KeyPair, "rsa-2048.pem"),
        "RS512" => signer_of!(RS512KeyPair, "rsa-2048.pem"),
        "PS256" => signer_of!(PS256KeyPair, "rsa-2048.pem"),
        "PS384" => signer_of!(PS384KeyPair, "rsa-2048.pem"),
        "PS512" => signer_of!(PS512KeyPair, "rsa-2048.pem"),
        "ES256" => signer_of!(ES256KeyPair, "ec-p256.pem"),
        "ES384" => signer_of!(ES384KeyPair, "ec-p384.pem"),
        "EdDSA" => signer_of!(Ed25519KeyPair, "ed25519.pem"),
        "RS256-other" => signer_of!(RS256KeyPair, "rsa-other.pem"),
        other => panic!("no signer for {other}"),
    }
}

fn claims(extra: Value) -> JWTClaims<Value> {
    Claims::with_custom_claims(extra, Duration::from_mins(10))
        .with_issuer(ISS)
        .with_audience(AUD)
        .with_subject("svc-orders")
}

fn config_with(issuer: Value) -> Config {
    let text = json!({"issuers": [issuer], "rules": [
        {"prefix": "/public", "mode": "none"},
        {"prefix": "/orders", "mode": "required", "roles": ["user", "orders-admin"]},
    ]});
    Config::parse(text.to_string().as_bytes(), &|_| None).unwrap()
}

fn inline_issuer(jwks: Value) -> Value {
    json!({
        "name": "idp",
        "issuer": ISS,
        "audiences": [AUD],
        "jwks": jwks,
        "roles_claim": "realm_access.roles",
        "claims_to_headers": [{"claim": "email", "header": "x-auth-email"}],
    })
}

/// The status and code of a request with `token` to `/orders`, and the identity headers set.
fn ask(
    config: &Config,
    worker: &mut WorkerState,
    token: &str,
) -> (u32, Option<String>, Vec<(String, String)>) {
    let request = Request::get("/orders").bearer(token).to_native();
    let decision = decide(config, worker, &request, now());
    match decision.action {
        Action::Forward(edits) => {
            let set = edits
                .iter()
                .filter_map(|e| match e {
                    HeaderEdit::Set(n, v) | HeaderEdit::Add(n, v) => Some((
                        n.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )),
                    _ => None,
                })
                .collect();
            (200, None, set)
        }
        Action::Respond(response, _) => {
            let code = serde_json::from_str::<Value>(&response.body)
                .ok()
                .and_then(|b| b["code"].as_str().map(str::to_owned));
            (response.status, code, Vec::new())
        }
    }
}

fn header<'h>(set: &'h [(String, String)], name: &str) -> Option<&'h str> {
    set.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

#[test]
fn every_supported_algorithm_verifies_and_gives_the_issuer_identity() {
    for alg in [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
    ] {
        let s = signer(alg, "k1");
        let config = config_with(inline_issuer(json!({"keys": [s.jwk.clone()]})));
        let token = (s.sign)(claims(json!({
            "realm_access": {"roles": ["orders-admin", "Not A Role", "viewer"]},
            "email": "svc@example.com",
        })));
        let (status, code, set) = ask(&config, &mut WorkerState::default(), &token);
        assert_eq!((status, code), (200, None), "{alg}");
        assert_eq!(header(&set, "x-auth-user"), Some("svc-orders"), "{alg}");
        assert_eq!(header(&set, "x-auth-name"), Some("idp"), "{alg}");
        assert_eq!(header(&set, "x-auth-type"), Some("access_token"), "{alg}");
        assert_eq!(
            header(&set, "x-auth-role"),
            Some("orders-admin,viewer"),
            "{alg}"
        );
        assert_eq!(
            header(&set, "x-auth-email"),
            Some("svc@example.com"),
            "{alg}"
        );
    }
}

#[test]
fn tokens_are_refused_with_the_right_code() {
    let s = signer("RS256", "k1");
    let config = config_with(inline_issuer(json!({"keys": [s.jwk.clone()]})));
    let mut worker = WorkerState::default();
    let mut refused = |token: &str| {
        let (status, code, _) = ask(&config, &mut worker, token);
        (status, code.unwrap_or_default())
    };
    let invalid = (401, "INVALID_CREDENTIALS".to_string());
    // Another issuer, another audience, none.
    let other_iss = (s.sign)(claims(json!({})).with_issuer("https://evil.example.com"));
    assert_eq!(refused(&other_iss), invalid);
    let other_aud = (s.sign)(claims(json!({})).with_audience("api://billing"));
    assert_eq!(refused(&other_aud), invalid);
    let no_aud = Claims::with_custom_claims(json!({}), Duration::from_mins(10))
        .with_issuer(ISS)
        .with_subject("svc");
    assert_eq!(refused(&(s.sign)(no_aud)), invalid);
    // Expired beyond the skew.
    let mut expired = claims(json!({}));
    expired.expires_at = Some(UnixTimeStamp::from_secs(now() - 3600));
    expired.issued_at = Some(UnixTimeStamp::from_secs(now() - 7200));
    expired.invalid_before = None;
    assert_eq!(refused(&(s.sign)(expired)), (401, "TOKEN_EXPIRED".into()));
    // The provider's public key used as an HMAC secret (algorithm confusion), in every form an
    // attacker could pick: the JWK text, its modulus, the PEM.
    let payload = json!({"iss": ISS, "aud": AUD, "sub": "admin", "exp": now() + 600}).to_string();
    let public_pem = RS256KeyPair::from_pem(&pem("rsa-2048.pem"))
        .unwrap()
        .public_key()
        .to_pem()
        .unwrap();
    for secret in [
        s.jwk.to_string(),
        s.jwk["n"].as_str().unwrap().to_string(),
        public_pem,
    ] {
        for header in [
            r#"{"alg":"HS256","typ":"JWT","kid":"k1"}"#,
            r#"{"alg":"HS256"}"#,
        ] {
            let forged = sign_raw(header, &payload, secret.as_bytes());
            assert_eq!(refused(&forged), invalid, "{header}");
        }
    }
    // alg none, and an unsupported algorithm.
    let body = b64(payload.as_bytes());
    for header in [r#"{"alg":"none"}"#, r#"{"alg":"ES512","kid":"k1"}"#] {
        let token = format!("{}.{body}.", b64(header.as_bytes()));
        assert_eq!(refused(&token), invalid, "{header}");
    }
    // Another provider's key under the same kid.
    let other = signer("RS256-other", "k1");
    assert_eq!(refused(&(other.sign)(claims(json!({})))), invalid);
    // A kid the inline keys lack.
    let unknown_kid = signer("RS256", "k9");
    assert_eq!(refused(&(unknown_kid.sign)(claims(json!({})))), invalid);
}

#[test]
fn a_jwk_restricts_the_algorithm_and_the_use_of_its_key() {
    let s = signer("RS256", "k1");
    let token = (s.sign)(claims(json!({})));
    let mut restricted = s.jwk.clone();
    restricted["alg"] = json!("RS384");
    let mut enc = s.jwk.clone();
    enc["use"] = json!("enc");
    let good = signer("ES256", "k2").jwk;
    for jwk in [restricted, enc] {
        let config = config_with(inline_issuer(json!({"keys": [jwk, good.clone()]})));
        let (status, _, _) = ask(&config, &mut WorkerState::default(), &token);
        assert_eq!(status, 401, "a key whose JWK forbids the token's use");
    }
    // An issuer narrowed to ES256 never takes an RS256 token, even with the key.
    let mut issuer = inline_issuer(json!({"keys": [s.jwk.clone(), good.clone()]}));
    issuer["algorithms"] = json!(["ES256"]);
    let (status, _, _) = ask(&config_with(issuer), &mut WorkerState::default(), &token);
    assert_eq!(status, 401);
}

#[test]
fn configurations_that_would_trust_the_wrong_key_are_refused() {
    let s = signer("RS256", "k1");
    let refused = |issuer: Value| {
        let text = json!({"issuers": [issuer]}).to_string();
        Config::parse(text.as_bytes(), &|_| None)
            .unwrap_err()
            .to_string()
    };
    let mut hs = inline_issuer(json!({"keys": [s.jwk.clone()]}));
    hs["algorithms"] = json!(["HS256"]);
    assert!(refused(hs).contains("never accepted from an issuer"));
    let private: Value = serde_json::from_str(
        &RS256KeyPair::from_pem(&pem("rsa-2048.pem"))
            .unwrap()
            .to_jwk(),
    )
    .unwrap();
    let with_private = refused(inline_issuer(json!({"keys": [private]})));
    assert!(
        with_private.contains("private key material"),
        "{with_private}"
    );
    assert!(!with_private.contains(s.jwk["n"].as_str().unwrap()));
    let weak: Value = serde_json::from_str(&pem("rsa-1024.public.jwk.json")).unwrap();
    assert!(refused(inline_issuer(json!({"keys": [weak]}))).contains("no usable signing key"));
    let mut two_sources = inline_issuer(json!({"keys": [s.jwk.clone()]}));
    two_sources["jwks_uri"] = json!("https://idp.example.com/jwks");
    assert!(refused(two_sources).contains("exactly one of"));
    let mut no_cluster = inline_issuer(json!({"keys": []}));
    no_cluster.as_object_mut().unwrap().remove("jwks");
    no_cluster["jwks_uri"] = json!("https://idp.example.com/jwks");
    assert!(refused(no_cluster).contains("cluster"));
    let mut spoofable = inline_issuer(json!({"keys": [s.jwk.clone()]}));
    spoofable["claims_to_headers"] = json!([{"claim": "email", "header": "x-auth-user"}]);
    assert!(refused(spoofable).contains("identity header"));
}

#[path = "issuers/remote_keys.rs"]
mod remote_keys;

#[path = "issuers/repeated_kid.rs"]
mod repeated_kid;

#[test]
fn roles_are_kept_as_the_provider_spells_them_and_an_uncarriable_one_never_makes_user() {
    let s = signer("RS256", "k1");
    let text = json!({"issuers": [inline_issuer(json!({"keys": [s.jwk.clone()]}))], "rules": [
        {"prefix": "/orders", "mode": "required", "roles": ["Orders.Read", "urn:acme:ops"]},
    ]});
    let config = Config::parse(text.to_string().as_bytes(), &|_| None).unwrap();
    let ask_with = |roles: Value, worker: &mut WorkerState| {
        let token = (s.sign)(claims(json!({"realm_access": {"roles": roles}})));
        ask(&config, worker, &token)
    };
    let mut worker = WorkerState::default();
    let (status, _, set) = ask_with(json!(["Admin", "Orders.Read", "Admin"]), &mut worker);
    assert_eq!(status, 200);
    assert_eq!(header(&set, "x-auth-role"), Some("Admin,Orders.Read"));
    assert_eq!(worker.dropped_roles.take(), (0, None));
    for look_alike in [
        json!(["orders.read"]),
        json!(["ORDERS.READ"]),
        json!(["Оrders.Read"]),
    ] {
        let (status, code, _) = ask_with(look_alike.clone(), &mut worker);
        assert_eq!(
            (status, code.as_deref()),
            (403, Some("PERMISSION_DENIED")),
            "{look_alike}"
        );
    }
    // One value holding a comma is left out, not split; no role is left, never `user`.
    for (roles, why) in [
        (json!(["Orders.Read,user"]), "a comma"),
        (json!("Orders.Read user"), "a space"),
        (json!([7]), "not a string"),
    ] {
        let mut worker = WorkerState::default();
        let (status, code, _) = ask_with(roles.clone(), &mut worker);
        assert_eq!(
            (status, code.as_deref()),
            (403, Some("PERMISSION_DENIED")),
            "{roles}"
        );
        let (count, line) = worker.dropped_roles.take();
        let line = line.unwrap();
        assert_eq!(count, 1);
        assert!(line.contains("\"idp\"") && line.contains(why), "{line}");
        assert!(!line.contains("Orders.Read"), "never the value: {line}");
        ask_with(roles.clone(), &mut WorkerState::default());
        let token = (s.sign)(claims(json!({"realm_access": {"roles": ["a,b"]}})));
        ask(&config, &mut worker, &token);
        assert_eq!(
            worker.dropped_roles.take(),
            (1, None),
            "logged once: {roles}"
        );
    }
}

/// `Issuers::check` is told the token's algorithm; a token whose header names another is
/// refused before any signature is checked, whoever calls it.
#[test]
fn the_algorithm_told_must_be_the_headers() {
    use tollgate_core::verify::issuer::IssuerCheck;
    use tollgate_core::verify::jwks::Algorithm;
    use tollgate_core::verify::token::TokenError;
    let rs = signer("RS256", "k1");
    let ps = signer("PS256", "k2");
    let mut issuer = inline_issuer(json!({"keys": [rs.jwk.clone(), ps.jwk.clone()]}));
    issuer["algorithms"] = json!(["RS256", "PS256"]);
    let config = config_with(issuer);
    let token = (rs.sign)(claims(json!({})));
    let check = |alg| config.issuers.check(&token, alg, now(), |_| None);
    assert!(matches!(check(Algorithm::RS256), IssuerCheck::Valid(_)));
    assert_eq!(
        check(Algorithm::PS256),
        IssuerCheck::Refused(TokenError::Algorithm)
    );
}
