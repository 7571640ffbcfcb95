//! Where sign-in meets a request: the callback and logout paths answered (or held for a
//! call to the provider), the answer of that call, and the session cookie read as the
//! request's access token.

use subtle::ConstantTimeEq;

use super::config::{Endpoints, Oidc};
use super::cookies::{self, Jar};
use super::events::SignInEvent;
use super::id_token::{self, IdTokenError};
use super::page;
use super::provider_call::{self, ProviderCall};
use super::renewed::OldCookies;
use super::session::{self, Kept};
use super::start::{redirect_uri, Transaction};
use crate::request::query::{self, encode_component};
use crate::response::{self, LocalResponse};
use crate::verify::issuer::Issuer;
use crate::verify::jwks::KeySet;

/// The parts of a request sign-in reads.
#[derive(Debug, Default)]
pub struct Seen<'h> {
    pub path: &'h [u8],
    pub query: Option<&'h [u8]>,
    pub scheme: &'h [u8],
    pub authority: &'h [u8],
    pub has_authorization: bool,
    pub cookies: Vec<&'h [u8]>,
    /// `Sec-Fetch-Site`: where the browser says the request started.
    pub fetch_site: &'h [u8],
}

impl<'h> Seen<'h> {
    pub fn read(headers: &'h [(String, Vec<u8>)]) -> Seen<'h> {
        let mut seen = Seen::default();
        for (name, value) in headers {
            match name.as_str() {
                ":path" => {
                    let (path, query) = crate::request::path::split_target(value);
                    (seen.path, seen.query) = (path, query);
                }
                ":scheme" => seen.scheme = value,
                ":authority" => seen.authority = value,
                "authorization" => seen.has_authorization = true,
                "cookie" => seen.cookies.push(value),
                "sec-fetch-site" => seen.fetch_site = value,
                _ => {}
            }
        }
        seen
    }

    /// `scheme://authority`, when the authority is a plain host[:port].
    pub fn origin(&self) -> Option<String> {
        let scheme = if self.scheme == b"http" {
            "http"
        } else {
            "https"
        };
        let authority = std::str::from_utf8(self.authority).ok()?;
        let plain = !authority.is_empty()
            && authority.len() <= 255
            && authority
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
        plain.then(|| format!("{scheme}://{authority}"))
    }

    /// The first value of query parameter `name`, decoded.
    fn param(&self, name: &str) -> Option<String> {
        let param = query::params(self.query?).find(|p| p.name == name.as_bytes())?;
        String::from_utf8(query::percent_decode(param.value)?).ok()
    }
}

/// What sign-in makes of a request before the decision.
#[derive(Debug)]
pub enum Intercepted {
    /// Not a path of sign-in: decided as usual.
    Pass,
    /// Answered by sign-in (counted as `event` when there is one).
    Answer(LocalResponse, Option<SignInEvent>),
    /// The request waits for `call` to the provider, then [`on_answer`] answers it.
    Call(ProviderCall, Pending),
}

/// What a request waiting for the provider is waiting for.
#[derive(Debug, Clone)]
pub enum Pending {
    /// The code exchange of a sign-in at `origin`.
    Exchange {
        transaction: Transaction,
        origin: String,
    },
    /// A refresh token's revocation at logout, answered with `answer` whatever happens.
    Logout { answer: LocalResponse },
    /// A session's refresh (`kept`: what its refresh cookie held, `old`: the session's
    /// cookies); the request is decided again with the new access token (`stream_ends`: no
    /// body follows).
    Refresh {
        kept: Kept,
        old: OldCookies,
        stream_ends: bool,
    },
}

/// The callback and logout paths of `oidc` with the provider's `endpoints` (none: not
/// discovered yet), at unix time `now`.
pub fn intercept(
    oidc: &Oidc,
    endpoints: Option<&Endpoints>,
    seen: &Seen<'_>,
    now: u64,
) -> Intercepted {
    if seen.path == oidc.redirect_path.as_bytes() {
        return callback(oidc, endpoints, seen, now);
    }
    if oidc
        .logout_path
        .as_deref()
        .is_some_and(|p| seen.path == p.as_bytes())
    {
        return logout(oidc, endpoints, seen, now);
    }
    if reads_as_own_path(oidc, seen.path) {
        return Intercepted::Answer(page::not_own_path(), Some(SignInEvent::FailedState));
    }
    Intercepted::Pass
}

/// Whether a server behind Envoy may read `path`, which is not spelled as the callback or
/// logout path, as one of them: read as the rules read a path (decoded, slashes merged, dot
/// segments resolved, `;` parameters cut, a trailing `/` or a format suffix like `.json`
/// cut, in any case, the four letters outside ASCII that fold onto ASCII ones included).
/// Such a request never reaches the upstream with a callback's code or a logout's meaning:
/// it is refused.
fn reads_as_own_path(oidc: &Oidc, path: &[u8]) -> bool {
    let Ok(readings) = crate::request::path::readings(path) else {
        // The decision refuses a path that cannot be read.
        return false;
    };
    oidc.own_paths.policy_for_readings(b"GET", &readings).mode == crate::rules::Mode::Required
}

/// The provider sent the browser back: the state must be the transaction's, before anything
/// is sent to the provider.
fn callback(oidc: &Oidc, endpoints: Option<&Endpoints>, seen: &Seen<'_>, now: u64) -> Intercepted {
    let transaction = Transaction::open(oidc, &seen.cookies, now);
    let state = seen.param("state").unwrap_or_default();
    let (Some(transaction), Some(origin)) = (transaction, seen.origin()) else {
        return Intercepted::Answer(page::bad_state(), Some(SignInEvent::FailedState));
    };
    let matches = !state.is_empty() && bool::from(state.as_bytes().ct_eq(transaction.s.as_bytes()));
    if !matches {
        return Intercepted::Answer(page::bad_state(), Some(SignInEvent::FailedState));
    }
    if seen.param("error").is_some() {
        let answer = with_cookies(
            page::refused(),
            vec![cookies::clear(oidc, Jar::Transaction)],
        );
        return Intercepted::Answer(answer, Some(SignInEvent::FailedProvider));
    }
    let Some(code) = seen.param("code").filter(|c| !c.is_empty()) else {
        return Intercepted::Answer(page::bad_state(), Some(SignInEvent::FailedState));
    };
    let Some(endpoints) = endpoints else {
        // Discovery has not answered yet (an Envoy started after the one that sent the
        // browser): the code stays unused, and the page asks to try again.
        return Intercepted::Answer(page::unavailable(), Some(SignInEvent::FailedDiscovery));
    };
    let redirect = redirect_uri(oidc, &origin);
    let call = provider_call::post(
        oidc,
        &endpoints.token,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect),
            ("code_verifier", &transaction.v),
        ],
    );
    Intercepted::Call(
        call,
        Pending::Exchange {
            transaction,
            origin,
        },
    )
}

