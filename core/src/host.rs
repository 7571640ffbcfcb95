//! One request through the filter, written against the few host calls it needs ([`Host`]),
//! so that it runs natively in tests against a host that counts them. The proxy-wasm context
//! in the filter crate implements [`Host`]; nothing else here knows of proxy-wasm.
//!
//! Host calls per request: one to read every header, one for the clock when a token is
//! checked, one per header change the decision asks for, one per access-log field, and one to
//! answer a refused request. Counters are kept in the VM and handed over on the tick, not per request.

use crate::config::{AccessLogFields, Config};
use crate::credential::form::FormScanner;
use crate::credential::spellings::CredentialNames;
use crate::credential::Locations;
use crate::decision::{decide_stream, Action, Decision, HeaderEdit, KeyWait, LogField, Outcome};
use crate::denial::{BadRequest, Code, Denial};
use crate::metrics::Counter;
use crate::response;
use crate::worker::WorkerState;

/// The host calls one request may make.
pub trait Host {
    /// Every request header, pseudo-headers included, as bytes.
    fn request_headers(&self) -> Vec<(String, Vec<u8>)>;
    /// The host's clock, in unix seconds.
    fn now(&self) -> u64;
    fn remove_header(&self, name: &str);
    /// Replaces every value of `name` with one.
    fn set_header(&self, name: &str, value: &[u8]);
    fn add_header(&self, name: &str, value: &[u8]);
    /// Sets a filter-state property for the access log.
    fn set_property(&self, name: &str, value: &[u8]);
    /// Answers the request instead of letting it on.
    fn respond(&self, status: u32, headers: &[(&str, &str)], body: &[u8]);
    /// Whether debug lines are logged (the level is known to the VM: no host call).
    fn debug_enabled(&self) -> bool;
    fn debug(&self, line: &str);
}

/// What the host does with the request after the headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Let it on.
    Continue,
    /// Stop: the filter answered it.
    Answered,
    /// Hold it until an issuer's keys are fetched, then decide it again (with `may_wait`
    /// false once the wait is over). Nothing was applied, counted or logged.
    Wait(KeyWait),
}

/// The most of a form body the host holds while reading it: no byte of a refused body then
/// reaches the upstream (its headers do: Envoy gives a filter that pauses the headers no
/// body until it resumes them). A larger body goes on chunk by chunk, each read before it
/// goes, and a refusal resets the upstream request before the body is whole. Well under the
/// buffer limits Envoy answers 413 beyond (`per_connection_buffer_limit_bytes`: 1 MiB by
/// default, 32 KiB in the edge example), a chunk read from the socket included.
pub const HOLD_BODY_BYTES: usize = 8 * 1024;

/// The verdict on the headers, and the form body to read before the request goes on.
#[derive(Debug)]
pub struct AfterHeaders {
    pub verdict: Verdict,
    /// Set when a form body follows on a checked path and the request is let on or held: the
    /// host hands every chunk to [`on_request_body`] and lets nothing on before it answers.
    pub body: Option<BodyScan>,
}

/// A form body being read for credential fields.
#[derive(Debug)]
pub struct BodyScan {
    scanner: FormScanner,
    /// For the refusal's challenge.
    authority: Vec<u8>,
    /// The access log's rule field.
    rule: String,
}

/// Decides one request from its headers, applies the decision through `host`, counts it
/// with `count` and records it for the access log. When `may_wait` and fetching an issuer's
/// keys could change the decision, nothing is applied: the request is to be held.
pub fn on_request_headers(
    host: &impl Host,
    config: &Config,
    worker: &mut WorkerState,
    stream_ends: bool,
    may_wait: bool,
    count: impl Fn(Counter),
) -> AfterHeaders {
    let headers = host.request_headers();
    let decision = decide_stream(config, worker, &headers, stream_ends, &|| host.now());
    let body = decision.form.as_ref().map(|kind| BodyScan {
        scanner: FormScanner::new(kind),
        authority: headers
            .iter()
            .find(|(name, _)| name == ":authority")
            .map(|(_, value)| value.clone())
            .unwrap_or_default(),
        rule: decision.rule_label(),
    });
    let verdict = apply_decision(host, config, &headers, &decision, may_wait, count);
    let body = body.filter(|_| verdict != Verdict::Answered);
    AfterHeaders { verdict, body }
}

