//! Form bodies read by real parsers: every body the filter lets on (its form scanner finds no
//! credential field in it), no parser reads a credential field from. The parsers: Node's
//! `querystring` (split on `&`, and on `;`), `URLSearchParams` and busboy (urlencoded and
//! multipart), Python's `urllib.parse.parse_qsl` (on `&`, and on `;`) and the `email` package
//! (multipart, with its `compat32` and `HTTP` policies). The bodies: a hand list of spellings
//! and layouts, and every one of them with a byte deleted or inserted at each position
//! (quotes, separators, line ends, NUL...), so that near misses are compared too.

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::PathBuf;

use serde_json::{json, Value};
use tollgate_core::credential::form::FormScanner;
use tollgate_core::credential::spellings::CredentialNames;
use tollgate_core::credential::Locations;
use tollgate_core::request::form::classify;

const URLENCODED: &str = "application/x-www-form-urlencoded";
const MULTIPART: &str = "multipart/form-data; boundary=XyZ";

/// Names of the default configuration.
fn names() -> CredentialNames<'static> {
    CredentialNames::new(Locations {
        query_param: "access_token",
        cookie: "access_token",
    })
}

/// Whether the filter lets the body on.
fn lets_on(content_type: &str, body: &[u8]) -> bool {
    let Ok(Some(kind)) = classify(true, &[content_type.as_bytes()], &[]) else {
        return false;
    };
    let mut scanner = FormScanner::new(&kind);
    scanner.push(names(), body).is_ok() && scanner.end(names()).is_ok()
}

/// A field name a server reads as a credential: in any case, trimmed, `[...]` cut.
fn is_credential(name: &str) -> bool {
    let name = name.trim().to_ascii_lowercase();
    let name = name.split('[').next().unwrap_or_default().trim();
    ["access_token", "client_id", "client_secret"].contains(&name)
}

const SPELLINGS: &[&str] = &[
    "access_token",
    "ACCESS_TOKEN",
    "Access_Token",
    "access_token[]",
    "access_token[0]",
    " access_token",
    "access_token ",
    "%61ccess_token",
    "access%5Ftoken",
    "access%255Ftoken",
    "access_token%00",
    "client_secret",
    "client_id",
    "access_tokens",
    "token",
];

fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    let mut bodies: Vec<(&str, String)> = Vec::new();
    for name in SPELLINGS {
        for template in [
            "{n}=t",
            "a=1&{n}=t",
            "a=1;{n}=t",
            "{n}",
            "a=1&&{n}=x&b",
            "a=b%26{n}%3Dx",
        ] {
            bodies.push((URLENCODED, template.replace("{n}", name)));
        }
        let raw = name.replace("%5F", "_").replace("%61", "a");
        for disposition in [
            format!("form-data; name=\"{raw}\""),
            format!("form-data; name={raw}"),
            format!("form-data; NAME=\"{raw}\""),
            format!("form-data; name*=UTF-8''{name}"),
            format!("form-data; name=\"x\"; filename=\"{raw}\""),
            format!("form-data; filename=\"a\"; name=\"{raw}\""),
        ] {
            for eol in ["\r\n", "\n"] {
                bodies.push((
                    MULTIPART,
                    format!(
                        "--XyZ{eol}Content-Disposition: form-data; name=\"a\"{eol}{eol}1{eol}\
                         --XyZ{eol}Content-Disposition: {disposition}{eol}{eol}t{eol}--XyZ--{eol}"
                    ),
                ));
            }
        }
    }
    bodies.push((
        MULTIPART,
        "--XyZ\r\ncontent-disposition: form-data;\r\n\tname=\"access_token\"\r\n\r\nt\r\n--XyZ--"
            .into(),
    ));
    bodies.push((
        MULTIPART,
        "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name*0=\"access\"; name*1=\"_token\"\r\n\r\nt\r\n--XyZ--".into(),
    ));
    // Bodies Django or Werkzeug read a credential from, each with its Content-Type.
    let secret = "Content-Disposition: form-data; name=\"access_token\"\r\n\r\nSECRET\r\n";
    for (content_type, body) in [
        ("multipart/form-data; boundary=XX", format!("junk--XX\r\n{secret}--XX--\r\n")),
        (
            "multipart/form-data; boundary=XX",
            format!(
                "--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nfoo--XX\r\n{secret}--XX--\r\n"
            ),
        ),
        ("multipart/form-data; boundary=XX", format!("--XX{secret}--XX--\r\n")),
        ("multipart/form-data; boundary=XX", format!("--XX--\r\n{secret}--XX--\r\n")),
        (
            "multipart/form-data; boundary=BBB; boundary*=utf-8''AAA",
            format!("--AAA\r\n{secret}--AAA--\r\n"),
        ),
        (
            "multipart/form-data; xboundary=AAA; boundary=BBB",
            format!("--AAA\r\n{secret}--AAA--\r\n"),
        ),
        (
            "multipart/form-data; boundary=BBB; x=1, boundary=AAA",
            format!("--AAA\r\n{secret}--AAA--\r\n"),
        ),
        (
            "multipart/form-data; boundary=XX; charset*=utf-16le",
            format!("--XX\r\n{secret}--XX--\r\n"),
        ),
        ("application/x-www-form-urlencoded foo", "access_token=SECRET".into()),
        (
            "multipart/form-data; boundary=XX",
            "--XX\r\nContent-Disposition: form-data; name=\"x\"\n; name=\"access_token\"\r\n\r\nSECRET\r\n--XX--\r\n".into(),
        ),
        (
            "multipart/form-data; boundary=XX",
            "--XX\r\nContent-Disposition: form-data; name*=utf-16le''a%00c%00c%00e%00s%00s%00_%00t%00o%00k%00e%00n%00\r\n\r\nSECRET\r\n--XX--\r\n".into(),
        ),
    ] {
        bodies.push((content_type, body));
    }
    let mut all: Vec<(&str, Vec<u8>)> = Vec::new();
    for (content_type, body) in bodies {
        let body = body.into_bytes();
        // Near misses of the plain spellings only: enough to compare, quick to read.
        let plain = [&b"=\"access_token\""[..], b"&access_token="];
        let mutate = plain.iter().any(|p| body.windows(p.len()).any(|w| w == *p));
        for at in (0..=body.len()).filter(|_| mutate) {
            if at < body.len() {
                let mut deleted = body.clone();
                deleted.remove(at);
                all.push((content_type, deleted));
            }
            for inserted in [b' ', b'\n', b'"', b';', 0] {
                let mut grown = body.clone();
                grown.insert(at, inserted);
                all.push((content_type, grown));
            }
        }
        all.push((content_type, body));
    }
    all.sort();
    all.dedup();
    all
}

