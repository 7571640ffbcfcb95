//! The hostile-input table (`tests/data/security-cases.tsv`) through `tollgate test`: every
//! row the command can express must get the row's status, code and identity, the answers
//! `tests/security_cases.rs` holds the filter to natively and through Envoy. So the command
//! and Envoy answer alike.
//!
//! The configurations are `cli/tests/data/security-configs.json` (a copy of
//! `tests/support/table.rs`'s `ConfigName::json()`). This file reads the table itself, the
//! same columns `tests/security_cases.rs` reads.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tollgate_core::verify::token::{claims_for, SigningKey};

use common::{root, scratch, tollgate};

const NOW: u64 = 1_800_000_000;

/// One row: id, configuration, request, expectation.
struct Row {
    id: String,
    config: String,
    request: String,
    expect: String,
}

fn rows() -> Vec<Row> {
    let text = std::fs::read_to_string(root().join("tests/data/security-cases.tsv")).unwrap();
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let mut cols = line.split('\t').map(str::to_owned);
            let mut next = || cols.next().unwrap_or_default();
            Row {
                id: next(),
                config: next(),
                request: next(),
                expect: next(),
            }
        })
        .collect()
}

/// The placeholders' values, minted for [`NOW`] as tests/support/table.rs mints them.
fn placeholders(fixture: &Value) -> BTreeMap<String, String> {
    let text = |name: &str| fixture["placeholders"][name].as_str().unwrap().to_owned();
    let key = SigningKey::new(None, text("K").as_bytes());
    let sign = |token_type: &str, issued: u64| {
        key.sign(claims_for("alice", token_type, issued, 3600))
            .unwrap()
    };
    let j01 = sign("access", NOW);
    let unsigned = j01[..j01.rfind('.').unwrap()].to_owned();
    let encoded: String = j01
        .bytes()
        .enumerate()
        .map(|(i, b)| {
            if i < 3 {
                format!("%{b:02X}")
            } else {
                char::from(b).to_string()
            }
        })
        .collect();
    BTreeMap::from([
        ("J09a".into(), format!("{unsigned}.")),
        ("J15a".into(), sign("refresh", NOW)),
        ("J14b".into(), sign("access", NOW - 4200)),
        ("J01%".into(), encoded),
        ("SK".into(), text("SK")),
        ("PK".into(), text("PK")),
        ("CS".into(), text("CS")),
        ("CSB".into(), text("CSB")),
        ("J01".into(), j01),
    ])
}

/// The table's text as bytes: `<X*N>` repeated, placeholders, then `\r \n \t \\ \xHH`.
fn expand(text: &str, values: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else {
            out.push('<');
            rest = after;
            continue;
        };
        let inner = &after[..close];
        let repeated = inner
            .rsplit_once('*')
            .and_then(|(u, n)| Some(u.repeat(n.parse::<usize>().ok()?)));
        match repeated.or_else(|| values.get(inner).cloned()) {
            Some(value) => out.push_str(&value),
            None => out.push_str(&format!("<{inner}>")),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    unescape(&out)
}

fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            match bytes[i + 1] {
                b'r' => out.push(b'\r'),
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'\\' => out.push(b'\\'),
                b'x' => {
                    out.push(
                        u8::from_str_radix(std::str::from_utf8(&bytes[i + 2..i + 4]).unwrap(), 16)
                            .unwrap(),
                    );
                    i += 2;
                }
                other => panic!("unknown escape \\{}", char::from(other)),
            }
            i += 2;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Text as a YAML double-quoted scalar: every character outside printable ASCII escaped.
fn quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c if u32::from(c) <= 0xFFFF => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push_str(&format!("\\U{:08X}", u32::from(c))),
        }
    }
    out.push('"');
    out
}

