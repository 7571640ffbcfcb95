//! `tollgate check`, `explain` and `test` as an operator runs them: output, exit statuses,
//! and no secret, full token or token signature ever printed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{assert_no_secret, env_file, scratch, token, tollgate, ENVOY_VARS};
use tollgate_testkit::NOW;

#[test]
fn check_says_what_it_read_and_the_filters_verdict() {
    let dir = scratch("check");
    let (env, secrets) = env_file(&dir, &ENVOY_VARS);
    let env = env.to_str().unwrap();
    let ok = tollgate(&["check", "--config", "envoy/envoy.yaml", "--env-file", env]);
    assert_eq!(ok.status, 0, "{}", ok.all());
    assert!(
        ok.stdout
            .contains("read: Envoy configuration envoy/envoy.yaml, HTTP filter \"tollgate\""),
        "{}",
        ok.stdout
    );
    assert!(
        ok.stdout
            .contains("configured: 11 rules, 1 secrets, 1 API keys"),
        "{}",
        ok.stdout
    );
    assert_no_secret(&ok.all(), &secrets, &[]);

    // Without the secrets: the filter's own message, exit 1.
    let refused = tollgate(&["check", "--config", "envoy/envoy.yaml"]);
    assert_eq!(refused.status, 1, "{}", refused.all());
    assert!(refused.stdout.contains("configuration refused: secrets[0].key_env: environment variable \"TOLLGATE_SECRET\" is not set"), "{}", refused.stdout);

    // The plugin's JSON itself, and a refused key.
    let json = dir.join("plugin.json");
    std::fs::write(
        &json,
        r#"{"secrets":[{"key":"short"}],"rules":[{"prefix":"/x","mode":"requried"}]}"#,
    )
    .unwrap();
    let bad = tollgate(&["check", "--config", json.to_str().unwrap()]);
    assert_eq!(bad.status, 1, "{}", bad.all());
    assert!(
        bad.stdout.starts_with("read: plugin configuration (JSON)"),
        "{}",
        bad.stdout
    );
    assert!(
        bad.stdout.contains("configuration refused:"),
        "{}",
        bad.stdout
    );
    assert!(!bad.all().contains("short"), "{}", bad.all());

    // The Istio example.
    let istio = tollgate(&["check", "--config", "envoy/istio/wasmplugin.yaml"]);
    assert!(istio.stdout.contains("read: Istio WasmPlugin envoy/istio/wasmplugin.yaml, WasmPlugin \"tollgate\" spec.pluginConfig"), "{}", istio.stdout);

    // No such file, or an unknown option: exit 2.
    assert_eq!(tollgate(&["check", "--config", "nope.yaml"]).status, 2);
    assert_eq!(
        tollgate(&["check", "--config", "envoy/envoy.yaml", "--bogus"]).status,
        2
    );
    assert_eq!(tollgate(&["frob"]).status, 2);
}

#[test]
fn explain_tells_each_step_in_text_and_json() {
    let dir = scratch("explain");
    let (env, secrets) = env_file(&dir, &ENVOY_VARS);
    let env = env.to_str().unwrap();
    let t = token(&secrets[0], "lUpa");
    let target = format!("/admin/users?access_token={t}&page=2");
    let now = NOW.to_string();
    let run = tollgate(&[
        "explain",
        "--config",
        "envoy/envoy.yaml",
        "--env-file",
        env,
        "--now",
        &now,
        "GET",
        &target,
        "-H",
        "Host: api.example.com",
        "-H",
        "X-Auth-User: root",
    ]);
    assert_eq!(run.status, 0, "{}", run.all());
    for expected in [
        "x-auth-user: removed",
        "/admin/users as GET: required by rules[7] (prefix /admin)",
        "a token in the query parameter access_token: eyJhbGciOi…(",
        "header: alg HS256, kid \"demo\"",
        "verified with the master secrets: sub \"lUpa\"",
        "user is not among admin",
        "answer: 403 PERMISSION_DENIED (denied)",
    ] {
        assert!(
            run.stdout.contains(expected),
            "no {expected:?} in\n{}",
            run.stdout
        );
    }
    assert_no_secret(&run.all(), &secrets, std::slice::from_ref(&t));

    // Allowed: the identity and what the upstream gets.
    let bearer = format!("Authorization: Bearer {t}");
    let run = tollgate(&[
        "explain",
        "--config",
        "envoy/envoy.yaml",
        "--env-file",
        env,
        "--now",
        &now,
        "--json",
        "GET",
        "/api/orders?page=2",
        "-H",
        &bearer,
    ]);
    assert_eq!(run.status, 0, "{}", run.all());
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["answer"]["status"], 200);
    assert_eq!(json["identity"]["user"], "lUpa");
    assert_eq!(json["identity"]["type"], "access_token");
    assert_eq!(json["mode"], "required");
    let upstream: Vec<(String, String)> =
        serde_json::from_value(json["upstream"]["headers"].clone()).unwrap();
    assert!(
        upstream.contains(&("x-auth-user".into(), "lUpa".into())),
        "{upstream:?}"
    );
    assert!(
        !upstream.iter().any(|(n, _)| n == "authorization"),
        "{upstream:?}"
    );
    assert_no_secret(&run.all(), &secrets, std::slice::from_ref(&t));

    // The API key is shown by its name only.
    let key = format!("Authorization: Bearer {}", secrets[1]);
    let run = tollgate(&[
        "explain",
        "--config",
        "envoy/envoy.yaml",
        "--env-file",
        env,
        "GET",
        "/admin/x",
        "-H",
        &key,
    ]);
    assert!(
        run.stdout.contains("<API key \"backend\">"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("a configured api_key named \"backend\""),
        "{}",
        run.stdout
    );
    assert_no_secret(&run.all(), &secrets, &[]);
}

