//! The example configuration `make run` serves (envoy/envoy.yaml) with its browser sign-in:
//! headless Chromium opens `/app`, signs in on the demo OpenID provider's login form, is back
//! on `/app` with the identity at the upstream, and logs out at the provider; the session
//! cookies the filter sets for that provider's tokens stay under the browser's 4096 bytes.

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::feed::Feed;
use support::idp::Idp;

const OIDC_CLIENT_SECRET: &str = "oc_demo_OHOHYDw06I6_tig5_ZdWIamVKCAQN_Yf";
const COOKIE_KEYS: &str = "demo:2TJMTOiISIgo_uNNLgjDgO8k3QTWel19GGaN730MThk";

/// The variables `scripts/run.sh` gives Envoy.
const ENV: &[(&str, &str)] = &[
    (
        "TOLLGATE_SECRET",
        "example-browser-session-Hq4Wz8Kt2Rm7Xc3Nb9",
    ),
    (
        "TOLLGATE_API_KEY",
        "sk_demo_example_browser_api_key_Zp5Lw9Tq3Vm8Kc2X",
    ),
    (
        "TOLLGATE_PUBLISHABLE_KEY",
        "pk_demo_example_browser_publishable_Rn6Yb2Qv8Hs4",
    ),
    (
        "TOLLGATE_CLIENT_SECRET",
        "cs_demo_example_browser_client_secret_Gk7Tx3Wp9Mz5",
    ),
    ("TOLLGATE_OIDC_CLIENT_SECRET", OIDC_CLIENT_SECRET),
    ("TOLLGATE_COOKIE_KEYS", COOKIE_KEYS),
];

/// What browsers keep of one cookie at most (RFC 6265 section 6.1; Chromium's limit).
const BROWSER_COOKIE_LIMIT: u64 = 4096;

fn chromium() -> String {
    let path = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&path).exists(),
        "Chromium is not installed at {path}: the example's sign-in cannot be tried"
    );
    path
}