/// Reads the next chunk of a form body (`ends`: the last one). A field named like a
/// credential, or a body that cannot be read with certainty, is refused with 400
/// `INVALID_REQUEST`: answered, counted, and recorded for the access log (over what the
/// headers recorded). Returns whether the request was answered; the host then lets nothing
/// more on.
pub fn on_request_body(
    host: &impl Host,
    config: &Config,
    scan: &mut BodyScan,
    chunk: &[u8],
    ends: bool,
    count: impl Fn(Counter),
) -> bool {
    let names = CredentialNames::new(Locations {
        query_param: &config.token_query_param,
        cookie: &config.token_cookie,
    });
    let read = scan.scanner.push(names, chunk);
    let read = read.and_then(|()| {
        if ends {
            scan.scanner.end(names)
        } else {
            Ok(())
        }
    });
    let Err(reason) = read else {
        return false;
    };
    let denial = Denial::InvalidRequest(BadRequest::FormBody(reason));
    count(Counter::Denied(Code::InvalidRequest));
    host.set_property(LogField::Outcome.property(), b"denied");
    host.set_property(LogField::Code.property(), denial.code().as_str().as_bytes());
    host.set_property(LogField::Rule.property(), scan.rule.as_bytes());
    if host.debug_enabled() {
        host.debug(&format!("tollgate: form body refused: {denial}"));
    }
    let answer = response::error(denial, &scan.authority);
    let headers: Vec<(&str, &str)> = answer
        .headers
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    host.respond(answer.status, &headers, answer.body.as_bytes());
    true
}

/// Applies a decision on the headers: counted, logged, edits and answer.
fn apply_decision(
    host: &impl Host,
    config: &Config,
    headers: &[(String, Vec<u8>)],
    decision: &Decision<'_>,
    may_wait: bool,
    count: impl Fn(Counter),
) -> Verdict {
    if let (true, Some(wait)) = (may_wait, decision.awaits_keys) {
        return Verdict::Wait(wait);
    }
    count(Counter::for_outcome(&decision.outcome));
    match decision.cache_hit {
        Some(true) => count(Counter::CacheHit),
        Some(false) => count(Counter::CacheMiss),
        None => {}
    }
    for (field, value) in decision.log_fields() {
        if logged(config.access_log_fields, &decision.outcome, field) {
            host.set_property(field.property(), value.as_bytes());
        }
    }
    if host.debug_enabled() {
        host.debug(&format!("tollgate: {}", decision.describe(headers)));
    }
    apply(host, decision);
    match decision.action {
        Action::Forward(_) => Verdict::Continue,
        Action::Respond(..) => Verdict::Answered,
    }
}

/// Whether a field goes to the access log. The outcome always: without it a log line cannot
/// tell a request the filter let on from one Envoy answered before the filter ran, whose
/// identity headers are the client's. A refusal's code and rule always (they are nowhere
/// else); the rest only when the configuration asks for every field.
fn logged(fields: AccessLogFields, outcome: &Outcome, field: LogField) -> bool {
    fields == AccessLogFields::EveryRequest
        || field == LogField::Outcome
        || matches!(outcome, Outcome::Denied(_) | Outcome::Redirected(_))
}

/// The decision's header edits, then its answer if it has one.
fn apply(host: &impl Host, decision: &Decision<'_>) {
    let edits = match &decision.action {
        Action::Forward(edits) | Action::Respond(_, edits) => edits,
    };
    for edit in edits {
        match edit {
            HeaderEdit::Remove(name) => host.remove_header(name),
            HeaderEdit::Set(name, value) => host.set_header(name, value.as_bytes()),
            HeaderEdit::Add(name, value) => host.add_header(name, value.as_bytes()),
            HeaderEdit::SetPath(path) => host.set_header(":path", path),
        }
    }
    if let Action::Respond(response, _) = &decision.action {
        let headers: Vec<(&str, &str)> = response
            .headers
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        host.respond(response.status, &headers, response.body.as_bytes());
    }
}