/// Logout: the session's cookies cleared, the refresh token revoked when the provider has a
/// revocation endpoint, the browser sent to the provider's end of session (or `/`).
fn logout(oidc: &Oidc, endpoints: Option<&Endpoints>, seen: &Seen<'_>, now: u64) -> Intercepted {
    // Another site (a sibling host included) cannot sign the browser out: a link or a
    // script elsewhere would end the session and revoke its refresh token. Browsers say
    // where a request started; one that says nothing (an old browser, a bookmark) is let.
    if matches!(seen.fetch_site, b"cross-site" | b"same-site") {
        return Intercepted::Answer(page::logout_elsewhere(), None);
    }
    let kept = session::kept(oidc, &seen.cookies, now).unwrap_or_default();
    // Before discovery has answered, the configuration's own endpoints; without them a
    // logout would leave the refresh token alive or the provider's session open: a page asks
    // to try again, and the cookies stay.
    let configured = &oidc.configured;
    let (end_session, revocation) = match endpoints {
        Some(endpoints) => (
            endpoints.end_session.as_ref(),
            endpoints.revocation.as_ref(),
        ),
        None if configured.end_session.is_some()
            && (kept.r.is_none() || configured.revocation.is_some()) =>
        {
            (
                configured.end_session.as_ref(),
                configured.revocation.as_ref(),
            )
        }
        None => {
            return Intercepted::Answer(page::unavailable(), Some(SignInEvent::FailedDiscovery))
        }
    };
    let location = match end_session {
        Some(end) => {
            let mut params = vec![("client_id", oidc.client_id.as_str())];
            if let Some(hint) = &kept.i {
                params.push(("id_token_hint", hint));
            }
            if let Some(uri) = &oidc.post_logout_redirect_uri {
                params.push(("post_logout_redirect_uri", uri));
            }
            let query: Vec<String> = params
                .iter()
                .map(|(n, v)| format!("{n}={}", encode_component(v.as_bytes())))
                .collect();
            let separator = if end.contains('?') { '&' } else { '?' };
            format!("{end}{separator}{}", query.join("&"))
        }
        None => oidc
            .post_logout_redirect_uri
            .clone()
            .unwrap_or_else(|| "/".to_owned()),
    };
    let clears = Jar::ALL
        .iter()
        .map(|jar| cookies::clear(oidc, *jar))
        .collect();
    let answer = with_cookies(response::redirect(location), clears);
    match (revocation, &kept.r) {
        (Some(endpoint), Some(refresh)) => {
            let call = provider_call::post(
                oidc,
                endpoint,
                &[("token", refresh), ("token_type_hint", "refresh_token")],
            );
            Intercepted::Call(call, Pending::Logout { answer })
        }
        _ => Intercepted::Answer(answer, Some(SignInEvent::LoggedOut)),
    }
}

