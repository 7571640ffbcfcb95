//! A session on a request: its access token read from the sealed cookie as the request's
//! `Authorization: Bearer`, the filter's cookies kept from the upstream, and an expired
//! access token refreshed with the refresh token while the request waits.

use super::config::Oidc;
use super::cookies::{self, Jar};
use super::flow::{Answer, Seen};
use super::opened::OpenedSessions;
use super::provider_call::{self, ProviderCall, Tokens};
use super::session::{self, Kept};

/// A request with the filter's cookies, as the decision reads it.
#[derive(Debug)]
pub struct SessionView {
    /// The headers: the filter's cookies gone, the session's access token as
    /// `Authorization: Bearer` when there is one.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The `Cookie` header the upstream gets (none: no cookie).
    pub cookie: Option<Vec<u8>>,
    /// The refresh cookie's sealed value, when the access token came from the session: opened
    /// ([`session::open_kept`]) only when that token has expired.
    pub refresh_cookie: Option<Vec<u8>>,
}

/// The request's headers with a session (`None` when the request carries none of the
/// filter's cookies). A request with its own `Authorization` header is read with that one.
pub fn session_view(
    oidc: &Oidc,
    headers: &[(String, Vec<u8>)],
    now: u64,
    opened: &mut OpenedSessions,
) -> Option<SessionView> {
    let seen = Seen::read(headers);
    if !cookies::any_of_ours(&seen.cookies) {
        return None;
    }
    let token = (!seen.has_authorization)
        .then(|| session::access_token(oidc, &seen.cookies, now, opened))
        .flatten();
    let refresh_cookie = token
        .as_ref()
        .and_then(|_| cookies::find(&seen.cookies, Jar::Refresh.name(oidc)))
        .map(<[u8]>::to_vec);
    let (headers, cookie) = with_token(headers, token.as_deref());
    Some(SessionView {
        headers,
        cookie,
        refresh_cookie,
    })
}

/// `headers` without the filter's cookies, with `token` as `Authorization: Bearer`; and the
/// `Cookie` header left.
#[allow(clippy::type_complexity)]
pub fn with_token(
    headers: &[(String, Vec<u8>)],
    token: Option<&str>,
) -> (Vec<(String, Vec<u8>)>, Option<Vec<u8>>) {
    let seen = Seen::read(headers);
    let rest = cookies::without_ours(&seen.cookies);
    let mut view: Vec<(String, Vec<u8>)> = headers
        .iter()
        .filter(|(name, _)| name != "cookie")
        .cloned()
        .collect();
    if let Some(rest) = &rest {
        view.push(("cookie".to_owned(), rest.clone()));
    }
    if let Some(token) = token {
        view.push((
            "authorization".to_owned(),
            format!("Bearer {token}").into_bytes(),
        ));
    }
    (view, rest)
}

/// The refresh-token grant of `kept`, when it holds a refresh token.
pub fn call(oidc: &Oidc, kept: &Kept) -> Option<ProviderCall> {
    let refresh = kept.r.as_deref()?;
    Some(provider_call::post(
        oidc,
        &oidc.token_endpoint,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    ))
}

/// The new access token and the session's new cookies from the provider's `answer` at unix
/// time `now`; a refresh or ID token the answer lacks is kept. `None`: the refresh was
/// refused (or failed), and the session ends.
pub fn renewed(
    oidc: &Oidc,
    kept: &Kept,
    answer: Answer<'_>,
    now: u64,
) -> Option<(String, Vec<String>)> {
    let fresh = provider_call::tokens(answer.status, answer.body)
        .filter(|fresh| session::of_sign_in_issuer(oidc, &fresh.access_token))?;
    let tokens = Tokens {
        refresh_token: fresh.refresh_token.or_else(|| kept.r.clone()),
        id_token: fresh.id_token.or_else(|| kept.i.clone()),
        access_token: fresh.access_token,
    };
    let cookies = session::set_cookies(oidc, &tokens, now)?;
    Some((tokens.access_token, cookies))
}

/// The `Set-Cookie` lines that end a session.
pub fn ended(oidc: &Oidc) -> Vec<String> {
    [Jar::Session, Jar::Refresh]
        .iter()
        .map(|jar| cookies::clear(oidc, *jar))
        .collect()
}
