//! One request through the filter, written against the few host calls it needs ([`Host`]),
//! so that it runs natively in tests against a host that counts them. The proxy-wasm context
//! in the filter crate implements [`Host`]; nothing else here knows of proxy-wasm.
//!
//! Host calls per request: one to read every header, one for the clock when a token is
//! checked, one per header change the decision asks for, one per access-log field, and one to
//! answer a refused request. Counters are kept in the VM and handed over on the tick, not per request.
//!
//! A header change the decision asks for (an identity header set, a spoofed one or a
//! credential removed) that the host refuses fails the request closed: it is answered 503
//! `FILTER_UNAVAILABLE` instead of let on, counted (`tollgate.host_call_failed`) and logged
//! once per worker.

use crate::config::{AccessLogFields, Config};
use crate::credential::form::FormScanner;
use crate::credential::spellings::CredentialNames;
use crate::credential::Locations;
use crate::decision::{
    decide_in_session, Action, Decision, HeaderEdit, KeyWait, LogField, NoTrace, Outcome,
};
use crate::denial::{BadRequest, Code, Denial};
use crate::metrics::{Counter, SignInEvent};
use crate::oidc::flow::Pending;
use crate::oidc::refresh::SessionView;
use crate::oidc::renewed::{Jar, OldCookies};
use sign_in::Before;

mod session;
mod sign_in;
use crate::response::{self, LocalResponse};
use crate::worker::WorkerState;

pub use sign_in::on_call_answer;
use std::cell::Cell;

/// A host call the host refused: what it said (its status), for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostError(pub &'static str);

/// The host calls one request may make.
pub trait Host {
    /// Every request header, pseudo-headers included, as bytes.
    fn request_headers(&self) -> Vec<(String, Vec<u8>)>;
    /// Hands every request header to `read`, without a copy per header where the host can
    /// (the native module copies them into one buffer); by default [`Host::request_headers`].
    fn with_request_headers<R>(&self, read: impl FnOnce(&[(&str, &[u8])]) -> R) -> R {
        let owned = self.request_headers();
        let headers: Vec<(&str, &[u8])> = owned
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_slice()))
            .collect();
        read(&headers)
    }
    /// The host's clock, in unix seconds.
    fn now(&self) -> u64;
    fn remove_header(&self, name: &str) -> Result<(), HostError>;
    /// Replaces every value of `name` with one.
    fn set_header(&self, name: &str, value: &[u8]) -> Result<(), HostError>;
    fn add_header(&self, name: &str, value: &[u8]) -> Result<(), HostError>;
    /// Sets a filter-state property for the access log.
    fn set_property(&self, name: &str, value: &[u8]) -> Result<(), HostError>;
    /// Answers the request instead of letting it on. When this fails the host must still
    /// not let the request on (it ends the stream).
    fn respond(&self, status: u32, headers: &[(&str, &str)], body: &[u8]) -> Result<(), HostError>;
    /// Whether debug lines are logged (the level is known to the VM: no host call).
    fn debug_enabled(&self) -> bool;
    fn debug(&self, line: &str);
    /// Logs a line at warning level.
    fn warn(&self, line: &str);
    /// Sends a request (`headers` with its pseudo-headers, and `body`) through `cluster` for
    /// this request, answered within `timeout_ms`; the answer comes to this request's flow
    /// (`RequestFlow::on_call_answer`). A host without such calls refuses.
    fn http_call(
        &self,
        _cluster: &str,
        _headers: &[(&str, &str)],
        _body: &[u8],
        _timeout_ms: u64,
    ) -> Result<u32, HostError> {
        Err(HostError("no request calls"))
    }
    /// Lets on a request that waited for a call of [`Host::http_call`].
    fn continue_request(&self) -> Result<(), HostError> {
        Err(HostError("no request calls"))
    }
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
    /// Hold it: a call to the OpenID provider was sent for it, whose answer answers it.
    Calling,
    /// Hold it until another request's refresh of its session is answered
    /// ([`AfterHeaders::refresh_wait`]), then decide it again. Nothing was applied.
    WaitRefresh,
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
    /// Set with [`Verdict::Calling`]: what the request waits for.
    pub pending: Option<Pending>,
    /// With [`Verdict::Continue`]: a renewed session's `Set-Cookie` lines, for the
    /// upstream's response.
    pub cookies: Vec<String>,
    /// With [`Verdict::WaitRefresh`]: the session cookies whose refresh it waits for.
    pub refresh_wait: Option<OldCookies>,
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
    decide_request(host, config, worker, (stream_ends, may_wait), None, &count)
}

