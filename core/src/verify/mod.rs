//! Checking a presented credential: access tokens (compact JWS, HS256 with the configured
//! secrets), API keys and client credentials, and the cache of verified tokens.

pub mod base64url;
pub mod cache;
pub mod jws;
pub mod keys;
pub mod token;

use crate::config::Config;
use crate::credential::Presented;
use crate::denial::{BadCredential, Denial};
use crate::identity::Identity;
use cache::TokenCache;
use token::is_token_shaped;

/// Who a presented credential makes the caller, and whether the token cache answered.
///
/// A bearer value with two dots is a token; anything else is a key (the configuration refuses
/// keys with two dots, so the two never overlap).
pub(crate) fn authenticate(
    config: &Config,
    cache: &mut TokenCache,
    presented: &Presented<'_>,
    now: &dyn Fn() -> u64,
) -> (Result<Identity, Denial>, Option<bool>) {
    match presented {
        Presented::Bearer { value, .. } if is_token_shaped(value) => {
            match config.verifier.verify(cache, value, now()) {
                Ok(token) => (Ok(Identity::user(token.subject)), Some(token.cached)),
                Err(e) => (
                    Err(Denial::InvalidCredentials(BadCredential::Token(e))),
                    Some(false),
                ),
            }
        }
        Presented::Bearer { value, .. } => (
            config
                .keys
                .identify(value.as_bytes())
                .ok_or(Denial::InvalidCredentials(BadCredential::Unknown)),
            None,
        ),
        Presented::Client { id, secret } => (
            config
                .clients
                .authenticate(id, secret)
                .ok_or(Denial::InvalidCredentials(BadCredential::Client)),
            None,
        ),
    }
}
