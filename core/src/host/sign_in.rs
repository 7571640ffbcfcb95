//! Sign-in through the request's host calls: the callback and logout answered or held for
//! the provider, the provider's answer, and the session cookies kept from the upstream.

use super::{self as host, Call, Host, HostError, Verdict};
use crate::config::Config;
use crate::decision::LogField;
use crate::metrics::{Counter, SignInEvent};
use crate::oidc::config::Endpoints;
use crate::oidc::flow::{self, Intercepted, Pending, Seen};
use crate::oidc::opened::OpenedSessions;
use crate::oidc::page;
use crate::oidc::provider_call::CALL_TIMEOUT_MS;
use crate::oidc::refresh::{self, SessionView};
use crate::oidc::Oidc;
use crate::response::LocalResponse;
use crate::worker::WorkerState;

/// What comes before the decision.
pub enum Before<'h> {
    /// Decide the request, from these headers when given (a session read from its cookies;
    /// then [`keep_cookies`] before the decision is applied).
    Decide(Option<SessionView<'h>>),
    /// Sign-in answered the request, or holds it for a call to the provider.
    Done(Verdict, Option<Pending>),
}

/// The access log's outcome of a sign-in answer.
fn outcome(event: Option<SignInEvent>) -> &'static str {
    match event {
        Some(SignInEvent::Completed) => "signed_in",
        Some(SignInEvent::LoggedOut) => "logged_out",
        Some(_) => "signin_failed",
        None => "signin_callback",
    }
}

/// The query (a callback's code and state) leaves the path, and the filter's cookies the
/// request, so that the access log records neither. A refused change fails the request closed.
fn scrub(host: &impl Host, path: &[u8], count: &dyn Fn(Counter)) -> Result<(), ()> {
    let done = host
        .set_header(":path", path)
        .and_then(|()| host.remove_header("cookie"));
    done.map_err(|error| {
        host::failed(host, count, Call::HeaderChange, error);
        host::respond(host, count, &page::unavailable());
    })
}

/// Answers with `answer`, counting `event`.
pub(super) fn answer(
    host: &impl Host,
    count: &dyn Fn(Counter),
    answer: &LocalResponse,
    event: Option<SignInEvent>,
) {
    if let Some(event) = event {
        count(Counter::SignIn(event));
    }
    if let Err(error) = host.set_property(LogField::Outcome.property(), outcome(event).as_bytes()) {
        host::failed(host, count, Call::Property, error);
    }
    host::respond(host, count, answer);
}

/// Sign-in's part of a request's headers (`headers`, as the host gave them).
pub fn before_decision<'h>(
    host: &impl Host,
    (oidc, endpoints): (&Oidc, Option<&Endpoints>),
    headers: &'h [(String, Vec<u8>)],
    refreshed: Option<Option<&str>>,
    (opened, count): (&mut OpenedSessions, &dyn Fn(Counter)),
) -> Before<'h> {
    let seen = Seen::read(headers);
    if let Some(token) = refreshed {
        return Before::Decide(Some(refresh::with_token(&seen.cookies, token)));
    }
    let now = host.now();
    match flow::intercept(oidc, endpoints, &seen, now) {
        Intercepted::Pass => {}
        Intercepted::Answer(response, event) => {
            if scrub(host, seen.path, count).is_ok() {
                answer(host, count, &response, event);
            }
            return Before::Done(Verdict::Answered, None);
        }
        Intercepted::Call(call, pending) => {
            if scrub(host, seen.path, count).is_err() {
                return Before::Done(Verdict::Answered, None);
            }
            let headers: Vec<(&str, &str)> = call
                .headers
                .iter()
                .map(|(name, value)| (*name, value.as_str()))
                .collect();
            return match host.http_call(&oidc.cluster, &headers, &call.body, CALL_TIMEOUT_MS) {
                Ok(_) => {
                    let _ =
                        host.set_property(LogField::Outcome.property(), outcome(None).as_bytes());
                    Before::Done(Verdict::Calling, Some(pending))
                }
                Err(error) => {
                    if host.debug_enabled() {
                        host.debug(&format!(
                            "tollgate: the call to the provider was refused ({})",
                            error.0
                        ));
                    }
                    let (response, event) = match pending {
                        Pending::Logout { answer } => (answer, SignInEvent::LoggedOut),
                        _ => (page::unavailable(), SignInEvent::FailedTokenEndpoint),
                    };
                    answer(host, count, &response, Some(event));
                    Before::Done(Verdict::Answered, None)
                }
            };
        }
    }
    Before::Decide(refresh::session_view(oidc, &seen, now, opened))
}

/// The filter's cookies leave the request (before the decision's own edits, which were
/// made from the headers without them); `Err` when the host refused (the caller fails the
/// request closed).
pub fn keep_cookies(host: &impl Host, cookie: Option<&[u8]>) -> Result<(), HostError> {
    host.remove_header("cookie")?;
    match cookie {
        Some(cookie) => host.add_header("cookie", cookie),
        None => Ok(()),
    }
}

/// The provider's answer (`status`, none when it did not answer in time; `body`) to the call
/// a request waits for: the request is answered, or (after a session's refresh) decided
/// again and let on; the cookies for the upstream's response.
pub fn on_call_answer(
    host: &impl Host,
    config: &Config,
    worker: &mut WorkerState,
    pending: Pending,
    status: Option<&str>,
    body: &[u8],
    count: &dyn Fn(Counter),
) -> Vec<String> {
    let Some(oidc) = &config.oidc else {
        host::respond(host, count, &page::unavailable());
        return Vec::new();
    };
    if let Pending::Refresh {
        kept,
        old,
        stream_ends,
    } = pending
    {
        let provider = flow::Answer { status, body };
        let refreshed = super::session::on_refresh_answer(
            host,
            config,
            oidc,
            worker,
            (kept, old.jar(), stream_ends),
            provider,
            count,
        );
        return refreshed.1;
    }
    let issuer = config.issuers.list.get(oidc.issuer);
    let fetched = worker.issuer_keys.get(oidc.issuer);
    let (response, event) = flow::on_answer(
        oidc,
        (issuer, fetched),
        pending,
        flow::Answer { status, body },
        config.issuers.clock_skew,
        host.now(),
    );
    if host.debug_enabled() {
        host.debug(&format!(
            "tollgate: sign-in {} (provider status {})",
            event.as_str(),
            status.unwrap_or("none").escape_default()
        ));
    }
    answer(host, count, &response, Some(event));
    Vec::new()
}
