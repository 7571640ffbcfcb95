//! A session on a request: its access token read from the sealed cookie as the request's
//! `Authorization: Bearer`, the filter's cookies kept from the upstream, and an expired
//! access token refreshed with the refresh token while the request waits.

use std::rc::Rc;

use super::config::{Endpoints, Oidc};
use super::cookies::{self, Jar};
use super::flow::{Answer, Seen};
use super::opened::OpenedSessions;
use super::provider_call::{self, ProviderCall, Tokens};
use super::session::{self, Kept};
use crate::request::Session;

/// A request with the filter's cookies, as the decision reads it ([`SessionView::session`]).
#[derive(Debug)]
pub struct SessionView<'h> {
    /// The session's access token, when the session gives the request one (checked:
    /// [`session::is_sign_in_token`]).
    pub token: Option<Rc<str>>,
    /// The `Cookie` header the upstream gets (none: no cookie).
    pub cookie: Option<Vec<u8>>,
    /// The refresh cookie's sealed value, when the access token came from the session: opened
    /// ([`session::open_kept`]) only when that token has expired.
    pub refresh_cookie: Option<&'h [u8]>,
    /// The session cookie's sealed value, with the refresh cookie (a refresh is known by
    /// both: [`crate::oidc::renewed::Jar`]).
    pub session_cookie: Option<&'h [u8]>,
}

impl SessionView<'_> {
    /// What the decision reads in place of the request's `Cookie` headers and
    /// `Authorization` (borrowed).
    pub fn session(&self) -> Session<'_> {
        Session {
            token: self.token.as_deref(),
            cookie: self.cookie.as_deref(),
        }
    }
}

/// The session of a request (`seen`: what sign-in read of its headers; `None` when it
/// carries none of the filter's cookies). A request with its own `Authorization` header is
/// read with that one. The `Cookie` headers are read once.
pub fn session_view<'h>(
    oidc: &Oidc,
    seen: &Seen<'h>,
    now: u64,
    opened: &mut OpenedSessions,
) -> Option<SessionView<'h>> {
    let found = cookies::read(
        &seen.cookies,
        Jar::Session.name(oidc),
        Jar::Refresh.name(oidc),
    );
    if !found.any_of_ours {
        return None;
    }
    let token = match (seen.has_authorization, found.session) {
        (false, Some(sealed)) => session::access_token(oidc, sealed, now, opened),
        _ => None,
    };
    let refresh_cookie = token.as_ref().and(found.refresh);
    let session_cookie = token.as_ref().and(found.session);
    Some(SessionView {
        token,
        cookie: found.others,
        refresh_cookie,
        session_cookie,
    })
}

/// The view of a request whose `Cookie` headers are `cookies`, with `token` (a session's:
/// [`session::is_sign_in_token`]) as its access token: the filter's cookies gone.
pub fn with_token<'h>(cookies: &[&[u8]], token: Option<&str>) -> SessionView<'h> {
    SessionView {
        token: token.map(Rc::from),
        cookie: cookies::without_ours(cookies),
        refresh_cookie: None,
        session_cookie: None,
    }
}

/// The refresh-token grant of `kept` at the provider's `endpoints`, when it holds a refresh
/// token.
pub fn call(oidc: &Oidc, endpoints: &Endpoints, kept: &Kept) -> Option<ProviderCall> {
    let refresh = kept.r.as_deref()?;
    Some(provider_call::post(
        oidc,
        &endpoints.token,
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
        .filter(|fresh| session::is_sign_in_token(oidc, &fresh.access_token))?;
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
