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
use std::sync::OnceLock;

use serde_json::{json, Value as Json};
use support::{now, Envoy, Request, Response, Setup, K};
use tollgate_core::config::Config;
use tollgate_core::decision::{decide, Action};
use tollgate_core::verify::token::{claims_for, SigningKey};
use tollgate_core::worker::WorkerState;

const TABLE: &str = include_str!("data/security-cases.tsv");
const SK: &str = "sk_test_4f9d2c7a8b1e6f3d0a5c9e2b7f4a1d8c";
const PK: &str = "pk_test_7c3e9a1f5b2d8e4a6c0f3b9d1e7a5c2f";
const CS: &str = "cs_test_Zr4Qm8Vn2Lp6Xw1Ty9Hs3Kd7Bf5Gj0";
const CSB: &str = "cs_test_other_client_secret_nVjh9XxeUpEHicLzXKhcCtEzmn39";
const LOGIN: &str = "https://auth.example.com/login";

/// The configurations the table's rows name.
fn config(name: &str) -> Json {
    let mut a = json!({
        "secrets": [{"key": K}],
        "api_keys": [{"name": "server", "key": SK}],
        "publishable_keys": [{"name": "web", "key": PK}],
        "clients": [
            {"client_id": "client-a", "client_secret": CS},
            {"client_id": "client-b", "client_secret": CSB}
        ],
        "rules": [
            {"prefix": "/public", "mode": "none"},
            {"path": "/login", "mode": "none"},
            {"path": "/healthz", "mode": "none"},
            {"prefix": "/feed", "mode": "optional"},
            {"prefix": "/ops", "mode": "required", "roles": ["admin"]}
        ],
        "login_url": LOGIN,
        "return_param": "return_to",
        "token_cookie": "session"
    });
    match name {
        "A" => a,
        "B" => json!({
            "secrets": [{"key": K}],
            "default_mode": "none",
            "rules": [{"prefix": "/admin", "mode": "required"}]
        }),
        "C" => json!({
            "secrets": [{"key": K}],
            "default_mode": "none",
            "rules": [{"path": "/admin", "mode": "required"}]
        }),
        "D" => {
            a["login_url"] = json!(format!("{LOGIN}?tenant=acme"));
            a
        }
        "E" => json!({
            "secrets": [{"key": K}],
            "default_mode": "none",
            "rules": [
                {"prefix": "/items", "mode": "required", "methods": ["DELETE"]},
                {"prefix": "/reports", "mode": "required", "methods": ["GET"]}
            ]
        }),
        "F" => {
            a["identity_headers"] = json!({
                "user": "x-user", "type": "x-user-type", "role": "x-user-role", "name": "x-user-name"
            });
            a
        }
        other => panic!("no configuration {other}"),
    }
}

/// The credentials the placeholders stand for, minted for this run's clock.
struct Credentials(BTreeMap<&'static str, String>);

impl Credentials {
    fn get() -> &'static Credentials {
        static CREDENTIALS: OnceLock<Credentials> = OnceLock::new();
        CREDENTIALS.get_or_init(|| {
            let key = SigningKey::new(None, K.as_bytes());
            let sign = |token_type: &str, issued: u64| {
                key.sign(claims_for("alice", token_type, issued, 3600))
                    .unwrap()
            };
            let j01 = sign("access", now());
            let unsigned = &j01[..j01.rfind('.').unwrap()];
            let encoded: String = j01
                .bytes()
                .enumerate()
                .map(|(i, b)| match i {
                    0..=2 => format!("%{b:02X}"),
                    _ => char::from(b).to_string(),
                })
                .collect();
            let map = BTreeMap::from([
                ("J09a", format!("{unsigned}.")),
                ("J15a", sign("refresh", now())),
                ("J14b", sign("access", now() - 4200)),
                ("J01%", encoded),
                ("SK", SK.into()),
                ("PK", PK.into()),
                ("CS", CS.into()),
                ("CSB", CSB.into()),
                ("J01", j01),
            ]);
            Credentials(map)
        })
    }

    /// Every secret value, to look for in answers and logs.
    fn secrets(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self.0.values().map(String::as_str).collect();
        all.push(K);
        all
    }
}

