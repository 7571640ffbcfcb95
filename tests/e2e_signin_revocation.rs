//! Revocation end to end: two Envoy processes ("hosts", 2 workers each) in front of one demo
//! sign-in service, which stores revocations in its database and serves the feed. A token
//! revoked at the service (RFC 7009, or every token of a subject by an admin) is refused by
//! every worker of both within a poll (`poll_seconds`, then the poll's fetch), cache hits
//! included; the service restarted keeps it revoked; the feed down keeps the last list;
//! down too long, 503.

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{send_raw, Envoy, Request, Response, Setup, SignIn, SIGNIN_ADMIN_KEY};

const SECRET: &str = "revocation-e2e-secret-Tq7Wm2Xc9Vb4Nz8Lp3Hk";
const HOST: &str = "127.0.0.1:10000";
const POLL: u64 = 1;

fn host(signin: &SignIn, extra: serde_json::Value) -> Envoy {
    let mut revocation =
        json!({"cluster": "signin", "path": "/auth/revocations", "poll_seconds": POLL});
    for (k, v) in extra.as_object().unwrap() {
        revocation[k] = v.clone();
    }
    let config = json!({
        "secrets": [{"kid": "demo", "key": SECRET}],
        "max_lifetime_seconds": 7200,
        "revocation": revocation,
        "rules": [{"prefix": "/public", "mode": "none"}],
    });
    let mut setup = Setup::new(config).cluster("signin", signin.port);
    setup.concurrency = 2;
    Envoy::start(setup)
}

fn to_signin(signin_port: u16, request: Request) -> Response {
    send_raw(signin_port, &request.host(HOST).to_bytes())
}

fn json_post(path: &str, body: serde_json::Value) -> Request {
    Request::new("POST", path)
        .header("Content-Type", "application/json")
        .body_text(&body.to_string())
}

