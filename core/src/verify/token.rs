//! Access tokens: HS256 JWTs signed with one of the configured secrets.
//!
//! Verification is done here, on borrowed buffers with the HMAC key state computed once;
//! jwt-simple signs (the minting tool, the demo sign-in service) and is the reference the
//! tests hold this verification to.

use std::rc::Rc;

use hmac_sha256::HMAC;
use jwt_simple::prelude::*;

use crate::identity::Identity;
use crate::verify::base64url;
use crate::verify::cache::{CachedToken, TokenCache};
use crate::verify::jws;
use crate::verify::revocation::TokenMarks;
use crate::verify::MAX_CREDENTIAL_LEN;

/// The longest `sub` copied into an identity header, in bytes.
pub const MAX_SUBJECT_LEN: usize = 256;

/// The claims this filter reads beyond the registered ones.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AccessClaims {
    /// `access` for an access token, `refresh` for a refresh token.
    pub token_type: Option<String>,
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Longer than [`MAX_CREDENTIAL_LEN`].
    TooLong,
    /// Not a compact JWS with decodable header and payload.
    Malformed,
    /// `alg` is not exactly `HS256`.
    Algorithm,
    /// The header carries `crit`, which this filter does not implement.
    CriticalHeader,
    /// The header names a `kid` that no configured secret has.
    UnknownKeyId,
    /// The signature matches none of the candidate secrets.
    BadSignature,
    /// `exp` has passed, beyond the clock skew.
    Expired,
    /// `nbf` is still ahead, beyond the clock skew.
    NotYetValid,
    /// `iat` is ahead of the clock, beyond the clock skew.
    IssuedInFuture,
    /// There is no `exp`.
    MissingExpiry,
    /// `token_type` is not exactly the expected one (`access` for the filter).
    NotAccessToken,
    /// `sub` is missing, empty, too long or holds characters unsafe in a header.
    BadSubject,
    /// `exp` minus `iat` (or `nbf`) exceeds `max_lifetime_seconds`.
    LifetimeTooLong,
    /// An asymmetric token whose `iss` is no configured issuer.
    UnknownIssuer,
    /// An issuer's token whose `aud` holds none of the issuer's audiences.
    WrongAudience,
}

impl TokenError {
    /// A fixed, human text for the client; it never quotes the token.
    pub fn message(self) -> &'static str {
        match self {
            TokenError::TooLong => "The credential is longer than 8192 bytes.",
            TokenError::Malformed => "The access token is malformed.",
            TokenError::Algorithm => "The access token's signing algorithm is not accepted.",
            TokenError::CriticalHeader => {
                "The access token has critical header parameters this service does not support."
            }
            TokenError::UnknownKeyId => "The access token names a signing key that is not known.",
            TokenError::BadSignature => "The access token signature is not valid.",
            TokenError::Expired => "The access token has expired; refresh it and try again.",
            TokenError::NotYetValid => "The access token is not valid yet.",
            TokenError::IssuedInFuture => "The access token was issued in the future.",
            TokenError::MissingExpiry => "The access token has no expiry (exp).",
            TokenError::NotAccessToken => "The token is not an access token.",
            TokenError::BadSubject => "The access token has no valid subject (sub).",
            TokenError::LifetimeTooLong => {
                "The access token lives longer than this service accepts."
            }
            TokenError::UnknownIssuer => "The access token's issuer (iss) is not trusted here.",
            TokenError::WrongAudience => "The access token is not meant for this service (aud).",
        }
    }
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for TokenError {}

/// What a valid access token proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub subject: Rc<str>,
    pub expires_at: u64,
    /// Whether the token was found in the cache of verified tokens.
    pub cached: bool,
    /// What the revocation list knows the token by.
    pub marks: TokenMarks,
}

/// One HS256 secret, optionally named by a `kid`.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: Option<String>,
    secret: Vec<u8>,
    /// The HMAC state after the key's inner block, computed once.
    mac: HMAC,
}

impl SigningKey {
    /// A key from its raw bytes (the configuration's UTF-8 text).
    pub fn new(kid: Option<String>, secret: &[u8]) -> Self {
        SigningKey {
            kid,
            secret: secret.to_vec(),
            mac: HMAC::new(secret),
        }
    }

    /// The same secret under another `kid` (or none).
    pub fn with_kid(&self, kid: Option<String>) -> Self {
        SigningKey {
            kid,
            ..self.clone()
        }
    }

    /// Signs `claims` with jwt-simple: used by the minting tool, the demo sign-in service and
    /// tests (the filter itself never signs, so its module carries no signing code).
    pub fn sign(&self, claims: JWTClaims<AccessClaims>) -> Result<String, jwt_simple::Error> {
        let mut key = HS256Key::from_bytes(&self.secret);
        if let Some(kid) = &self.kid {
            key = key.with_key_id(kid);
        }
        key.authenticate(claims)
    }

