//! What a client and the upstream saw of one row's request ([`Seen`]), natively or through
//! Envoy, and [`check`], the row's expectations held against it: the hostile table's verdict,
//! one for both runs.

use crate::table::{Check, IdentityField, Only, Placeholders, Row};

/// What a client and the upstream saw of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub status: u16,
    pub code: Option<String>,
    pub location: Option<String>,
    /// The answer's headers (lower-case names, without `date`) when it did not come from the
    /// upstream.
    pub headers: Vec<(String, String)>,
    /// The answer's body and headers as text, to look for secrets in.
    pub answer: String,
    /// The upstream's `:path` and headers (lower-case names), when the request went on.
    pub upstream: Option<(String, Vec<(String, String)>)>,
}

impl Seen {
    /// The answer's header `name` (lower case).
    pub fn answer_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (lower case) the upstream got.
    pub fn upstream_values(&self, name: &str) -> Vec<&str> {
        self.upstream
            .iter()
            .flat_map(|(_, headers)| headers.iter())
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Checks `seen` against the row; returns what differs.
pub fn check(row: &Row, seen: &Seen) -> Result<(), String> {
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
                let value = String::from_utf8_lossy(&crate::unescape(v)).into_owned();
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

/// Fails the test with every failure, of `ran` rows.
pub fn report(failures: Vec<String>, ran: usize) {
    assert!(
        failures.is_empty(),
        "{} of {ran} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
