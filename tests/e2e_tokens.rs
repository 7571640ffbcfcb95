//! Access tokens through a real Envoy running the built `.wasm`: what the hostile table
//! (tests/data/security-cases.tsv, configuration G is this file's) cannot say — challenges,
//! messages, token lifetimes and keys, configurations Envoy refuses.

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::sync::OnceLock;

use serde_json::json;
use support::{claims_for, now, query, sign_raw, Envoy, Request, Response, Setup, SigningKey, K};

const OLD: &str = "previous-secret-4TqrxYCoq6TBUrbbswc";

/// The configuration most tests share: the current secret from the VM environment, an older
/// one for rotation, and one rule per mode.
fn main_config() -> serde_json::Value {
    json!({
        "secrets": [
            {"kid": "current", "key_env": "TOLLGATE_SECRET"},
            {"kid": "old", "key": OLD}
        ],
        "rules": [
            {"prefix": "/public", "mode": "none"},
            {"path": "/healthz", "mode": "none"},
            {"prefix": "/feed", "mode": "optional"},
            {"prefix": "/orders", "mode": "none", "methods": ["GET"]}
        ]
    })
}

fn envoy() -> &'static Envoy {
    static ENVOY: OnceLock<Envoy> = OnceLock::new();
    ENVOY.get_or_init(|| Envoy::start(Setup::new(main_config()).vm_env("TOLLGATE_SECRET", K)))
}

fn signed(kid: &str, key: &str, sub: &str, token_type: &str, issued: u64, ttl: u64) -> String {
    SigningKey::new(Some(kid.into()), key.as_bytes())
        .sign(claims_for(sub, token_type, issued, ttl))
        .unwrap()
}

fn token(sub: &str) -> String {
    signed("current", K, sub, "access", now(), 3600)
}

fn assert_error(r: &Response, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.code().as_deref(), Some(code), "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
}

fn assert_passed_as(r: &Response, user: &str) {
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.upstream_header("x-auth-user").as_deref(), Some(user));
    assert_eq!(
        r.upstream_header("x-auth-type").as_deref(),
        Some("access_token")
    );
    assert_eq!(r.upstream_header("x-auth-role").as_deref(), Some("user"));
}

#[test]
fn missing_credential_is_401_with_a_bare_challenge() {
    let r = envoy().get("/api/orders");
    assert_error(&r, 401, "MISSING_CREDENTIALS");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"api.example.com\"")
    );
}

#[test]
fn expired_token_is_token_expired_unless_within_skew() {
    let expired = signed("current", K, "u", "access", now() - 7200, 3600);
    let r = envoy().send(&Request::get("/api").bearer(&expired));
    assert_error(&r, 401, "TOKEN_EXPIRED");
    assert!(r.text().contains("refresh"));
    let challenge = r.header("www-authenticate").unwrap();
    assert!(challenge.starts_with(
        "Bearer realm=\"api.example.com\", error=\"invalid_token\", error_description=\""
    ));
    // Expired 30 seconds ago: inside the default 60-second skew.
    let within_skew = signed("current", K, "u", "access", now() - 3630, 3600);
    assert_passed_as(
        &envoy().send(&Request::get("/api").bearer(&within_skew)),
        "u",
    );
}

#[test]
fn token_not_yet_valid_is_refused() {
    let key = SigningKey::new(Some("current".into()), K.as_bytes());
    let mut claims = claims_for("u", "access", now(), 3600);
    claims.invalid_before = Some(jwt_simple::prelude::UnixTimeStamp::from_secs(now() + 600));
    let r = envoy().send(&Request::get("/api").bearer(&key.sign(claims).unwrap()));
    assert_error(&r, 401, "INVALID_CREDENTIALS");
}

#[test]
fn refresh_token_is_refused() {
    let refresh = signed("current", K, "u", "refresh", now(), 3600);
    assert_error(
        &envoy().send(&Request::get("/api").bearer(&refresh)),
        401,
        "INVALID_CREDENTIALS",
    );
}

