//! A session: the cookies set when a sign-in completes or a session is refreshed, and the
//! access token read back from them.

use std::rc::Rc;

use super::config::Oidc;
use super::cookies::{self, Jar};
use super::opened::OpenedSessions;
use super::provider_call::Tokens;

/// What the refresh cookie holds: the refresh token and the ID token (the logout's hint),
/// sealed as two lines (empty: none; tokens are visible ASCII).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Kept {
    pub r: Option<String>,
    pub i: Option<String>,
}

impl Kept {
    fn encode(&self) -> Vec<u8> {
        let (r, i) = (self.r.as_deref(), self.i.as_deref());
        format!("{}\n{}", r.unwrap_or_default(), i.unwrap_or_default()).into_bytes()
    }

    fn decode(plain: &[u8]) -> Option<Kept> {
        let text = std::str::from_utf8(plain).ok()?;
        let (r, i) = text.split_once('\n')?;
        let some = |t: &str| (!t.is_empty()).then(|| t.to_owned());
        Some(Kept {
            r: some(r),
            i: some(i),
        })
    }
}

/// The `Set-Cookie` lines of a session holding `tokens`, from unix time `now`; `None` when
/// the access token does not fit a cookie. An ID token that does not fit beside the refresh
/// token is left out (the logout then has no hint).
pub fn set_cookies(oidc: &Oidc, tokens: &Tokens, now: u64) -> Option<Vec<String>> {
    let until = now.saturating_add(oidc.session_seconds);
    let seal = |jar: Jar, plain: &[u8]| {
        let sealed = oidc.sealer.seal(jar.name(oidc), until, plain)?;
        cookies::set(oidc, jar, &sealed, oidc.session_seconds)
    };
    let session = seal(Jar::Session, tokens.access_token.as_bytes())?;
    let mut kept = Kept {
        r: tokens.refresh_token.clone(),
        i: tokens.id_token.clone(),
    };
    let mut refresh = seal(Jar::Refresh, &kept.encode());
    if refresh.is_none() {
        kept.i = None;
        refresh = seal(Jar::Refresh, &kept.encode());
    }
    let refresh = refresh.unwrap_or_else(|| cookies::clear(oidc, Jar::Refresh));
    Some(vec![session, refresh])
}

/// Whether `access_token` may be a session's: a bearer credential as the decision reads one,
/// and a JWT of the sign-in's issuer (its `iss`; the signature is checked on every request).
/// A session holds only the sign-in provider's tokens: a provider cannot hand the browser
/// another issuer's token (and its identities). The decision takes a session's token as
/// checked ([`crate::request::Session`]).
pub fn is_sign_in_token(oidc: &Oidc, access_token: &str) -> bool {
    if !crate::credential::is_bearer_credential(access_token.as_bytes()) {
        return false;
    }
    let Some(compact) = crate::verify::jws::split(access_token) else {
        return false;
    };
    crate::verify::claims::parse_payload(compact.payload)
        .and_then(|claims| {
            claims
                .get("iss")
                .and_then(|iss| iss.as_str().map(str::to_owned))
        })
        .is_some_and(|iss| iss == oidc.issuer_id)
}

/// The access token of the session cookie's value `sealed`, when it opens at unix time `now`
/// and holds a session's token ([`is_sign_in_token`]; a cookie sealed before that check, or
/// under keys shared with another deployment, may not): from `opened` when this worker
/// opened the same value before, else opened, checked and kept there.
pub fn access_token(
    oidc: &Oidc,
    sealed: &[u8],
    now: u64,
    opened: &mut OpenedSessions,
) -> Option<Rc<str>> {
    if let Some(token) = opened.get(sealed, now) {
        return Some(token);
    }
    let (plain, until) = oidc
        .sealer
        .open_until(Jar::Session.name(oidc), sealed, now)?;
    let token = String::from_utf8(plain)
        .ok()
        .filter(|token| is_sign_in_token(oidc, token))?;
    let token = Rc::from(token);
    opened.keep(sealed, Rc::clone(&token), until);
    Some(token)
}

/// What the refresh cookie keeps, when it opens at unix time `now`.
pub fn kept(oidc: &Oidc, cookies: &[&[u8]], now: u64) -> Option<Kept> {
    open_kept(oidc, cookies::find(cookies, Jar::Refresh.name(oidc))?, now)
}

/// What the refresh cookie's value `sealed` keeps, when it opens at unix time `now`.
pub fn open_kept(oidc: &Oidc, sealed: &[u8], now: u64) -> Option<Kept> {
    Kept::decode(&oidc.sealer.open(Jar::Refresh.name(oidc), sealed, now)?)
}
