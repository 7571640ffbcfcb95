//! Who a presented credential makes the caller: the credential handed to its verifier.

use crate::credential::Presented;
use crate::denial::Denial;
use crate::identity::Identity;
use crate::verify::cache::CachedToken;
use crate::verify::issuer::{IssuerCheck, KeysNeeded};
use crate::verify::jwks::Algorithm;
use crate::verify::jws;
use crate::verify::token::{is_token_shaped, TokenError};
use crate::verify::{BadCredential, Verifiers};
use crate::worker::WorkerState;

/// A decision that issuer `issuer`'s keys could change: the adapter may hold the request
/// until they are fetched, then decide it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyWait {
    pub issuer: usize,
    pub why: KeysNeeded,
}

/// What authenticating a credential found.
pub(super) struct Authenticated {
    pub(super) result: Result<Identity, Denial>,
    /// For an access token: whether the cache of verified tokens answered.
    pub(super) cache_hit: Option<bool>,
    /// Set when fetching an issuer's keys could change the result.
    pub(super) waits: Option<KeyWait>,
}

/// Who a presented credential makes the caller.
///
/// A bearer value with two dots is a token; anything else is a key (the configuration refuses
/// keys with two dots, so the two never overlap).
pub(super) fn authenticate(
    verifiers: Verifiers<'_>,
    worker: &mut WorkerState,
    presented: &Presented<'_>,
    now: &dyn Fn() -> u64,
) -> Authenticated {
    let done = |result: Result<Identity, BadCredential>| Authenticated {
        result: result.map_err(Denial::from),
        cache_hit: None,
        waits: None,
    };
    match presented {
        Presented::Bearer { value, .. } if is_token_shaped(value) => {
            authenticate_token(verifiers, worker, value, now())
        }
        Presented::Bearer { value, .. } => done(
            verifiers
                .keys
                .identify(value.as_bytes())
                .ok_or(BadCredential::Unknown),
        ),
        Presented::Client { id, secret } => done(
            verifiers
                .clients
                .authenticate(id, secret)
                .ok_or(BadCredential::Client),
        ),
    }
}

/// An access token: from the cache when it was verified before (under the same keys), else
/// by the master secrets (`HS256`) or by the issuer its `iss` names (asymmetric algorithms).
fn authenticate_token(
    verifiers: Verifiers<'_>,
    worker: &mut WorkerState,
    token: &str,
    now: u64,
) -> Authenticated {
    let refused = |e: TokenError| Authenticated {
        result: Err(BadCredential::Token(e).into()),
        cache_hit: Some(false),
        waits: None,
    };
    let skew = verifiers.tokens.clock_skew();
    if let Some(hit) = worker.tokens.get(token, now, skew) {
        let current = hit
            .keys
            .is_none_or(|(issuer, version)| worker.issuer_keys.version(issuer) == version);
        if current {
            return Authenticated {
                result: Ok(hit.identity.clone()),
                cache_hit: Some(true),
                waits: None,
            };
        }
    }
    let algorithm = match header_algorithm(token) {
        Some(alg) if alg == "HS256" || verifiers.issuers.is_empty() => None,
        Some(alg) => match Algorithm::parse(&alg) {
            Some(algorithm) => Some(algorithm),
            None => return refused(TokenError::Algorithm),
        },
        None => return refused(TokenError::Malformed),
    };
    let Some(algorithm) = algorithm else {
        return match verifiers.tokens.verify_typed(token, "access", now) {
            Ok(verified) => {
                let identity = Identity::user(verified.subject);
                worker.tokens.insert(
                    token,
                    CachedToken {
                        identity: identity.clone(),
                        expires_at: verified.expires_at,
                        keys: None,
                    },
                );
                Authenticated {
                    result: Ok(identity),
                    cache_hit: Some(false),
                    waits: None,
                }
            }
            Err(e) => refused(e),
        };
    };
    let keys = &worker.issuer_keys;
    match verifiers
        .issuers
        .check(token, algorithm, now, |i| keys.get(i))
    {
        IssuerCheck::Valid(verified) => {
            let version = worker.issuer_keys.version(verified.issuer);
            worker.tokens.insert(
                token,
                CachedToken {
                    identity: verified.identity.clone(),
                    expires_at: verified.expires_at,
                    keys: Some((verified.issuer, version)),
                },
            );
            Authenticated {
                result: Ok(verified.identity),
                cache_hit: Some(false),
                waits: None,
            }
        }
        IssuerCheck::Refused(e) => refused(e),
        IssuerCheck::NeedsKeys { issuer, why } => Authenticated {
            result: Err(match why {
                KeysNeeded::NeverFetched => Denial::KeysUnavailable,
                KeysNeeded::UnknownKid => BadCredential::Token(TokenError::UnknownKeyId).into(),
            }),
            cache_hit: Some(false),
            waits: Some(KeyWait { issuer, why }),
        },
    }
}

/// The `alg` of a token's header, or `None` when the header is not readable.
fn header_algorithm(token: &str) -> Option<String> {
    let parts = jws::split(token)?;
    let mut buffer = Vec::new();
    let header = jws::parse_header(parts.header, &mut buffer)?;
    Some(header.alg.into_owned())
}
