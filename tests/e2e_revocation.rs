//! Revocation through Envoy: the filter polls a feed (a test feed here, see
//! `tests/support/feed.rs`; the sign-in service's in `e2e_signin_revocation`) through a
//! cluster, once per process, and every worker refuses a revoked token within a poll, cache
//! hits included; a broken feed keeps the last list, and a list too old refuses tokens.

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::feed::{Feed, FeedFault};
use support::{claims_for, now, Envoy, Request, Setup, SigningKey, K, SK};

fn minted(sub: &str, jti: &str) -> String {
    let mut claims = claims_for(sub, "access", now(), 3600);
    claims.jwt_id = Some(jti.to_owned());
    SigningKey::new(None, K.as_bytes()).sign(claims).unwrap()
}

fn setup_with_feed(feed: &Feed, revocation: Value, workers: u32) -> Setup {
    let mut revocation_config =
        json!({"cluster": "feed", "path": "/revocations", "poll_seconds": 1});
    for (k, v) in revocation.as_object().unwrap() {
        revocation_config[k] = v.clone();
    }
    let config = json!({
        "secrets": [{"key": K}],
        "api_keys": [{"name": "ops", "key": SK}],
        "max_lifetime_seconds": 7200,
        "revocation": revocation_config,
    });
    let mut setup = Setup::new(config).cluster("feed", feed.port);
    setup.concurrency = workers;
    setup
}

fn envoy_with_feed(feed: &Feed, revocation: Value, workers: u32) -> Envoy {
    Envoy::start(setup_with_feed(feed, revocation, workers))
}

/// The statuses of `n` requests with `token` (spread over the workers by new connections).
fn statuses(envoy: &Envoy, token: &str, n: usize) -> Vec<u16> {
    (0..n)
        .map(|_| envoy.send(&Request::get("/api").bearer(token)).status)
        .collect()
}

fn wait_until(seconds: u64, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}

fn stat(envoy: &Envoy, name: &str) -> u64 {
    envoy
        .stats(&format!("wasmcustom.{name}"))
        .get(&format!("wasmcustom.{name}"))
        .copied()
        .unwrap_or(0)
}

/// Whether the counter or gauge `name` meets `want` within `seconds` (Envoy's stats lag the
/// filter by up to a flush).
fn stat_reaches(envoy: &Envoy, name: &str, seconds: u64, want: impl Fn(u64) -> bool) -> bool {
    wait_until(seconds, || want(stat(envoy, name)))
}

#[test]
fn a_revoked_token_is_refused_by_every_worker_within_a_poll_and_polls_are_per_process() {
    let feed = Feed::start();
    let envoy = envoy_with_feed(&feed, json!({}), 4);
    let token = minted("alice", "tok-1");
    let other = minted("alice", "tok-2");
    // Every worker has the token in its cache.
    assert!(statuses(&envoy, &token, 16).iter().all(|s| *s == 200));
    feed.revoke(json!({"jti": "tok-1", "expires_at": now() + 3600}));
    // Within poll_seconds (1 here) and the poll's fetch; the bound is loose for a loaded
    // machine.
    assert!(
        wait_until(6, || envoy
            .send(&Request::get("/api").bearer(&token))
            .status
            == 401),
        "not refused within poll_seconds + 5 s"
    );
    // Every worker refuses it once its tick installed the list (polled), with the code.
    assert!(
        wait_until(5, || statuses(&envoy, &token, 16).iter().all(|s| *s == 401)),
        "not every worker refuses the revoked token"
    );
    for _ in 0..16 {
        let response = envoy.send(&Request::get("/api").bearer(&token));
        assert_eq!(response.status, 401);
        assert_eq!(response.code().as_deref(), Some("TOKEN_REVOKED"));
    }
    assert!(statuses(&envoy, &other, 8).iter().all(|s| *s == 200));
    // One poll per second for the process, not one per worker: over 4 s, about 4.
    let before = feed.polls();
    std::thread::sleep(Duration::from_secs(4));
    let polls = feed.polls() - before;
    assert!(
        (3..=6).contains(&polls),
        "{polls} polls in 4 s with 4 workers"
    );
    // Polls after the first carry the cursor.
    assert!(
        feed.cursors().iter().skip(1).all(Option::is_some),
        "{:?}",
        feed.cursors()
    );
    assert!(stat_reaches(
        &envoy,
        "tollgate.revocation.polls_ok",
        3,
        |n| n >= 3
    ));
    assert!(stat_reaches(
        &envoy,
        "tollgate.revocation.entries",
        3,
        |n| n == 1
    ));
    assert!(stat_reaches(
        &envoy,
        "tollgate.denied.token_revoked",
        3,
        |n| n >= 16
    ));
}

