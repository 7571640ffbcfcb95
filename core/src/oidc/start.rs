//! A browser without a session is sent to the provider: `302` to the authorization endpoint
//! with a fresh `state`, `nonce` and PKCE `S256` challenge, all three (and the URL to come
//! back to) sealed in a short-lived transaction cookie.

use super::config::{Endpoints, Oidc};
use super::cookies::{self, Jar};
use super::{page, random};
use crate::request::query::encode_component;
use crate::response::{self, LocalResponse};

/// How long a sign-in may take at the provider, in seconds.
pub const TRANSACTION_SECONDS: u64 = 600;

/// What the transaction cookie holds (sealed as its four fields, one a line, the URL last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// `state`.
    pub s: String,
    /// `nonce`.
    pub n: String,
    /// The PKCE verifier.
    pub v: String,
    /// Where the browser goes back to (same origin).
    pub r: String,
}

impl Transaction {
    /// The transaction in the request's cookie, when it opens at unix time `now`.
    pub fn open(oidc: &Oidc, cookies: &[&[u8]], now: u64) -> Option<Transaction> {
        let name = Jar::Transaction.name(oidc);
        let sealed = cookies::find(cookies, name)?;
        let plain = oidc.sealer.open(name, sealed, now)?;
        Transaction::decode(&String::from_utf8(plain).ok()?)
    }

    fn encode(&self) -> String {
        format!("{}\n{}\n{}\n{}", self.s, self.n, self.v, self.r)
    }

    fn decode(text: &str) -> Option<Transaction> {
        let mut fields = text.splitn(4, '\n').map(str::to_owned);
        Some(Transaction {
            s: fields.next()?,
            n: fields.next()?,
            v: fields.next()?,
            r: fields.next()?,
        })
    }
}

/// `<scheme>://<authority><redirect_path>`: where the provider sends the browser back.
pub fn redirect_uri(oidc: &Oidc, origin: &str) -> String {
    format!("{origin}{}", oidc.redirect_path)
}

/// The answer that sends a browser at `origin` (`scheme://authority`) to the provider's
/// `endpoints`, to come back to `return_url`; a 503 page when the endpoints are not known
/// yet (discovery has not answered), the host gave no random bytes or the cookie would be
/// too large.
pub fn sign_in(
    (oidc, endpoints): (&Oidc, Option<&Endpoints>),
    origin: &str,
    return_url: &str,
    now: u64,
) -> LocalResponse {
    let Some(endpoints) = endpoints else {
        return page::unavailable();
    };
    let fresh = (random::token(), random::token(), random::token());
    let (Some(state), Some(nonce), Some(verifier)) = fresh else {
        return page::unavailable();
    };
    let challenge = random::challenge(&verifier);
    let transaction = Transaction {
        s: state,
        n: nonce,
        v: verifier,
        r: return_url.to_owned(),
    };
    let plain = transaction.encode().into_bytes();
    let name = Jar::Transaction.name(oidc);
    let cookie = oidc
        .sealer
        .seal(name, now.saturating_add(TRANSACTION_SECONDS), &plain)
        .and_then(|sealed| cookies::set(oidc, Jar::Transaction, &sealed, TRANSACTION_SECONDS));
    let Some(cookie) = cookie else {
        return page::unavailable();
    };
    let separator = if endpoints.authorization.contains('?') {
        '&'
    } else {
        '?'
    };
    let location = format!(
        "{}{separator}response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&nonce={}&code_challenge={challenge}&code_challenge_method=S256",
        endpoints.authorization,
        encode_component(oidc.client_id.as_bytes()),
        encode_component(redirect_uri(oidc, origin).as_bytes()),
        encode_component(oidc.scope.as_bytes()),
        transaction.s,
        transaction.n,
    );
    let mut answer = response::redirect(location);
    answer.headers.push(("set-cookie", cookie));
    answer
}