#[test]
fn bad_signature_alg_none_and_other_algorithms_are_refused() {
    let payload = format!(
        r#"{{"sub":"eve","token_type":"access","exp":{}}}"#,
        now() + 3600
    );
    let cases = [
        sign_raw(
            r#"{"alg":"HS256"}"#,
            &payload,
            b"some-other-secret-0123456789abcdef",
        ),
        sign_raw(r#"{"alg":"none"}"#, &payload, b""),
        format!(
            "{}.",
            sign_raw(r#"{"alg":"none"}"#, &payload, b"")
                .rsplit_once('.')
                .unwrap()
                .0
        ),
        sign_raw(r#"{"alg":"HS512"}"#, &payload, K.as_bytes()),
        sign_raw(r#"{"alg":"RS256"}"#, &payload, K.as_bytes()),
        sign_raw(r#"{"alg":"hs256"}"#, &payload, K.as_bytes()),
    ];
    for token in cases {
        let r = envoy().send(&Request::get("/api").bearer(&token));
        assert_error(&r, 401, "INVALID_CREDENTIALS");
        assert!(!r.text().contains(&token));
    }
}

#[test]
fn rotated_key_by_kid_and_unknown_kid() {
    let old = signed("old", OLD, "rotated", "access", now(), 600);
    assert_passed_as(&envoy().send(&Request::get("/api").bearer(&old)), "rotated");
    let unknown = signed("retired", OLD, "rotated", "access", now(), 600);
    assert_error(
        &envoy().send(&Request::get("/api").bearer(&unknown)),
        401,
        "INVALID_CREDENTIALS",
    );
    // A known kid with the other secret's signature.
    let crossed = signed("current", OLD, "rotated", "access", now(), 600);
    assert_error(
        &envoy().send(&Request::get("/api").bearer(&crossed)),
        401,
        "INVALID_CREDENTIALS",
    );
}

#[test]
fn credentials_are_kept_with_forward_credentials() {
    let mut config = main_config();
    config["forward_credentials"] = json!(true);
    let envoy = Envoy::start(Setup::new(config).vm_env("TOLLGATE_SECRET", K));
    let t = token("alice");
    let r = envoy.send(&Request::get("/api").bearer(&t));
    assert_passed_as(&r, "alice");
    assert_eq!(
        r.upstream_header("authorization"),
        Some(format!("Bearer {t}"))
    );
    let r = envoy.send(&Request::get(format!("/api?access_token={t}&x=1")));
    assert_eq!(r.upstream_path(), format!("/api?access_token={t}&x=1"));
}

#[test]
fn oversized_credentials_are_refused() {
    let long = "A".repeat(9000);
    let r = envoy().send(&Request::get("/api").bearer(&long));
    assert_error(&r, 401, "INVALID_CREDENTIALS");
    assert!(r.text().contains("8192"));
}

#[test]
fn catalogue_vectors_through_envoy() {
    let vectors = include_str!("data/jwt-vectors.tsv");
    let envoy = Envoy::start(Setup::new(json!({"secrets": [{"key": K}]})));
    let mut checked = 0;
    for line in vectors.lines().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (id, expected, clock, token) = (cols[0], cols[1], cols[2], cols[4]);
        if clock != "any" {
            continue;
        }
        let token = token
            .replace("\\r", "\r")
            .replace("\\n", "\n")
            .replace("\\t", "\t");
        // Sent percent-encoded in the query so that any byte arrives as the catalogue wrote it.
        let encoded = query::encode_component(token.as_bytes());
        let r = envoy.send(&Request::get(format!("/api?access_token={encoded}")));
        match expected.strip_prefix("ok:") {
            Some(user) => assert_passed_as(&r, user),
            None if expected == "Expired" => assert_error(&r, 401, "TOKEN_EXPIRED"),
            None => {
                assert_eq!(r.status, 401, "{id}: {}", r.text());
                assert_eq!(r.code().as_deref(), Some("INVALID_CREDENTIALS"), "{id}");
            }
        }
        checked += 1;
    }
    assert!(checked > 80, "{checked}");
}

fn refused(config: &str, env: &[(&str, &str)]) -> support::Refused {
    let mut setup = Setup::raw(config);
    for (k, v) in env {
        setup = setup.vm_env(k, v);
    }
    match Envoy::try_start(setup) {
        Ok(mut envoy) => panic!(
            "Envoy served a bad configuration (running: {}):\n{config}",
            envoy.is_running()
        ),
        Err(refused) => refused,
    }
}

#[test]
fn bad_configurations_are_refused_and_the_log_names_the_key() {
    type Case<'a> = (String, &'a [(&'a str, &'a str)], &'a str);
    let keyed = |rest: &str| format!(r#"{{"secrets":[{{"key":"{K}"}}]{rest}}}"#);
    let cases: Vec<Case> = vec![
        ("{}".into(), &[], "secrets: no secret"),
        ("not json".into(), &[], "configuration: is not a JSON object"),
        (
            r#"{"secrets":[{"key":"short"}]}"#.into(),
            &[],
            "secrets[0].key: is 5 bytes",
        ),
        (
            r#"{"secrets":[{"key_env":"TOLLGATE_SECRET"}],"rules":[{"prefix":"/a","mode":"requried"}]}"#.into(),
            &[("TOLLGATE_SECRET", K)],
            "rules[0].mode: unknown mode \"requried\" (expected none, optional, required)",
        ),
        (
            r#"{"secrets":[{"key_env":"NOT_SET"}]}"#.into(),
            &[],
            "secrets[0].key_env: environment variable \"NOT_SET\" is not set",
        ),
        (
            keyed(r#","colour":"blue""#),
            &[],
            "colour: unknown field `colour`",
        ),
        (
            format!(r#"{{"secrets":"{K}"}}"#),
            &[],
            "secrets: invalid type: a string, expected a sequence",
        ),
        (
            keyed(r#","rules":[{"mode":"none"}]"#),
            &[],
            "rules[0]: needs \"path\" or \"prefix\"",
        ),
    ];
    let check = |config: &str, message: &str, log: &str| {
        assert!(
            log.contains(&format!("configuration refused: {message}")),
            "{config}: log lacks {message:?}:\n{log}"
        );
        assert!(!log.contains(K), "the secret reached the log");
    };
    // The first at start-up: Envoy does not start.
    let ((config, env, message), rest) = cases.split_first().unwrap();
    let refused = refused(config, env);
    assert_ne!(refused.exit_code, Some(0), "{config}");
    check(config, message, &refused.log);
    // The others as updates of one running Envoy (one start-up, not one per case; its VM has
    // every variable a case names): each is rejected, with its refusal logged.
    let mut setup = Setup::new(json!({"secrets": [{"key": K}]})).dynamic();
    for (name, value) in rest.iter().flat_map(|(_, env, _)| env.iter()) {
        setup = setup.vm_env(name, value);
    }
    let envoy = Envoy::start(setup);
    let rejected = || {
        envoy
            .stats("listener_manager.lds.update_rejected")
            .values()
            .sum::<u64>()
    };
    for (version, (config, _, message)) in (2..).zip(rest) {
        let before = rejected();
        let logged = envoy.log().len();
        envoy.update_plugin_config(config, &version.to_string());
        support::wait_until(
            &format!("the update {config} to be rejected"),
            std::time::Duration::from_secs(30),
            || rejected() > before,
        );
        let log = envoy.log();
        check(config, message, log.get(logged..).unwrap_or(&log));
    }
    assert!(!envoy.log().contains(K), "the secret reached the log");
}