/// One row of the table.
#[derive(Debug, Clone)]
struct Case {
    id: String,
    config: String,
    method: String,
    target: Option<Vec<u8>>,
    headers: Vec<(String, Vec<u8>)>,
    expect: Vec<String>,
    note: String,
}

impl Case {
    fn status(&self) -> u16 {
        self.expect[0].parse().unwrap()
    }

    fn has(&self, flag: &str) -> bool {
        self.expect.iter().any(|e| e == flag)
    }
}

/// `<name>` placeholders and `<X*N>` repetitions, then `\r \n \t \\ \xHH` escapes.
fn expand(text: &str) -> Vec<u8> {
    support::expand_table(text, |name| Credentials::get().0.get(name).cloned())
}

fn cases() -> Vec<Case> {
    TABLE
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            assert!(cols.len() >= 4, "row needs 4 columns: {line}");
            let mut parts = cols[2].split(" | ");
            let (method, target) = parts.next().unwrap().split_once(' ').unwrap();
            let mut headers = Vec::new();
            for part in parts {
                let (count, header) = match part.strip_prefix('*') {
                    Some(counted) => {
                        let (n, h) = counted.split_once(' ').unwrap();
                        (Some(n.parse::<usize>().unwrap()), h)
                    }
                    None => (None, part),
                };
                let (name, value) = header.split_once(':').unwrap();
                let value = expand(value.strip_prefix(' ').unwrap_or(value));
                match count {
                    Some(n) => {
                        headers.extend((1..=n).map(|i| (format!("{name}{i}"), value.clone())))
                    }
                    None => headers.push((name.to_string(), value)),
                }
            }
            Case {
                id: cols[0].into(),
                config: cols[1].into(),
                method: method.into(),
                target: (target != "-").then(|| expand(target)),
                headers,
                expect: cols[3].split(' ').map(str::to_owned).collect(),
                note: cols.get(4).copied().unwrap_or_default().into(),
            }
        })
        .collect()
}

/// What a client and the upstream saw of one request.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    status: u16,
    code: Option<String>,
    location: Option<String>,
    /// The answer's body and headers as text, to look for secrets in.
    answer: String,
    /// The upstream's `:path` and headers (lower-case names), when the request went on.
    upstream: Option<(String, Vec<(String, String)>)>,
}

