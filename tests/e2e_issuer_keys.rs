//! Issuers' keys fetched through Envoy from a real OpenID Connect provider (see
//! `tests/support/idp.rs`): once per process, held requests during a rotation, keys fetched
//! again unchanged, failures and what the log says of them.

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
use support::idp::{bearer, envoy_trusting, issuer_entry, until, Fault, Idp, AUDIENCE};
use support::{Envoy, Setup, K};

/// `wrk` for `seconds` against `envoy`, cycling through `tokens`; its report.
fn wrk(envoy: &Envoy, tokens: &[String], seconds: u32) -> std::process::Child {
    let dir = support::scratch_dir("wrk-issuers");
    let list: Vec<String> = tokens.iter().map(|t| format!("{t:?}")).collect();
    let script = format!(
        "local tokens = {{{}}}\nlocal i = 0\nrequest = function()\n  i = i % #tokens + 1\n  return wrk.format(\"GET\", \"/orders\", {{[\"Authorization\"] = \"Bearer \" .. tokens[i]}})\nend\n",
        list.join(", ")
    );
    let path = dir.join("tokens.lua");
    std::fs::write(&path, script).unwrap();
    std::process::Command::new("wrk")
        .args(["-t", "2", "-c", "8", "-d", &format!("{seconds}s"), "-s"])
        .arg(&path)
        .arg(format!("http://127.0.0.1:{}/orders", envoy.port))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("wrk is not installed (Debian package wrk)")
}

#[test]
fn key_rotation_under_load_fails_no_request_and_costs_one_fetch() {
    let idp = Idp::start();
    let envoy = envoy_trusting(json!([issuer_entry(&idp, 600)]), idp.port(), json!({}));
    let old = vec![idp.token("RS256"), idp.token("ES256")];
    for token in &old {
        assert_eq!(envoy.send(&bearer(token)).status, 200);
    }
    idp.reset_stats();
    let served = || {
        envoy
            .stats("wasmcustom.tollgate.allowed.access_token")
            .values()
            .sum::<u64>()
    };
    let before = served();
    let load = wrk(&envoy, &old, 6);
    support::wait_until("the load to run", Duration::from_secs(10), || {
        served() > before + 50
    });
    idp.rotate(false);
    let new = [idp.token("RS256"), idp.token("ES256")];
    // Tokens of the new keys, at once, on every worker: each is held until the keys come.
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let token = &new[i % 2];
                let envoy = &envoy;
                scope.spawn(move || envoy.send(&bearer(token)).status)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let report = load.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&report.stdout).into_owned();
    assert!(report.contains("Requests/sec"), "{report}");
    assert!(
        !report.contains("Non-2xx"),
        "old tokens failed during the rotation:\n{report}"
    );
    // Old and new keys both serve afterwards, on every worker.
    for token in old.iter().chain(&new) {
        for _ in 0..8 {
            assert_eq!(envoy.send(&bearer(token)).status, 200);
        }
    }
    assert_eq!(
        idp.jwks_fetches(),
        1,
        "one fetch for the rotation, not one per worker or request"
    );
    let stats = envoy.stats("wasmcustom.tollgate.issuer_keys");
    assert_eq!(
        stats.get("wasmcustom.tollgate.issuer_keys.unknown_kid_fetches.idp"),
        Some(&1),
        "{stats:?}"
    );
    assert!(
        stats
            .get("wasmcustom.tollgate.issuer_keys.requests_held.idp")
            .is_some_and(|n| *n >= 1),
        "{stats:?}"
    );
}

