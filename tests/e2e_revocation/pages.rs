//! A feed of several pages, empty pages, cursors, and how long a subject revocation lasts.

use super::*;

#[test]
fn a_paged_feed_is_read_to_its_last_page_at_once() {
    let feed = Feed::start();
    feed.page_limit(1000);
    let expires = now() + 3600;
    for i in 0..3500 {
        feed.revoke(json!({"jti": format!("old-{i}"), "expires_at": expires}));
    }
    feed.revoke(json!({"jti": "g-1", "expires_at": expires}));
    let token = minted("gina", "g-1");
    // Polled every 30 s: without reading the pages at once, the last one would come after
    // two minutes.
    let started = Instant::now();
    let envoy = envoy_with_feed(&feed, json!({"poll_seconds": 30}), 2);
    assert!(
        wait_until(5, || envoy
            .send(&Request::get("/api").bearer(&token))
            .status
            == 401),
        "the last page was not read"
    );
    // (Well under one poll period: the pages were not read one per 30 s.)
    assert!(started.elapsed() < Duration::from_secs(25));
    // Each page was one poll at once, not one per 30 s.
    assert!(feed.polls() >= 4, "{} polls", feed.polls());
    assert!(wait_until(2, || stat(
        &envoy,
        "tollgate.revocation.entries"
    ) == 3501));
}

#[test]
fn a_reset_over_several_pages_replaces_the_list_only_at_its_last_page() {
    let feed = Feed::start();
    feed.page_limit(3);
    let expires = now() + 3600;
    for i in 0..3 {
        feed.revoke(json!({"jti": format!("fill-{i}"), "expires_at": expires}));
    }
    feed.revoke(json!({"jti": "dropped", "expires_at": expires}));
    feed.revoke(json!({"jti": "kept", "expires_at": expires}));
    let kept = minted("hana", "kept");
    let dropped = minted("hana", "dropped");
    let envoy = envoy_with_feed(&feed, json!({}), 2);
    assert!(wait_until(5, || statuses(&envoy, &kept, 4) == [401; 4]));
    assert_eq!(
        envoy.send(&Request::get("/api").bearer(&dropped)).status,
        401
    );
    // The feed restarts without "dropped": the filter's cursor gets a reset of two pages, and
    // its second page fails for now. The old list stands: both tokens are still refused.
    feed.stall_later_pages(true);
    let polls = feed.polls();
    feed.restart(|entry| entry["jti"] != "dropped");
    assert!(wait_until(5, || feed.polls() >= polls + 3));
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        assert_eq!(
            statuses(&envoy, &kept, 4),
            [401; 4],
            "the reset's first page let it pass"
        );
        assert_eq!(statuses(&envoy, &dropped, 2), [401; 2]);
    }
    // The last page arrives: the new list replaces the old one.
    feed.stall_later_pages(false);
    assert!(wait_until(8, || statuses(&envoy, &dropped, 4) == [200; 4]));
    assert_eq!(statuses(&envoy, &kept, 4), [401; 4]);
    assert!(stat_reaches(
        &envoy,
        "tollgate.revocation.entries",
        3,
        |n| n == 4
    ));
}

#[test]
fn an_empty_page_with_more_moves_the_cursor_on() {
    let feed = Feed::start();
    feed.page_limit(1);
    let expires = now() + 3600;
    feed.revoke(json!({"jti": "first", "expires_at": expires}));
    feed.gap();
    feed.revoke(json!({"jti": "after-the-gap", "expires_at": expires}));
    let after = minted("ines", "after-the-gap");
    let good = minted("ines", "good");
    let envoy = envoy_with_feed(
        &feed,
        json!({"poll_seconds": 1, "fail_closed_after_seconds": 3}),
        2,
    );
    assert!(
        wait_until(5, || envoy
            .send(&Request::get("/api").bearer(&after))
            .status
            == 401),
        "the page after the empty one was never read"
    );
    // The list is complete and fresh: a valid token passes, also after fail_closed_after.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(statuses(&envoy, &good, 4), [200; 4]);
    // One poll per second, not the same page again and again.
    let before = feed.polls();
    std::thread::sleep(Duration::from_secs(3));
    let polls = feed.polls() - before;
    assert!(
        polls <= 6,
        "{polls} polls in 3 s: {:?}",
        feed.cursors().last()
    );
}

#[test]
fn a_page_with_an_empty_cursor_is_a_failed_poll() {
    let feed = Feed::start();
    let envoy = envoy_with_feed(&feed, json!({}), 1);
    assert!(stat_reaches(
        &envoy,
        "tollgate.revocation.polls_ok",
        5,
        |n| n >= 1
    ));
    feed.cursor_override(Some(""));
    assert!(
        stat_reaches(&envoy, "tollgate.revocation.polls_failed", 5, |n| n >= 2),
        "a page with an empty cursor was accepted"
    );
}

#[test]
fn a_subject_revocation_lasts_max_lifetime_past_its_time_whatever_its_expires_at() {
    // The feed gives the entry an expires_at already past (clock skew 0): an Envoy started
    // now still refuses the subject's tokens issued before the time, for max_lifetime_seconds.
    let feed = Feed::start();
    let issued = now() - 600;
    let mut claims = claims_for("jude", "access", issued, 3600);
    claims.jwt_id = Some("j-1".into());
    let old = SigningKey::new(None, K.as_bytes()).sign(claims).unwrap();
    feed.revoke(json!({"subject": "jude", "before": issued + 1, "expires_at": issued + 2}));
    let mut setup = setup_with_feed(&feed, json!({}), 1);
    setup.plugin_config = {
        let mut config: Value = serde_json::from_str(&setup.plugin_config).unwrap();
        config["clock_skew_seconds"] = json!(0);
        config.to_string()
    };
    let envoy = Envoy::start(setup);
    assert!(stat_reaches(
        &envoy,
        "tollgate.revocation.polls_ok",
        5,
        |n| n >= 1
    ));
    assert!(
        wait_until(3, || envoy.send(&Request::get("/api").bearer(&old)).status
            == 401),
        "the subject's earlier token passed"
    );
    assert_eq!(
        envoy
            .send(&Request::get("/api").bearer(&minted("jude", "j-2")))
            .status,
        200
    );
}

#[test]
fn a_feed_whose_cursors_go_round_a_cycle_is_polled_once_a_period() {
    let feed = Feed::start();
    let envoy = envoy_with_feed(&feed, json!({}), 2);
    assert!(stat_reaches(
        &envoy,
        "tollgate.revocation.polls_ok",
        5,
        |n| n >= 1
    ));
    // c-a -> c-b -> c-a ...: each page says more follows.
    feed.cycle_cursors(true);
    assert!(wait_until(5, || feed
        .cursors()
        .contains(&Some("c-b".to_owned()))));
    let before = feed.polls();
    let started = Instant::now();
    let exceeded = wait_until(3, || feed.polls() - before > 12);
    let polls = feed.polls() - before;
    // A run per second (poll_seconds 1): the first page, c-a, c-b refused.
    assert!(
        !exceeded && polls <= 12,
        "{polls} polls in {:?}",
        started.elapsed()
    );
    assert!(stat(&envoy, "tollgate.revocation.polls_failed") >= 1);
}
