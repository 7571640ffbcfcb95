//! Host calls per request kind: the adapter runs against a host that counts every call, and
//! each kind must stay within its budget. Calls into Envoy, not the decision, are what a
//! request costs (about 2 µs for each header edit or filter-state property written), so a
//! new call shows here in review, without a benchmark. `make bench` prints the same table.

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde_json::json;
use tollgate_core::config::Config;
use tollgate_core::host::{on_request_body, on_request_headers, Host, HostError, Verdict};
use tollgate_core::metrics;
use tollgate_core::verify::token::{claims_for, SigningKey};
use tollgate_core::worker::WorkerState;
use tollgate_testkit::request::Request;
use tollgate_testkit::{CS as CLIENT_SECRET, K as SECRET, NOW, SK as API_KEY};

/// A host that records every call by name.
struct CountingHost {
    headers: Vec<(String, Vec<u8>)>,
    calls: RefCell<BTreeMap<&'static str, usize>>,
}

impl CountingHost {
    fn new(headers: Vec<(String, Vec<u8>)>) -> Self {
        CountingHost {
            headers,
            calls: RefCell::new(BTreeMap::new()),
        }
    }

    fn call(&self, name: &'static str) {
        *self.calls.borrow_mut().entry(name).or_default() += 1;
    }

    fn total(&self) -> usize {
        self.calls.borrow().values().sum()
    }
}

impl Host for CountingHost {
    fn request_headers(&self) -> Vec<(String, Vec<u8>)> {
        self.call("get_headers");
        self.headers.clone()
    }
    fn now(&self) -> u64 {
        self.call("get_time");
        NOW
    }
    fn remove_header(&self, _: &str) -> Result<(), HostError> {
        self.call("remove_header");
        Ok(())
    }
    fn set_header(&self, _: &str, _: &[u8]) -> Result<(), HostError> {
        self.call("set_header");
        Ok(())
    }
    fn add_header(&self, _: &str, _: &[u8]) -> Result<(), HostError> {
        self.call("add_header");
        Ok(())
    }
    fn set_property(&self, _: &str, _: &[u8]) -> Result<(), HostError> {
        self.call("set_property");
        Ok(())
    }
    fn respond(&self, _: u32, _: &[(&str, &str)], _: &[u8]) -> Result<(), HostError> {
        self.call("send_response");
        Ok(())
    }
    // The adapter answers from the log level its tick read from Envoy: no host call here.
    fn debug_enabled(&self) -> bool {
        false
    }
    fn debug(&self, _: &str) {
        self.call("log");
    }
    fn warn(&self, _: &str) {
        self.call("log");
    }
}

fn config(access_log_fields: &str) -> Config {
    let json = json!({
        "secrets": [{"key": SECRET}],
        "api_keys": [{"name": "backend", "key": API_KEY}],
        "clients": [{"client_id": "reports", "client_secret": CLIENT_SECRET}],
        "rules": [
            {"prefix": "/public", "mode": "none"},
            {"prefix": "/feed", "mode": "optional"},
            {"prefix": "/admin", "mode": "required", "roles": ["admin"]}
        ],
        "login_url": "https://login.example.com/signin",
        "access_log_fields": access_log_fields
    });
    Config::parse(json.to_string().as_bytes(), &|_| None).unwrap()
}

fn request(method: &str, target: &str, extra: &[(&str, String)]) -> Vec<(String, Vec<u8>)> {
    extra
        .iter()
        .fold(
            Request::new(method, target).header("User-Agent", "wrk"),
            |request, (name, value)| request.header(name, value),
        )
        .to_native()
}

fn token() -> String {
    SigningKey::new(None, SECRET.as_bytes())
        .sign(claims_for("alice", "access", NOW - 10, 3600))
        .unwrap()
}