#[test]
fn a_subject_revocation_covers_its_earlier_tokens_only() {
    let feed = Feed::start();
    let envoy = envoy_with_feed(&feed, json!({}), 2);
    let mut old = claims_for("bob", "access", now() - 30, 3600);
    old.jwt_id = Some("old".into());
    let old = SigningKey::new(None, K.as_bytes()).sign(old).unwrap();
    assert_eq!(envoy.send(&Request::get("/api").bearer(&old)).status, 200);
    feed.revoke(json!({"subject": "bob", "before": now() - 10, "expires_at": now() + 3600}));
    assert!(wait_until(3, || envoy
        .send(&Request::get("/api").bearer(&old))
        .status
        == 401));
    let fresh = minted("bob", "new");
    assert_eq!(envoy.send(&Request::get("/api").bearer(&fresh)).status, 200);
    assert_eq!(
        envoy.send(&Request::get("/api").bearer(SK)).status,
        200,
        "keys are not revocable"
    );
}

#[test]
fn a_broken_feed_keeps_the_last_list_and_is_counted() {
    let feed = Feed::start();
    let envoy = envoy_with_feed(&feed, json!({}), 2);
    let token = minted("carol", "c-1");
    feed.revoke(json!({"jti": "c-1", "expires_at": now() + 3600}));
    assert!(wait_until(3, || envoy
        .send(&Request::get("/api").bearer(&token))
        .status
        == 401));
    for fault in [
        FeedFault::Garbage,
        FeedFault::Huge,
        FeedFault::Status500,
        FeedFault::Close,
    ] {
        let failed = stat(&envoy, "tollgate.revocation.polls_failed");
        feed.fault(fault);
        assert!(
            wait_until(5, || stat(&envoy, "tollgate.revocation.polls_failed")
                > failed),
            "{fault:?} not counted"
        );
        assert_eq!(
            envoy.send(&Request::get("/api").bearer(&token)).status,
            401,
            "{fault:?}"
        );
        feed.fault(FeedFault::Ok);
    }
    assert!(!envoy.log().contains(&token));
}

#[test]
fn a_list_older_than_fail_closed_after_refuses_tokens_until_the_feed_answers() {
    let feed = Feed::start();
    let envoy = envoy_with_feed(&feed, json!({"fail_closed_after_seconds": 3}), 2);
    let token = minted("dave", "d-1");
    // Before the first good poll the list has no age: tokens wait for it (503), then pass.
    assert!(wait_until(3, || stat(
        &envoy,
        "tollgate.revocation.polls_ok"
    ) >= 1));
    assert!(wait_until(2, || envoy
        .send(&Request::get("/api").bearer(&token))
        .status
        == 200));
    feed.fault(FeedFault::Status500);
    assert!(wait_until(8, || envoy
        .send(&Request::get("/api").bearer(&token))
        .status
        == 503));
    let response = envoy.send(&Request::get("/api").bearer(&token));
    assert_eq!(response.code().as_deref(), Some("REVOCATION_UNAVAILABLE"));
    assert!(response.header("retry-after").is_some());
    assert_eq!(
        envoy.send(&Request::get("/api").bearer(SK)).status,
        200,
        "keys still pass"
    );
    assert!(stat_reaches(
        &envoy,
        "tollgate.revocation.age_seconds",
        3,
        |n| n >= 3
    ));
    feed.fault(FeedFault::Ok);
    assert!(wait_until(4, || envoy
        .send(&Request::get("/api").bearer(&token))
        .status
        == 200));
}

