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
mod tests {
    use super::*;

    /// The catalogue's test key.
    const K: &[u8] = b"Hq3vXo9TzK7rWm2pLc8dNs5yFb4gJe6A";
    /// The catalogue's injected clock.
    const NOW: u64 = 1_750_000_000;
    const VECTORS: &str = include_str!("../../../tests/data/jwt-vectors.tsv");

    fn verifier(keys: Vec<SigningKey>) -> TokenVerifier {
        TokenVerifier::new(keys, 60, None)
    }

    fn error_named(name: &str) -> TokenError {
        match name {
            "TooLong" => TokenError::TooLong,
            "Malformed" => TokenError::Malformed,
            "Algorithm" => TokenError::Algorithm,
            "CriticalHeader" => TokenError::CriticalHeader,
            "UnknownKeyId" => TokenError::UnknownKeyId,
            "BadSignature" => TokenError::BadSignature,
            "Expired" => TokenError::Expired,
            "NotYetValid" => TokenError::NotYetValid,
            "IssuedInFuture" => TokenError::IssuedInFuture,
            "MissingExpiry" => TokenError::MissingExpiry,
            "NotAccessToken" => TokenError::NotAccessToken,
            "BadSubject" => TokenError::BadSubject,
            "LifetimeTooLong" => TokenError::LifetimeTooLong,
            other => panic!("unknown expectation {other}"),
        }
    }

    fn unescape(token: &str) -> String {
        token
            .replace("\\r", "\r")
            .replace("\\n", "\n")
            .replace("\\t", "\t")
    }

    #[test]
    fn catalogue_vectors() {
        let v = verifier(vec![SigningKey::new(None, K)]);
        let mut count = 0;
        for line in VECTORS.lines().filter(|l| !l.starts_with('#')) {
            let cols: Vec<&str> = line.split('\t').collect();
            let (id, expected, token) = (cols[0], cols[1], unescape(cols[4]));
            let got = v.verify(&mut TokenCache::default(), &token, NOW);
            match expected.strip_prefix("ok:") {
                Some(sub) => assert_eq!(got.as_ref().map(|t| &*t.subject), Ok(sub), "{id}"),
                None => assert_eq!(got, Err(error_named(expected)), "{id}"),
            }
            count += 1;
        }
        assert_eq!(count, 97);
    }

    #[test]
    fn catalogue_recipes() {
        let v = verifier(vec![SigningKey::new(None, K)]);
        let header = r#"{"alg":"HS256","typ":"JWT"}"#;
        // J16j: a 10 KiB subject.
        let payload = format!(
            r#"{{"sub":"{}","token_type":"access","exp":4102444800}}"#,
            "a".repeat(10240)
        );
        assert_eq!(
            v.verify(
                &mut TokenCache::default(),
                &sign_raw(header, &payload, K),
                NOW
            ),
            Err(TokenError::TooLong)
        );
        // J18b: a header nested 3000 deep, signed with a wrong key.
        let deep = format!(
            r#"{{"alg":"HS256","x":{}{}}}"#,
            "[".repeat(3000),
            "]".repeat(3000)
        );
        let j01_payload = r#"{"sub":"alice","token_type":"access","exp":4102444800,"nbf":1700000000,"iat":1700000000}"#;
        assert!(v
            .verify(
                &mut TokenCache::default(),
                &sign_raw(&deep, j01_payload, b"wrong"),
                NOW
            )
            .is_err());
        // J18c: a header segment over 8192 characters.
        let big_header = format!(r#"{{"alg":"HS256","x":"{}"}}"#, "A".repeat(7000));
        assert_eq!(
            v.verify(
                &mut TokenCache::default(),
                &sign_raw(&big_header, j01_payload, K),
                NOW
            ),
            Err(TokenError::TooLong)
        );
        // J18d: a valid token of about 8.9 KB.
        let fat = format!(
            r#"{{"sub":"alice","token_type":"access","exp":4102444800,"x":"{}"}}"#,
            "A".repeat(6500)
        );
        assert_eq!(
            v.verify(&mut TokenCache::default(), &sign_raw(header, &fat, K), NOW),
            Err(TokenError::TooLong)
        );
        // A token just under the cap passes.
        let near = format!(
            r#"{{"sub":"alice","token_type":"access","exp":4102444800,"x":"{}"}}"#,
            "A".repeat(5900)
        );
        let token = sign_raw(header, &near, K);
        assert!(token.len() <= MAX_CREDENTIAL_LEN);
        assert!(v.verify(&mut TokenCache::default(), &token, NOW).is_ok());
    }

    #[test]
    fn rfc7515_appendix_a1() {
        let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Decoder};
        let key = Base64UrlSafeNoPadding::decode_to_vec(
            "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
            None,
        )
        .unwrap();
        let v = verifier(vec![SigningKey::new(None, &key)]);
        assert_eq!(
            v.verify(&mut TokenCache::default(), token, NOW),
            Err(TokenError::Expired)
        );
        assert_eq!(
            v.verify(&mut TokenCache::default(), token, 1_300_819_380 + 61),
            Err(TokenError::Expired)
        );
        // Authentic and unexpired, but no token_type and no sub: still refused.
        assert_eq!(
            v.verify(&mut TokenCache::default(), token, 1_300_819_000),
            Err(TokenError::NotAccessToken)
        );
        // The k string itself is not the key.
        let v = verifier(vec![SigningKey::new(
            None,
            b"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
        )]);
        assert_eq!(
            v.verify(&mut TokenCache::default(), token, 1_300_819_000),
            Err(TokenError::BadSignature)
        );
    }

