//! The browser redirect to the login page, through a real Envoy.

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::sync::OnceLock;

use serde_json::{json, Value};
use support::{now, Envoy, Request, Setup, K};
use tollgate_core::verify::token::{claims_for, SigningKey};

const LOGIN: &str = "https://auth.example.com/login";

fn config(login_url: &str) -> Value {
    json!({
        "secrets": [{"key": K}],
        "clients": [{"client_id": "client-a", "client_secret": "cs_test_Zr4Qm8Vn2Lp6Xw1Ty9Hs3Kd7Bf5Gj0"}],
        "login_url": login_url,
        "rules": [
            {"path": "/login", "mode": "none"},
            {"prefix": "/feed", "mode": "optional"},
            {"prefix": "/admin", "mode": "required", "roles": ["admin"]}
        ]
    })
}

fn envoy() -> &'static Envoy {
    static ENVOY: OnceLock<Envoy> = OnceLock::new();
    ENVOY.get_or_init(|| Envoy::start(Setup::new(config(LOGIN))))
}

/// `Location` for a return URL of `http://api.example.com` + `path_and_query` (the tests talk
/// plain http, so that is the scheme Envoy reports).
fn location_for(path_and_query: &str) -> String {
    format!(
        "{LOGIN}?redirect={}",
        tollgate_core::request::query::encode_component(
            format!("http://api.example.com{path_and_query}").as_bytes()
        )
    )
}

fn assert_redirect(request: &Request, expected_location: &str) {
    let r = envoy().send(request);
    assert_eq!(r.status, 302, "{}", r.text());
    assert_eq!(r.header("location"), Some(expected_location));
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

fn assert_401(request: &Request) {
    let r = envoy().send(request);
    assert_eq!(r.status, 401, "{:?}", r.header("location"));
    assert!(r.header("location").is_none());
}

#[test]
fn a_page_load_is_sent_to_sign_in() {
    assert_redirect(
        &Request::get("/app/page?x=1")
            .browser()
            .header("Sec-Fetch-Mode", "navigate")
            .header("Sec-Fetch-Dest", "document"),
        &location_for("/app/page?x=1"),
    );
    assert_redirect(
        &Request::new("HEAD", "/app").browser(),
        &location_for("/app"),
    );
    // An older browser without fetch metadata.
    assert_redirect(
        &Request::get("/app").header("Accept", "text/html"),
        &location_for("/app"),
    );
}

#[test]
fn script_requests_other_methods_and_api_clients_get_the_401() {
    assert_401(
        &Request::get("/app")
            .browser()
            .header("X-Requested-With", "XMLHttpRequest"),
    );
    assert_401(&Request::new("POST", "/app/form").browser());
    assert_401(&Request::new("PUT", "/app/form").browser());
    assert_401(&Request::get("/app").header("Accept", "application/json"));
    assert_401(&Request::get("/app").header("Accept", "*/*"));
    assert_401(&Request::get("/app"));
}

#[test]
fn an_expired_or_invalid_credential_is_redirected_without_it() {
    let expired = SigningKey::new(None, K.as_bytes())
        .sign(claims_for("u", "access", now() - 7200, 60))
        .unwrap();
    assert_redirect(
        &Request::get(format!("/app?access_token={expired}&x=1")).browser(),
        &location_for("/app?x=1"),
    );
    assert_redirect(
        &Request::get("/app?x=1")
            .browser()
            .header("Cookie", format!("access_token={expired}")),
        &location_for("/app?x=1"),
    );
    assert_redirect(
        &Request::get("/app?client_id=client-a&client_secret=wrong&y=2").browser(),
        &location_for("/app?y=2"),
    );
    let r = envoy().send(&Request::get(format!("/app?access_token={expired}")).browser());
    assert!(!r.header("location").unwrap().contains(&expired[..20]));
}

#[test]
fn forbidden_bad_requests_and_open_paths_are_not_redirected() {
    let token = SigningKey::new(None, K.as_bytes())
        .sign(claims_for("u", "access", now(), 600))
        .unwrap();
    let r = envoy().send(&Request::get("/admin/x").browser().bearer(&token));
    assert_eq!(r.status, 403);
    let r = envoy().send(&Request::get("/public/../..").browser());
    assert_eq!(r.status, 400);
    let r = envoy().send(&Request::get("/feed/x").browser());
    assert_eq!(r.status, 200);
    let r = envoy().send(&Request::get("/login?redirect=x").browser());
    assert_eq!(r.status, 200);
}

#[test]
fn the_return_url_is_never_an_open_redirect() {
    let cases = [
        ("//evil.example/x", "/evil.example/x"),
        ("/\\evil.example", "/%5Cevil.example"),
        ("/%2F%2Fevil.example", "/%2F%2Fevil.example"),
        ("/%5Cevil.example", "/%5Cevil.example"),
        ("/app/./../%2e%2e/x", ""),
        (
            "/p?x=1&redirect=https://evil.example",
            "/p?x=1&redirect=https://evil.example",
        ),
    ];
    for (target, normal) in cases {
        let r = envoy().send(&Request::get(target).browser());
        if normal.is_empty() {
            assert_eq!(r.status, 400, "{target}");
            continue;
        }
        assert_eq!(r.status, 302, "{target}");
        let location = r.header("location").unwrap();
        assert_eq!(location, location_for(normal), "{target}");
        assert_eq!(location.matches("redirect=").count(), 1, "{target}");
    }
    // Control characters never reach a header: the path is refused.
    let r = envoy().send(&Request::get("/app/%0d%0aSet-Cookie:%20x=y").browser());
    assert_eq!(r.status, 400);
    assert!(r.header("set-cookie").is_none());
    // A host that is not a plain host[:port] (Envoy lets `!` through) is left out: the
    // return URL is a bare path.
    let r = envoy().send(&Request::get("/app").browser().host("evil.example!x"));
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some(format!("{LOGIN}?redirect=%2Fapp").as_str())
    );
}

#[test]
fn login_url_with_a_query_and_a_custom_return_param() {
    let mut c = config("https://auth.example.com/login?tenant=acme");
    c["return_param"] = json!("return_to");
    let envoy = Envoy::start(Setup::new(c));
    let r = envoy.send(&Request::get("/app").browser());
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some("https://auth.example.com/login?tenant=acme&return_to=http%3A%2F%2Fapi.example.com%2Fapp")
    );
}

#[test]
fn login_url_as_a_path_on_the_same_host() {
    let envoy = Envoy::start(Setup::new(config("/login")));
    let r = envoy.send(&Request::get("/app?x=1").browser());
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some("/login?redirect=http%3A%2F%2Fapi.example.com%2Fapp%3Fx%3D1")
    );
    // The login page itself is open, so a browser is never sent round in a loop.
    assert_eq!(
        envoy
            .send(&Request::get("/login?redirect=x").browser())
            .status,
        200
    );
    // A login path that is not `none` is refused at configuration time.
    let mut looping = config("/signin");
    looping["rules"] = json!([]);
    let refused = Envoy::try_start(Setup::new(looping))
        .err()
        .expect("served a looping login");
    assert!(refused
        .log
        .contains("login_url: the login page \"/signin\" must be a \"none\" path"));
}