/// Runs a reader script on the bodies: per body, parser name to the field names it found.
fn read_with(program: &str, script: &str, input: &str) -> Vec<Value> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/forms")
        .join(script);
    let hint = format!(" on {} (make test-tools installs busboy)", script.display());
    let out = support::stdout_of(program, [&script], input, &hint);
    serde_json::from_slice::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
#[cfg_attr(
    not(feature = "envoy-tests"),
    ignore = "needs python3, node and tests/forms/node_modules: make e2e"
)]
fn no_parser_reads_a_credential_in_a_body_the_filter_lets_on() {
    let corpus = corpus();
    let encode = |body: &[u8]| body.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let input: Vec<Value> = corpus
        .iter()
        .map(|(content_type, body)| json!({"content_type": content_type, "body": encode(body)}))
        .collect();
    let input = serde_json::to_string(&input).unwrap();
    let node = read_with("node", "readers.mjs", &input);
    let python = read_with("python3", "readers.py", &input);
    let (mut failures, mut refused, mut found_by_parsers) = (Vec::new(), 0, 0);
    for (i, (content_type, body)) in corpus.iter().enumerate() {
        let mut readers: Vec<(String, String)> = Vec::new();
        for readings in [&node[i], &python[i]] {
            for (parser, names) in readings.as_object().unwrap() {
                for name in names.as_array().into_iter().flatten() {
                    let name = name.as_str().unwrap_or_default();
                    if is_credential(name) {
                        readers.push((parser.clone(), name.to_owned()));
                    }
                }
            }
        }
        found_by_parsers += usize::from(!readers.is_empty());
        if !lets_on(content_type, body) {
            refused += 1;
        } else if !readers.is_empty() {
            failures.push(format!(
                "{content_type}: {:?} let on, read as {readers:?}",
                String::from_utf8_lossy(body)
            ));
        }
    }
    println!(
        "form differential: {} bodies, {refused} refused by the filter, {found_by_parsers} in \
         which some parser reads a credential, {} let on although a parser reads one",
        corpus.len(),
        failures.len()
    );
    assert!(
        found_by_parsers > 1000,
        "the parsers read too few credentials to compare"
    );
    assert!(
        failures.is_empty(),
        "{}",
        failures[..failures.len().min(30)].join("\n")
    );
}
