//! Two builds of the module, side by side: every row of the hostile-input table, and
//! mutations of each, sent to an Envoy running the built `.wasm` and to one running another
//! build (`$TOLLGATE_BASELINE_WASM`, such as the module of the last release); what a client
//! and the upstream see must be the same. For changes that must not change behaviour
//! (`make differential BASE=<git revision>`, which builds that revision's module).

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::PathBuf;

use support::table::{self, expand, ConfigName, Only};
use support::{Envoy, Request, Response, Setup};

/// What a client and the upstream saw of one request.
#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    /// The answer's headers (without `date` and the upstream's timing), sorted.
    headers: Vec<(String, String)>,
    body: String,
    /// The upstream's `:path` and headers, when the request went on.
    upstream: Option<(String, Vec<(String, String)>)>,
}

fn seen(response: &Response) -> Seen {
    let echoed = response
        .json()
        .filter(|j| response.status == 200 && j["path"].is_string() && j["headers"].is_array());
    let upstream = echoed.map(|j| {
        let mut headers: Vec<(String, String)> = j["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| {
                (
                    pair[0].as_str().unwrap_or_default().to_ascii_lowercase(),
                    pair[1].as_str().unwrap_or_default().to_owned(),
                )
            })
            .filter(|(n, _)| !matches!(n.as_str(), "x-request-id" | "x-echo-format"))
            .collect();
        headers.sort();
        (j["path"].as_str().unwrap().to_owned(), headers)
    });
    let mut headers: Vec<(String, String)> = response
        .headers
        .iter()
        .filter(|(n, _)| {
            !matches!(
                n.as_str(),
                "date" | "x-envoy-upstream-service-time" | "content-length"
            )
        })
        .cloned()
        .collect();
    headers.sort();
    Seen {
        status: response.status,
        headers,
        body: if upstream.is_some() {
            String::new()
        } else {
            response.text()
        },
        upstream,
    }
}

/// The request and the mutations sent beside it: the ways of the seams (case, a trailing
/// slash, a dot segment, a parameter, a form body, a second credential, a browser).
fn mutations(request: &Request) -> Vec<(&'static str, Request)> {
    let target = request.target.clone();
    let split = target
        .iter()
        .position(|b| *b == b'?')
        .unwrap_or(target.len());
    let (path, query) = target.split_at(split);
    let with_target = |target: Vec<u8>| Request {
        target,
        ..request.clone()
    };
    let joined = |path: &[u8], query: &[u8]| [path, query].concat();
    let mut out = vec![
        ("as is", request.clone()),
        (
            "upper case",
            with_target(joined(&path.to_ascii_uppercase(), query)),
        ),
        (
            "trailing slash",
            with_target(joined(&[path, b"/"].concat(), query)),
        ),
        (
            "dot segment",
            with_target(joined(&[b"/.", path].concat(), query)),
        ),
        (
            "parameter",
            with_target(joined(&[path, b";x"].concat(), query)),
        ),
        ("query token", {
            let sep: &[u8] = if query.is_empty() { b"?" } else { b"&" };
            with_target([&target[..], sep, b"access_token=abc.def.ghi"].concat())
        }),
        ("browser", request.clone().header("Accept", "text/html")),
        (
            "second bearer",
            request.clone().header("Authorization", "Bearer x.y.z"),
        ),
        (
            "head",
            Request {
                method: "HEAD".into(),
                ..request.clone()
            },
        ),
    ];
    if request.method == "GET" || request.method == "POST" {
        out.push((
            "form post",
            Request {
                method: "POST".into(),
                ..request.clone()
            }
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body_text("a=1&access_token=abc"),
        ));
    }
    out
}

#[test]
#[ignore = "compares two builds: make differential BASE=<git revision>"]
fn both_builds_answer_every_row_and_mutation_alike() {
    let baseline = std::env::var_os("TOLLGATE_BASELINE_WASM")
        .map(PathBuf::from)
        .expect("$TOLLGATE_BASELINE_WASM: the module to compare with");
    let rows = table::rows();
    let mut differences = Vec::new();
    let mut sent = 0;
    for config in ConfigName::ALL {
        let start = |module: Option<PathBuf>| {
            let mut setup = Setup::new(config.json());
            setup.module = module;
            Envoy::start(setup)
        };
        let (current, base) = (start(None), start(Some(baseline.clone())));
        for row in rows
            .iter()
            .filter(|r| r.config == config && r.expect.only != Some(Only::Native))
        {
            let request = row.request.build(expand).header("X-Echo-Format", "json");
            for (mutation, request) in mutations(&request) {
                sent += 1;
                let (now, then) = (seen(&current.send(&request)), seen(&base.send(&request)));
                if now != then {
                    differences.push(format!(
                        "{} ({mutation}):\n  this build: {now:?}\n  baseline:   {then:?}",
                        row.id
                    ));
                }
            }
        }
    }
    eprintln!("{sent} requests compared");
    assert!(sent > 1000, "only {sent} requests");
    assert!(
        differences.is_empty(),
        "{} of {sent} requests differ:\n{}",
        differences.len(),
        differences.join("\n")
    );
}
