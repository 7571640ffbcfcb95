//! Who a presented credential makes the caller: the credential handed to its verifier.

use super::trace::{Step, Trace};
use crate::credential::Presented;
use crate::denial::Denial;
use crate::identity::Identity;
use std::rc::Rc;

use crate::rules::conditions::TokenSigner;
use crate::verify::cache::CachedToken;
use crate::verify::claim_values::TokenClaims;
use crate::verify::issuer::{IssuerCheck, KeysNeeded};
use crate::verify::revocation::TokenMarks;
use crate::verify::token::{is_token_shaped, TokenError};
use crate::verify::{signer, BadCredential, Signer, Verifiers};
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
    /// For a valid access token: what the rules' conditions read of it.
    pub(super) token: TokenFacts,
}

/// What the rules' conditions read of a verified access token.
#[derive(Debug, Clone, Default)]
pub(super) struct TokenFacts {
    pub(super) signer: Option<TokenSigner>,
    pub(super) claims: Option<Rc<TokenClaims>>,
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
    trace: &mut impl Trace,
) -> Authenticated {
    let done = |result: Result<Identity, BadCredential>| Authenticated {
        result: result.map_err(Denial::from),
        cache_hit: None,
        waits: None,
        token: TokenFacts::default(),
    };
    match presented {
        Presented::Bearer { value, .. } if is_token_shaped(value) => {
            authenticate_token(verifiers, worker, value, now(), trace)
        }
        Presented::Bearer { value, .. } => {
            let key = verifiers.keys.identify(value.as_bytes());
            trace.step(Step::Key(key.as_ref()));
            done(key.ok_or(BadCredential::Unknown))
        }
        Presented::Client { id, secret } => {
            let client = verifiers.clients.authenticate(id, secret);
            trace.step(Step::Client {
                id,
                identity: client.as_ref(),
            });
            done(client.ok_or(BadCredential::Client))
        }
    }
}

/// An access token: from the cache when it was verified before (under the same keys), else
/// by the master secrets (`HS256`) or by the issuer its `iss` names (asymmetric algorithms);
/// then against the revocation list, cache hits included.
fn authenticate_token(
    verifiers: Verifiers<'_>,
    worker: &mut WorkerState,
    token: &str,
    now: u64,
    trace: &mut impl Trace,
) -> Authenticated {
    let (verified, cache_hit) = verify_token(verifiers, worker, token, now, trace);
    let result = verified.and_then(|(identity, marks, facts)| {
        let refused = revocation_check(verifiers, worker, &marks, now);
        if verifiers.revocation.is_some() {
            trace.step(Step::Revocation(refused));
        }
        match refused {
            Some(denial) => Err(Authenticated::refusal(denial)),
            None => Ok((identity, facts)),
        }
    });
    match result {
        Ok((identity, token)) => Authenticated {
            result: Ok(identity),
            cache_hit: Some(cache_hit),
            waits: None,
            token,
        },
        Err(refused) => Authenticated {
            cache_hit: Some(cache_hit),
            ..refused
        },
    }
}

/// Why the revocation list refuses a verified token: revoked, or (with
/// `fail_closed_after_seconds`) a list too old to trust.
fn revocation_check(
    verifiers: Verifiers<'_>,
    worker: &WorkerState,
    marks: &TokenMarks,
    now: u64,
) -> Option<Denial> {
    let feed = verifiers.revocation?;
    let state = &worker.revocations;
    let stale = feed
        .fail_closed_after
        .is_some_and(|max| now.saturating_sub(state.fresh_at) > max);
    if stale || state.overflowed {
        return Some(Denial::RevocationUnavailable);
    }
    state.list.revokes(marks).then_some(Denial::TokenRevoked)
}

impl Authenticated {
    fn refusal(denial: Denial) -> Authenticated {
        Authenticated {
            result: Err(denial),
            cache_hit: None,
            waits: None,
            token: TokenFacts::default(),
        }
    }
}

/// A verified token: its identity and marks, and what conditions read of it.
type Verified = (Identity, TokenMarks, TokenFacts);

