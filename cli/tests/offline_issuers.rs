//! Issuers' tokens checked offline: `--jwks NAME=FILE` installs a `jwks_uri` issuer's keys as
//! if fetched, and a cases file mints an issuer's token (`{mint: {issuer, key, claims}}`)
//! with a private key (PEM or JWK). Bad flags end in exit 2, naming the flag; no key, token or
//! signature is ever printed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};

use common::{root, scratch, tollgate, Run};
use tollgate_testkit::NOW;

const RSA_JWKS: &str = "docs/migrating/keys/rsa.jwks.json";
const EC_JWKS: &str = "docs/migrating/keys/ec.jwks.json";

fn key(name: &str) -> PathBuf {
    root().join("tests/data/issuer-keys").join(name)
}

/// A configuration with two `jwks_uri` issuers (`rsa`, `ec`) and one with inline keys.
fn config(dir: &Path) -> PathBuf {
    let ec = std::fs::read_to_string(root().join(EC_JWKS)).unwrap();
    let config = serde_json::json!({
        "issuers": [
            {"name": "rsa", "issuer": "https://rsa.idp.test", "audiences": ["api://orders"],
             "jwks_uri": "https://rsa.idp.test/jwks", "cluster": "rsa_idp", "roles_claim": "roles",
             "algorithms": ["RS256"]},
            {"name": "ec", "issuer": "https://ec.idp.test",
             "jwks_uri": "https://ec.idp.test/jwks", "cluster": "ec_idp"},
            {"name": "inline", "issuer": "https://inline.idp.test", "jwks": ec},
        ],
        "rules": [{"prefix": "/orders", "mode": "required", "roles": ["ops", "user"]}],
    });
    let path = dir.join("config.json");
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

/// Runs `tollgate test` on `cases` (YAML text) with `jwks` flags.
fn run_cases(dir: &Path, cases: &str, jwks: &[&str]) -> Run {
    let cases_path = dir.join("cases.yaml");
    std::fs::write(&cases_path, cases).unwrap();
    let config = config(dir);
    let now = NOW.to_string();
    let mut args = vec!["test", "--config", config.to_str().unwrap(), "--now", &now];
    for j in jwks {
        args.extend(["--jwks", j]);
    }
    args.push(cases_path.to_str().unwrap());
    tollgate(&args)
}

/// A case whose request carries `mint` as its bearer token and expects `expect`.
fn case(name: &str, mint: &str, expect: &str) -> String {
    format!(
        "- name: {name}\n  request: {{method: GET, target: /orders, headers: {{Authorization: [\"Bearer \", {{mint: {mint}}}]}}}}\n  expect: {expect}\n"
    )
}

/// No text of a private key file, no JWK private member, no whole token in `text`.
fn assert_nothing_secret(text: &str) {
    for file in ["rsa-2048.pem", "ec-p256.pem", "rsa-other.pem"] {
        let pem = std::fs::read_to_string(key(file)).unwrap();
        for line in pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!text.contains(line), "a private key is printed:\n{text}");
        }
    }
    assert!(!text.contains("\"d\""), "a JWK private member:\n{text}");
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c))) {
        let parts: Vec<&str> = word.split('.').collect();
        assert!(
            !(parts.len() == 3 && parts.iter().all(|p| p.len() > 8)),
            "a whole token is printed ({word}):\n{text}"
        );
    }
}

