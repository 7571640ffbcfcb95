//! The hostile-input catalogue (`tests/data/security-cases.tsv`), run natively against the
//! decision and through a real Envoy (two workers) running the built `.wasm`, from one table.

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

// The fuzz properties' model of how Envoy applies header edits.
#[allow(dead_code)]
#[path = "../fuzz/src/properties.rs"]
mod properties;

use std::collections::BTreeMap;

use serde_json::Value as Json;
use support::table::{
    self, expand, Build, Check, ConfigName, IdentityField, Only, Placeholders, Row,
};
use support::{decide, now, Action, Config, Envoy, Response, Setup, WorkerState};

/// What a client and the upstream saw of one request.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    status: u16,
    code: Option<String>,
    location: Option<String>,
    /// The answer's headers (lower-case names, without `date`) when it did not come from the
    /// upstream.
    headers: Vec<(String, String)>,
    /// The answer's body and headers as text, to look for secrets in.
    answer: String,
    /// The upstream's `:path` and headers (lower-case names), when the request went on.
    upstream: Option<(String, Vec<(String, String)>)>,
}

impl Seen {
    fn answer_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn upstream_values(&self, name: &str) -> Vec<&str> {
        self.upstream
            .iter()
            .flat_map(|(_, headers)| headers.iter())
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Checks `seen` against the row; returns what differs.
fn check(row: &Row, seen: &Seen) -> Result<(), String> {
    let fail = |what: String| Err(format!("{}: {what}\n  seen: {seen:?}", row.id));
    let status = row.expect.status;
    if seen.status != status {
        return fail(format!("status {} (expected {status})", seen.status));
    }
    for secret in Placeholders::get().secrets() {
        if seen.answer.contains(secret) {
            return fail("a secret or credential is in the answer".into());
        }
    }
    for expectation in &row.expect.checks {
        let ok = match expectation {
            Check::Code(code) => seen.code.as_ref() == Some(code),
            Check::Challenge(error) => seen
                .answer_header("www-authenticate")
                .is_some_and(|c| c.contains(&format!("error=\"{error}\""))),
            Check::Location(l) => seen.location.as_ref() == Some(l),
            Check::LocationPrefix(l) => seen.location.as_ref().is_some_and(|s| s.starts_with(l)),
            Check::NoIdentity => {
                seen.upstream.is_some()
                    && IdentityField::ALL
                        .iter()
                        .all(|f| seen.upstream_values(f.header()).is_empty())
            }
            Check::Path(p) => seen.upstream.as_ref().is_some_and(|(path, _)| path == p),
            Check::Gone(h) => seen.upstream.is_some() && seen.upstream_values(h).is_empty(),
            Check::Kept(h) => !seen.upstream_values(h).is_empty(),
            Check::Upstream(h, v) => {
                let value = String::from_utf8_lossy(&support::unescape(v)).into_owned();
                seen.upstream_values(h) == [value.as_str()]
            }
            Check::Identity(field, value) => {
                seen.upstream_values(field.header()) == [value.as_str()]
            }
        };
        if !ok {
            return fail(format!("expected {expectation:?}"));
        }
    }
    // The filter's answers: a JSON error is JSON, never a redirect; a redirect is never
    // cached; no answer sets a cookie.
    if seen.code.is_some() {
        if seen.answer_header("content-type") != Some("application/json") {
            return fail("a JSON error that is not application/json".into());
        }
        if seen.location.is_some() {
            return fail("a JSON error with a Location".into());
        }
    }
    if seen.location.is_some() && seen.answer_header("cache-control") != Some("no-store") {
        return fail("a redirect that may be cached".into());
    }
    if seen.answer_header("set-cookie").is_some() {
        return fail("an answer that sets a cookie".into());
    }
    // A HEAD answer has no body.
    let has_body = row.request.method != "HEAD";
    if status != 200
        && status != 302
        && row.expect.only != Some(Only::Envoy)
        && has_body
        && seen.code.is_none()
    {
        return fail("an error without a JSON code".into());
    }
    Ok(())
}

/// Runs a row through the decision, as Envoy would hand it the request.
fn decide_natively(config: &Config, row: &Row) -> Seen {
    let headers = row.request.build(expand).to_native();
    let decision = decide(config, &mut WorkerState::default(), &headers, now());
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    match decision.action {
        Action::Respond(response, _) => {
            let headers: Vec<(String, String)> = response
                .headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
                .collect();
            let location = headers
                .iter()
                .find(|(n, _)| n == "location")
                .map(|(_, v)| v.clone());
            let code = serde_json::from_str::<Json>(&response.body)
                .ok()
                .and_then(|b| b["code"].as_str().map(str::to_owned));
            Seen {
                status: u16::try_from(response.status).unwrap(),
                code,
                location,
                headers,
                answer: format!("{:?} {}", response.headers, response.body),
                upstream: None,
            }
        }
        Action::Forward(edits) => {
            let upstream = properties::apply(&headers, &edits);
            let path = upstream
                .iter()
                .find(|(n, _)| n == ":path")
                .map(|(_, v)| text(v))
                .unwrap_or_default();
            Seen {
                status: 200,
                code: None,
                location: None,
                headers: Vec::new(),
                answer: String::new(),
                upstream: Some((
                    path,
                    upstream
                        .iter()
                        .filter(|(n, _)| !n.starts_with(':'))
                        .map(|(n, v)| (n.clone(), text(v)))
                        .collect(),
                )),
            }
        }
    }
}

/// What Envoy's answer shows.
fn seen_through_envoy(response: &Response) -> Seen {
    let echoed = response
        .json()
        .filter(|j| j["path"].is_string() && j["headers"].is_array());
    let upstream = echoed.filter(|_| response.status == 200).map(|j| {
        let headers = j["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| {
                (
                    pair[0].as_str().unwrap().to_ascii_lowercase(),
                    pair[1].as_str().unwrap().to_owned(),
                )
            })
            // What Envoy adds differs from request to request.
            .filter(|(n, _)| !matches!(n.as_str(), "x-request-id" | "x-echo-format"))
            .collect();
        (j["path"].as_str().unwrap().to_owned(), headers)
    });
    let stable: Vec<(String, String)> = response
        .headers
        .iter()
        .filter(|(n, _)| n != "date")
        .cloned()
        .collect();
    Seen {
        status: response.status,
        code: response.code(),
        location: response.header("location").map(str::to_owned),
        headers: match upstream {
            Some(_) => Vec::new(),
            None => stable.clone(),
        },
        answer: if upstream.is_some() {
            String::new()
        } else {
            format!("{stable:?} {}", response.text())
        },
        upstream,
    }
}

fn report(failures: Vec<String>, ran: usize) {
    assert!(
        failures.is_empty(),
        "{} of {ran} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn table_is_well_formed() {
    let rows = table::rows();
    assert!(rows.len() > 150, "{} rows", rows.len());
    let records = table::TABLE
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    assert_eq!(rows.len(), records, "every record is one row");
    let mut ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(before, ids.len(), "duplicate ids");
    for row in &rows {
        assert!(
            row.request.target.is_some() || row.expect.only == Some(Only::Native),
            "{}: only a native row can have no target",
            row.id
        );
    }
}

#[test]
fn catalogue_natively() {
    let configs: BTreeMap<ConfigName, Config> = ConfigName::ALL
        .into_iter()
        .map(|name| {
            let text = name.json().to_string();
            (name, Config::parse(text.as_bytes(), &|_| None).unwrap())
        })
        .collect();
    let mut failures = Vec::new();
    let mut ran = 0;
    for row in table::rows()
        .iter()
        .filter(|r| r.expect.only != Some(Only::Envoy))
    {
        ran += 1;
        let seen = decide_natively(&configs[&row.config], row);
        if let Err(e) = check(row, &seen) {
            failures.push(format!("{e}\n  ({})", row.note));
        }
    }
    report(failures, ran);
}

#[test]
#[cfg_attr(not(feature = "envoy-tests"), ignore = "needs Envoy: make e2e")]
fn catalogue_through_envoy_on_two_workers() {
    let rows = table::rows();
    let mut envoys: BTreeMap<ConfigName, Envoy> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut answers: BTreeMap<&str, Seen> = BTreeMap::new();
    let mut ran = 0;
    for row in rows.iter().filter(|r| r.expect.only != Some(Only::Native)) {
        let envoy = envoys.entry(row.config).or_insert_with(|| {
            let mut setup = Setup::new(row.config.json());
            setup.concurrency = 2;
            Envoy::start(setup)
        });
        let request = row.request.build(expand).header("X-Echo-Format", "json");
        ran += 1;
        // Each request is a new connection; sent three times, they meet both workers.
        let seen: Vec<Seen> = (0..3)
            .map(|_| seen_through_envoy(&envoy.send(&request)))
            .collect();
        if let Err(e) = check(row, &seen[0]) {
            failures.push(format!("{e}\n  ({})", row.note));
        } else if seen.iter().any(|s| *s != seen[0]) {
            failures.push(format!("{}: answers differ: {seen:?}", row.id));
        }
        answers.insert(row.id.as_str(), seen[0].clone());
    }
    // An unknown client and a wrong secret are told apart by nothing (SEC-04).
    assert_eq!(answers["SEC-04a"].answer, answers["SEC-04b"].answer);
    // Both workers answered (the filter logs each decision with the worker's thread id).
    let workers: std::collections::BTreeSet<String> = envoys[&ConfigName::A]
        .log()
        .lines()
        .filter(|l| l.contains("wasm log") && l.contains("tollgate: denied"))
        .filter_map(|l| l.split("][").nth(1).map(str::to_owned))
        .collect();
    assert!(
        workers.len() >= 2,
        "decisions came from threads {workers:?}"
    );
    for (name, envoy) in &envoys {
        let log = envoy.log();
        for secret in Placeholders::get().secrets() {
            let line = log.lines().find(|l| l.contains(secret));
            assert!(
                line.is_none(),
                "configuration {name}: Envoy's log holds a credential: {}",
                line.unwrap_or_default().replace(secret, "<credential>")
            );
        }
    }
    report(failures, ran);
}