#[test]
fn test_reports_passes_failures_and_exit_statuses() {
    let dir = scratch("test");
    let (env, secrets) = env_file(&dir, &ENVOY_VARS);
    let env = env.to_str().unwrap();
    let cases = dir.join("cases.yaml");
    std::fs::write(
        &cases,
        r#"
- name: open
  request: {method: GET, target: /healthz}
  expect: {status: 200, rule: path /healthz}
- name: wrong on purpose
  request:
    method: GET
    target: /admin/x
    headers:
      Authorization: ["Bearer ", {mint: {sub: bob, ttl: 1h}}]
  expect: {status: 200, user: bob}
- request:
    method: GET
    target: /catalog
    headers: [{Authorization: ["Bearer ", {env: TOLLGATE_PUBLISHABLE_KEY}]}]
  expect: {status: 200, name: web}
"#,
    )
    .unwrap();
    let run = tollgate(&[
        "test",
        "--config",
        "envoy/envoy.yaml",
        "--env-file",
        env,
        cases.to_str().unwrap(),
    ]);
    assert_eq!(run.status, 1, "{}", run.all());
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], "PASS  open  GET /healthz  -> 200");
    assert_eq!(
        lines[1],
        "FAIL  wrong on purpose  GET /admin/x  -> 403 PERMISSION_DENIED"
    );
    assert_eq!(lines[2], "PASS  case 3  GET /catalog  -> 200");
    assert!(
        run.stdout.contains("status: expected 200, got 403"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("user is not among admin"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.ends_with("2 passed, 1 failed\n"),
        "{}",
        run.stdout
    );
    assert_no_secret(&run.all(), &secrets, &[]);
    assert!(
        !run.all().contains(".eyJ"),
        "a token's payload is printed:\n{}",
        run.all()
    );

    // A cases-file error names the file, the case and the key: exit 2.
    std::fs::write(
        &cases,
        "- name: typo\n  request: {method: GET, target: /}\n  expect: {stauts: 200}\n",
    )
    .unwrap();
    let run = tollgate(&[
        "test",
        "--config",
        "envoy/envoy.yaml",
        "--env-file",
        env,
        cases.to_str().unwrap(),
    ]);
    assert_eq!(run.status, 2, "{}", run.all());
    assert!(
        run.stderr
            .contains("case 1 (\"typo\"): expect.stauts: unknown field `stauts`"),
        "{}",
        run.stderr
    );
    // A configuration that does not load: exit 2.
    let run = tollgate(&[
        "test",
        "--config",
        "envoy/envoy.yaml",
        cases.to_str().unwrap(),
    ]);
    assert_eq!(run.status, 2, "{}", run.all());
    assert!(
        run.stderr.contains("configuration refused"),
        "{}",
        run.stderr
    );
}

/// An RS256 token of the example's identity provider, signed with a test key.
fn provider_token(iss: &str) -> String {
    use jwt_simple::prelude::*;
    let pem = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/issuer-keys/rsa-2048.pem"),
    )
    .unwrap();
    let mut claims = Claims::create(Duration::from_mins(10))
        .with_issuer(iss)
        .with_audience("api://tollgate-tests")
        .with_subject("svc");
    claims.issued_at = Some(UnixTimeStamp::from_secs(NOW));
    claims.expires_at = Some(UnixTimeStamp::from_secs(NOW + 600));
    claims.invalid_before = None;
    RS256KeyPair::from_pem(&pem)
        .unwrap()
        .with_key_id("k1")
        .sign(claims)
        .unwrap()
}

#[test]
fn explain_follows_a_provider_token_to_its_issuer() {
    let dir = scratch("explain-issuer");
    let (env, _) = env_file(&dir, &ENVOY_VARS);
    let now = NOW.to_string();
    let explain = |token: &str| {
        let bearer = format!("Authorization: Bearer {token}");
        tollgate(&[
            "explain",
            "--config",
            "envoy/envoy.yaml",
            "--env-file",
            env.to_str().unwrap(),
            "--now",
            &now,
            "GET",
            "/inventory",
            "-H",
            &bearer,
        ])
    };
    // The example's provider has its keys fetched at run time: before the first fetch, 503.
    let run = explain(&provider_token("http://127.0.0.1:9400"));
    assert_eq!(run.status, 0, "{}", run.all());
    assert!(run.stdout.contains("fetched at run time"), "{}", run.all());
    assert!(run.stdout.contains("KEYS_UNAVAILABLE"), "{}", run.all());
    // A provider nobody configured.
    let run = explain(&provider_token("https://elsewhere.example"));
    assert_eq!(run.status, 0, "{}", run.all());
    assert!(run.stdout.contains("UnknownIssuer"), "{}", run.all());
}