/// The row as a case of a cases file, or why the command cannot express it.
fn case(row: &Row, values: &BTreeMap<String, String>) -> Result<String, String> {
    let text = |t: &str| {
        String::from_utf8(expand(t, values))
            .map_err(|_| "bytes that are not UTF-8 (a cases file holds text)".to_owned())
    };
    let mut parts = row.request.split(" | ");
    let (method, target) = parts.next().unwrap().split_once(' ').unwrap();
    let target = if target == "-" {
        String::new()
    } else {
        text(target)?
    };
    let mut headers = vec![("Host".to_owned(), "api.example.com".to_owned())];
    for part in parts {
        let (repeat, header) = match part.strip_prefix('*') {
            Some(counted) => {
                let (n, h) = counted.split_once(' ').unwrap();
                (Some(n.parse::<usize>().unwrap()), h)
            }
            None => (None, part),
        };
        let (name, value) = header.split_once(':').unwrap();
        let value = text(value.strip_prefix(' ').unwrap_or(value))?;
        match repeat {
            Some(n) => headers.extend((1..=n).map(|i| (format!("{name}{i}"), value.clone()))),
            None => headers.push((name.to_owned(), value)),
        }
    }
    let mut words = row.expect.split(' ');
    let status = words.next().unwrap();
    let mut expect = vec![format!("status: {status}")];
    let mut upstream = Vec::new();
    for word in words {
        let (key, value) = word.split_once('=').unwrap_or((word, ""));
        match key {
            "envoy" => return Err("Envoy answers before the filter (an envoy row)".into()),
            "code" | "user" | "type" | "role" | "name" | "location" => {
                expect.push(format!("{key}: {}", quoted(value)))
            }
            "path" => expect.push(format!("upstream_path: {}", quoted(value))),
            "gone" => upstream.push(format!("{}: null", quoted(value))),
            "noid" => {
                for h in ["x-auth-user", "x-auth-type", "x-auth-role", "x-auth-name"] {
                    upstream.push(format!("{h}: null"));
                }
            }
            // challenge, location^, kept, native: what `expect` does not hold.
            _ => {
                let header = key.strip_prefix("upstream:");
                let value = String::from_utf8(unescape(value)).ok();
                if let (Some(h), Some(v)) = (header, value) {
                    upstream.push(format!("{}: {}", quoted(h), quoted(&v)));
                }
            }
        }
    }
    if !upstream.is_empty() {
        expect.push(format!("upstream_headers: {{{}}}", upstream.join(", ")));
    }
    let headers: Vec<String> = headers
        .iter()
        .map(|(n, v)| format!("{{{}: {}}}", quoted(n), quoted(v)))
        .collect();
    Ok(format!(
        "- name: {}\n  request:\n    method: {}\n    target: {}\n    headers: [{}]\n  expect: {{{}}}\n",
        row.id,
        quoted(method),
        quoted(&target),
        headers.join(", "),
        expect.join(", ")
    ))
}

#[test]
fn every_expressible_row_gets_the_rows_answer() {
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("cli/tests/data/security-configs.json")).unwrap(),
    )
    .unwrap();
    let values = placeholders(&fixture);
    let dir = scratch("table");
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    let mut skipped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let all = rows();
    for row in &all {
        match case(row, &values) {
            Ok(case) => files.entry(row.config.clone()).or_default().push_str(&case),
            Err(reason) => skipped.entry(reason).or_default().push(row.id.clone()),
        }
    }
    let mut ran = 0;
    let mut failures = Vec::new();
    for (name, cases) in &files {
        let config = dir.join(format!("config-{name}.json"));
        let plugin = fixture["configs"][name.as_str()].clone();
        assert_ne!(
            plugin,
            json!(null),
            "no configuration {name} in the fixture"
        );
        std::fs::write(&config, plugin.to_string()).unwrap();
        let file = dir.join(format!("cases-{name}.yaml"));
        std::fs::write(&file, cases).unwrap();
        let now = NOW.to_string();
        let run = tollgate(&[
            "test",
            "--config",
            config.to_str().unwrap(),
            "--now",
            &now,
            file.to_str().unwrap(),
        ]);
        let count = cases.matches("\n- name: ").count() + 1;
        ran += count;
        let summary = format!("{count} passed, 0 failed");
        if run.status != 0 || !run.stdout.contains(&summary) {
            failures.push(format!(
                "configuration {name} (exit {}):\n{}{}",
                run.status, run.stdout, run.stderr
            ));
        }
    }
    let skipped_count: usize = skipped.values().map(Vec::len).sum();
    println!(
        "security table through tollgate test: {ran} rows run, {skipped_count} skipped of {}",
        all.len()
    );
    for (reason, ids) in &skipped {
        println!("  skipped {} ({reason}): {}", ids.len(), ids.join(" "));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(ran + skipped_count, all.len());
    assert!(
        skipped_count * 10 <= all.len(),
        "{skipped_count} of {} rows skipped",
        all.len()
    );
}