#[test]
fn provider_down_at_start_is_a_503_then_served_as_soon_as_it_is_up() {
    let port = Idp::free_port();
    let first = Idp::start_on(port);
    let entry = issuer_entry(&first, 600);
    let early = first.token("RS256");
    first.stop();
    let envoy = envoy_trusting(json!([entry]), port, json!({}));
    let started = Instant::now();
    let response = envoy.send(&bearer(&early));
    assert_eq!(response.status, 503, "{}", response.text());
    assert_eq!(response.code().as_deref(), Some("KEYS_UNAVAILABLE"));
    assert!(response.header("retry-after").is_some());
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "the request waited for the keys"
    );
    // (An upper bound loose enough for a loaded machine: the wait is 2 s, not forever.)
    assert!(started.elapsed() < Duration::from_secs(20));
    // A request with a body is held whole: its body does not carry it past the filter.
    let post = bearer(&early).body_text("{\"order\": 1}");
    let post = support::Request {
        method: "POST".into(),
        ..post
    };
    let response = envoy.send(&post);
    assert_eq!(response.status, 503, "{}", response.text());
    // The provider comes up (with new keys): its tokens pass within seconds, no restart.
    let idp = Idp::start_on(port);
    let token = idp.token("ES256");
    let response = until(&envoy, &token, 10, |s| s == 200);
    assert_eq!(response.status, 200, "{}", response.text());
    // Decision counters reach Envoy on the filter's tick: polled, not read once.
    support::wait_until(
        "the refusals and failed fetches counted",
        Duration::from_secs(10),
        || {
            let stats = envoy.stats("wasmcustom.tollgate");
            let at_least_one = |name: &str| stats.get(name).is_some_and(|n| *n >= 1);
            at_least_one("wasmcustom.tollgate.denied.keys_unavailable")
                && at_least_one("wasmcustom.tollgate.issuer_keys.fetch_failed.idp")
        },
    );
}

#[test]
fn failed_refreshes_keep_the_last_keys_serving_and_are_counted() {
    let idp = Idp::start();
    let envoy = envoy_trusting(json!([issuer_entry(&idp, 5)]), idp.port(), json!({}));
    assert_eq!(envoy.send(&bearer(&idp.token("RS256"))).status, 200);
    let failed = || {
        envoy
            .stats("wasmcustom.tollgate.issuer_keys.fetch_failed.idp")
            .values()
            .sum::<u64>()
    };
    for fault in [
        Fault::Status500,
        Fault::Garbage,
        Fault::Huge,
        Fault::Down,
        Fault::Slow(8),
    ] {
        let before = failed();
        idp.fault(fault);
        let deadline = Instant::now() + Duration::from_secs(25);
        while failed() == before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(250));
        }
        assert!(failed() > before, "a failed refresh ({fault:?}) is counted");
        // A token never seen before is verified with the last good keys.
        let fresh = idp.token("ES256");
        assert_eq!(envoy.send(&bearer(&fresh)).status, 200, "{fault:?}");
        idp.fault(Fault::Ok);
    }
    // The provider gone: the last keys keep serving.
    let unseen = idp.token("RS256");
    let before = failed();
    idp.stop();
    support::wait_until(
        "a refresh with the provider gone",
        Duration::from_secs(30),
        || failed() > before,
    );
    assert_eq!(envoy.send(&bearer(&unseen)).status, 200);
    assert!(!envoy.log().contains(&unseen));
}

#[test]
fn a_rotation_during_a_periodic_fetch_fails_no_request() {
    let idp = Idp::start();
    let envoy = envoy_trusting(json!([issuer_entry(&idp, 5)]), idp.port(), json!({}));
    assert_eq!(envoy.send(&bearer(&idp.token("RS256"))).status, 200);
    // A periodic fetch (every 5 s here) starts before a rotation and answers the keys of
    // before it: its answer does not decide a request for the new key, nor spend the
    // unknown-kid fetch.
    idp.fault(Fault::Stale(1));
    idp.rotate(false);
    let rotated = idp.token("ES256");
    let before = idp.jwks_fetches();
    let deadline = Instant::now() + Duration::from_secs(15);
    while idp.jwks_fetches() == before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(idp.jwks_fetches() > before, "a periodic fetch started");
    idp.fault(Fault::Ok);
    let response = envoy.send(&bearer(&rotated));
    assert_eq!(response.status, 200, "{}", response.text());
    let stats = envoy.stats("wasmcustom.tollgate.issuer_keys");
    assert_eq!(
        stats.get("wasmcustom.tollgate.issuer_keys.unknown_kid_fetches.idp"),
        Some(&1),
        "{stats:?}"
    );
}