    /// The reference: jwt-simple's verification with the options the filter used before it
    /// verified tokens itself, then the same claim checks. Returns the subject when accepted.
    fn reference_verify(keys: &[(Option<&str>, &[u8])], token: &str, now: u64) -> Option<String> {
        if token.len() > MAX_CREDENTIAL_LEN || token.split('.').count() != 3 {
            return None;
        }
        let metadata = Token::decode_metadata(token).ok()?;
        if metadata.algorithm() != "HS256" || metadata.critical().is_some() {
            return None;
        }
        let kid = metadata.key_id();
        let options = VerificationOptions {
            time_tolerance: Some(Duration::from_secs(60)),
            max_token_length: Some(MAX_CREDENTIAL_LEN),
            artificial_time: Some(UnixTimeStamp::from_secs(now)),
            ..Default::default()
        };
        for (key_kid, secret) in keys {
            if kid.is_some() && kid != *key_kid {
                continue;
            }
            let Ok(claims) = HS256Key::from_bytes(secret)
                .verify_token::<AccessClaims>(token, Some(options.clone()))
            else {
                continue;
            };
            claims.expires_at?;
            if claims.custom.token_type.as_deref() != Some("access") {
                return None;
            }
            let sub = claims.subject?;
            return is_safe_subject(&sub).then_some(sub);
        }
        None
    }

