//! Checking a presented credential: access tokens (compact JWS, HS256 with the configured
//! secrets, or asymmetric from a configured issuer), API keys and client credentials, and the
//! cache of verified tokens.

pub mod base64url;
pub mod cache;
pub mod claims;
pub mod issuer;
pub mod jwks;
pub mod jws;
pub mod keys;
pub mod revocation;
mod revocation_list;
pub mod token;

/// The longest credential (token or key) read, in bytes.
pub const MAX_CREDENTIAL_LEN: usize = 8192;

use issuer::Issuers;
use keys::{ClientRegistry, KeyRing};
use token::{TokenError, TokenVerifier};

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
}

/// The verifiers a configuration holds: of access tokens, of keys, of client credentials.
#[derive(Debug, Clone, Copy)]
pub struct Verifiers<'c> {
    pub tokens: &'c TokenVerifier,
    pub keys: &'c KeyRing,
    pub clients: &'c ClientRegistry,
    pub issuers: &'c Issuers,
    /// The revocation feed, when configured (its list is the worker's).
    pub revocation: Option<&'c crate::config::RevocationFeed>,
}
