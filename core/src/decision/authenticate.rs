//! Who a presented credential makes the caller: the credential handed to its verifier.

use crate::credential::Presented;
use crate::identity::Identity;
use crate::verify::cache::TokenCache;
use crate::verify::token::is_token_shaped;
use crate::verify::{BadCredential, Verifiers};

/// Who a presented credential makes the caller, and whether the token cache answered.
///
/// A bearer value with two dots is a token; anything else is a key (the configuration refuses
/// keys with two dots, so the two never overlap).
pub(super) fn authenticate(
    verifiers: Verifiers<'_>,
    cache: &mut TokenCache,
    presented: &Presented<'_>,
    now: &dyn Fn() -> u64,
) -> (Result<Identity, BadCredential>, Option<bool>) {
    match presented {
        Presented::Bearer { value, .. } if is_token_shaped(value) => {
            match verifiers.tokens.verify(cache, value, now()) {
                Ok(token) => (Ok(Identity::user(token.subject)), Some(token.cached)),
                Err(e) => (Err(BadCredential::Token(e)), Some(false)),
            }
        }
        Presented::Bearer { value, .. } => (
            verifiers
                .keys
                .identify(value.as_bytes())
                .ok_or(BadCredential::Unknown),
            None,
        ),
        Presented::Client { id, secret } => (
            verifiers
                .clients
                .authenticate(id, secret)
                .ok_or(BadCredential::Client),
            None,
        ),
    }
}