/// Signs in as the demo user: the access and refresh tokens.
fn sign_in(signin_port: u16) -> (String, String) {
    let r = to_signin(
        signin_port,
        json_post(
            "/login",
            json!({"username": "demo", "password": "demo-password"}),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json().unwrap();
    let token = &body["data"]["token"];
    (
        token["access_token"].as_str().unwrap().to_owned(),
        token["refresh_token"].as_str().unwrap().to_owned(),
    )
}

fn status(envoy: &Envoy, token: &str) -> (u16, Option<String>) {
    let r = envoy.send(&Request::get("/api/orders").bearer(token));
    (r.status, r.code())
}

/// Polls until every one of `n` requests to each Envoy answers `want`; the time it took.
fn all_answer(envoys: &[&Envoy], token: &str, want: u16, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let all = envoys
            .iter()
            .all(|e| (0..8).all(|_| status(e, token).0 == want));
        if all {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "not every worker answers {want} within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stat(envoy: &Envoy, name: &str) -> u64 {
    let full = format!("wasmcustom.{name}");
    envoy.stats(&full).get(&full).copied().unwrap_or(0)
}

/// Whether the counter `name` meets `want` within `within` (Envoy's stats lag the filter by
/// up to a flush, longer on a busy machine).
fn stat_reaches(envoy: &Envoy, name: &str, within: Duration, want: impl Fn(u64) -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if want(stat(envoy, name)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_token_revoked_at_the_service_is_refused_by_both_hosts_within_a_poll() {
    let signin = SignIn::start(SECRET, HOST);
    let (a, b) = (host(&signin, json!({})), host(&signin, json!({})));
    let (access, refresh) = sign_in(signin.port);
    // Works on both, and sits in the caches of every worker.
    for envoy in [&a, &b] {
        for _ in 0..8 {
            assert_eq!(status(envoy, &access).0, 200);
        }
    }
    // RFC 7009: the token revokes itself.
    let r = to_signin(
        signin.port,
        json_post("/auth/revoke", json!({"token": access})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // Within a poll: the next poll (poll_seconds at most), its fetch, and a worker's tick;
    // the 2 s more leave room for a busy machine.
    all_answer(&[&a, &b], &access, 401, Duration::from_secs(POLL + 2));
    assert_eq!(status(&a, &access).1.as_deref(), Some("TOKEN_REVOKED"));
    assert_eq!(status(&b, &access).1.as_deref(), Some("TOKEN_REVOKED"));
    // The refresh token still works (RFC 7009 lets an access token go alone): a new access
    // token passes on both.
    let r = to_signin(
        signin.port,
        json_post("/auth/refresh", json!({"refresh_token": refresh})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let fresh = r.json().unwrap()["data"]["token"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(status(&a, &fresh).0, 200);
    assert_eq!(status(&b, &fresh).0, 200);
    let within = Duration::from_secs(5);
    assert!(stat_reaches(
        &a,
        "tollgate.revocation.polls_ok",
        within,
        |n| n >= 1
    ));
    assert!(stat_reaches(
        &a,
        "tollgate.denied.token_revoked",
        within,
        |n| n >= 1
    ));
}

#[test]
fn revoking_a_subject_refuses_its_earlier_tokens_and_not_later_ones_and_survives_a_restart() {
    let dir = support::scratch_dir("shared-signin");
    let database = dir.join("signin.db");
    let signin = SignIn::start_on(SECRET, HOST, 0, &database);
    let port = signin.port;
    let (a, b) = (host(&signin, json!({})), host(&signin, json!({})));
    let (first, _) = sign_in(port);
    let (second, refresh) = sign_in(port);
    assert_eq!(status(&a, &first).0, 200);
    assert_eq!(status(&b, &second).0, 200);
    // Without the admin credential: refused.
    let r = to_signin(
        port,
        json_post("/auth/revoke-subject", json!({"subject": "lUpa"})),
    );
    assert_eq!(r.status, 401);
    let r = to_signin(
        port,
        json_post("/auth/revoke-subject", json!({"subject": "lUpa"}))
            .header("Authorization", format!("Bearer {SIGNIN_ADMIN_KEY}")),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    all_answer(&[&a, &b], &first, 401, Duration::from_secs(POLL + 2));
    all_answer(&[&a, &b], &second, 401, Duration::from_secs(POLL + 2));
    // Its refresh tokens stop working too.
    let r = to_signin(
        port,
        json_post("/auth/refresh", json!({"refresh_token": refresh})),
    );
    assert_eq!(r.status, 401, "{}", r.text());
    // A token issued after the revocation works (the revocation covers tokens issued up to
    // the second after it).
    std::thread::sleep(Duration::from_millis(2100));
    let (later, _) = sign_in(port);
    assert_eq!(status(&a, &later).0, 200);
    assert_eq!(status(&b, &later).0, 200);
    // The service restarts on the same database and port: still revoked, also for an Envoy
    // that polls it from scratch.
    drop(signin);
    let signin = SignIn::start_on(SECRET, HOST, port, &database);
    let c = host(&signin, json!({}));
    all_answer(&[&a, &b, &c], &first, 401, Duration::from_secs(POLL + 3));
    assert_eq!(status(&c, &later).0, 200);
    // Two instances on one database serve the same feed.
    let twin = SignIn::start_on(SECRET, HOST, 0, &database);
    let feed = |port: u16| {
        to_signin(port, Request::get("/auth/revocations"))
            .json()
            .unwrap()
    };
    assert_eq!(feed(signin.port)["revoked"], feed(twin.port)["revoked"]);
}

#[test]
fn logout_revokes_the_session_tokens() {
    let signin = SignIn::start(SECRET, HOST);
    let a = host(&signin, json!({}));
    let (access, refresh) = sign_in(signin.port);
    assert_eq!(status(&a, &access).0, 200);
    let r = to_signin(
        signin.port,
        json_post("/logout", json!({"refresh_token": refresh}))
            .header("Authorization", format!("Bearer {access}")),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    all_answer(&[&a], &access, 401, Duration::from_secs(POLL + 2));
    let r = to_signin(
        signin.port,
        json_post("/auth/refresh", json!({"refresh_token": refresh})),
    );
    assert_eq!(r.status, 401);
}

#[test]
fn the_feed_down_keeps_the_last_list_and_too_long_refuses_tokens() {
    let dir = support::scratch_dir("feed-down");
    let database = dir.join("signin.db");
    let signin = SignIn::start_on(SECRET, HOST, 0, &database);
    let port = signin.port;
    let kept = host(&signin, json!({}));
    let strict = host(&signin, json!({"fail_closed_after_seconds": 3}));
    let (revoked, _) = sign_in(port);
    let (good, _) = sign_in(port);
    to_signin(port, json_post("/auth/revoke", json!({"token": revoked})));
    all_answer(
        &[&kept, &strict],
        &revoked,
        401,
        Duration::from_secs(POLL + 2),
    );
    drop(signin);
    // Down: the last list serves, failed polls are counted.
    let failed = stat(&kept, "tollgate.revocation.polls_failed");
    assert!(
        stat_reaches(
            &kept,
            "tollgate.revocation.polls_failed",
            Duration::from_secs(8),
            |n| n > failed
        ),
        "failed polls not counted"
    );
    assert_eq!(status(&kept, &revoked).0, 401);
    assert_eq!(status(&kept, &good).0, 200);
    // Down for longer than fail_closed_after_seconds: tokens get 503 there.
    all_answer(&[&strict], &good, 503, Duration::from_secs(6));
    assert_eq!(
        status(&strict, &good).1.as_deref(),
        Some("REVOCATION_UNAVAILABLE")
    );
    assert_eq!(status(&kept, &good).0, 200);
    // Back: served again.
    let _signin = SignIn::start_on(SECRET, HOST, port, &database);
    all_answer(&[&strict], &good, 200, Duration::from_secs(POLL + 3));
    assert_eq!(status(&strict, &revoked).0, 401);
}

#[test]
fn a_session_ended_by_a_newer_sign_in_has_its_token_refused() {
    let signin = SignIn::start(SECRET, HOST);
    let a = host(&signin, json!({}));
    let (oldest, oldest_refresh) = sign_in(signin.port);
    assert_eq!(status(&a, &oldest).0, 200);
    // 20 sessions per account: the 21st sign-in ends the oldest.
    for _ in 0..20 {
        sign_in(signin.port);
    }
    all_answer(&[&a], &oldest, 401, Duration::from_secs(POLL + 2));
    assert_eq!(status(&a, &oldest).1.as_deref(), Some("TOKEN_REVOKED"));
    let r = to_signin(
        signin.port,
        json_post("/auth/refresh", json!({"refresh_token": oldest_refresh})),
    );
    assert_eq!(r.status, 401);
}

#[test]
fn a_lost_database_refuses_revocations_and_a_fresh_one_does_not_undo_earlier_ones() {
    let dir = support::scratch_dir("lost-db");
    let database = dir.join("signin.db");
    let signin = SignIn::start_on(SECRET, HOST, 0, &database);
    let port = signin.port;
    let a = host(&signin, json!({}));
    let (revoked, _) = sign_in(port);
    let (next, _) = sign_in(port);
    let r = to_signin(port, json_post("/auth/revoke", json!({"token": revoked})));
    assert_eq!(r.status, 200);
    all_answer(&[&a], &revoked, 401, Duration::from_secs(POLL + 2));
    // The file removed while the service runs: a revocation is refused, not acknowledged.
    std::fs::remove_file(&database).unwrap();
    let r = to_signin(port, json_post("/auth/revoke", json!({"token": next})));
    assert_eq!(r.status, 503, "{}", r.text());
    // Restarted on a fresh, empty database: the Envoy keeps what it had.
    drop(signin);
    let signin = SignIn::start_on(SECRET, HOST, port, &database);
    assert!(
        signin.log().contains("new, empty database"),
        "{}",
        signin.log()
    );
    let (later, _) = sign_in(port);
    let r = to_signin(port, json_post("/auth/revoke", json!({"token": later})));
    assert_eq!(r.status, 200);
    // Once the Envoy has the new database's revocation, the old one still holds.
    all_answer(&[&a], &later, 401, Duration::from_secs(POLL + 3));
    assert_eq!(status(&a, &revoked), (401, Some("TOKEN_REVOKED".into())));
}
