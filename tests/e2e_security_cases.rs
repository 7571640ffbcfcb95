//! The hostile-input catalogue (`tests/data/security-cases.tsv`) through a real Envoy (two
//! workers) running the built `.wasm`; `core/tests/security_cases.rs` runs the same rows
//! natively, with the same verdict (`tollgate_testkit::seen::check`).

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::collections::BTreeMap;

use support::table::{self, expand, ConfigName, Only, Placeholders};
use support::{Envoy, Response, Setup};
use tollgate_testkit::seen::{check, report, Seen};

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

#[test]
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
        .filter(|l| l.contains("tollgate: denied"))
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