/// Each kind: its request, whether the filter answers it, and the most host calls it may make
/// with access-log fields for refusals only (the default) and for every request.
/// A request kind: its name, its headers, the verdict, and its budgets.
type Kind = (&'static str, Vec<(String, Vec<u8>)>, Verdict, usize, usize);

fn kinds() -> Vec<Kind> {
    let bearer = |v: &str| ("authorization", format!("Bearer {v}"));
    let t = token();
    vec![
        // headers, clock (a token is checked); type, role and user added; Authorization removed;
        // the outcome for the access log (as on every request).
        (
            "valid token",
            request("GET", "/api/orders", &[bearer(&t)]),
            Verdict::Continue,
            7,
            11,
        ),
        (
            "cache hit",
            request("GET", "/api/orders", &[bearer(&t)]),
            Verdict::Continue,
            7,
            11,
        ),
        // type, role and name added; Authorization removed.
        (
            "api key",
            request("GET", "/admin/x", &[bearer(API_KEY)]),
            Verdict::Continue,
            6,
            10,
        ),
        // type, role and name added; :path rewritten without the credentials.
        (
            "client",
            request(
                "GET",
                &format!("/api/r?client_id=reports&client_secret={CLIENT_SECRET}"),
                &[],
            ),
            Verdict::Continue,
            6,
            10,
        ),
        // answer; outcome, code and rule for the access log.
        (
            "missing",
            request("GET", "/api/orders", &[]),
            Verdict::Answered,
            5,
            5,
        ),
        // and Authorization removed, so the access log never holds it.
        (
            "invalid",
            request("GET", "/api/orders", &[bearer("a.b.c")]),
            Verdict::Answered,
            7,
            7,
        ),
        (
            "none path",
            request("GET", "/public/x", &[]),
            Verdict::Continue,
            2,
            3,
        ),
        // type and role added.
        (
            "optional anonymous",
            request("GET", "/feed/x", &[]),
            Verdict::Continue,
            4,
            7,
        ),
        (
            "preflight",
            request(
                "OPTIONS",
                "/api/orders",
                &[
                    ("origin", "https://app.example".into()),
                    ("access-control-request-method", "POST".into()),
                ],
            ),
            Verdict::Continue,
            2,
            2,
        ),
        (
            "redirect",
            request("GET", "/api/orders", &[("accept", "text/html".into())]),
            Verdict::Answered,
            5,
            5,
        ),
    ]
}

#[test]
fn every_request_kind_stays_within_its_host_call_budget() {
    let refusals = config("refusals");
    let every = config("every_request");
    // One worker per configuration, kept across the kinds: the cache-hit kind follows the
    // token's first request.
    let mut workers = [WorkerState::default(), WorkerState::default()];
    let mut over = Vec::new();
    println!(
        "{:<20}{:>18}{:>22}   calls (refusals only)",
        "request kind", "host calls", "with every field"
    );
    for (name, headers, verdict, budget, budget_every) in kinds() {
        let mut totals = Vec::new();
        let runs = [(&refusals, budget), (&every, budget_every)];
        for ((config, budget), worker) in runs.into_iter().zip(&mut workers) {
            let host = CountingHost::new(headers.clone());
            let got = on_request_headers(&host, config, worker, true, true, |_| {}).verdict;
            assert_eq!(got, verdict, "{name}");
            if host.total() > budget {
                over.push(format!(
                    "{name}: {} calls, budget {budget}: {:?}",
                    host.total(),
                    host.calls.borrow()
                ));
            }
            totals.push((host.total(), format!("{:?}", host.calls.borrow())));
        }
        println!(
            "{name:<20}{:>18}{:>22}   {}",
            totals[0].0, totals[1].0, totals[0].1
        );
    }
    assert!(over.is_empty(), "{}", over.join("\n"));
}

/// The budget is not loose: a header the filter did not need to touch costs nothing (no
/// removal of a header that is not there, nothing set twice).
#[test]
fn nothing_is_removed_that_is_not_there() {
    let config = config("refusals");
    let host = CountingHost::new(request("GET", "/public/x", &[]));
    on_request_headers(
        &host,
        &config,
        &mut WorkerState::default(),
        true,
        true,
        |_| {},
    );
    assert_eq!(host.calls.borrow().get("remove_header"), None);
    let spoofed = request("GET", "/feed/x", &[("x-auth-role", "admin".into())]);
    let host = CountingHost::new(spoofed);
    on_request_headers(
        &host,
        &config,
        &mut WorkerState::default(),
        true,
        true,
        |_| {},
    );
    let calls = host.calls.borrow();
    // The spoofed role is replaced in one call, not removed then added.
    assert_eq!(calls.get("remove_header"), None, "{calls:?}");
    assert_eq!(calls.get("set_header"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("add_header"), Some(&1), "{calls:?}");
}

/// A form body on a checked path is read chunk by chunk, with no host call per clean chunk;
/// a field named like a credential is answered with one response, counted once, and its
/// three refusal fields set. A `none` path reads no body.
#[test]
fn a_form_body_is_read_with_no_call_per_chunk_and_refused_in_a_few() {
    let config = config("refusals");
    let form = (
        "Content-Type",
        "application/x-www-form-urlencoded".to_owned(),
    );
    let headers = request("POST", "/feed/x", std::slice::from_ref(&form));
    let host = CountingHost::new(headers);
    let after = on_request_headers(
        &host,
        &config,
        &mut WorkerState::default(),
        false,
        true,
        |_| {},
    );
    assert_eq!(after.verdict, Verdict::Continue);
    let mut scan = after.body.expect("a form body on an optional path is read");
    let before = host.total();
    let counted = RefCell::new(Vec::new());
    let count = |c| counted.borrow_mut().push(c);
    assert!(!on_request_body(
        &host, &config, &mut scan, b"a=1&acc", false, count
    ));
    assert_eq!(host.total(), before, "a clean chunk costs no host call");
    assert!(on_request_body(
        &host,
        &config,
        &mut scan,
        b"ess_token=t",
        false,
        count
    ));
    let calls = host.calls.borrow();
    assert_eq!(calls.get("send_response"), Some(&1));
    assert_eq!(calls.get("set_property"), Some(&4), "{calls:?}");
    assert_eq!(
        *counted.borrow(),
        vec![metrics::Counter::Denied(
            tollgate_core::denial::Code::InvalidRequest
        )]
    );
    let unchecked = CountingHost::new(request("POST", "/public/x", &[form]));
    let after = on_request_headers(
        &unchecked,
        &config,
        &mut WorkerState::default(),
        false,
        true,
        |_| {},
    );
    assert!(after.body.is_none(), "a none path's body is not read");
}
