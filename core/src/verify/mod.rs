//! Checking a presented credential: access tokens (compact JWS, HS256 with the configured
//! secrets, or asymmetric from a configured issuer), API keys and client credentials, and the
//! cache of verified tokens.

pub mod base64url;
pub mod cache;
pub mod claim_values;
pub mod claims;
pub mod curve_verify;
pub mod issuer;
pub mod jwks;
pub mod jws;
pub mod keys;
#[cfg(feature = "native-crypto")]
pub mod native_signature;
pub mod revocation;
mod revocation_list;
pub mod rsa_verify;
pub mod token;

/// The longest credential (token or key) read, in bytes.
pub const MAX_CREDENTIAL_LEN: usize = 8192;

use issuer::Issuers;
use keys::{ClientRegistry, KeyRing};
use token::{TokenError, TokenVerifier};

/// Whose keys verify an access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// The master secrets: an `HS256` token, or any token when no issuer is configured.
    Secrets,
    /// The issuer its `iss` names, with the token's asymmetric algorithm.
    Issuer(jwks::Algorithm),
}

/// Whose keys verify `token`, from its header's `alg`: one choice for the filter and for
/// `tollgate explain`.
pub fn signer(token: &str, issuers_configured: bool) -> Result<Signer, TokenError> {
    let parts = jws::split(token).ok_or(TokenError::Malformed)?;
    let mut buffer = Vec::new();
    let header = jws::parse_header(parts.header, &mut buffer).ok_or(TokenError::Malformed)?;
    if header.alg == "HS256" || !issuers_configured {
        return Ok(Signer::Secrets);
    }
    jwks::Algorithm::parse(&header.alg)
        .map(Signer::Issuer)
        .ok_or(TokenError::Algorithm)
}

/// Why a sent credential is not accepted (401 `INVALID_CREDENTIALS`, or `TOKEN_EXPIRED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadCredential {
    /// `Authorization` is present but does not use the Bearer scheme.
    NotBearer,
    /// The credential is empty.
    Empty,
    /// The credential is longer than 8 KiB.
    TooLong,
    /// The credential holds bytes that no token or key can hold (including non-UTF-8).
    BadCharacters,
    /// The credential looked like a token and the token is refused.
    Token(TokenError),
    /// Neither a token nor a configured key.
    Unknown,
    /// A `client_id`/`client_secret` pair that does not match (unknown id or wrong secret).
    Client,
    /// A token header (`token_headers`) without its configured prefix.
    MissingPrefix,
}

/// The verifiers a configuration holds: of access tokens, of keys, of client credentials.
#[derive(Debug, Clone, Copy)]
pub struct Verifiers<'c> {
    pub tokens: &'c TokenVerifier,
    pub keys: &'c KeyRing,
    pub clients: &'c ClientRegistry,
    pub issuers: &'c Issuers,
    /// The claims the rules' conditions read of a token.
    pub claim_paths: &'c claim_values::ClaimPaths,
    /// How tokens meet the revocation list, when a feed is configured (the list is the
    /// worker's).
    pub revocation: Option<revocation::RevocationCheck>,
}