/// The status of a request with `token`, or `None` when the connection was reset (a listener
/// being replaced by a reload).
fn status_of(envoy: &Envoy, token: &str) -> Option<u16> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        envoy.send(&Request::get("/api").bearer(token)).status
    }))
    .ok()
}

/// Applies a new listener version (the same configuration) and waits until Envoy took it.
fn reload(envoy: &Envoy, plugin_config: &str, version: &str) {
    let taken = || stat_total(envoy, "listener_manager.lds.update_success");
    let before = taken();
    envoy.update_plugin_config(plugin_config, version);
    assert!(
        wait_until(10, || taken() > before),
        "the reload was not taken"
    );
    std::thread::sleep(Duration::from_millis(300));
}

fn stat_total(envoy: &Envoy, prefix: &str) -> u64 {
    envoy.stats(prefix).values().sum()
}

#[test]
fn a_reload_keeps_the_list_and_its_age() {
    let feed = Feed::start();
    let setup = setup_with_feed(&feed, json!({"fail_closed_after_seconds": 3}), 2).dynamic();
    let plugin_config = setup.plugin_config.clone();
    let envoy = Envoy::start(setup);
    let revoked = minted("erin", "e-1");
    let good = minted("erin", "e-2");
    feed.revoke(json!({"jti": "e-1", "expires_at": now() + 3600}));
    assert!(wait_until(3, || status_of(&envoy, &revoked) == Some(401)));
    // A reload: the new configuration's workers hold the list at once.
    reload(&envoy, &plugin_config, "2");
    for _ in 0..20 {
        assert_ne!(status_of(&envoy, &revoked), Some(200));
    }
    // The feed down until the list is too old: 503; a reload does not make it fresh.
    feed.fault(FeedFault::Status500);
    assert!(wait_until(8, || status_of(&envoy, &good) == Some(503)));
    reload(&envoy, &plugin_config, "3");
    for _ in 0..10 {
        assert_ne!(status_of(&envoy, &good), Some(200));
    }
    feed.fault(FeedFault::Ok);
    assert!(wait_until(4, || status_of(&envoy, &good) == Some(200)));
}

#[test]
fn a_list_larger_than_the_filter_holds_refuses_tokens() {
    let feed = Feed::start();
    let envoy = envoy_with_feed(&feed, json!({}), 2);
    let token = minted("frank", "f-1");
    assert_eq!(envoy.send(&Request::get("/api").bearer(&token)).status, 200);
    let expires = now() + 3600;
    for i in 0..150_000 {
        feed.revoke(json!({"jti": format!("flood-{i}"), "expires_at": expires}));
    }
    // (The test feed builds these large pages slowly: generous waits.)
    assert!(wait_until(30, || stat(
        &envoy,
        "tollgate.revocation.entries"
    ) == 150_000));
    assert_eq!(envoy.send(&Request::get("/api").bearer(&token)).status, 200);
    // 60,000 more: more than the 200,000 the filter holds. An incomplete list would let newer
    // revocations pass: tokens are refused until the feed shrinks.
    for i in 150_000..210_000 {
        feed.revoke(json!({"jti": format!("flood-{i}"), "expires_at": expires}));
    }
    assert!(wait_until(30, || envoy
        .send(&Request::get("/api").bearer(&token))
        .status
        == 503));
    std::thread::sleep(Duration::from_millis(300));
    let response = envoy.send(&Request::get("/api").bearer(&token));
    assert_eq!(response.code().as_deref(), Some("REVOCATION_UNAVAILABLE"));
    assert!(envoy
        .log()
        .contains("tokens are refused (503) until it holds fewer"));
}

#[path = "e2e_revocation/pages.rs"]
mod pages;