    /// Whether `tag` is this key's HMAC-SHA256 of `input`, compared in constant time.
    fn authenticates(&self, input: &[u8], tag: &[u8; 32]) -> bool {
        let mut mac = self.mac.clone();
        mac.update(input);
        mac.finalize_verify(tag)
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Verifies access tokens against the configured secrets and time policy. The tokens it
/// verified are remembered in a [`TokenCache`] that the caller owns (one per worker).
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    keys: Vec<SigningKey>,
    clock_skew: u64,
    max_lifetime: Option<u64>,
}

impl TokenVerifier {
    /// A verifier; `keys` must not be empty for any token to pass.
    pub fn new(keys: Vec<SigningKey>, clock_skew: u64, max_lifetime: Option<u64>) -> Self {
        TokenVerifier {
            keys,
            clock_skew,
            max_lifetime,
        }
    }

    /// Whether any secret is configured.
    pub(crate) fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The current secret (the first configured), which signs new tokens.
    pub fn current_key(&self) -> Option<&SigningKey> {
        self.keys.first()
    }

    /// The tolerance on `exp`, `nbf` and `iat`, in seconds.
    pub(crate) fn clock_skew(&self) -> u64 {
        self.clock_skew
    }

    /// The number of configured secrets.
    pub(crate) fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Verifies an access token at unix time `now`, from `cache` when it was seen before.
    pub fn verify(
        &self,
        cache: &mut TokenCache,
        token: &str,
        now: u64,
    ) -> Result<VerifiedToken, TokenError> {
        if let Some(hit) = cache.get(token, now, self.clock_skew) {
            if let (None, Some(subject)) = (hit.keys, &hit.identity.user) {
                return Ok(VerifiedToken {
                    subject: Rc::clone(subject),
                    expires_at: hit.expires_at,
                    cached: true,
                    marks: hit.marks.clone(),
                });
            }
        }
        let verified = self.verify_typed(token, "access", now)?;
        cache.insert(
            token,
            CachedToken {
                identity: Identity::user(Rc::clone(&verified.subject)),
                expires_at: verified.expires_at,
                keys: None,
                marks: verified.marks.clone(),
                claims: None,
            },
        );
        Ok(verified)
    }

    /// Drops the tokens expired at `now` (with the allowed skew) from `cache`.
    pub fn sweep(&self, cache: &mut TokenCache, now: u64) {
        cache.sweep(now, self.clock_skew);
    }

    /// Verifies a token whose `token_type` must be `token_type` (`access` or `refresh`),
    /// without the cache.
    pub fn verify_typed(
        &self,
        token: &str,
        token_type: &str,
        now: u64,
    ) -> Result<VerifiedToken, TokenError> {
        if token.len() > MAX_CREDENTIAL_LEN {
            return Err(TokenError::TooLong);
        }
        let parts = jws::split(token).ok_or(TokenError::Malformed)?;
        let mut buffer = Vec::new();
        let header = jws::parse_header(parts.header, &mut buffer).ok_or(TokenError::Malformed)?;
        if header.alg != "HS256" {
            return Err(TokenError::Algorithm);
        }
        if header.crit.is_some() {
            return Err(TokenError::CriticalHeader);
        }
        if header.salt.is_some() || !header.is_jwt() {
            return Err(TokenError::Malformed);
        }
        let kid = header.kid.as_deref();
        let mut candidates = self
            .keys
            .iter()
            .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
            .peekable();
        if candidates.peek().is_none() {
            return Err(if kid.is_some() {
                TokenError::UnknownKeyId
            } else {
                TokenError::BadSignature
            });
        }
        let mut tag = Vec::with_capacity(32);
        base64url::decode_into(parts.signature.as_bytes(), &mut tag)
            .ok_or(TokenError::Malformed)?;
        let tag: [u8; 32] = tag.try_into().map_err(|_| TokenError::BadSignature)?;
        let input = parts.signing_input.as_bytes();
        if !candidates.any(|key| key.authenticates(input, &tag)) {
            return Err(TokenError::BadSignature);
        }
        let claims = jws::parse_claims(parts.payload, &mut buffer).ok_or(TokenError::Malformed)?;
        // A name repeated at any depth, even one the filter does not read, would be read
        // differently by an upstream that reads the token itself (the first or the last).
        if crate::verify::claims::parse_payload(parts.payload).is_none() {
            return Err(TokenError::Malformed);
        }
        self.check_claims(&claims, token_type, parts.signing_input, now)
    }

