//! Conditions on rules through a real Envoy: tokens of the test OpenID provider (RS256 with
//! roles reader and writer, ES256 with reader and admin; `scope` "read write") and master-secret
//! tokens minted with claims, over HTTP/1.1 and HTTP/2 (h2c).

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::process::Command;

use serde_json::{json, Value};
use support::idp::{envoy_trusting, issuer_entry, Idp, AUDIENCE, RS256_CLIENT};
use support::{now, Envoy, Request, K};
use tollgate_core::verify::token::sign_raw;

/// A master-secret token for alice carrying `claims` besides the registered ones.
fn minted(claims: Value) -> String {
    let mut payload = claims;
    payload["sub"] = json!("alice");
    payload["token_type"] = json!("access");
    payload["iat"] = json!(now());
    payload["exp"] = json!(now() + 600);
    sign_raw(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &payload.to_string(),
        K.as_bytes(),
    )
}

/// The rules under test, every path required for every role the tokens carry.
fn rules() -> Value {
    let roles = json!(["reader", "writer", "admin", "user"]);
    let rule = |prefix: &str, condition: Value| {
        let mut rule = json!({"prefix": prefix, "mode": "required", "roles": roles});
        for (k, v) in condition.as_object().unwrap() {
            rule[k] = v.clone();
        }
        rule
    };
    json!([
        rule("/idp-only", json!({"issuers": ["idp"]})),
        rule("/secrets-only", json!({"issuers": ["secrets"]})),
        rule("/aud", json!({"audiences": [AUDIENCE]})),
        rule("/aud-other", json!({"audiences": ["api://other"]})),
        rule("/scopes", json!({"scopes": ["read", "write"]})),
        rule("/scopes-admin", json!({"scopes": ["admin"]})),
        rule(
            "/writers",
            json!({"claims": [{"claim": "realm_access.roles", "contains": "writer"}]})
        ),
        rule(
            "/client",
            json!({"claims": [{"claim": ["client_id"], "equals": RS256_CLIENT}]})
        ),
        rule(
            "/tenant",
            json!({"claims": [{"claim": ["https://example.com/claims", "tenant"], "equals": "acme"}]})
        ),
        rule("/tokens", json!({"credentials": ["access_token"]})),
    ])
}

