//! Differential check of path readings: every path the tests know (the hostile table, the
//! fuzz corpora, a hand list of known-tricky ones) is read by real parsers that sit behind
//! proxies — Python's `urllib` + `posixpath`, Node's WHATWG `URL`, a chain of two decoding
//! hops, and Envoy's own path normalisation on a second hop — and routers that match paths
//! case-insensitively (Express, Koa with @koa/router, ASP.NET Core's `OrdinalIgnoreCase`
//! emulated in Python), whose reading is the handler a path reaches; the filter's mode for the
//! original path must be at least as strict as the mode of every reading they produce.
//!
//! Mode order: none < optional < required < refused (the filter answers 400). A path the
//! filter refuses is the strictest already; a reading the parser itself rejects (an exception,
//! a 400 from Envoy, a redirect the client must follow through the filter again) is skipped. A
//! reading is judged with the same function as the original path (`path::readings`, then
//! `policy_for_readings`); a reading the filter cannot normalise (a raw non-ASCII or control
//! character after decoding) is judged as it is, since that text is the route upstream.

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{path, table, Config, Envoy, Mode};

/// Known-tricky paths, beyond the table and the corpora.
const TRICKY: &[&str] = &[
    "/admin//..//public/x",
    "/admin/../public/x",
    "/public/..%2Fadmin",
    "/public/..%2fadmin",
    "/public%2F..%2Fadmin",
    "/public%252F..%252Fadmin",
    "/public/%252e%252e/admin",
    "/public/%25%32%65%25%32%65/admin",
    "/public/..%252Fadmin",
    "/admin;x/..",
    "/admin;x/../",
    "/public;x/../admin",
    "/public/..;/admin",
    "/public/%2e%2e/admin",
    "/public/%2E%2E/admin",
    "/public/.%2e/admin",
    "/public/..\\admin",
    "/public/..%5Cadmin",
    "/public/..%255Cadmin",
    "/public\\..\\admin",
    "//admin",
    "//admin/x",
    "///admin",
    "//public/../admin",
    "//public/admin",
    "//login/admin",
    "/public//../admin",
    "/public//..//admin",
    "/public/x//../../admin",
    "/a/b%2F../../admin%2Fx",
    "/a/b%2F../../admin",
    "/public/x%2F..%2F..%2Fadmin",
    "/%2Fadmin",
    "/%2F%2Fadmin",
    "/%2fpublic/../admin",
    "/admin%2F",
    "/admin%2Fx",
    "/admin%252Fx",
    "/public%3F/../admin",
    "/public%253F/../../admin",
    "/public%23/../admin",
    "/public%2523/../../admin",
    "/login/..",
    "/login/.",
    "/login/",
    "/login%2F",
    "/login;x",
    "/login%3Bx",
    "/login/%2e",
    "/feed/..%2Fadmin",
    "/feed/%2e%2e%2fadmin",
    "/public/%2e%2e%2fadmin",
    "/public/%2e%2e%5cadmin",
    "/%61dmin",
    "/%2561dmin",
    "/adm%2569n",
    "/public/%252e%252e%252fadmin",
    "/public/./../admin",
    "/public/.../admin",
    "/public/..../admin",
    "/public/. ./admin",
    "/public/%20../admin",
    "/public/..%20/admin",
    "/public/..%00/admin",
    "/public/..%2500/admin",
    "/public/%u002e%u002e/admin",
    "/public/%c0%ae%c0%ae/admin",
    "/public/%25c0%25ae%25c0%25ae/admin",
    "/admin.",
    "/admin..",
    "/admin/",
    "/admin%09",
    "/admin%20",
    "/ADMIN",
    "/Admin",
    "/Admin/",
    "/aDmIn/users",
    "/ADMIN/users",
    "/%41DMIN",
    "/%41dm%49n/x",
    "/adm%C4%B1n/x",
    "/ADM%C4%B0N",
    "/PUBLIC/x",
    "/Public/../ADMIN",
    "/LOGIN",
    "/Login/",
    "/FEED/x",
    "/reports/q1",
    "/REPORTS",
    "/Reports/x",
    "/rep%4Frts",
];

/// The rules of both configurations (one spelled with capitals).
fn rules() -> Value {
    json!([
        {"prefix": "/public", "mode": "none"},
        {"prefix": "/admin", "mode": "required"},
        {"path": "/login", "mode": "none"},
        {"prefix": "/feed", "mode": "optional"},
        {"prefix": "/Reports", "mode": "required"}
    ])
}

/// The rule configurations the readings are judged against.
fn configs() -> Vec<(&'static str, Config)> {
    ["none", "required"]
        .into_iter()
        .map(|default| {
            let text = json!({
                "secrets": [{"key": support::K}],
                "default_mode": default,
                "rules": rules()
            })
            .to_string();
            let name = match default {
                "none" => "default-none",
                _ => "default-required",
            };
            (name, Config::parse(text.as_bytes(), &|_| None).unwrap())
        })
        .collect()
}

/// How strictly a path is treated; later variants are stricter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Strictness {
    None,
    Optional,
    Required,
    Refused,
}

