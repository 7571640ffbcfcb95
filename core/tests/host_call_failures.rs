//! Host calls the host refuses: a header change the decision needs fails the request closed
//! (503 `FILTER_UNAVAILABLE`, not let on), every failure is counted, and a worker logs the
//! first only. Against a fake host whose chosen calls fail.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::cell::RefCell;

use tollgate_core::config::Config;
use tollgate_core::host::{on_request_body, on_request_headers, Host, HostError, Verdict};
use tollgate_core::metrics::Counter;
use tollgate_core::verify::token::{claims_for, SigningKey};
use tollgate_core::worker::WorkerState;

const K: &str = "Hq3vXo9TzK7rWm2pLc8dNs5yFb4gJe6A";
const NOW: u64 = 1_750_000_000;

fn config() -> Config {
    let json = format!(
        r#"{{"secrets": [{{"key": "{K}"}}],
            "rules": [{{"prefix": "/public", "mode": "none"}},
                      {{"prefix": "/feed", "mode": "optional"}}]}}"#
    );
    Config::parse(json.as_bytes(), &|_| None).unwrap()
}

fn token() -> String {
    SigningKey::new(None, K.as_bytes())
        .sign(claims_for("alice", "access", NOW - 60, 3600))
        .unwrap()
}

/// A host whose calls named in `failing` fail; it records what it was asked.
#[derive(Default)]
struct FailingHost {
    headers: Vec<(String, Vec<u8>)>,
    failing: Vec<&'static str>,
    calls: RefCell<Vec<&'static str>>,
    answers: RefCell<Vec<(u32, Vec<u8>)>>,
    warnings: RefCell<Vec<String>>,
}