/// A verified token, or the refusal; and whether the cache answered.
fn verify_token(
    verifiers: Verifiers<'_>,
    worker: &mut WorkerState,
    token: &str,
    now: u64,
    trace: &mut impl Trace,
) -> (Result<Verified, Authenticated>, bool) {
    let refused = |e: TokenError| Err(Authenticated::refusal(BadCredential::Token(e).into()));
    let skew = verifiers.tokens.clock_skew();
    if let Some(hit) = worker.tokens.get(token, now, skew) {
        let current = hit.keys.is_none_or(|(issuer, key)| {
            verifiers.issuers.list.get(issuer).is_some_and(|i| {
                i.remote().is_none()
                    || worker
                        .issuer_keys
                        .get(issuer)
                        .is_some_and(|s| s.holds(&key))
            })
        });
        if current {
            trace.step(Step::Cached(&hit.identity));
            let facts = TokenFacts {
                signer: Some(
                    hit.keys
                        .map_or(TokenSigner::Secrets, |(i, _)| TokenSigner::Issuer(i)),
                ),
                claims: hit.claims.clone(),
            };
            return (Ok((hit.identity.clone(), hit.marks.clone(), facts)), true);
        }
    }
    let algorithm = match signer(token, !verifiers.issuers.is_empty()) {
        Ok(chosen) => {
            trace.step(Step::Signer(chosen));
            match chosen {
                Signer::Secrets => None,
                Signer::Issuer(algorithm) => Some(algorithm),
            }
        }
        Err(e) => {
            trace.step(Step::TokenRefused(e));
            return (refused(e), false);
        }
    };
    let Some(algorithm) = algorithm else {
        let verified = verifiers.tokens.verify_typed(token, "access", now);
        let claims = verified.as_ref().ok().map(|_| extract(verifiers, token));
        return match verified {
            Ok(_) if claims.as_ref().is_some_and(Option::is_none) => {
                trace.step(Step::TokenRefused(TokenError::Malformed));
                (refused(TokenError::Malformed), false)
            }
            Ok(verified) => {
                let claims = claims.flatten().flatten();
                let identity = Identity::user(verified.subject);
                trace.step(Step::Verified {
                    issuer: None,
                    identity: &identity,
                    expires_at: verified.expires_at,
                });
                worker.tokens.insert(
                    token,
                    CachedToken {
                        identity: identity.clone(),
                        expires_at: verified.expires_at,
                        keys: None,
                        marks: verified.marks.clone(),
                        claims: claims.clone(),
                    },
                );
                let facts = TokenFacts {
                    signer: Some(TokenSigner::Secrets),
                    claims,
                };
                (Ok((identity, verified.marks, facts)), false)
            }
            Err(e) => {
                trace.step(Step::TokenRefused(e));
                (refused(e), false)
            }
        };
    };
    let keys = &worker.issuer_keys;
    let checked = verifiers
        .issuers
        .check(token, algorithm, now, |i| keys.get(i));
    match checked {
        IssuerCheck::Valid(verified) => {
            if let Some((why, issuer)) = verified
                .dropped_role
                .zip(verifiers.issuers.list.get(verified.issuer))
            {
                worker.dropped_roles.note(&issuer.name, why);
            }
            let Some(claims) = extract(verifiers, token) else {
                trace.step(Step::TokenRefused(TokenError::Malformed));
                return (refused(TokenError::Malformed), false);
            };
            trace.step(Step::Verified {
                issuer: Some(verified.issuer),
                identity: &verified.identity,
                expires_at: verified.expires_at,
            });
            worker.tokens.insert(
                token,
                CachedToken {
                    identity: verified.identity.clone(),
                    expires_at: verified.expires_at,
                    keys: Some((verified.issuer, verified.key)),
                    marks: verified.marks.clone(),
                    claims: claims.clone(),
                },
            );
            let facts = TokenFacts {
                signer: Some(TokenSigner::Issuer(verified.issuer)),
                claims,
            };
            (Ok((verified.identity, verified.marks, facts)), false)
        }
        IssuerCheck::Refused(e) => {
            trace.step(Step::TokenRefused(e));
            (refused(e), false)
        }
        IssuerCheck::NeedsKeys { issuer, why } => {
            trace.step(Step::NeedsKeys { issuer, why });
            let denial = match why {
                KeysNeeded::NeverFetched => Denial::KeysUnavailable,
                KeysNeeded::UnknownKid => BadCredential::Token(TokenError::UnknownKeyId).into(),
            };
            let wait = Authenticated {
                waits: Some(KeyWait { issuer, why }),
                ..Authenticated::refusal(denial)
            };
            (Err(wait), false)
        }
    }
}

/// The claims the rules' conditions read of a verified `token`: `Some(None)` when no rule
/// reads any, `None` when its payload repeats a name at some depth (the token is refused).
fn extract(verifiers: Verifiers<'_>, token: &str) -> Option<Option<Rc<TokenClaims>>> {
    if verifiers.claim_paths.is_empty() {
        return Some(None);
    }
    verifiers
        .claim_paths
        .extract(token)
        .map(|c| Some(Rc::new(c)))
}
