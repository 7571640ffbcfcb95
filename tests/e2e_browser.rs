//! The browser round trip: headless Chromium opens a protected page through Envoy, lands on
//! the demo sign-in page, signs in, and is back on the page, which shows the identity the
//! upstream received.

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

use serde_json::{json, Value};
use support::{Envoy, Request, Setup, SignIn};

const SECRET: &str = "browser-test-secret-WKbsDE5kGZoDiPCFdcERFmdD5nHQ";

fn chromium() -> String {
    let path = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&path).exists(),
        "\n\n*** Chromium is not installed at {path}: the browser round-trip test cannot run. ***\n\
         `make test` installs Debian's chromium package (apt-get install chromium); if that \
         failed, see its output above. This test fails rather than pass untested.\n"
    );
    path
}

fn playwright_script() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "\n\n*** playwright-core is not installed in {}: run `make test` (npm ci there). ***\n",
        dir.display()
    );
    dir.join("login-roundtrip.mjs").display().to_string()
}

/// Envoy with the filter, `/login` and `/auth/` routed to the sign-in service.
fn site() -> (Envoy, SignIn) {
    let port = support::free_port();
    let signin = SignIn::start(SECRET, &format!("127.0.0.1:{port}"));
    let config = json!({
        "secrets": [{"kid": "demo", "key_env": "TOLLGATE_SECRET"}],
        "login_url": "/login",
        "max_lifetime_seconds": 7200,
        "revocation": {"cluster": "signin", "path": "/auth/revocations", "poll_seconds": 1},
        "rules": [
            {"path": "/login", "mode": "none"},
            {"path": "/logout", "mode": "none"},
            {"prefix": "/auth", "mode": "none"}
        ]
    });
    let envoy = Envoy::start(
        Setup::new(config)
            .vm_env("TOLLGATE_SECRET", SECRET)
            .cluster("signin", signin.port)
            .route(json!({"path": "/login"}), signin.port)
            .route(json!({"path": "/logout"}), signin.port)
            .route(json!({"prefix": "/auth/"}), signin.port)
            .listen_on(port),
    );
    (envoy, signin)
}

#[test]
fn browser_signs_in_and_comes_back() {
    let browser = chromium();
    let script = playwright_script();
    let (envoy, _signin) = site();
    let page = format!("http://127.0.0.1:{}/app/dashboard?tab=orders", envoy.port);
    let out = Command::new("node")
        .args([&script, &page, "demo", "demo-password", "logout"])
        .env("CHROMIUM", &browser)
        .output()
        .expect("node is needed for the browser test");
    assert!(
        out.status.success(),
        "the browser run failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("{report}");
    let steps = report["steps"].as_array().unwrap();

    let opened = &steps[0];
    let login = format!(
        "http://127.0.0.1:{}/login?redirect={}",
        envoy.port,
        support::query::encode_component(page.as_bytes())
    );
    assert_eq!(opened["url"], login.as_str(), "{report}");
    assert_eq!(opened["title"], "Sign in");

    let wrong = &steps[1];
    assert!(
        wrong["url"].as_str().unwrap().contains("/login"),
        "{report}"
    );
    assert_eq!(wrong["error"], "Invalid username or password.");

    let back = &steps[2];
    assert_eq!(back["url"], page.as_str(), "{report}");
    assert_eq!(report["user"], "lUpa");
    assert_eq!(report["type"], "access_token");
    assert_eq!(report["user_after_reload"], "lUpa");

    let cookie = report["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "access_token")
        .unwrap_or_else(|| panic!("no access_token cookie: {report}"));
    assert_eq!(cookie["httpOnly"], true);
    assert_eq!(cookie["sameSite"], "Lax");
    assert_eq!(cookie["path"], "/");
    assert_eq!(cookie["secure"], false, "served over plain http");

    // Signed out: the cookies are cleared, and the old access-token cookie, put back, is
    // refused (revoked) and the page sends the browser to sign in again.
    let signed_out = &steps[4];
    assert!(
        signed_out["url"].as_str().unwrap().contains("/login"),
        "{report}"
    );
    let left = report["cookies_after_logout"].as_array().unwrap();
    assert!(!left.iter().any(|c| c == "access_token"), "{report}");
    let old_cookie = &steps[5];
    assert!(
        old_cookie["url"].as_str().unwrap().starts_with(&login),
        "the revoked cookie was not sent to sign in: {report}"
    );
    assert_eq!(old_cookie["title"], "Sign in");
}

#[test]
fn signin_api_and_refresh_through_envoy() {
    let (envoy, _signin) = site();
    let login = envoy.send(
        &Request::new("POST", "/login")
            .header("Content-Type", "application/json")
            .body_text(r#"{"username":"demo","password":"demo-password"}"#),
    );
    assert_eq!(login.status, 200, "{}", login.text());
    let body = login.json().unwrap();
    assert_eq!(body["code"], 0);
    assert_eq!(body["msg"], "");
    assert_eq!(body["data"]["user"]["id"], "lUpa");
    let access = body["data"]["token"]["access_token"].as_str().unwrap();
    let refresh = body["data"]["token"]["refresh_token"].as_str().unwrap();
    assert!(body["data"]["token"]["access_expires"].as_u64().unwrap() > support::now());

    let r = envoy.send(&Request::get("/api/me").bearer(access));
    assert_eq!(r.upstream_header("x-auth-user").as_deref(), Some("lUpa"));
    // The refresh token is not an access token.
    let r = envoy.send(&Request::get("/api/me").bearer(refresh));
    assert_eq!(r.code().as_deref(), Some("INVALID_CREDENTIALS"));

    let payload = format!(r#"{{"refresh_token":"{refresh}"}}"#);
    let renewed = envoy.send(
        &Request::new("POST", "/auth/refresh")
            .header("Content-Type", "application/json")
            .body_text(&payload),
    );
    assert_eq!(renewed.status, 200, "{}", renewed.text());
    let new_access = renewed.json().unwrap()["data"]["token"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = envoy.send(&Request::get("/api/me").bearer(&new_access));
    assert_eq!(r.upstream_header("x-auth-user").as_deref(), Some("lUpa"));
}
