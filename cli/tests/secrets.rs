//! What `tollgate explain` and `test` print when a request, a cases file or an argument holds
//! secrets: masked everywhere (also escaped, also by the thousand), and hostile inputs end in a
//! one-line error, never a panic, a hang or a secret in a message.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{assert_no_secret, env_file, scratch, tollgate, ENVOY_VARS};

/// A configured secret in the request is shown by its label inside the JSON's strings: the
/// output stays JSON (the label's quotes are escaped), and the secret never appears.
#[test]
fn explain_json_stays_json_when_a_configured_secret_is_sent() {
    let dir = scratch("explain-json-secret");
    let (env, secrets) = env_file(&dir, &ENVOY_VARS);
    let env = env.to_str().unwrap();
    let target = format!(
        "/reports/daily?client_id=reporting-job&client_secret={}",
        secrets[3]
    );
    let key = format!("Authorization: Bearer {}", secrets[1]);
    for args in [
        vec!["--json", "GET", target.as_str()],
        vec!["--json", "GET", "/admin/x", "-H", key.as_str()],
    ] {
        let mut all = vec!["explain", "--config", "envoy/envoy.yaml", "--env-file", env];
        all.extend(args);
        let run = tollgate(&all);
        assert_eq!(run.status, 0, "{}", run.all());
        let json: serde_json::Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.stdout));
        assert!(json["steps"].is_array(), "{json}");
        assert!(
            run.stdout.contains("\\\""),
            "the label is quoted: {}",
            run.stdout
        );
        assert_no_secret(&run.all(), &secrets, &[]);
    }
}

/// A lifetime past what a token can name is a cases-file error (exit 2), not a crash.
#[test]
fn a_lifetime_too_long_to_mint_is_a_cases_file_error() {
    let dir = scratch("mint-overflow");
    let (env, _) = env_file(&dir, &ENVOY_VARS);
    for ttl in [
        "5124095576030431h",
        "99999999999999999d",
        "213503982334601d",
        "4294967296",
    ] {
        let cases = dir.join("cases.yaml");
        std::fs::write(
            &cases,
            format!(
                "- request:\n    method: GET\n    target: /api/x\n    headers: {{Authorization: [\"Bearer \", {{mint: {{sub: alice, ttl: {ttl}}}}}]}}\n  expect: {{status: 200}}\n"
            ),
        )
        .unwrap();
        let run = tollgate(&[
            "test",
            "--config",
            "envoy/envoy.yaml",
            "--env-file",
            env.to_str().unwrap(),
            cases.to_str().unwrap(),
        ]);
        assert_eq!(run.status, 2, "ttl {ttl}: {}", run.all());
        assert!(run.stderr.contains("ttl"), "ttl {ttl}: {}", run.all());
    }
}