/// `answer` with `cookies` set.
fn with_cookies(mut answer: LocalResponse, cookies: Vec<String>) -> LocalResponse {
    answer
        .headers
        .extend(cookies.into_iter().map(|c| ("set-cookie", c)));
    answer
}

/// The provider's answer to a call: its `:status` (none: no answer in time) and body.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub status: Option<&'a str>,
    pub body: &'a [u8],
}

/// The answer to a request that waited for the provider's `answer`; `issuer` is the
/// sign-in's issuer and `fetched` the keys the worker holds for it.
pub fn on_answer(
    oidc: &Oidc,
    (issuer, fetched): (Option<&Issuer>, Option<&KeySet>),
    pending: Pending,
    answer: Answer<'_>,
    skew: u64,
    now: u64,
) -> (LocalResponse, SignInEvent) {
    let Answer { status, body } = answer;
    let (transaction, origin) = match pending {
        Pending::Logout { answer } => return (answer, SignInEvent::LoggedOut),
        Pending::Refresh { .. } => return (page::unavailable(), SignInEvent::RefreshFailed),
        Pending::Exchange {
            transaction,
            origin,
        } => (transaction, origin),
    };
    // A failed sign-in ends its transaction: its cookie and state cannot drive more code
    // exchanges (each a call to the provider with the client's secret).
    let ended = || vec![cookies::clear(oidc, Jar::Transaction)];
    let Some(tokens) = provider_call::tokens(status, body) else {
        let answer = with_cookies(page::unavailable(), ended());
        return (answer, SignInEvent::FailedTokenEndpoint);
    };
    let checked = match (issuer, tokens.id_token.as_deref()) {
        (Some(issuer), Some(id)) => id_token::check(
            issuer,
            fetched,
            id,
            &oidc.client_id,
            &transaction.n,
            skew,
            now,
        ),
        _ => Err(IdTokenError::Malformed),
    };
    if checked.is_err() || !session::is_sign_in_token(oidc, &tokens.access_token) {
        return (
            with_cookies(page::refused(), ended()),
            SignInEvent::FailedIdToken,
        );
    }
    let Some(mut set) = session::set_cookies(oidc, &tokens, now) else {
        let answer = with_cookies(page::unavailable(), ended());
        return (answer, SignInEvent::FailedTokenEndpoint);
    };
    set.push(cookies::clear(oidc, Jar::Transaction));
    let back = same_origin(&transaction.r, &origin);
    (
        with_cookies(response::redirect(back), set),
        SignInEvent::Completed,
    )
}

/// `url` when it is on `origin`, else the origin's root.
pub fn same_origin(url: &str, origin: &str) -> String {
    let on_origin = url
        .strip_prefix(origin)
        .is_some_and(|rest| rest.starts_with('/') && !rest.starts_with("//"));
    if on_origin {
        url.to_owned()
    } else {
        format!("{origin}/")
    }
}
