//! Access tokens: HS256 JWTs signed with one of the configured secrets.

use jwt_simple::prelude::*;
use jwt_simple::JWTError;

/// The longest credential the filter reads, in bytes.
pub const MAX_CREDENTIAL_LEN: usize = 8192;

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
    /// `token_type` is not exactly `access`.
    NotAccessToken,
    /// `sub` is missing, empty, too long or holds characters unsafe in a header.
    BadSubject,
    /// `exp` minus `iat` (or `nbf`) exceeds `max_lifetime_seconds`.
    LifetimeTooLong,
}

impl TokenError {
    /// A fixed, human text for the client; it never quotes the token.
    pub fn message(self) -> &'static str {
        match self {
            TokenError::TooLong => "The credential is longer than 8192 bytes.",
            TokenError::Malformed => "The access token is malformed.",
            TokenError::Algorithm => "The access token must be signed with HS256.",
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
        }
    }
}

/// What a valid access token proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub subject: String,
    pub expires_at: u64,
}

/// One HS256 secret, optionally named by a `kid`.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: Option<String>,
    key: HS256Key,
}

impl SigningKey {
    /// A key from its raw bytes (the configuration's UTF-8 text).
    pub fn new(kid: Option<String>, secret: &[u8]) -> Self {
        let mut key = HS256Key::from_bytes(secret);
        if let Some(kid) = &kid {
            key = key.with_key_id(kid);
        }
        SigningKey { kid, key }
    }

    /// Signs `claims`: used by the minting tool and by tests.
    pub fn sign(&self, claims: JWTClaims<AccessClaims>) -> Result<String, jwt_simple::Error> {
        self.key.authenticate(claims)
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Verifies access tokens against the configured secrets and time policy.
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
    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The number of configured secrets.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Verifies `token` at unix time `now`.
    pub fn verify(&self, token: &str, now: u64) -> Result<VerifiedToken, TokenError> {
        if token.len() > MAX_CREDENTIAL_LEN {
            return Err(TokenError::TooLong);
        }
        if token.split('.').count() != 3 {
            return Err(TokenError::Malformed);
        }
        let metadata = Token::decode_metadata(token).map_err(|_| TokenError::Malformed)?;
        if metadata.algorithm() != "HS256" {
            return Err(TokenError::Algorithm);
        }
        if metadata.critical().is_some() {
            return Err(TokenError::CriticalHeader);
        }
        let kid = metadata.key_id();
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
        let options = VerificationOptions {
            time_tolerance: Some(Duration::from_secs(self.clock_skew)),
            max_token_length: Some(MAX_CREDENTIAL_LEN),
            artificial_time: Some(UnixTimeStamp::from_secs(now)),
            ..Default::default()
        };
        for key in candidates {
            match key
                .key
                .verify_token::<AccessClaims>(token, Some(options.clone()))
            {
                Ok(claims) => return self.check_claims(claims),
                Err(e) => match e.downcast_ref::<JWTError>() {
                    Some(JWTError::InvalidAuthenticationTag) => continue,
                    Some(JWTError::TokenHasExpired) => return Err(TokenError::Expired),
                    Some(JWTError::TokenNotValidYet) => return Err(TokenError::NotYetValid),
                    Some(JWTError::ClockDrift) => return Err(TokenError::IssuedInFuture),
                    Some(JWTError::AlgorithmMismatch) => return Err(TokenError::Algorithm),
                    Some(JWTError::TokenTooLong) => return Err(TokenError::TooLong),
                    Some(JWTError::UnknownCriticalExtension) => {
                        return Err(TokenError::CriticalHeader)
                    }
                    _ => return Err(TokenError::Malformed),
                },
            }
        }
        Err(TokenError::BadSignature)
    }

    /// The checks jwt-simple leaves to its caller.
    fn check_claims(&self, claims: JWTClaims<AccessClaims>) -> Result<VerifiedToken, TokenError> {
        let expires_at = claims
            .expires_at
            .ok_or(TokenError::MissingExpiry)?
            .as_secs();
        if claims.custom.token_type.as_deref() != Some("access") {
            return Err(TokenError::NotAccessToken);
        }
        let subject = claims.subject.ok_or(TokenError::BadSubject)?;
        if !is_safe_subject(&subject) {
            return Err(TokenError::BadSubject);
        }
        if let Some(max) = self.max_lifetime {
            let start = match (claims.issued_at, claims.invalid_before) {
                (Some(iat), Some(nbf)) => iat.min(nbf).as_secs(),
                (Some(t), None) | (None, Some(t)) => t.as_secs(),
                (None, None) => return Err(TokenError::LifetimeTooLong),
            };
            if expires_at.saturating_sub(start) > max {
                return Err(TokenError::LifetimeTooLong);
            }
        }
        Ok(VerifiedToken {
            subject,
            expires_at,
        })
    }
}

/// A `sub` the filter will copy into a header: 1 to 256 visible ASCII characters, no comma.
///
/// Whitespace, control characters, commas (list separators) and non-ASCII text are refused
/// rather than rewritten, so an upstream never reads a different user than the token names.
pub fn is_safe_subject(subject: &str) -> bool {
    !subject.is_empty()
        && subject.len() <= MAX_SUBJECT_LEN
        && subject.bytes().all(|b| b.is_ascii_graphic() && b != b',')
}

/// The claims of a new token: `sub`, `token_type`, and `iat`/`nbf`/`exp` from `now` and `ttl`.
pub fn claims_for(
    subject: &str,
    token_type: &str,
    now: u64,
    ttl_seconds: u64,
) -> JWTClaims<AccessClaims> {
    let now = UnixTimeStamp::from_secs(now);
    JWTClaims {
        issued_at: Some(now),
        expires_at: Some(now + Duration::from_secs(ttl_seconds)),
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