/// envoy/envoy.yaml with the addresses a browser is sent to (the listener's, the provider's)
/// moved to this test's ports, as `make run` would serve it on them.
fn example_at(port: u16, idp_port: u16) -> std::path::PathBuf {
    let mut yaml =
        std::fs::read_to_string(support::manifest_dir().join("envoy/envoy.yaml")).unwrap();
    for (demo, here) in [
        (
            "\"http://127.0.0.1:9400/auth\"".to_owned(),
            format!("\"http://127.0.0.1:{idp_port}/auth\""),
        ),
        (
            "\"http://127.0.0.1:9400/session/end\"".to_owned(),
            format!("\"http://127.0.0.1:{idp_port}/session/end\""),
        ),
        (
            "\"http://127.0.0.1:10000/".to_owned(),
            format!("\"http://127.0.0.1:{port}/"),
        ),
    ] {
        assert!(
            yaml.contains(&demo),
            "envoy/envoy.yaml no longer has {demo}"
        );
        yaml = yaml.replace(&demo, &here);
    }
    let path = support::scratch_dir("example-browser").join("envoy.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// The single value of `name` an upstream page (echo-upstream's table) shows.
fn upstream_header(seen: &Value, name: &str) -> Option<String> {
    let values: Vec<String> = seen["headers"]
        .as_array()?
        .iter()
        .filter(|pair| pair[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .map(|pair| pair[1].as_str().unwrap().to_owned())
        .collect();
    assert!(values.len() <= 1, "{name}: {values:?}");
    values.into_iter().next()
}

#[test]
fn a_browser_signs_in_to_the_example_at_its_provider_and_logs_out() {
    let browser = chromium();
    let script = support::manifest_dir().join("tests/browser/oidc-roundtrip.mjs");
    let port = support::free_port();
    let origin = format!("http://127.0.0.1:{port}");
    // The provider as `make run` starts it: the issuer demo-idp, the demo's client secret.
    let idp = Idp::start_demo(
        Idp::free_port(),
        "http://127.0.0.1:9400",
        &format!("{origin}/oauth/callback"),
        &format!("{origin}/public/signed-out"),
        ("TOLLGATE_OIDC_CLIENT_SECRET", OIDC_CLIENT_SECRET),
    );
    // The sign-in cluster: a revocation feed (the example refuses tokens until its first page).
    let feed = Feed::start();
    let config = example_at(port, idp.port());
    let envoy = support::example_envoy_listening(&config, port, feed.port, idp.port(), ENV)
        .unwrap_or_else(|r| panic!("example refused ({:?}):\n{}", r.exit_code, r.log));

    let page = format!("{origin}/app/dashboard?tab=orders");
    let out = Command::new("node")
        .arg(&script)
        .args([&page, "ada", "--logout", "/oauth/logout"])
        .args(["--signed-out", "/public/signed-out", "--no-expiry"])
        .env("CHROMIUM", &browser)
        .output()
        .expect("node runs the browser");
    assert!(
        out.status.success(),
        "the browser run failed:\n{}\n{}\nEnvoy:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        envoy.log()
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("{report}");

    // Sent to the provider's own login form, and back on the page signed in.
    let login_url = report["login_url"].as_str().unwrap();
    assert!(
        login_url.starts_with(&format!("http://127.0.0.1:{}/interaction/", idp.port())),
        "{report}"
    );
    assert_eq!(report["back_at"], page.as_str(), "{report}");
    let seen = &report["upstream"];
    for (name, value) in [
        ("x-auth-user", Some("ada")),
        ("x-auth-type", Some("access_token")),
        ("x-auth-name", Some("demo-idp")),
        ("x-auth-role", Some("user")),
        ("authorization", None),
    ] {
        assert_eq!(
            upstream_header(seen, name).as_deref(),
            value,
            "{name}: {report}"
        );
    }
    let cookie = upstream_header(seen, "cookie").unwrap_or_default();
    assert!(
        !cookie.contains("tollgate-"),
        "the session reached the upstream: {cookie}"
    );
    assert_eq!(
        upstream_header(&report["second_tab"], "x-auth-user").as_deref(),
        Some("ada")
    );

    // The callback's answer set the session: each cookie as sent fits a browser's limit.
    assert_eq!(report["session_set_at"], "/oauth/callback", "{report}");
    let set = report["session_set_cookies"].as_array().unwrap();
    let mut names: Vec<&str> = set.iter().map(|c| c["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["tollgate-refresh", "tollgate-session", "tollgate-signin"],
        "{report}"
    );
    let mut total = 0;
    for cookie in set {
        let bytes = cookie["bytes"].as_u64().unwrap();
        total += bytes;
        eprintln!(
            "{}: Set-Cookie value {bytes} bytes, name=value {} bytes",
            cookie["name"], cookie["name_value_bytes"]
        );
        assert!(bytes < BROWSER_COOKIE_LIMIT, "{report}");
    }
    eprintln!("the callback's Set-Cookie values: {total} bytes together");

    // The ID token fitted beside the refresh token: the logout gives it to the provider.
    assert!(
        report["logout_url"]
            .as_str()
            .unwrap()
            .contains("id_token_hint="),
        "{report}"
    );
    // Logout ends the session at the provider and comes back to the signed-out page.
    assert_eq!(
        report["after_logout_url"],
        format!("{origin}/public/signed-out").as_str(),
        "{report}"
    );
    assert!(
        report["cookies_after_logout"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| !c["name"].as_str().unwrap().starts_with("tollgate-")),
        "{report}"
    );
    assert!(
        report["revisit_url"]
            .as_str()
            .unwrap()
            .contains("/interaction/"),
        "{report}"
    );
    let log = envoy.log();
    for secret in [OIDC_CLIENT_SECRET, COOKIE_KEYS] {
        assert!(!log.contains(secret));
    }
}