impl From<Mode> for Strictness {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::None => Strictness::None,
            Mode::Optional => Strictness::Optional,
            Mode::Required => Strictness::Required,
        }
    }
}

impl std::fmt::Display for Strictness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Strictness::None => "none",
            Strictness::Optional => "optional",
            Strictness::Required => "required",
            Strictness::Refused => "refused(400)",
        })
    }
}

/// The filter's treatment of a path (a request target's path, without the query).
fn strictness(config: &Config, raw: &[u8]) -> Strictness {
    match path::readings(raw) {
        Ok(readings) => config
            .rules
            .policy_for_readings(b"GET", &readings)
            .mode
            .into(),
        Err(_) => Strictness::Refused,
    }
}

/// The treatment a parser's reading gets: the same function; a reading the filter cannot
/// normalise is judged as the text it is (the parser has normalised it already).
fn reading_strictness(config: &Config, reading: &str) -> (Strictness, bool) {
    match path::readings(reading.as_bytes()) {
        Ok(readings) => (
            config
                .rules
                .policy_for_readings(b"GET", &readings)
                .mode
                .into(),
            false,
        ),
        Err(_) => (
            config.rules.policy_for_path(b"GET", reading).mode.into(),
            true,
        ),
    }
}

/// `<X*N>` repetitions, a fixed stand-in for credential placeholders, then the table's escapes.
fn expand(text: &str) -> Vec<u8> {
    support::expand_table(text, |_| Some("credential".into()))
}

/// Every path to check, each once, with where it first came from.
fn paths() -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<(String, Vec<u8>)> = Vec::new();
    for row in table::rows() {
        if let Some(target) = &row.request.target {
            all.push((format!("table {}", row.id), expand(target)));
        }
    }
    let corpus = support::manifest_dir().join("fuzz/corpus");
    for (name, data) in corpus_files(&corpus.join("path")) {
        all.push((format!("fuzz/corpus/path/{name}"), data));
    }
    // A decision input is a request: its first line is a method letter, then the target.
    for (name, data) in corpus_files(&corpus.join("decision")) {
        let first = data.split(|&b| b == b'\n').next().unwrap_or_default();
        match first.split_first() {
            Some((b'C', _)) => {}
            Some((_, target)) => all.push((format!("fuzz/corpus/decision/{name}"), target.into())),
            None => {}
        }
    }
    for tricky in TRICKY {
        all.push(("hand list".into(), tricky.as_bytes().to_vec()));
    }
    let mut seen = BTreeSet::new();
    all.into_iter()
        .map(|(origin, target)| (origin, path::split_target(&target).0.to_vec()))
        .filter(|(_, p)| seen.insert(p.clone()))
        .collect()
}

fn corpus_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: empty corpus", dir.display());
    files
}

/// The paths some configuration does not refuse: only these can be read less strictly. (The
/// filter refuses a path whatever the rules, so one configuration decides.) All are ASCII.
fn readable_paths() -> (usize, Vec<(String, String)>) {
    let all = paths();
    let total = all.len();
    let readable = all
        .into_iter()
        .filter(|(_, p)| path::readings(p).is_ok())
        .map(|(origin, p)| (origin, String::from_utf8(p).unwrap()))
        .collect();
    (total, readable)
}

/// What each parser read, per path (`None`: the parser rejected it).
type ParserReadings = BTreeMap<String, Vec<Option<String>>>;

/// Runs `program args`, hands it `input` on stdin, and parses its stdout as parser readings.
fn run_batch(program: &str, args: &[&str], input: &str) -> ParserReadings {
    let out = support::stdout_of(program, args, input, "");
    let value: Value = serde_json::from_slice(&out).unwrap();
    value
        .as_object()
        .unwrap()
        .iter()
        .map(|(parser, list)| {
            let list = list
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect();
            (parser.clone(), list)
        })
        .collect()
}

/// Python readings: `urlsplit` then `normpath`, with `unquote` once and twice before
/// `normpath`, and a chain of two hops that each cut the query, decode and normalise.
const PYTHON: &str = r#"
import json, posixpath, re, sys
from urllib.parse import urlsplit, unquote

paths = json.load(sys.stdin)

def norm(p):
    return posixpath.normpath(p or "/")

def cut(p):
    return re.split(r"[?#]", p, maxsplit=1)[0]

def attempt(f, p):
    try:
        return f(p)
    except Exception:
        return None

parsers = {
    "py-urlsplit-normpath": lambda p: norm(urlsplit(p).path),
    "py-urlsplit-unquote-normpath": lambda p: norm(unquote(urlsplit(p).path)),
    "py-urlsplit-unquote2-normpath": lambda p: norm(unquote(unquote(urlsplit(p).path))),
    "chain-decode2": lambda p: norm(cut(unquote(norm(cut(unquote(p)))))),
}
json.dump({name: [attempt(f, p) for p in paths] for name, f in parsers.items()}, sys.stdout)
"#;