/// A session refreshed while its request waited, for the request decided again.
#[derive(Clone, Copy)]
pub(crate) enum Refreshed<'a> {
    /// With the new access token; `cookies`: the renewed session's `Set-Cookie` lines, which
    /// go to the browser on whatever answers the request (an answer without them leaves the
    /// browser the refresh token the provider just replaced).
    Renewed {
        token: &'a str,
        cookies: &'a [String],
    },
    /// The provider refused: the request is decided without a session, whose cookies its
    /// answer clears.
    Ended,
}

impl<'a> Refreshed<'a> {
    /// The new access token, when there is one.
    fn token(self) -> Option<&'a str> {
        match self {
            Refreshed::Renewed { token, .. } => Some(token),
            Refreshed::Ended => None,
        }
    }
}

/// [`on_request_headers`]; with `refreshed`, the request's session was just refreshed. Without `oidc` the headers are read as the
/// host hands them over (no copy per header); with it, as sign-in rewrote them.
pub(super) fn decide_request(
    host: &impl Host,
    config: &Config,
    worker: &mut WorkerState,
    flags: (bool, bool),
    refreshed: Option<Refreshed<'_>>,
    count: &dyn Fn(Counter),
) -> AfterHeaders {
    let Some(oidc) = &config.oidc else {
        return host.with_request_headers(|headers| {
            decide_headers(
                host,
                config,
                worker,
                (headers, None),
                flags,
                refreshed,
                count,
            )
        });
    };
    let headers = host.request_headers();
    let discovered = worker.discovered.clone();
    let view = match sign_in::before_decision(
        host,
        (oidc, oidc.endpoints(discovered.as_deref())),
        &headers,
        refreshed.map(Refreshed::token),
        (&mut worker.sessions, count),
    ) {
        Before::Decide(view) => view,
        Before::Done(verdict, pending) => {
            return AfterHeaders {
                verdict,
                body: None,
                pending,
                cookies: Vec::new(),
                refresh_wait: None,
            }
        }
    };
    let headers: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_slice()))
        .collect();
    decide_headers(
        host,
        config,
        worker,
        (&headers, view.as_ref()),
        flags,
        refreshed,
        count,
    )
}

