//! The filter follows Envoy's log level at run time: `POST /logging?wasm=debug` (`dynamic_modules=debug` for the native build) on the admin
//! endpoint turns its decision lines on, `wasm=info` turns them off again, without a restart.

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
use support::{filter_logger, Envoy, Setup, K};

/// Sends a request for a path no other request used and says whether the filter logged its
/// decision. The filter logs before Envoy answers, and Envoy writes its log unbuffered: the
/// line is there once the response is.
fn decision_logged(envoy: &Envoy, serial: &mut u32) -> bool {
    *serial += 1;
    let path = format!("/public/level-probe-{serial}");
    let r = envoy.get(&path);
    assert_eq!(r.status, 200, "{}", r.text());
    // "tollgate: unchecked GET /public/level-probe-7 rule=..." at debug.
    let request = format!("GET {path}");
    let spaced = format!("{request} ");
    envoy
        .log()
        .lines()
        .any(|l| l.contains("tollgate: ") && (l.ends_with(&request) || l.contains(&spaced)))
}

/// How many probes in a row must agree: requests spread over both workers, so a run this
/// long has met each of them.
const IN_A_ROW: u32 = 8;

/// Probes until `IN_A_ROW` probes in a row are `logged` or not, within 15 s.
fn until_logging_is(envoy: &Envoy, serial: &mut u32, logged: bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut agreeing = 0;
    while agreeing < IN_A_ROW {
        if decision_logged(envoy, serial) == logged {
            agreeing += 1;
        } else {
            agreeing = 0;
            assert!(
                Instant::now() < deadline,
                "decision lines still {} after 15 s:\n{}",
                if logged { "off" } else { "on" },
                envoy.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn decision_lines_follow_envoys_log_level_at_run_time() {
    let mut setup = Setup::new(json!({
        "secrets": [{"key": K}],
        "rules": [{"prefix": "/public", "mode": "none"}]
    }));
    setup.concurrency = 2;
    setup.component_log_level = "wasm:info".into();
    let envoy = Envoy::start(setup);
    let mut serial = 0;
    for _ in 0..IN_A_ROW {
        assert!(!decision_logged(&envoy, &mut serial), "{}", envoy.log());
    }

    let r = envoy.admin_post(&format!("/logging?{}=debug", filter_logger()));
    assert_eq!(r.status, 200, "{}", r.text());
    until_logging_is(&envoy, &mut serial, true);

    let r = envoy.admin_post(&format!("/logging?{}=info", filter_logger()));
    assert_eq!(r.status, 200, "{}", r.text());
    until_logging_is(&envoy, &mut serial, false);
}
