//! A session on a request: its access token read from the sealed cookie as the request's
//! `Authorization: Bearer`, the filter's cookies kept from the upstream, and an expired
//! access token refreshed with the refresh token while the request waits.

use super::config::Oidc;
use super::cookies::{self, Jar};
use super::flow::{Answer, Seen};
use super::opened::OpenedSessions;
use super::provider_call::{self, ProviderCall, Tokens};
use super::session::{self, Kept};

/// A request with the filter's cookies, as the decision reads it: the request's headers
/// without its `Cookie` headers, then `cookie` and `bearer` (see [`SessionView::headers`]).
#[derive(Debug)]
pub struct SessionView {
    /// `Bearer <the session's access token>`, when the session gives the request one.
    pub bearer: Option<Vec<u8>>,
    /// The `Cookie` header the upstream gets (none: no cookie).
    pub cookie: Option<Vec<u8>>,
    /// The refresh cookie's sealed value, when the access token came from the session: opened
    /// ([`session::open_kept`]) only when that token has expired.
    pub refresh_cookie: Option<Vec<u8>>,
}

impl SessionView {
    /// The headers of `request` as the decision reads them: its own without `Cookie`, the
    /// remaining `Cookie` and the session's `Authorization`, borrowed (none is copied).
    pub fn headers<'a>(&'a self, request: &'a [(String, Vec<u8>)]) -> Vec<(&'a str, &'a [u8])> {
        let own = request
            .iter()
            .filter(|(name, _)| name != "cookie")
            .map(|(name, value)| (name.as_str(), value.as_slice()));
        let cookie = self.cookie.as_deref().map(|c| ("cookie", c));
        let bearer = self.bearer.as_deref().map(|b| ("authorization", b));
        own.chain(cookie).chain(bearer).collect()
    }
}

/// The session of a request (`seen`: what sign-in read of its headers; `None` when it
/// carries none of the filter's cookies). A request with its own `Authorization` header is
/// read with that one.
pub fn session_view(
    oidc: &Oidc,
    seen: &Seen<'_>,
    now: u64,
    opened: &mut OpenedSessions,
) -> Option<SessionView> {
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
    Some(SessionView {
        refresh_cookie,
        ..with_token(&seen.cookies, token.as_deref())
    })
}

/// The view of a request whose `Cookie` headers are `cookies`, with `token` as its
/// `Authorization: Bearer`: the filter's cookies gone.
pub fn with_token(cookies: &[&[u8]], token: Option<&str>) -> SessionView {
    SessionView {
        bearer: token.map(|token| [b"Bearer ", token.as_bytes()].concat()),
        cookie: cookies::without_ours(cookies),
        refresh_cookie: None,
    }
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