    /// The time checks, then the claims of the master secrets' tokens.
    fn check_claims(
        &self,
        claims: &jws::Claims<'_>,
        token_type: &str,
        signing_input: &str,
        now: u64,
    ) -> Result<VerifiedToken, TokenError> {
        let expires_at = check_times(claims, self.clock_skew, self.max_lifetime, now)?;
        if claims.token_type.as_deref() != Some(token_type) {
            return Err(TokenError::NotAccessToken);
        }
        let subject = claims.sub.as_deref().ok_or(TokenError::BadSubject)?;
        if !is_safe_subject(subject) {
            return Err(TokenError::BadSubject);
        }
        let subject: Rc<str> = subject.into();
        Ok(VerifiedToken {
            marks: TokenMarks {
                issuer: None,
                subject: Rc::clone(&subject),
                jti: claims.jti.as_deref().map(Rc::from),
                issued_at: claims.iat,
                digest: TokenMarks::digest_of(signing_input),
            },
            subject,
            expires_at,
            cached: false,
        })
    }
}

/// The time checks jwt-simple makes (`iat`, `nbf`, `exp` within `skew` of `now`), with `exp`
/// required, then `max_lifetime`; the expiry when they pass.
pub(crate) fn check_times(
    claims: &jws::Claims<'_>,
    skew: u64,
    max_lifetime: Option<u64>,
    now: u64,
) -> Result<u64, TokenError> {
    if claims.iat.is_some_and(|iat| iat > now.saturating_add(skew)) {
        return Err(TokenError::IssuedInFuture);
    }
    if claims.nbf.is_some_and(|nbf| nbf > now.saturating_add(skew)) {
        return Err(TokenError::NotYetValid);
    }
    let expires_at = claims.exp.ok_or(TokenError::MissingExpiry)?;
    if now.saturating_sub(skew) > expires_at {
        return Err(TokenError::Expired);
    }
    if let Some(max) = max_lifetime {
        let start = match (claims.iat, claims.nbf) {
            (Some(iat), Some(nbf)) => iat.min(nbf),
            (Some(t), None) | (None, Some(t)) => t,
            (None, None) => return Err(TokenError::LifetimeTooLong),
        };
        if expires_at.saturating_sub(start) > max {
            return Err(TokenError::LifetimeTooLong);
        }
    }
    Ok(expires_at)
}

/// A compact JWS has exactly two dots.
pub fn is_token_shaped(value: &str) -> bool {
    value.bytes().filter(|&b| b == b'.').count() == 2
}

/// The latest time a minted token can name: jwt-simple's timestamps hold 32 bits of seconds
/// (February 2106).
pub const MAX_TIMESTAMP: u64 = u32::MAX as u64;

/// A `sub` the filter will copy into a header: 1 to 256 visible ASCII characters, no comma.
///
/// Whitespace, control characters, commas (list separators) and non-ASCII text are refused
/// rather than rewritten, so an upstream never reads a different user than the token names.
pub fn is_safe_subject(subject: &str) -> bool {
    !subject.is_empty()
        && subject.len() <= MAX_SUBJECT_LEN
        && subject.bytes().all(|b| b.is_ascii_graphic() && b != b',')
}

/// A compact JWS over exactly these header and payload texts, HMAC-SHA256 with `key`.
///
/// For tests and tools that need tokens jwt-simple would not produce (other algorithms,
/// duplicate claims, hostile headers).
pub fn sign_raw(header_json: &str, payload_json: &str, key: &[u8]) -> String {
    use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Encoder};
    let encode = |bytes: &[u8]| Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap_or_default();
    let signing_input = format!(
        "{}.{}",
        encode(header_json.as_bytes()),
        encode(payload_json.as_bytes())
    );
    let tag = hmac_sha256::HMAC::mac(signing_input.as_bytes(), key);
    format!("{signing_input}.{}", encode(&tag))
}

/// The claims of a new token: `sub`, `token_type`, and `iat`/`nbf`/`exp` from `now` and `ttl`.
pub fn claims_for(
    subject: &str,
    token_type: &str,
    now: u64,
    ttl_seconds: u64,
) -> JWTClaims<AccessClaims> {
    // jwt-simple's timestamps hold 32 bits of seconds: later times are capped, never wrapped.
    let expires = now.saturating_add(ttl_seconds).min(MAX_TIMESTAMP);
    let now = UnixTimeStamp::from_secs(now.min(MAX_TIMESTAMP));
    JWTClaims {
        issued_at: Some(now),
        expires_at: Some(UnixTimeStamp::from_secs(expires)),
        invalid_before: Some(now),
        issuer: None,
        subject: Some(subject.to_owned()),
        audiences: None,
        jwt_id: None,
        nonce: None,
        custom: AccessClaims {
            token_type: Some(token_type.to_owned()),
        },
    }
}

#[cfg(test)]
mod tests;
