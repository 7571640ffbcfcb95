//! One request through the filter, written against the few host calls it needs ([`Host`]),
//! so that it runs natively in tests against a host that counts them. The proxy-wasm context
//! in the filter crate implements [`Host`]; nothing else here knows of proxy-wasm.
//!
//! Host calls per request: one to read every header, one for the clock when a token is
//! checked, one per header change the decision asks for, one per access-log field, and one to
//! answer a refused request. Counters are kept in the VM and handed over on the tick, not per request.

use crate::config::{AccessLogFields, Config};
use crate::decision::{decide_stream, Action, Decision, HeaderEdit, KeyWait, LogField, Outcome};
use crate::metrics::Counter;
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
) -> Verdict {
    let headers = host.request_headers();
    let decision = decide_stream(config, worker, &headers, stream_ends, &|| host.now());
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
        host.debug(&format!("tollgate: {}", decision.describe(&headers)));
    }
    apply(host, &decision);
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
