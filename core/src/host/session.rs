//! A session on a request, through its host calls: an expired access token refreshed with
//! the session's refresh token while the request waits, then the request decided again with
//! the new one (or, when the provider refuses, the session ended).

use std::rc::Rc;

use super::{failed, AfterHeaders, Call, Host, Refreshed, Verdict};
use crate::config::Config;
use crate::decision::{Decision, Outcome};
use crate::denial::Denial;
use crate::metrics::{Counter, SignInEvent};
use crate::oidc::config::Endpoints;
use crate::oidc::flow::{Answer, Pending};
use crate::oidc::provider_call::CALL_TIMEOUT_MS;
use crate::oidc::refresh;
use crate::oidc::renewed::{Jar, OldCookies, Refresh, Renewal};
use crate::oidc::session::Kept;
use crate::oidc::Oidc;
use crate::verify::token::TokenError;
use crate::verify::BadCredential;
use crate::worker::WorkerState;

/// Whether the decision refused an expired access token.
pub fn expired(decision: &Decision<'_>) -> bool {
    let expired = Denial::InvalidCredentials(BadCredential::Token(TokenError::Expired));
    matches!(&decision.outcome, Outcome::Denied(d) | Outcome::Redirected(d) if *d == expired)
}

/// Sends the refresh of `kept` for a request whose session's access token expired; the
/// request then waits. `None` when there is no refresh token, the provider's endpoints are
/// not known yet (discovery), or the call cannot be sent.
pub fn start_refresh(
    host: &impl Host,
    (oidc, endpoints): (&Oidc, Option<&Endpoints>),
    (kept, jar): (Kept, Jar<'_>),
    stream_ends: bool,
) -> Option<AfterHeaders> {
    let call = refresh::call(oidc, endpoints?, &kept)?;
    let headers: Vec<(&str, &str)> = call
        .headers
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    host.http_call(&oidc.cluster, &headers, &call.body, CALL_TIMEOUT_MS)
        .ok()?;
    Some(AfterHeaders {
        verdict: Verdict::Calling,
        body: None,
        pending: Some(Pending::Refresh {
            kept,
            old: OldCookies::of(jar),
            stream_ends,
        }),
        cookies: Vec::new(),
        refresh_wait: None,
    })
}

/// The provider's `answer` to a session's refresh: with new tokens the request is decided
/// again with them and let on or answered, and the new cookies are returned, for the
/// upstream's response; a refused refresh ends the session (the request is decided without
/// it: a browser is sent to sign in; the answer clears the session's cookies).
#[allow(clippy::too_many_arguments)]
pub fn on_refresh_answer(
    host: &impl Host,
    config: &Config,
    oidc: &Oidc,
    worker: &mut WorkerState,
    (kept, jar, stream_ends): (Kept, Jar<'_>, bool),
    provider: Answer<'_>,
    count: &dyn Fn(Counter),
) -> (Verdict, Vec<String>) {
    let now = host.now();
    let renewal = match refresh::renewed(oidc, &kept, provider, now) {
        Some((token, cookies)) => {
            count(Counter::SignIn(SignInEvent::Refreshed));
            let renewal = Renewal {
                token: Rc::from(token),
                cookies: Rc::from(cookies),
            };
            worker.renewed.keep(jar, renewal.clone(), now);
            Some(renewal)
        }
        // Another request of this session, sent with the same refresh cookie, refreshed it
        // first (a provider that rotates refresh tokens refuses this one): its renewal.
        None => {
            worker.renewed.end(jar, now);
            worker.renewed.renewal(jar, now)
        }
    };
    let Some(renewal) = renewal else {
        // The session ends: decided without it (a browser is sent to sign in), its cookies
        // cleared by the answer.
        count(Counter::SignIn(SignInEvent::RefreshFailed));
        let after = super::decide_request(
            host,
            config,
            worker,
            (stream_ends, false),
            Some(Refreshed::Ended),
            count,
        );
        if after.verdict == Verdict::Continue {
            let _ = host.continue_request();
        }
        return (after.verdict, Vec::new());
    };
    let verdict = decide_renewed(host, config, worker, stream_ends, &renewal, count);
    if verdict == Verdict::Continue {
        if let Err(error) = host.continue_request() {
            failed(host, &count, Call::Answer, error);
        }
        return (verdict, renewal.cookies.to_vec());
    }
    (verdict, Vec::new())
}

/// The step of a request whose session's access token expired (`jar`: its cookies), with `(stream_ends, may_wait)`: decided with the renewal or the end of a refresh
/// of the same cookie on this worker moments ago; held while one is in flight (when it may
/// wait); else the refresh is sent. `None`: none of these (no refresh token, no endpoints,
/// the call refused): the decision is applied as it is.
pub fn refresh(
    host: &impl Host,
    (config, oidc): (&Config, &Oidc),
    worker: &mut WorkerState,
    jar: Jar<'_>,
    (stream_ends, may_wait): (bool, bool),
    count: &dyn Fn(Counter),
) -> Option<AfterHeaders> {
    let now = host.now();
    let after = |verdict, cookies| AfterHeaders {
        verdict,
        body: None,
        pending: None,
        cookies,
        refresh_wait: None,
    };
    match worker.renewed.get(jar, now) {
        Some(Refresh::Renewed(renewal)) => {
            let verdict = decide_renewed(host, config, worker, stream_ends, &renewal, count);
            let cookies = match verdict {
                Verdict::Continue => renewal.cookies.to_vec(),
                _ => Vec::new(),
            };
            return Some(after(verdict, cookies));
        }
        Some(Refresh::Ended) => {
            let flags = (stream_ends, false);
            let ended = Some(Refreshed::Ended);
            return Some(super::decide_request(
                host, config, worker, flags, ended, count,
            ));
        }
        Some(Refresh::InFlight) if may_wait => {
            return Some(AfterHeaders {
                refresh_wait: Some(OldCookies::of(jar)),
                ..after(Verdict::WaitRefresh, Vec::new())
            });
        }
        // Its wait is over: decided as it is, without a second refresh.
        Some(Refresh::InFlight) => return None,
        None => {}
    }
    let kept = crate::oidc::session::open_kept(oidc, jar.refresh, now)?;
    let endpoints = oidc.endpoints(worker.discovered.as_deref());
    let started = start_refresh(host, (oidc, endpoints), (kept, jar), stream_ends)?;
    worker
        .renewed
        .begin(jar, now, CALL_TIMEOUT_MS.div_ceil(1000) + 1);
    Some(started)
}

/// The request decided again with the session's `renewal`: a refusal carries its cookies;
/// when it is let on, the caller sets them on the upstream's response.
pub fn decide_renewed(
    host: &impl Host,
    config: &Config,
    worker: &mut WorkerState,
    stream_ends: bool,
    renewal: &Renewal,
    count: &dyn Fn(Counter),
) -> Verdict {
    let renewed = Refreshed::Renewed {
        token: &renewal.token,
        cookies: &renewal.cookies,
    };
    super::decide_request(
        host,
        config,
        worker,
        (stream_ends, false),
        Some(renewed),
        count,
    )
    .verdict
}
