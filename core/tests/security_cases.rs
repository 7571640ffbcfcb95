//! The hostile-input catalogue (`tests/data/security-cases.tsv`), run natively against the
//! decision; `tests/e2e_security_cases.rs` runs the same rows through a real Envoy, with the
//! same verdict (`tollgate_testkit::seen::check`).

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

// The fuzz properties' model of how Envoy applies header edits.
#[allow(dead_code)]
#[path = "../../fuzz/src/properties.rs"]
mod properties;

use std::collections::BTreeMap;

use serde_json::Value as Json;
use tollgate_testkit::prelude::*;
use tollgate_testkit::seen::{check, report, Seen};
use tollgate_testkit::table::{self, expand, ConfigName, Only, Row};

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