    /// Payloads that exercise the claim parser: types, duplicates, escapes, numbers.
    fn payload_variants() -> Vec<String> {
        let mut out = Vec::new();
        let values = [
            r#""alice""#,
            r#""""#,
            "123",
            "null",
            "true",
            "[]",
            "{}",
            r#"["alice"]"#,
            r#""al\u0069ce""#,
            r#""\uff41dmin""#,
            r#""a,b""#,
            r#"" a""#,
            r#""\ud800""#,
        ];
        for sub in values {
            out.push(format!(
                r#"{{"sub":{sub},"token_type":"access","exp":4102444800}}"#
            ));
        }
        let numbers = [
            "4102444800",
            "4102444800.9",
            "4.1e9",
            "1e10",
            "-1",
            "-1.0",
            "0",
            "1e400",
            "18446744073709551616",
            "\"4102444800\"",
            "null",
            "true",
            "[4102444800]",
            "1750000030",
            "1749999900",
            "1e-3",
            "-0",
            "4102444800e0",
        ];
        for n in numbers {
            out.push(format!(r#"{{"sub":"a","token_type":"access","exp":{n}}}"#));
            out.push(format!(
                r#"{{"sub":"a","token_type":"access","exp":4102444800,"nbf":{n}}}"#
            ));
            out.push(format!(
                r#"{{"sub":"a","token_type":"access","exp":4102444800,"iat":{n}}}"#
            ));
        }
        for tt in [
            r#""access""#,
            r#""refresh""#,
            r#""Access""#,
            "1",
            "null",
            r#""acc\u0065ss""#,
        ] {
            out.push(format!(
                r#"{{"sub":"a","token_type":{tt},"exp":4102444800}}"#
            ));
        }
        for extra in [
            r#","aud":"x""#,
            r#","aud":["x","y"]"#,
            r#","aud":5"#,
            r#","aud":[5]"#,
            r#","iss":1"#,
            r#","iss":"i""#,
            r#","jti":{}"#,
            r#","nonce":"n""#,
            r#","nonce":[]"#,
            r#","x":{"y":[1,{"z":null}]}"#,
            r#","sub":"b""#,
            r#","exp":1"#,
            r#","token_type":"access""#,
            r#","unknown":1,"unknown":2"#,
        ] {
            out.push(format!(
                r#"{{"sub":"a","token_type":"access","exp":4102444800{extra}}}"#
            ));
        }
        for raw in [
            "[]",
            "null",
            r#""x""#,
            "{}",
            r#"{"sub":"a","token_type":"access","exp":4102444800"#,
            r#" {"sub":"a","token_type":"access","exp":4102444800} "#,
            r#"{"sub":"a","token_type":"access","exp":4102444800}x"#,
        ] {
            out.push(raw.to_string());
        }
        out
    }

    #[test]
    fn agrees_with_jwt_simple() {
        // Accepted here implies accepted by jwt-simple with the same subject; the only tokens
        // jwt-simple accepts and this refuses are the documented stricter cases.
        let second: &[u8] = b"second-secret-XGNMqcm6B2GmjLe8bPVS";
        let keys: [(Option<&str>, &[u8]); 2] = [(Some("k1"), K), (Some("k2"), second)];
        let v = verifier(
            keys.iter()
                .map(|(kid, secret)| SigningKey::new(kid.map(String::from), secret))
                .collect(),
        );
        let headers = [
            r#"{"alg":"HS256"}"#,
            r#"{"alg":"HS256","kid":"k1"}"#,
            r#"{"alg":"HS256","kid":"k2"}"#,
            r#"{"alg":"HS256","kid":"k3"}"#,
            r#"{"alg":"HS256","typ":"JWT"}"#,
            r#"{"alg":"HS256","typ":"at+jwt"}"#,
            r#"{"alg":"HS256","typ":"JOSE"}"#,
            r#"{"alg":"HS256","crit":[]}"#,
            r#"{"alg":"HS256","crit":["exp"]}"#,
            r#"{"alg":"HS256","crit":null}"#,
            r#"{"alg":"HS256","jwk":{}}"#,
            r#"{"alg":"HS256","x5c":"a"}"#,
            r#"{"alg":"HS256","kid":null}"#,
            r#"{"alg":"HS256","alg":"HS256"}"#,
            r#"{"alg":"none"}"#,
            r#"{"alg":"HS\u0032\u0035\u0036"}"#,
            r#"{"alg":"HS256","cty":5}"#,
            r#"{"alg":"HS256","salt":"AAAA"}"#,
            r#"[]"#,
            r#"{"alg":"HS256","zip":"DEF"}"#,
        ];
        let stricter = |header: &str| {
            header.contains(r#""crit":[]"#)
                || header.contains(r#""crit":null"#)
                || header.contains("salt")
        };
        let mut tokens: Vec<(String, bool)> = Vec::new();
        for header in headers {
            for payload in payload_variants() {
                for (_, secret) in &keys {
                    tokens.push((sign_raw(header, &payload, secret), stricter(header)));
                }
            }
        }
        for line in VECTORS.lines().filter(|l| !l.starts_with('#')) {
            // The contract refuses `crit` in any form; jwt-simple accepts `"crit": null`.
            let stricter = line.starts_with("J08e\t");
            tokens.push((unescape(line.split('\t').nth(4).unwrap()), stricter));
        }
        let mut accepted = 0;
        for (token, may_be_stricter) in &tokens {
            let ours = v
                .verify_typed(token, "access", NOW)
                .ok()
                .map(|t| t.subject.to_string());
            let theirs = reference_verify(&keys, token, NOW);
            match (&ours, &theirs) {
                (Some(a), Some(b)) => assert_eq!(a, b, "{token}"),
                (Some(_), None) => panic!("accepted what jwt-simple refuses: {token}"),
                (None, Some(_)) => {
                    assert!(*may_be_stricter, "refused what jwt-simple accepts: {token}")
                }
                (None, None) => {}
            }
            accepted += usize::from(ours.is_some());
        }
        assert!(accepted > 50, "{accepted} of {}", tokens.len());
    }

    #[test]
    fn minting_caps_times_instead_of_overflowing() {
        let claims = claims_for("alice", "access", NOW, u64::MAX);
        assert_eq!(claims.expires_at.map(|t| t.as_secs()), Some(MAX_TIMESTAMP));
        let claims = claims_for("alice", "access", u64::MAX, 60);
        assert_eq!(claims.issued_at.map(|t| t.as_secs()), Some(MAX_TIMESTAMP));
    }

    #[test]
    fn the_cache_answers_only_for_the_same_token() {
        let key = SigningKey::new(None, K);
        let v = verifier(vec![key.clone()]);
        let cache = &mut TokenCache::default();
        let t = token(&key, "alice", "access", NOW, 600);
        let first = v.verify(cache, &t, NOW).unwrap();
        assert!(!first.cached);
        let second = v.verify(cache, &t, NOW + 1).unwrap();
        assert!(second.cached);
        assert_eq!(second.subject, first.subject);
        // Expiry is still checked on a hit.
        assert_eq!(
            v.verify(cache, &t, NOW + 600 + 61),
            Err(TokenError::Expired)
        );
        // A different token (one character added) never hits.
        let mut forged = t.clone();
        forged.push('A');
        assert!(v.verify(cache, &forged, NOW).is_err());
        // Failures are not cached.
        let refresh = token(&key, "alice", "refresh", NOW, 600);
        assert!(v.verify(cache, &refresh, NOW).is_err());
        assert!(v.verify(cache, &refresh, NOW).is_err());
        assert_eq!(cache.len(), 1);
        v.sweep(cache, NOW + 10_000);
        assert_eq!(cache.len(), 0);
    }

    fn token(key: &SigningKey, sub: &str, kind: &str, iat: u64, ttl: u64) -> String {
        key.sign(claims_for(sub, kind, iat, ttl)).unwrap()
    }

    #[test]
    fn key_rotation_by_kid() {
        let current = SigningKey::new(
            Some("2026-11".into()),
            b"current-secret-NfVMuakv93xHH8EkWLkm",
        );
        let old = SigningKey::new(
            Some("2026-10".into()),
            b"previous-secret-4TqrxYCoq6TBUrbbswc",
        );
        let anonymous_old = SigningKey::new(None, b"previous-secret-4TqrxYCoq6TBUrbbswc");
        let stranger = SigningKey::new(
            Some("2026-09".into()),
            b"retired-secret-ExbYww7XqmdQse9AzLCu",
        );
        let v = verifier(vec![current.clone(), old.clone()]);
        let now = NOW;
        assert!(v
            .verify(
                &mut TokenCache::default(),
                &token(&current, "u1", "access", now, 60),
                now
            )
            .is_ok());
        assert!(v
            .verify(
                &mut TokenCache::default(),
                &token(&old, "u1", "access", now, 60),
                now
            )
            .is_ok());
        // No kid: any configured secret may verify.
        assert!(v
            .verify(
                &mut TokenCache::default(),
                &token(&anonymous_old, "u1", "access", now, 60),
                now
            )
            .is_ok());
        // A kid that no secret has.
        assert_eq!(
            v.verify(
                &mut TokenCache::default(),
                &token(&stranger, "u1", "access", now, 60),
                now
            ),
            Err(TokenError::UnknownKeyId)
        );
        // A kid that exists, but the token was signed with another secret.
        let forged = SigningKey::new(
            Some("2026-11".into()),
            b"previous-secret-4TqrxYCoq6TBUrbbswc",
        );
        assert_eq!(
            v.verify(
                &mut TokenCache::default(),
                &token(&forged, "u1", "access", now, 60),
                now
            ),
            Err(TokenError::BadSignature)
        );
        // A retired secret, no longer configured, without kid.
        let retired = SigningKey::new(None, b"retired-secret-ExbYww7XqmdQse9AzLCu");
        assert_eq!(
            v.verify(
                &mut TokenCache::default(),
                &token(&retired, "u1", "access", now, 60),
                now
            ),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn clock_skew_applies_to_exp_and_nbf() {
        let key = SigningKey::new(None, K);
        let v = verifier(vec![key.clone()]);
        let now = NOW;
        // exp = now - 30: inside the 60 s skew.
        assert!(v
            .verify(
                &mut TokenCache::default(),
                &token(&key, "u", "access", now - 90, 60),
                now
            )
            .is_ok());
        // exp = now - 61: expired.
        assert_eq!(
            v.verify(
                &mut TokenCache::default(),
                &token(&key, "u", "access", now - 121, 60),
                now
            ),
            Err(TokenError::Expired)
        );
        let mut claims = claims_for("u", "access", now, 600);
        claims.invalid_before = Some(UnixTimeStamp::from_secs(now + 30));
        assert!(v
            .verify(
                &mut TokenCache::default(),
                &key.sign(claims.clone()).unwrap(),
                now
            )
            .is_ok());
        claims.invalid_before = Some(UnixTimeStamp::from_secs(now + 61));
        assert_eq!(
            v.verify(&mut TokenCache::default(), &key.sign(claims).unwrap(), now),
            Err(TokenError::NotYetValid)
        );
        let strict = TokenVerifier::new(vec![key.clone()], 0, None);
        assert_eq!(
            strict.verify(
                &mut TokenCache::default(),
                &token(&key, "u", "access", now - 61, 60),
                now
            ),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn maximum_lifetime() {
        let key = SigningKey::new(None, K);
        let v = TokenVerifier::new(vec![key.clone()], 60, Some(3600));
        let now = NOW;
        assert!(v
            .verify(
                &mut TokenCache::default(),
                &token(&key, "u", "access", now, 3600),
                now
            )
            .is_ok());
        assert_eq!(
            v.verify(
                &mut TokenCache::default(),
                &token(&key, "u", "access", now, 3601),
                now
            ),
            Err(TokenError::LifetimeTooLong)
        );
        let no_start = sign_raw(
            r#"{"alg":"HS256"}"#,
            r#"{"sub":"u","token_type":"access","exp":1750000600}"#,
            K,
        );
        assert_eq!(
            v.verify(&mut TokenCache::default(), &no_start, now),
            Err(TokenError::LifetimeTooLong)
        );
        assert!(verifier(vec![key])
            .verify(&mut TokenCache::default(), &no_start, now)
            .is_ok());
    }

    #[test]
    fn refresh_tokens_are_refused() {
        let key = SigningKey::new(None, K);
        let v = verifier(vec![key.clone()]);
        assert_eq!(
            v.verify(
                &mut TokenCache::default(),
                &token(&key, "u", "refresh", NOW, 60),
                NOW
            ),
            Err(TokenError::NotAccessToken)
        );
    }

    #[test]
    fn no_secret_verifies_nothing() {
        let key = SigningKey::new(None, K);
        assert_eq!(
            verifier(vec![]).verify(
                &mut TokenCache::default(),
                &token(&key, "u", "access", NOW, 60),
                NOW
            ),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn subjects() {
        for ok in [
            "alice",
            "lUpa",
            "user@example.com",
            "a:b/c+d=e",
            &"x".repeat(256),
        ] {
            assert!(is_safe_subject(ok), "{ok}");
        }
        for bad in [
            "",
            " admin",
            "admin ",
            "a b",
            "alice, admin",
            "alice\r\nx: y",
            "alice\0",
            "ａｄｍｉｎ",
            "jose\u{301}",
            &"x".repeat(257),
        ] {
            assert!(!is_safe_subject(bad), "{bad:?}");
        }
    }
}