#[test]
fn minted_rs256_and_es256_tokens_verify_with_the_given_keys() {
    let dir = scratch("offline-mint");
    let rsa = key("rsa-2048.pem").display().to_string();
    let ec = key("ec-p256.pem").display().to_string();
    let cases = [
        case(
            "rs256 with roles",
            &format!("{{issuer: rsa, key: {rsa}, claims: {{sub: alice, aud: api://orders, roles: [ops]}}}}"),
            "{status: 200, user: alice, name: rsa, type: access_token, role: ops}",
        ),
        case(
            "es256",
            &format!("{{issuer: ec, key: {ec}, claims: {{sub: bob}}}}"),
            "{status: 200, user: bob, name: ec}",
        ),
        case(
            "the issuer's audience is still checked",
            &format!("{{issuer: rsa, key: {rsa}, claims: {{sub: alice, aud: api://other}}}}"),
            "{status: 401, code: INVALID_CREDENTIALS}",
        ),
        case(
            "times come from the cases' clock",
            &format!("{{issuer: ec, key: {ec}, ttl: 5m, issued_ago: 1h, claims: {{sub: bob}}}}"),
            "{status: 401, code: TOKEN_EXPIRED}",
        ),
        case(
            "an inline issuer needs no --jwks",
            &format!("{{issuer: inline, key: {ec}, claims: {{sub: carol}}}}"),
            "{status: 200, user: carol, name: inline}",
        ),
    ]
    .concat();
    let jwks = [format!("rsa={RSA_JWKS}"), format!("ec={EC_JWKS}")];
    let run = run_cases(&dir, &cases, &[&jwks[0], &jwks[1]]);
    assert_eq!(run.status, 0, "{}", run.all());
    assert!(run.stdout.contains("5 passed, 0 failed"), "{}", run.all());
    assert_nothing_secret(&run.all());

    // Without --jwks, the same tokens wait for keys never fetched: 503, as the filter at start.
    let run = run_cases(&dir, &cases, &[]);
    assert_eq!(run.status, 1, "{}", run.all());
    assert!(
        run.stdout.contains("-> 503 KEYS_UNAVAILABLE"),
        "{}",
        run.all()
    );
    assert!(run.stdout.contains("3 passed, 2 failed"), "{}", run.all());
    assert_nothing_secret(&run.all());
}

#[test]
fn a_token_of_another_key_is_refused_and_a_private_jwk_signs() {
    let dir = scratch("offline-wrong-key");
    // The same RSA key as a private JWK (with a kid of its own, replaced by the issuer's).
    let pem = std::fs::read_to_string(key("rsa-2048.pem")).unwrap();
    let jwk = jwt_simple::prelude::RS256KeyPair::from_pem(&pem)
        .unwrap()
        .with_key_id("mine")
        .to_jwk();
    std::fs::write(dir.join("private.jwk.json"), &jwk).unwrap();
    let other = key("rsa-other.pem").display().to_string();
    let cases = [
        case(
            "another key",
            &format!("{{issuer: rsa, key: {other}, claims: {{sub: alice, aud: api://orders}}}}"),
            "{status: 401, code: INVALID_CREDENTIALS}",
        ),
        case(
            "a private JWK, relative to the cases file",
            "{issuer: rsa, key: private.jwk.json, claims: {sub: alice, aud: api://orders}}",
            "{status: 200, user: alice}",
        ),
        case(
            "a kid the keys lack",
            "{issuer: rsa, key: private.jwk.json, kid: rotated, claims: {sub: alice, aud: api://orders}}",
            "{status: 401, code: INVALID_CREDENTIALS}",
        ),
    ]
    .concat();
    let jwks = format!("rsa={RSA_JWKS}");
    let run = run_cases(&dir, &cases, &[&jwks]);
    assert_eq!(run.status, 0, "{}", run.all());
    assert!(run.stdout.contains("3 passed, 0 failed"), "{}", run.all());
    assert_nothing_secret(&run.all());
    // A failing case explains the token, masked.
    let failing = case(
        "expected to fail",
        &format!("{{issuer: rsa, key: {other}, claims: {{sub: alice, aud: api://orders}}}}"),
        "{status: 200}",
    );
    let run = run_cases(&dir, &failing, &[&jwks]);
    assert_eq!(run.status, 1, "{}", run.all());
    assert!(run.stdout.contains("what happened"), "{}", run.all());
    assert_nothing_secret(&run.all());
    assert!(!run.all().contains(jwk.as_str()));
}

