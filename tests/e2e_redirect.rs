//! The browser redirect to the login page, through a real Envoy: what the hostile table
//! (tests/data/security-cases.tsv, configuration H is this file's) cannot say — a Host header
//! that is not a plain host, a login page on the same host.

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
use support::table::ConfigName;
use support::{Envoy, Request, Setup, LOGIN};

/// Configuration H of the hostile table, with `login_url`.
fn config(login_url: &str) -> Value {
    let mut config = ConfigName::H.json();
    config["login_url"] = json!(login_url);
    config
}

fn envoy() -> &'static Envoy {
    static ENVOY: OnceLock<Envoy> = OnceLock::new();
    ENVOY.get_or_init(|| Envoy::start(Setup::new(config(LOGIN))))
}

#[test]
fn a_host_that_is_not_a_plain_host_is_left_out_of_the_return_url() {
    // Envoy lets `!` through; the return URL is then a bare path.
    let r = envoy().send(&Request::get("/app").browser().host("evil.example!x"));
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some(format!("{LOGIN}?redirect=%2Fapp").as_str())
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
