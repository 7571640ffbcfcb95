//! The hostile-input table (`tests/data/security-cases.tsv`) through `tollgate test`: every
//! row the command can express must get the row's status, code and identity, the answers
//! `core/tests/security_cases.rs` and `tests/e2e_security_cases.rs` hold the filter to
//! natively and through Envoy. So the command and Envoy answer alike.
//!
//! The rows, their configurations and placeholders come from the testkit crate, the same
//! reader those files use.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeMap;

use tollgate_testkit::table::{self, Check, ConfigName, IdentityField, Only, Placeholders, Row};
use tollgate_testkit::{expand_table, unescape, NOW};

use common::{scratch, tollgate};

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
fn case(row: &Row, values: &Placeholders) -> Result<String, String> {
    if row.expect.only == Some(Only::Envoy) {
        return Err("Envoy answers before the filter (an envoy row)".into());
    }
    let text = |bytes: Vec<u8>| {
        String::from_utf8(bytes)
            .map_err(|_| "bytes that are not UTF-8 (a cases file holds text)".to_owned())
    };
    let (target, lines) = row
        .request
        .expanded(|t| expand_table(t, |name| values.value(name)));
    let mut headers = Vec::new();
    for (name, value) in lines {
        headers.push((name, text(value)?));
    }
    // A row's first `Host` line replaces the default one.
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        headers.insert(0, ("Host".to_owned(), "api.example.com".to_owned()));
    }
    let mut expect = vec![format!("status: {}", row.expect.status)];
    let mut upstream = Vec::new();
    for check in &row.expect.checks {
        match check {
            Check::Code(code) => expect.push(format!("code: {}", quoted(code))),
            Check::Identity(field, value) => {
                let key = match field {
                    IdentityField::User => "user",
                    IdentityField::Type => "type",
                    IdentityField::Role => "role",
                    IdentityField::Name => "name",
                };
                expect.push(format!("{key}: {}", quoted(value)));
            }
            Check::Location(location) => expect.push(format!("location: {}", quoted(location))),
            Check::Path(path) => expect.push(format!("upstream_path: {}", quoted(path))),
            Check::Gone(header) => upstream.push(format!("{}: null", quoted(header))),
            Check::NoIdentity => {
                for field in IdentityField::ALL {
                    upstream.push(format!("{}: null", field.header()));
                }
            }
            Check::Upstream(header, value) => {
                if let Ok(value) = String::from_utf8(unescape(value)) {
                    upstream.push(format!("{}: {}", quoted(header), quoted(&value)));
                }
            }
            // What `expect` does not hold.
            Check::Challenge(_) | Check::Kept(_) | Check::LocationPrefix(_) => {}
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
        quoted(&row.request.method),
        quoted(&text(target)?),
        headers.join(", "),
        expect.join(", ")
    ))
}

#[test]
fn every_expressible_row_gets_the_rows_answer() {
    let values = Placeholders::minted_at(NOW);
    let dir = scratch("table");
    let mut files: BTreeMap<ConfigName, String> = BTreeMap::new();
    let mut skipped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let all = table::rows();
    for row in &all {
        match case(row, &values) {
            Ok(case) => files.entry(row.config).or_default().push_str(&case),
            Err(reason) => skipped.entry(reason).or_default().push(row.id.clone()),
        }
    }
    let mut ran = 0;
    let mut failures = Vec::new();
    for (name, cases) in &files {
        let config = dir.join(format!("config-{name}.json"));
        std::fs::write(&config, name.json().to_string()).unwrap();
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