impl FailingHost {
    fn new(target: &str, extra: &[(&str, &str)], failing: &[&'static str]) -> FailingHost {
        let mut headers: Vec<(String, Vec<u8>)> = [
            (":method", "GET"),
            (":path", target),
            (":authority", "api.example.com"),
            (":scheme", "https"),
        ]
        .iter()
        .chain(extra)
        .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
        .collect();
        headers.shrink_to_fit();
        FailingHost {
            headers,
            failing: failing.to_vec(),
            ..FailingHost::default()
        }
    }

    fn call(&self, name: &'static str) -> Result<(), HostError> {
        self.calls.borrow_mut().push(name);
        if self.failing.contains(&name) {
            Err(HostError("InternalFailure"))
        } else {
            Ok(())
        }
    }
}

impl Host for FailingHost {
    fn request_headers(&self) -> Vec<(String, Vec<u8>)> {
        self.headers.clone()
    }
    fn now(&self) -> u64 {
        NOW
    }
    fn remove_header(&self, _: &str) -> Result<(), HostError> {
        self.call("remove_header")
    }
    fn set_header(&self, _: &str, _: &[u8]) -> Result<(), HostError> {
        self.call("set_header")
    }
    fn add_header(&self, _: &str, _: &[u8]) -> Result<(), HostError> {
        self.call("add_header")
    }
    fn set_property(&self, _: &str, _: &[u8]) -> Result<(), HostError> {
        self.call("set_property")
    }
    fn respond(&self, status: u32, _: &[(&str, &str)], body: &[u8]) -> Result<(), HostError> {
        self.answers.borrow_mut().push((status, body.to_vec()));
        self.call("respond")
    }
    fn debug_enabled(&self) -> bool {
        false
    }
    fn debug(&self, _: &str) {}
    fn warn(&self, line: &str) {
        self.warnings.borrow_mut().push(line.to_owned());
    }
}

/// The calls that write identity headers (added when the client sent none, else replaced).
const IDENTITY: &[&str] = &["set_header", "add_header"];

/// Runs one request's headers; its verdict and the counters it incremented.
fn run(host: &FailingHost, worker: &mut WorkerState) -> (Verdict, Vec<Counter>) {
    let counted = RefCell::new(Vec::new());
    let config = config();
    let verdict = on_request_headers(host, &config, worker, true, true, |c| {
        counted.borrow_mut().push(c)
    })
    .verdict;
    (verdict, counted.into_inner())
}

fn answered_unavailable(host: &FailingHost) -> bool {
    let answers = host.answers.borrow();
    answers.len() == 1
        && answers[0].0 == 503
        && String::from_utf8_lossy(&answers[0].1).contains("\"code\":\"FILTER_UNAVAILABLE\"")
}

#[test]
fn a_refused_identity_header_fails_the_request_closed() {
    let mut worker = WorkerState::default();
    let bearer = format!("Bearer {}", token());
    let host = FailingHost::new("/feed/x", &[("authorization", &bearer)], IDENTITY);
    let (verdict, counted) = run(&host, &mut worker);
    assert_eq!(verdict, Verdict::Answered, "not let on");
    assert!(answered_unavailable(&host), "{:?}", host.answers.borrow());
    assert!(counted.contains(&Counter::HostCallFailed), "{counted:?}");
    let edits = host
        .calls
        .borrow()
        .iter()
        .filter(|c| c.ends_with("_header"))
        .count();
    assert_eq!(edits, 1, "the edits stop at the first refusal");
}

#[test]
fn a_refused_removal_of_a_credential_or_spoofed_header_fails_it_closed() {
    let mut worker = WorkerState::default();
    let bearer = format!("Bearer {}", token());
    // A none path: the credential and the client's identity headers are removed.
    let extra = [("authorization", bearer.as_str()), ("x-auth-user", "admin")];
    let host = FailingHost::new("/public/x", &extra, &["remove_header"]);
    let (verdict, counted) = run(&host, &mut worker);
    assert!(host.calls.borrow().contains(&"remove_header"));
    assert_eq!(verdict, Verdict::Answered);
    assert!(answered_unavailable(&host));
    assert_eq!(
        counted
            .iter()
            .filter(|c| **c == Counter::HostCallFailed)
            .count(),
        1
    );
}

/// A worker is a thread: each run here gets a thread of its own (the test harness may run
/// every test on one).
fn on_a_new_worker(test: impl FnOnce() + Send + 'static) {
    std::thread::spawn(test).join().unwrap();
}

#[test]
fn a_worker_logs_its_first_failure_only_and_counts_every_one() {
    on_a_new_worker(|| {
        let mut worker = WorkerState::default();
        let bearer = format!("Bearer {}", token());
        let mut failures = 0;
        for _ in 0..3 {
            let host = FailingHost::new("/feed/x", &[("authorization", &bearer)], IDENTITY);
            let (verdict, counted) = run(&host, &mut worker);
            assert_eq!(verdict, Verdict::Answered);
            failures += counted
                .iter()
                .filter(|c| **c == Counter::HostCallFailed)
                .count();
            let warned = host.warnings.borrow();
            assert_eq!(warned.len(), usize::from(failures == 1), "once per worker");
            if let Some(line) = warned.first() {
                assert!(line.contains("a header change"), "{line}");
                assert!(line.contains("tollgate.host_call_failed"), "{line}");
            }
        }
        assert_eq!(failures, 3);
    });
    // Another worker logs its own first failure.
    on_a_new_worker(|| {
        let bearer = format!("Bearer {}", token());
        let host = FailingHost::new("/feed/x", &[("authorization", &bearer)], IDENTITY);
        run(&host, &mut WorkerState::default());
        assert_eq!(host.warnings.borrow().len(), 1);
    });
}

#[test]
fn an_answer_that_cannot_be_sent_leaves_the_request_answered() {
    let mut worker = WorkerState::default();
    // No credential on an optional path is let on; a bad one is answered 401.
    let host = FailingHost::new("/feed/x", &[("authorization", "Bearer nope")], &["respond"]);
    let (verdict, counted) = run(&host, &mut worker);
    assert_eq!(
        verdict,
        Verdict::Answered,
        "the host ends it, never lets it on"
    );
    assert!(counted.contains(&Counter::HostCallFailed));
    // A refused header change whose 503 cannot be sent either: still not let on.
    let bearer = format!("Bearer {}", token());
    let extra = [("authorization", bearer.as_str())];
    let host = FailingHost::new("/feed/x", &extra, &["add_header", "respond"]);
    assert_eq!(run(&host, &mut worker).0, Verdict::Answered);
}

#[test]
fn a_refused_access_log_property_is_counted_and_the_request_goes_on() {
    let mut worker = WorkerState::default();
    let bearer = format!("Bearer {}", token());
    let host = FailingHost::new("/feed/x", &[("authorization", &bearer)], &["set_property"]);
    let (verdict, counted) = run(&host, &mut worker);
    assert_eq!(verdict, Verdict::Continue);
    assert!(counted.contains(&Counter::HostCallFailed));
    assert!(host.answers.borrow().is_empty());
}

#[test]
fn a_refused_form_body_whose_answer_fails_is_counted() {
    let mut worker = WorkerState::default();
    let config = config();
    let mut host = FailingHost::new(
        "/feed/x",
        &[("content-type", "application/x-www-form-urlencoded")],
        &["respond"],
    );
    if let Some((_, method)) = host.headers.iter_mut().find(|(n, _)| n == ":method") {
        *method = b"POST".to_vec();
    }
    let after = on_request_headers(&host, &config, &mut worker, false, true, |_| {});
    assert_eq!(after.verdict, Verdict::Continue);
    let mut scan = after.body.unwrap();
    let counted = RefCell::new(Vec::new());
    let count = |c| counted.borrow_mut().push(c);
    let chunk = b"access_token=x";
    assert!(on_request_body(
        &host, &config, &mut scan, chunk, true, count
    ));
    assert!(counted.borrow().contains(&Counter::HostCallFailed));
}