/// What a second outside attack found: hostile inputs end in a one-line error (exit 2) that
/// quotes no secret, never a panic, a hang on /dev/zero or a secret in an error message.
#[test]
fn hostile_inputs_are_refused_without_quoting_a_secret() {
    use std::os::unix::ffi::OsStrExt;
    let dir = scratch("hostile");
    let (env, secrets) = env_file(&dir, &ENVOY_VARS);
    let env = env.to_str().unwrap();
    let key = &secrets[1];

    // An argument that is not UTF-8 (it holds the API key).
    let mut arg = format!("Authorization: Bearer {key}").into_bytes();
    arg.push(0xff);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .current_dir(common::root())
        .args([
            "explain",
            "--config",
            "envoy/envoy.yaml",
            "--env-file",
            env,
            "GET",
            "/x",
            "-H",
        ])
        .arg(std::ffi::OsStr::from_bytes(&arg))
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("invalid UTF-8"), "{all}");
    assert_no_secret(&all, &secrets, &[]);

    // A header without a colon.
    let no_colon = format!("Authorization=Bearer {key}");
    let run = tollgate(&[
        "explain",
        "--config",
        "envoy/envoy.yaml",
        "--env-file",
        env,
        "GET",
        "/x",
        "-H",
        &no_colon,
    ]);
    assert_eq!(run.status, 2, "{}", run.all());
    assert_no_secret(&run.all(), &secrets, &[]);

    // A cases file whose error would quote a value, and a case name holding the key.
    let cases = dir.join("cases.yaml");
    for text in [
        format!("- request: {{method: GET, target: /x}}\n  expect: {{status: '{key}'}}\n"),
        format!(
            "- name: '{key}'\n  request: {{method: GET, target: /x}}\n  expect: {{stauts: 200}}\n"
        ),
        format!("- request: {{method: GET, target: /x}}\n  expect: {{status: 200, {key}: 1}}\n"),
    ] {
        std::fs::write(&cases, text).unwrap();
        let run = tollgate(&[
            "test",
            "--config",
            "envoy/envoy.yaml",
            "--env-file",
            env,
            cases.to_str().unwrap(),
        ]);
        assert_eq!(run.status, 2, "{}", run.all());
        assert_no_secret(&run.all(), &secrets, &[]);
    }

    // A secret written where a key belongs, in the configuration itself.
    let config = dir.join("plugin.json");
    std::fs::write(
        &config,
        format!(r#"{{"api_keys": [{{"name": "backend", "{key}": null}}]}}"#),
    )
    .unwrap();
    let run = tollgate(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(run.status, 1, "{}", run.all());
    assert!(run.all().contains("unknown field"), "{}", run.all());
    assert_no_secret(&run.all(), &secrets, &[]);

    // No end of input: refused after a bounded read.
    let run = tollgate(&["check", "--config", "/dev/zero"]);
    assert_eq!(run.status, 2, "{}", run.all());
}

/// A client secret holding `\` and `"` is masked also where the output escapes it.
#[test]
fn an_escaped_secret_is_masked_too() {
    let dir = scratch("escaped-secret");
    let (env, mut secrets) = env_file(&dir, &ENVOY_VARS);
    let odd = format!(
        "cs_live_{}\\x\"y{}",
        common::random_alnum(20),
        common::random_alnum(20)
    );
    let text = std::fs::read_to_string(&env)
        .unwrap()
        .replace(&secrets[3], &odd);
    std::fs::write(&env, text).unwrap();
    secrets[3] = odd.clone();
    let target = format!(
        "/reports%/;client_id=reporting-job;client_secret={}",
        odd.replace('"', "%22").replace('\\', "%5C")
    );
    let run = tollgate(&[
        "explain",
        "--config",
        "envoy/envoy.yaml",
        "--env-file",
        env.to_str().unwrap(),
        "GET",
        &target,
    ]);
    let escaped = odd.escape_debug().to_string();
    assert!(!run.all().contains(&escaped), "{}", run.all());
    assert_no_secret(&run.all(), &secrets, &[]);
}

/// Thousands of credential-shaped values in one request are masked in one pass.
#[test]
fn many_credentials_in_one_request_are_masked() {
    let dir = scratch("many");
    let (env, secrets) = env_file(&dir, &ENVOY_VARS);
    let params: Vec<String> = (0..3000).map(|i| format!("access_token=k{i:07}")).collect();
    let target = format!("/admin?{}", params.join("&"));
    let run = tollgate(&[
        "explain",
        "--config",
        "envoy/envoy.yaml",
        "--env-file",
        env.to_str().unwrap(),
        "GET",
        &target,
    ]);
    assert!(run.status == 0 || run.status == 1, "{}", run.all());
    assert!(!run.stdout.contains("k0002999"), "{}", run.stdout);
    assert_no_secret(&run.all(), &secrets, &[]);
}

/// Sign-in's sealed cookies carry a session: `explain` masks their values like any other
/// credential, in every spelling of their names a server reads.
#[test]
fn explain_masks_the_values_of_sign_ins_cookies() {
    let dir = scratch("explain-session-cookies");
    let (env, _) = env_file(&dir, &ENVOY_VARS);
    let env = env.to_str().unwrap();
    let sealed: Vec<String> = (0..3)
        .map(|_| format!("demo.{}", common::random_alnum(80)))
        .collect();
    let cookie = format!(
        "Cookie: theme=dark; tollgate-session={}; __Host-Tollgate-Refresh={}; TOLLGATE-SIGNIN={}",
        sealed[0], sealed[1], sealed[2]
    );
    for json in [false, true] {
        let mut args = vec!["explain", "--config", "envoy/envoy.yaml", "--env-file", env];
        if json {
            args.push("--json");
        }
        args.extend([
            "GET",
            "/app",
            "-H",
            cookie.as_str(),
            "-H",
            "Accept: text/html",
        ]);
        let run = tollgate(&args);
        assert_eq!(run.status, 0, "{}", run.all());
        assert!(run.stdout.contains("theme=dark"), "{}", run.stdout);
        assert_no_secret(&run.all(), &sealed, &[]);
    }
}