/// Decides the request from `headers` and applies the decision. (One body for every request:
/// the decision is the bulk of the `.wasm`.)
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn decide_headers(
    host: &impl Host,
    config: &Config,
    worker: &mut WorkerState,
    (headers, view): (&[(&str, &[u8])], Option<&SessionView<'_>>),
    (stream_ends, may_wait): (bool, bool),
    refreshed: Option<Refreshed<'_>>,
    count: &dyn Fn(Counter),
) -> AfterHeaders {
    let now = || host.now();
    let read = (headers, view.map(SessionView::session));
    let mut decision = decide_in_session(config, worker, read, stream_ends, &now, &mut NoTrace);
    if let (Some(refreshed), Action::Respond(answer, _)) = (refreshed, &mut decision.action) {
        let cookies = match (refreshed, &config.oidc) {
            (Refreshed::Renewed { cookies, .. }, _) => cookies.to_vec(),
            (Refreshed::Ended, Some(oidc)) => crate::oidc::refresh::ended(oidc),
            (Refreshed::Ended, None) => Vec::new(),
        };
        answer
            .headers
            .extend(cookies.into_iter().map(|cookie| ("set-cookie", cookie)));
    }
    let body = decision.form.as_ref().map(|kind| BodyScan {
        scanner: FormScanner::new(kind),
        authority: headers
            .iter()
            .find(|(name, _)| *name == ":authority")
            .map(|(_, value)| value.to_vec())
            .unwrap_or_default(),
        rule: decision.rule_label(),
    });
    // Only a request without a body is refreshed: one with a body would go on, after the
    // refresh, without its form body being read for credentials.
    let jar = view.and_then(|view| {
        Some(Jar {
            refresh: view.refresh_cookie?,
            session: view.session_cookie?,
        })
    });
    let expired = jar.filter(|_| stream_ends && session::expired(&decision));
    if let (Some(oidc), Some(jar)) = (&config.oidc, expired) {
        let flags = (stream_ends, may_wait);
        if let Some(after) = session::refresh(host, (config, oidc), worker, jar, flags, count) {
            return after;
        }
    }
    let waits = may_wait && decision.awaits_keys.is_some();
    if let (false, Some(view)) = (waits, view) {
        if let Err(error) = sign_in::keep_cookies(host, view.cookie.as_deref()) {
            failed(host, count, Call::HeaderChange, error);
            respond(host, count, &response::unavailable());
            return AfterHeaders {
                verdict: Verdict::Answered,
                body: None,
                pending: None,
                cookies: Vec::new(),
                refresh_wait: None,
            };
        }
    }
    // With discovery, a browser sent to sign in before the endpoints came got a 503 page.
    let sign_in =
        config
            .oidc
            .as_ref()
            .map(|oidc| match oidc.endpoints(worker.discovered.as_deref()) {
                Some(_) => SignInEvent::Started,
                None => SignInEvent::FailedDiscovery,
            });
    let verdict = apply_decision(host, (config, sign_in), headers, &decision, may_wait, count);
    let body = body.filter(|_| verdict != Verdict::Answered);
    AfterHeaders {
        verdict,
        body,
        pending: None,
        cookies: Vec::new(),
        refresh_wait: None,
    }
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
    let properties = [
        (LogField::Outcome, &b"denied"[..]),
        (LogField::Code, denial.code().as_str().as_bytes()),
        (LogField::Rule, scan.rule.as_bytes()),
    ];
    for (field, value) in properties {
        if let Err(error) = host.set_property(field.property(), value) {
            failed(host, &count, Call::Property, error);
        }
    }
    if host.debug_enabled() {
        host.debug(&format!("tollgate: form body refused: {denial}"));
    }
    respond(host, &count, &response::error(denial, &scan.authority));
    true
}

/// A change of the request outside the decision (a trailer's removal) that the host refused
/// with `error`: the request fails closed as a refused header change does (503, counted,
/// logged once per worker).
pub fn change_refused(host: &impl Host, error: HostError, count: impl Fn(Counter)) {
    failed(host, &count, Call::HeaderChange, error);
    respond(host, &count, &response::unavailable());
}

/// Applies a decision on the headers: counted, logged, edits and answer (`sign_in`: what a
/// browser sent to sign in is counted as, when sign-in is configured).
fn apply_decision(
    host: &impl Host,
    (config, sign_in): (&Config, Option<SignInEvent>),
    headers: &[(&str, &[u8])],
    decision: &Decision<'_>,
    may_wait: bool,
    count: impl Fn(Counter),
) -> Verdict {
    if let (true, Some(wait)) = (may_wait, decision.awaits_keys) {
        return Verdict::Wait(wait);
    }
    count(Counter::for_outcome(&decision.outcome));
    if let (Some(event), Outcome::Redirected(_)) = (sign_in, &decision.outcome) {
        count(Counter::SignIn(event));
    }
    match decision.cache_hit {
        Some(true) => count(Counter::CacheHit),
        Some(false) => count(Counter::CacheMiss),
        None => {}
    }
    if logs_outcome_only(config.access_log_fields, &decision.outcome) {
        // The common case, without building the other fields.
        let label = decision.outcome.label().as_bytes();
        if let Err(error) = host.set_property(LogField::Outcome.property(), label) {
            failed(host, &count, Call::Property, error);
        }
    } else {
        for (field, value) in decision.log_fields() {
            if logged(config.access_log_fields, &decision.outcome, field) {
                if let Err(error) = host.set_property(field.property(), value.as_bytes()) {
                    failed(host, &count, Call::Property, error);
                }
            }
        }
    }
    if host.debug_enabled() {
        host.debug(&format!("tollgate: {}", decision.describe(headers)));
    }
    apply(host, &count, decision)
}

/// Whether a field goes to the access log. The outcome always: without it a log line cannot
/// tell a request the filter let on from one Envoy answered before the filter ran, whose
/// identity headers are the client's. A refusal's code and rule always (they are nowhere
/// else); the rest only when the configuration asks for every field.
fn logged(fields: AccessLogFields, outcome: &Outcome, field: LogField) -> bool {
    field == LogField::Outcome || !logs_outcome_only(fields, outcome)
}

/// Whether the outcome is the only field [`logged`] for this request.
fn logs_outcome_only(fields: AccessLogFields, outcome: &Outcome) -> bool {
    fields != AccessLogFields::EveryRequest
        && !matches!(outcome, Outcome::Denied(_) | Outcome::Redirected(_))
}

/// The decision's header edits, then its answer if it has one. An edit the host refuses
/// stops the edits: a request to let on is answered 503 instead (fails closed); one to
/// answer is answered as decided.
fn apply(host: &impl Host, count: &dyn Fn(Counter), decision: &Decision<'_>) -> Verdict {
    let edits = match &decision.action {
        Action::Forward(edits) | Action::Respond(_, edits) => edits,
    };
    let mut refused = false;
    for edit in edits {
        let done = match edit {
            HeaderEdit::Remove(name) => host.remove_header(name),
            HeaderEdit::Set(name, value) => host.set_header(name, value.as_bytes()),
            HeaderEdit::Add(name, value) => host.add_header(name, value.as_bytes()),
            HeaderEdit::SetPath(path) => host.set_header(":path", path),
        };
        if let Err(error) = done {
            failed(host, count, Call::HeaderChange, error);
            refused = true;
            break;
        }
    }
    match &decision.action {
        Action::Forward(_) if refused => {
            respond(host, count, &response::unavailable());
            Verdict::Answered
        }
        Action::Forward(_) => Verdict::Continue,
        Action::Respond(answer, _) => {
            respond(host, count, answer);
            Verdict::Answered
        }
    }
}

/// Sends `answer`.
pub(crate) fn respond(host: &impl Host, count: &dyn Fn(Counter), answer: &LocalResponse) {
    let headers: Vec<(&str, &str)> = answer
        .headers
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    if let Err(error) = host.respond(answer.status, &headers, answer.body.as_bytes()) {
        failed(host, count, Call::Answer, error);
    }
}

/// A host call of the request path that can fail, and what its failure does.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Call {
    Property,
    HeaderChange,
    Answer,
}

impl Call {
    fn what(self) -> &'static str {
        match self {
            Call::Property => "an access-log property: the log line misses it",
            Call::HeaderChange => {
                "a header change: the request is answered 503 FILTER_UNAVAILABLE, not let on"
            }
            Call::Answer => "the answer: the request is ended, not let on",
        }
    }
}

thread_local! {
    /// A refused host call was logged on this thread. A worker is a thread (proxy-wasm: one
    /// VM per Envoy worker thread), so this is the worker's first; kept out of
    /// [`WorkerState`] so that the request path carries nothing for it.
    static FAILURE_LOGGED: Cell<bool> = const { Cell::new(false) };
}

/// A host call of a request that the host refused: counted, and logged when it is the
/// worker's first.
#[cold]
#[inline(never)]
pub(crate) fn failed(
    host: &impl Host,
    count: &dyn Fn(Counter),
    call: Call,
    HostError(said): HostError,
) {
    count(Counter::HostCallFailed);
    if !FAILURE_LOGGED.replace(true) {
        host.warn(&format!(
            "tollgate: the host refused {} ({said}); this worker counts later failures in tollgate.host_call_failed without logging them",
            call.what()
        ));
    }
}