/// The status and error code of `GET target` with `token`, over HTTP/1.1 or HTTP/2.
fn ask(
    envoy: &Envoy,
    http2: bool,
    target: &str,
    token: &str,
    extra: &[(&str, &str)],
) -> (u16, String) {
    if !http2 {
        let mut request = Request::get(target).bearer(token);
        for (name, value) in extra {
            request = request.header(name, value);
        }
        let response = envoy.send(&request);
        let code = response
            .json()
            .and_then(|b| b["code"].as_str().map(str::to_owned));
        return (response.status, code.unwrap_or_default());
    }
    let dir = support::scratch_dir("h2-conditions");
    let body_file = dir.join("body");
    let mut curl = Command::new("curl");
    curl.args(["-s", "--http2-prior-knowledge", "--max-time", "10"])
        .args(["-o", body_file.to_str().unwrap(), "-w", "%{http_code}"])
        .args([
            "-H",
            "Host: api.example.com",
            "-H",
            &format!("Authorization: Bearer {token}"),
        ]);
    for (name, value) in extra {
        curl.args(["-H", &format!("{name}: {value}")]);
    }
    let out = curl
        .arg(format!("http://127.0.0.1:{}{target}", envoy.port))
        .output()
        .expect("curl is installed");
    let status: u16 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let body: Value = serde_json::from_slice(&std::fs::read(&body_file).unwrap_or_default())
        .unwrap_or(Value::Null);
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

#[test]
fn every_condition_kind_with_provider_and_master_secret_tokens_over_http1_and_http2() {
    let idp = Idp::start();
    let envoy = envoy_trusting(
        json!([issuer_entry(&idp, 600)]),
        idp.port(),
        json!({
            "api_keys": [{"name": "server", "key": "sk_test_4f9d2c7a8b1e6f3d0a5c9e2b7f4a1d8c"}],
            "rules": rules(),
        }),
    );
    let rs256 = idp.token("RS256");
    let es256 = idp.token("ES256");
    let master = minted(json!({
        "aud": AUDIENCE, "scope": "write read", "https://example.com/claims": {"tenant": "acme"},
    }));
    let confused = minted(json!({
        "aud": [AUDIENCE.to_uppercase()], "scp": ["read write"],
        "https://example.com/claims.tenant": "acme", "client_id": [RS256_CLIENT],
    }));
    let key = "sk_test_4f9d2c7a8b1e6f3d0a5c9e2b7f4a1d8c";
    let denied = (403, "PERMISSION_DENIED".to_owned());
    let ok = (200, String::new());
    let cases: Vec<(&str, &str, (u16, String))> = vec![
        ("/idp-only", &rs256, ok.clone()),
        ("/idp-only", &master, denied.clone()),
        ("/secrets-only", &master, ok.clone()),
        ("/secrets-only", &es256, denied.clone()),
        ("/aud", &rs256, ok.clone()),
        ("/aud", &master, ok.clone()),
        ("/aud", &confused, denied.clone()),
        ("/aud-other", &rs256, denied.clone()),
        ("/scopes", &rs256, ok.clone()),
        ("/scopes", &master, ok.clone()),
        ("/scopes", &confused, denied.clone()),
        ("/scopes-admin", &es256, denied.clone()),
        ("/writers", &rs256, ok.clone()),
        ("/writers", &es256, denied.clone()),
        ("/client", &rs256, ok.clone()),
        ("/client", &es256, denied.clone()),
        ("/client", &confused, denied.clone()),
        ("/tenant", &master, ok.clone()),
        ("/tenant", &confused, denied.clone()),
        ("/tenant", &rs256, denied.clone()),
        ("/tokens", &es256, ok.clone()),
        ("/tokens", key, denied.clone()),
        ("/aud", key, denied.clone()),
    ];
    for http2 in [false, true] {
        // Each twice: the second is answered from the cache of verified tokens.
        for _ in 0..2 {
            for (target, token, expected) in &cases {
                let got = ask(&envoy, http2, target, token, &[]);
                assert_eq!(
                    &got,
                    expected,
                    "{target} http2={http2} {}",
                    &token[..12.min(token.len())]
                );
            }
        }
    }
    // Headers a client sends cannot satisfy a condition: not one named like the claim, not an
    // identity header.
    for http2 in [false, true] {
        let spoofed = [
            ("scope", "admin"),
            ("x-auth-type", "access_token"),
            ("x-auth-name", "idp"),
            ("x-auth-email", "admin@tollgate.test"),
        ];
        assert_eq!(
            ask(&envoy, http2, "/scopes-admin", &rs256, &spoofed),
            denied
        );
        assert_eq!(ask(&envoy, http2, "/idp-only", &master, &spoofed), denied);
        assert_eq!(ask(&envoy, http2, "/tokens", key, &spoofed), denied);
    }
    // On a path let on, the spoofed identity header is stripped and the filter's is set.
    let response = envoy.send(
        &Request::get("/writers")
            .bearer(&rs256)
            .header("X-Auth-Email", "admin@tollgate.test")
            .header("X-Auth-Name", "secrets"),
    );
    assert_eq!(response.status, 200);
    assert_eq!(
        response.upstream_headers("x-auth-name"),
        vec!["idp".to_owned()]
    );
    let emails = response.upstream_headers("x-auth-email");
    assert!(
        emails.iter().all(|e| e != "admin@tollgate.test"),
        "{emails:?}"
    );
    // The refusal names the kind of condition, never a value, with insufficient_scope.
    let response = envoy.send(&Request::get("/tenant").bearer(&confused));
    assert_eq!(response.status, 403);
    let challenge = response
        .header("www-authenticate")
        .unwrap_or_default()
        .to_owned();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    let body = String::from_utf8_lossy(&response.body).into_owned();
    assert!(body.contains("claim") && !body.contains("acme"), "{body}");
}
