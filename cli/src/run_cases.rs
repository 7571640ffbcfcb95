//! `tollgate test`: every case through [`crate::explain::explain`] (so through `decide`),
//! one line per case, the failures explained, and `N passed, M failed`.

use tollgate_core::credential::Locations;

use crate::cases::{Case, Headers, Materials};
use crate::config_source::Loaded;
use crate::explain::{explain_with, Explanation};
use crate::redact::Redactor;
use crate::request;

/// What running the cases printed and how it ended.
pub struct Report {
    pub text: String,
    pub failed: usize,
}

/// Runs `cases` under the configuration of `materials`, with the routes beside the filter in
/// `loaded`; `file` names the cases file in errors.
pub fn run(
    loaded: &Loaded,
    cases: &[Case],
    materials: &Materials<'_>,
    redactor: &mut Redactor,
    file: &str,
) -> Result<Report, String> {
    let config = materials.config;
    let mut out = String::new();
    let mut failures = String::new();
    let (mut passed, mut failed) = (0, 0);
    for (i, case) in cases.iter().enumerate() {
        let name = case
            .name
            .clone()
            .unwrap_or_else(|| format!("case {}", i + 1));
        let at = |what: &str, e: String| format!("{file}: {name}: {what}: {e}");
        let mut minted = Vec::new();
        let target = materials
            .text(&case.request.target, &mut minted)
            .map_err(|e| at("request.target", e))?;
        let header_texts: Vec<(&String, &crate::cases::Text)> = match &case.request.headers {
            Headers::Map(map) => map.iter().collect(),
            Headers::List(list) => list.iter().flat_map(|m| m.iter()).collect(),
        };
        let mut headers = Vec::new();
        for (n, v) in header_texts {
            let value = materials
                .text(v, &mut minted)
                .map_err(|e| at(&format!("request.headers.{n}"), e))?;
            headers.push((n.clone(), value));
        }
        let list = request::headers(&case.request.method, &target, &headers);
        redactor.learn_request(
            &list,
            Locations {
                query_param: &config.token_query_param,
                cookie: &config.token_cookie,
            },
        );
        for token in &minted {
            redactor.add_credential(token);
        }
        let mut explanation = explain_with(config, &list, materials.now, materials.fetched);
        if let Some(token) = &explanation.session_token {
            redactor.add_credential(token);
        }
        explanation.filter_skipped = crate::filter_off::skip(loaded, &list);
        let mut problems = compare(case, &explanation);
        if let Some(skip) = explanation.filter_skipped.as_ref().filter(|s| s.certain) {
            problems.insert(0, crate::explain::skip_text(&skip.reason));
        }
        let code = explanation.answer.code.as_deref().unwrap_or("");
        let verdict = if problems.is_empty() { "PASS" } else { "FAIL" };
        let line = format!(
            "{verdict}  {name}  {} {}  -> {} {code}",
            case.request.method, target, explanation.answer.status
        );
        out.push_str(line.trim_end());
        out.push('\n');
        if explanation
            .filter_skipped
            .as_ref()
            .is_some_and(|s| !s.certain)
        {
            out.push_str(&format!("  {}", explanation.skip_line()));
        }
        if problems.is_empty() {
            passed += 1;
        } else {
            failed += 1;
            failures.push_str(&format!("\nFAIL  {name}\n"));
            for problem in &problems {
                failures.push_str(&format!("  {problem}\n"));
            }
            failures.push_str("  what happened:\n");
            for line in explanation.render().lines() {
                failures.push_str(&format!("    {line}\n"));
            }
        }
    }
    out.push_str(&failures);
    out.push_str(&format!("\n{passed} passed, {failed} failed\n"));
    Ok(Report {
        text: redactor.clean(&out),
        failed,
    })
}

/// What differs between the case's expectation and what happened (`expected …, got …`).
fn compare(case: &Case, got: &Explanation) -> Vec<String> {
    let expect = &case.expect;
    let mut problems = Vec::new();
    let differ = |problems: &mut Vec<String>, what: &str, expected: &str, actual: Option<&str>| {
        if actual != Some(expected) {
            problems.push(format!(
                "{what}: expected {expected:?}, got {}",
                actual.map_or("none".to_owned(), |a| format!("{a:?}"))
            ));
        }
    };
    if expect.status != got.answer.status {
        problems.push(format!(
            "status: expected {}, got {}",
            expect.status, got.answer.status
        ));
    }
    if let Some(code) = &expect.code {
        differ(&mut problems, "code", code, got.answer.code.as_deref());
    }
    let id = got.identity.as_ref();
    for (what, expected, actual) in [
        ("user", &expect.user, id.and_then(|i| i.user.as_deref())),
        ("role", &expect.role, id.map(|i| i.role.as_str())),
        ("type", &expect.kind, id.map(|i| i.kind.as_str())),
        ("name", &expect.name, id.and_then(|i| i.name.as_deref())),
    ] {
        if let Some(expected) = expected {
            differ(&mut problems, what, expected, actual);
        }
    }
    if let Some(rule) = &expect.rule {
        let (label, configured) = match got.rule.split_once(" (") {
            Some((label, rest)) => (label, rest.strip_suffix(')').unwrap_or(rest)),
            None => (got.rule.as_str(), ""),
        };
        if rule != label && rule != configured && *rule != got.rule {
            problems.push(format!("rule: expected {rule:?}, got {:?}", got.rule));
        }
    }
    if let Some(location) = &expect.location {
        let actual = got
            .answer
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("location"))
            .map(|(_, v)| v.as_str());
        differ(&mut problems, "location", location, actual);
    }
    let upstream = got.upstream.as_ref();
    if let Some(path) = &expect.upstream_path {
        differ(
            &mut problems,
            "upstream path",
            path,
            upstream.map(|u| u.path.as_str()),
        );
    }
    for (name, expected) in expect.upstream_headers.iter().flatten() {
        let Some(up) = upstream else {
            problems.push(format!(
                "upstream header {name}: the request does not go upstream"
            ));
            continue;
        };
        let name = name.to_ascii_lowercase();
        let values: Vec<&str> = up
            .headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        match expected {
            Some(value) if values != [value.as_str()] => problems.push(format!(
                "upstream header {name}: expected {value:?}, got {values:?}"
            )),
            None if !values.is_empty() => problems.push(format!(
                "upstream header {name}: expected none, got {values:?}"
            )),
            _ => {}
        }
    }
    problems
}
