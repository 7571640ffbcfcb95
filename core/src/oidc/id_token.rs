//! The ID token of a sign-in (OpenID Connect Core section 3.1.3.7): signed by a key of the
//! issuer (`issuers` entry, the keys the worker holds), `iss` exactly the issuer's, `aud`
//! holding the client (and `azp` the client when present), the `nonce` of the transaction,
//! and `exp`/`iat` within the clock skew.

use subtle::ConstantTimeEq;

use crate::verify::base64url;
use crate::verify::issuer::{Issuer, KeySource, MAX_KEY_TRIES};
use crate::verify::jwks::{Algorithm, KeySet};
use crate::verify::jws::{self, Audience};
use crate::verify::MAX_CREDENTIAL_LEN;

/// Why an ID token is refused (for the debug log: no value of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdTokenError {
    Malformed,
    Algorithm,
    /// The issuer's keys were never fetched.
    NoKeys,
    Signature,
    Issuer,
    Audience,
    Nonce,
    Times,
}

/// `azp` (OpenID Connect Core 3.1.3.7): when present it must be the client; a token for
/// several audiences must have it.
fn authorized_party_ok(aud: &Option<Audience>, payload: &str, client_id: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Party<'a> {
        #[serde(default, borrow)]
        azp: Option<std::borrow::Cow<'a, str>>,
    }
    let mut buffer = Vec::new();
    if base64url::decode_into(payload.as_bytes(), &mut buffer).is_none() {
        return false;
    }
    let Ok(party) = serde_json::from_slice::<Party<'_>>(&buffer) else {
        return false;
    };
    let several = matches!(aud, Some(Audience::Many(list)) if list.len() > 1);
    match party.azp {
        Some(azp) => azp == client_id,
        None => !several,
    }
}

/// Checks `token` for `client_id` and `nonce` at unix time `now`; `fetched` is the keys the
/// worker holds for the issuer (a remote `jwks_uri`).
pub fn check(
    issuer: &Issuer,
    fetched: Option<&KeySet>,
    token: &str,
    client_id: &str,
    nonce: &str,
    skew: u64,
    now: u64,
) -> Result<(), IdTokenError> {
    if token.len() > MAX_CREDENTIAL_LEN {
        return Err(IdTokenError::Malformed);
    }
    let parts = jws::split(token).ok_or(IdTokenError::Malformed)?;
    let mut buffer = Vec::new();
    let header = jws::parse_header(parts.header, &mut buffer).ok_or(IdTokenError::Malformed)?;
    if header.crit.is_some() || !header.is_jwt() {
        return Err(IdTokenError::Malformed);
    }
    let algorithm = Algorithm::parse(&header.alg).ok_or(IdTokenError::Algorithm)?;
    if !issuer.algorithms.contains(&algorithm) {
        return Err(IdTokenError::Algorithm);
    }
    let mut claims_buffer = Vec::new();
    let claims =
        jws::parse_claims(parts.payload, &mut claims_buffer).ok_or(IdTokenError::Malformed)?;
    if claims.iss.as_deref() != Some(issuer.issuer.as_str()) {
        return Err(IdTokenError::Issuer);
    }
    let audience_ok = match &claims.aud {
        Some(Audience::One(aud)) => aud == client_id,
        Some(Audience::Many(list)) => list.iter().any(|a| a == client_id),
        None => false,
    };
    if !audience_ok || !authorized_party_ok(&claims.aud, parts.payload, client_id) {
        return Err(IdTokenError::Audience);
    }
    let sent = claims.nonce.as_deref().unwrap_or_default();
    if !bool::from(sent.as_bytes().ct_eq(nonce.as_bytes())) || nonce.is_empty() {
        return Err(IdTokenError::Nonce);
    }
    let exp = claims.exp.ok_or(IdTokenError::Times)?;
    let iat = claims.iat.ok_or(IdTokenError::Times)?;
    if now.saturating_sub(skew) > exp || iat > now.saturating_add(skew) {
        return Err(IdTokenError::Times);
    }
    let keys = match &issuer.keys {
        KeySource::Inline(set) => Some(&**set),
        KeySource::Remote(_) => fetched,
    }
    .ok_or(IdTokenError::NoKeys)?;
    let mut signature = Vec::new();
    base64url::decode_into(parts.signature.as_bytes(), &mut signature)
        .ok_or(IdTokenError::Signature)?;
    let kid = header.kid.as_deref().map(str::to_owned);
    let signed = keys
        .candidates(algorithm, kid.as_deref())
        .take(MAX_KEY_TRIES)
        .any(|key| key.signs(parts.signing_input, &signature));
    signed.then_some(()).ok_or(IdTokenError::Signature)
}