impl Seen {
    fn upstream_values(&self, name: &str) -> Vec<&str> {
        self.upstream
            .iter()
            .flat_map(|(_, headers)| headers.iter())
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

const IDENTITY: [(&str, &str); 4] = [
    ("user", "x-auth-user"),
    ("type", "x-auth-type"),
    ("role", "x-auth-role"),
    ("name", "x-auth-name"),
];

/// Checks `seen` against the row; returns what differs.
fn check(case: &Case, seen: &Seen) -> Result<(), String> {
    let fail = |what: String| Err(format!("{}: {what}\n  seen: {seen:?}", case.id));
    if seen.status != case.status() {
        return fail(format!(
            "status {} (expected {})",
            seen.status,
            case.status()
        ));
    }
    for secret in Credentials::get().secrets() {
        if seen.answer.contains(secret) {
            return fail("a secret or credential is in the answer".into());
        }
    }
    for expectation in &case.expect[1..] {
        let (key, value) = expectation.split_once('=').unwrap_or((expectation, ""));
        let ok = match key {
            "envoy" | "native" => true,
            "code" => seen.code.as_deref() == Some(value),
            "location" => seen.location.as_deref() == Some(value),
            "location^" => seen.location.as_ref().is_some_and(|l| l.starts_with(value)),
            "noid" => {
                seen.upstream.is_some()
                    && IDENTITY
                        .iter()
                        .all(|(_, h)| seen.upstream_values(h).is_empty())
            }
            "path" => seen.upstream.as_ref().is_some_and(|(p, _)| p == value),
            "gone" => seen.upstream.is_some() && seen.upstream_values(value).is_empty(),
            "kept" => !seen.upstream_values(value).is_empty(),
            identity => {
                let header = IDENTITY
                    .iter()
                    .find(|(k, _)| *k == identity)
                    .unwrap_or_else(|| panic!("{}: unknown expectation {expectation}", case.id))
                    .1;
                seen.upstream_values(header) == [value]
            }
        };
        if !ok {
            return fail(format!("expected {expectation}"));
        }
    }
    // A HEAD answer has no body.
    let has_body = case.method != "HEAD";
    if case.status() != 200
        && case.status() != 302
        && !case.has("envoy")
        && has_body
        && seen.code.is_none()
    {
        return fail("an error without a JSON code".into());
    }
    Ok(())
}

/// Runs a row through the decision, as Envoy would hand it the request.
fn decide_natively(config: &Config, case: &Case) -> Seen {
    let mut headers: Vec<(String, Vec<u8>)> = vec![(":method".into(), case.method.clone().into())];
    if let Some(target) = &case.target {
        headers.push((":path".into(), target.clone()));
    }
    headers.push((":authority".into(), b"api.example.com".to_vec()));
    headers.push((":scheme".into(), b"http".to_vec()));
    headers.extend(
        case.headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone())),
    );
    let decision = decide(config, &mut WorkerState::default(), &headers, now());
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    match decision.action {
        Action::Respond(response, _) => {
            let location = response
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("location"))
                .map(|(_, v)| v.clone());
            let code = serde_json::from_str::<Json>(&response.body)
                .ok()
                .and_then(|b| b["code"].as_str().map(str::to_owned));
            Seen {
                status: u16::try_from(response.status).unwrap(),
                code,
                location,
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
    Seen {
        status: response.status,
        code: response.code(),
        location: response.header("location").map(str::to_owned),
        answer: if upstream.is_some() {
            String::new()
        } else {
            let stable = response.headers.iter().filter(|(n, _)| n != "date");
            format!("{:?} {}", stable.collect::<Vec<_>>(), response.text())
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
    let cases = cases();
    assert!(cases.len() > 150, "{} rows", cases.len());
    let mut ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(before, ids.len(), "duplicate ids");
    for case in &cases {
        case.status();
        assert!(!case.has("envoy") || !case.has("native"), "{}", case.id);
    }
}

#[test]
fn catalogue_natively() {
    let cases = cases();
    let configs: BTreeMap<&str, Config> = ["A", "B", "C", "D", "E", "F"]
        .into_iter()
        .map(|name| {
            let text = config(name).to_string();
            (name, Config::parse(text.as_bytes(), &|_| None).unwrap())
        })
        .collect();
    let mut failures = Vec::new();
    let mut ran = 0;
    for case in cases.iter().filter(|c| !c.has("envoy")) {
        ran += 1;
        let seen = decide_natively(&configs[case.config.as_str()], case);
        if let Err(e) = check(case, &seen) {
            failures.push(format!("{e}\n  ({})", case.note));
        }
    }
    report(failures, ran);
}

#[test]
fn catalogue_through_envoy_on_two_workers() {
    let cases = cases();
    let mut envoys: BTreeMap<String, Envoy> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut answers: BTreeMap<&str, Seen> = BTreeMap::new();
    let mut ran = 0;
    for case in cases.iter().filter(|c| !c.has("native")) {
        let envoy = envoys.entry(case.config.clone()).or_insert_with(|| {
            let mut setup = Setup::new(config(&case.config));
            setup.concurrency = 2;
            Envoy::start(setup)
        });
        let mut request = Request::new(&case.method, case.target.clone().unwrap());
        request.headers.extend(case.headers.iter().cloned());
        request
            .headers
            .push(("X-Echo-Format".into(), b"json".to_vec()));
        ran += 1;
        // Each request is a new connection; sent three times, they meet both workers.
        let seen: Vec<Seen> = (0..3)
            .map(|_| seen_through_envoy(&envoy.send(&request)))
            .collect();
        if let Err(e) = check(case, &seen[0]) {
            failures.push(format!("{e}\n  ({})", case.note));
        } else if seen.iter().any(|s| *s != seen[0]) {
            failures.push(format!("{}: answers differ: {seen:?}", case.id));
        }
        answers.insert(case.id.as_str(), seen[0].clone());
    }
    // An unknown client and a wrong secret are told apart by nothing (SEC-04).
    assert_eq!(answers["SEC-04a"].answer, answers["SEC-04b"].answer);
    // Both workers answered (the filter logs each decision with the worker's thread id).
    let workers: std::collections::BTreeSet<String> = envoys["A"]
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
        for secret in Credentials::get().secrets() {
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