/// Whether `token` was let on from the cache of verified tokens (the worker's counters of
/// hits and misses, handed to Envoy on the tick, are awaited).
fn from_cache(envoy: &Envoy, token: &str) -> bool {
    let count = |what: &str| {
        envoy
            .stats(&format!("wasmcustom.tollgate.token_cache.{what}"))
            .values()
            .sum::<u64>()
    };
    let (hits, misses) = (count("hit"), count("miss"));
    let response = envoy.send(&bearer(token));
    assert_eq!(response.status, 200, "{}", response.text());
    let deadline = Instant::now() + Duration::from_secs(5);
    while count("hit") + count("miss") == hits + misses && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(count("hit") + count("miss"), hits + misses + 1);
    count("hit") > hits
}

#[test]
fn keys_fetched_again_unchanged_or_with_a_key_added_keep_cached_tokens_verified() {
    let idp = Idp::start();
    let config = json!({
        "secrets": [{"key": K}],
        "issuers": [issuer_entry(&idp, 5)],
        "rules": [{"prefix": "/orders", "mode": "required", "roles": ["reader", "user"]}],
    });
    let mut setup = Setup::new(config).cluster("idp", idp.port());
    setup.concurrency = 1;
    let envoy = Envoy::start(setup);
    let token = idp.token("RS256");
    assert!(!from_cache(&envoy, &token));
    assert!(from_cache(&envoy, &token));
    // A periodic fetch (every 5 s here) answers the same keys: nothing is verified again.
    let fetched = || {
        envoy
            .stats("wasmcustom.tollgate.issuer_keys.fetched.idp")
            .values()
            .sum::<u64>()
    };
    let before = fetched();
    let deadline = Instant::now() + Duration::from_secs(15);
    while fetched() == before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(fetched() > before, "a periodic fetch ran");
    assert!(from_cache(&envoy, &token), "the same keys fetched again");
    // Keys added by a rotation: the old key's cached tokens stay verified.
    idp.rotate(false);
    assert!(!from_cache(&envoy, &idp.token("ES256")));
    assert!(from_cache(&envoy, &token), "a key added");
}

#[test]
fn key_fetch_logs_say_what_happened() {
    let port = Idp::free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let entry = json!({
        "name": "idp",
        "issuer": issuer,
        "audiences": [AUDIENCE],
        "jwks_uri": format!("{issuer}/jwks"),
        "cluster": "idp",
        "refresh_seconds": 5,
        "roles_claim": "realm_access.roles",
    });
    let envoy = envoy_trusting(json!([entry]), port, json!({}));
    // The `n`-th key fetch line, once logged.
    let line = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = envoy.log();
            let lines: Vec<String> = log
                .lines()
                .filter(|l| l.contains("tollgate: issuer idp: the key fetch"))
                .map(str::to_owned)
                .collect();
            if let Some(line) = lines.get(n) {
                return line.clone();
            }
            assert!(Instant::now() < deadline, "no key fetch line {n}:\n{log}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // Nothing listens: Envoy answers 503 itself; no key was ever loaded.
    let first = line(0);
    assert!(
        first.contains("the key fetch got no answer (Envoy's own 503: upstream connect error"),
        "{first}"
    );
    assert!(
        first.ends_with("no keys loaded yet: requests get 503 KEYS_UNAVAILABLE"),
        "{first}"
    );
    // The provider comes up, then answers 500: a real status, and the last keys serve.
    let idp = Idp::start_on(port);
    let token = idp.token("RS256");
    assert_eq!(until(&envoy, &token, 10, |s| s == 200).status, 200);
    let loaded = envoy
        .log()
        .lines()
        .filter(|l| l.contains("the key fetch"))
        .count();
    idp.fault(Fault::Status500);
    let status = line(loaded);
    assert!(
        status.contains("the key fetch answered status 500 (1 failures in a row)"),
        "{status}"
    );
    assert!(status.ends_with("the last keys keep serving"), "{status}");
    // The provider gone: no answer, and the last keys serve.
    idp.stop();
    let gone = line(loaded + 1);
    assert!(
        gone.contains("the key fetch got no answer (Envoy's own 503"),
        "{gone}"
    );
    assert!(gone.ends_with("the last keys keep serving"), "{gone}");
    assert!(!envoy.log().contains("answered status 503"));
}
