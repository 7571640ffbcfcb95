//! A session on a request, through its host calls: an expired access token refreshed with
//! the session's refresh token while the request waits, then the request decided again with
//! the new one (or, when the provider refuses, the session ended).

use super::{failed, AfterHeaders, Call, Host, Refreshed, Verdict};
use crate::config::Config;
use crate::decision::{Decision, Outcome};
use crate::denial::Denial;
use crate::metrics::{Counter, SignInEvent};
use crate::oidc::config::Endpoints;
use crate::oidc::flow::{Answer, Pending};
use crate::oidc::provider_call::CALL_TIMEOUT_MS;
use crate::oidc::refresh;
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
    kept: Kept,
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
        pending: Some(Pending::Refresh { kept, stream_ends }),
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
    (kept, stream_ends): (Kept, bool),
    provider: Answer<'_>,
    count: &dyn Fn(Counter),
) -> (Verdict, Vec<String>) {
    let Some((token, cookies)) = refresh::renewed(oidc, &kept, provider, host.now()) else {
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
    count(Counter::SignIn(SignInEvent::Refreshed));
    let verdict = super::decide_request(
        host,
        config,
        worker,
        (stream_ends, false),
        Some(Refreshed::Renewed {
            token: &token,
            cookies: &cookies,
        }),
        count,
    )
    .verdict;
    if verdict == Verdict::Continue {
        if let Err(error) = host.continue_request() {
            failed(host, &count, Call::Answer, error);
        }
        return (verdict, cookies);
    }
    (verdict, Vec::new())
}