/// Node readings: WHATWG `URL` against a base, with `decodeURIComponent` before (once and
/// twice) or after it.
const NODE: &str = r#"
const paths = JSON.parse(require("fs").readFileSync(0, "utf8"));
const base = "http://h";
const attempt = (f, p) => { try { return f(p); } catch (e) { return null; } };
const parsers = {
  "node-url": (p) => new URL(p, base).pathname,
  "node-decode-url": (p) => new URL(decodeURIComponent(p), base).pathname,
  "node-decode2-url": (p) => new URL(decodeURIComponent(decodeURIComponent(p)), base).pathname,
  "node-url-decode": (p) => decodeURIComponent(new URL(p, base).pathname),
};
const out = {};
for (const [name, f] of Object.entries(parsers)) out[name] = paths.map((p) => attempt(f, p));
process.stdout.write(JSON.stringify(out));
"#;

/// Compares each configuration's mode for each path with the modes of its readings; returns
/// the failures and how many (path, parser) readings were compared.
fn compare(paths: &[(String, String)], readings: &ParserReadings) -> (Vec<String>, usize) {
    let mut failures = Vec::new();
    let mut compared = 0;
    let mut as_is = 0;
    for (name, config) in configs() {
        for (parser, list) in readings {
            assert_eq!(list.len(), paths.len(), "{parser}: one reading per path");
            for ((origin, original), reading) in paths.iter().zip(list) {
                let Some(reading) = reading else { continue };
                compared += 1;
                let mine = strictness(&config, original.as_bytes());
                let (theirs, judged_as_is) = reading_strictness(&config, reading);
                as_is += usize::from(judged_as_is);
                if theirs > mine {
                    failures.push(format!(
                        "[{name}] {parser}: {} ({origin}) is read as {}{}: filter {mine} < reading {theirs}",
                        show(original),
                        show(reading),
                        if judged_as_is { " (judged as is)" } else { "" },
                    ));
                }
            }
        }
    }
    if as_is > 0 {
        summary(&format!(
            "({as_is} readings the filter cannot normalise were judged as they are)"
        ));
    }
    (failures, compared)
}

/// A path for a report: at most 160 characters, with its length when cut.
fn show(path: &str) -> String {
    if path.len() <= 160 {
        format!("{path:?}")
    } else {
        let cut: String = path.chars().take(120).collect();
        format!("{cut:?}… ({} bytes)", path.len())
    }
}

/// Prints a line even when the test passes (the test harness captures `println!`).
fn summary(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Writes every failure to a file, and fails with the first ones.
fn report(label: &str, failures: &[String]) {
    let file =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("path-differential-{label}.txt"));
    std::fs::write(&file, failures.join("\n")).unwrap();
    const SHOWN: usize = 80;
    let more = failures.len().saturating_sub(SHOWN);
    assert!(
        failures.is_empty(),
        "{} readings are less strict than the filter's reading of the original path \
         (all in {}):\n{}{}",
        failures.len(),
        file.display(),
        failures
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n"),
        if more > 0 {
            format!("\n… and {more} more")
        } else {
            String::new()
        }
    );
}

#[test]
fn the_path_list_holds_every_source() {
    let all = paths();
    for source in [
        "table",
        "fuzz/corpus/path",
        "fuzz/corpus/decision",
        "hand list",
    ] {
        assert!(
            all.iter().any(|(origin, _)| origin.starts_with(source)),
            "no path from {source}"
        );
    }
    // The checks below can fail: a reading that goes around a rule is caught.
    let (_, config) = &configs()[0];
    assert_eq!(strictness(config, b"/public/x"), Strictness::None);
    assert_eq!(
        reading_strictness(config, "/admin/x"),
        (Strictness::Required, false)
    );
    let (failures, compared) = compare(
        &[("self-test".into(), "/public/x".into())],
        &BTreeMap::from([("stub".into(), vec![Some("/admin/x".into())])]),
    );
    assert_eq!((failures.len(), compared), (2, 2), "{failures:?}");
}

#[test]
#[cfg_attr(
    not(feature = "envoy-tests"),
    ignore = "needs python3 and node: make e2e"
)]
fn python_and_node_read_no_path_less_strictly_than_the_filter() {
    let started = Instant::now();
    let (total, paths) = readable_paths();
    let input = serde_json::to_string(&paths.iter().map(|(_, p)| p).collect::<Vec<_>>()).unwrap();
    let mut readings = run_batch("python3", &["-c", PYTHON], &input);
    readings.extend(run_batch("node", &["-e", NODE], &input));
    let rejected: usize = readings.values().flatten().filter(|r| r.is_none()).count();
    let (failures, compared) = compare(&paths, &readings);
    summary(&format!(
        "path differential (Python, Node): {total} distinct paths, {} refused by the filter \
         (strictest already), {} × {} parsers × {} configurations = {compared} readings \
         compared ({rejected} path readings rejected by the parser), {} less strict, {:.1} s",
        total - paths.len(),
        paths.len(),
        readings.len(),
        configs().len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    ));
    report("python-node", &failures);
}

#[path = "path_differential/routers.rs"]
mod routers;