#[test]
fn bad_jwks_flags_and_mints_are_errors_naming_them() {
    let dir = scratch("offline-errors");
    let private_jwks = dir.join("private.jwks.json");
    let pem = std::fs::read_to_string(key("ec-p256.pem")).unwrap();
    let jwk = jwt_simple::prelude::ES256KeyPair::from_pem(&pem)
        .unwrap()
        .to_jwk();
    std::fs::write(&private_jwks, format!("{{\"keys\": [{jwk}]}}")).unwrap();
    let pem_path = key("ec-p256.pem").display().to_string();
    let ok = case("c", "{issuer: ec, key: x, claims: {}}", "{status: 200}");
    for (jwks, says) in [
        (format!("nobody={EC_JWKS}"), "no issuer is named \"nobody\""),
        (
            format!("inline={EC_JWKS}"),
            "--jwks is for a jwks_uri issuer",
        ),
        (format!("ec={pem_path}"), "not a JWKS"),
        (
            format!("ec={}", private_jwks.display()),
            "private key members",
        ),
        (format!("rsa={EC_JWKS}"), "no key usable for issuer \"rsa\""),
        ("ec".to_owned(), "expected NAME=FILE"),
        (format!("ec=/nonexistent/{EC_JWKS}"), "cannot read"),
    ] {
        let run = run_cases(&dir, &ok, &[&jwks]);
        assert_eq!(run.status, 2, "{jwks}: {}", run.all());
        assert!(run.stderr.contains("--jwks"), "{jwks}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{jwks}: {}", run.stderr);
        assert_nothing_secret(&run.all());
        assert!(!run.all().contains(jwk.as_str()));
    }
    let jwks = format!("ec={EC_JWKS}");
    for (mint, says) in [
        (
            "{issuer: nobody, key: k.pem, claims: {}}",
            "no issuer is named \"nobody\"",
        ),
        ("{issuer: ec, claims: {sub: a}}", "needs issuer"),
        ("{issuer: ec, key: missing.pem, claims: {}}", "cannot read"),
        (
            "{issuer: ec, key: cases.yaml, claims: {}}",
            "is not a PEM private key",
        ),
        (
            "{issuer: ec, key: k.pem, sub: a, claims: {}}",
            "sub and token_type in claims",
        ),
    ] {
        let run = run_cases(&dir, &case("m", mint, "{status: 200}"), &[&jwks]);
        assert_eq!(run.status, 2, "{mint}: {}", run.all());
        assert!(run.stderr.contains(says), "{mint}: {}", run.stderr);
        assert_nothing_secret(&run.all());
    }
}

/// `explain --jwks` verifies an issuer's token with the given keys.
#[test]
fn explain_checks_a_token_with_the_given_keys() {
    use jwt_simple::prelude::*;
    let dir = scratch("offline-explain");
    let config = config(&dir);
    let pem = std::fs::read_to_string(key("ec-p256.pem")).unwrap();
    let mut claims = Claims::create(Duration::from_mins(10))
        .with_issuer("https://ec.idp.test")
        .with_subject("bob");
    claims.issued_at = Some(UnixTimeStamp::from_secs(NOW));
    claims.expires_at = Some(UnixTimeStamp::from_secs(NOW + 600));
    claims.invalid_before = None;
    let token = ES256KeyPair::from_pem(&pem)
        .unwrap()
        .with_key_id("ec-1")
        .sign(claims)
        .unwrap();
    let header = format!("Authorization: Bearer {token}");
    let now = NOW.to_string();
    let jwks = format!("ec={EC_JWKS}");
    let explain = |extra: &[&str]| {
        let mut args = vec![
            "explain",
            "--config",
            config.to_str().unwrap(),
            "--now",
            &now,
        ];
        args.extend(extra);
        args.extend(["GET", "/orders", "-H", &header]);
        tollgate(&args)
    };
    let run = explain(&["--jwks", &jwks]);
    assert_eq!(run.status, 0, "{}", run.all());
    assert!(run.stdout.contains("answer: 200"), "{}", run.all());
    assert!(
        run.stdout
            .contains("identity: type access_token, role user, user bob"),
        "{}",
        run.all()
    );
    common::assert_no_secret(&run.all(), &[], std::slice::from_ref(&token));
    let run = explain(&[]);
    assert!(run.stdout.contains("KEYS_UNAVAILABLE"), "{}", run.all());
}
