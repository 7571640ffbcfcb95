//! The verification of the presented credential, told: the token's parts as read, and the
//! verifier that takes it.

use tollgate_core::config::Config;
use tollgate_core::credential::Presented;
use tollgate_core::denial::{BadCredential, Denial};
use tollgate_core::identity::Identity;
use tollgate_core::verify::issuer::IssuerCheck;
use tollgate_core::verify::token::{is_token_shaped, TokenError};
use tollgate_core::verify::{jws, signer, Signer};

use super::text;

/// The verification steps of a presented credential, with the core's verifiers.
pub(super) fn verify(
    config: &Config,
    presented: &Presented<'_>,
    now: u64,
) -> (Vec<String>, Result<Identity, Denial>) {
    let bad = |b: BadCredential| Denial::InvalidCredentials(b);
    match presented {
        Presented::Bearer { value, .. } if is_token_shaped(value) => {
            let mut said = token_parts(value, now);
            let (more, result) = verify_token(config, value, now);
            said.extend(more);
            if config.revocation.is_some() {
                said.push(
                    "revocation: the list is polled at run time; explained here as empty"
                        .to_owned(),
                );
            }
            (said, result)
        }
        Presented::Bearer { value, .. } => match config.keys.identify(value.as_bytes()) {
            Some(identity) => {
                let name = identity.name.as_deref().unwrap_or_default().to_owned();
                (
                    vec![format!(
                        "a configured {} named {name:?}",
                        identity.kind.as_str()
                    )],
                    Ok(identity),
                )
            }
            None => (
                vec!["not a token (no two dots) and no configured key".to_owned()],
                Err(bad(BadCredential::Unknown)),
            ),
        },
        Presented::Client { id, secret } => {
            let known = config.clients.contains(&text(id));
            match config.clients.authenticate(id, secret) {
                Some(identity) => (
                    vec![format!("client {:?}: the secret matches", text(id))],
                    Ok(identity),
                ),
                None => (
                    vec![format!(
                        "client {:?}: {}",
                        text(id),
                        if known {
                            "the secret does not match"
                        } else {
                            "no such client_id"
                        }
                    )],
                    Err(bad(BadCredential::Client)),
                ),
            }
        }
    }
}

/// An access token: HS256 by the master secrets, else by the issuer its `iss` names (with its
/// inline keys; fetched keys are not fetched here).
fn verify_token(config: &Config, token: &str, now: u64) -> (Vec<String>, Result<Identity, Denial>) {
    let refused = |e: TokenError| {
        (
            vec![format!("token refused: {}", token_error(e))],
            Err(Denial::InvalidCredentials(BadCredential::Token(e))),
        )
    };
    let algorithm = match signer(token, !config.issuers.is_empty()) {
        Ok(Signer::Secrets) => None,
        Ok(Signer::Issuer(algorithm)) => Some(algorithm),
        Err(e) => return refused(e),
    };
    let Some(algorithm) = algorithm else {
        return match config.verifier.verify_typed(token, "access", now) {
            Ok(token) => (
                vec![format!(
                    "verified with the master secrets: sub {:?}, expires at {}",
                    &*token.subject, token.expires_at
                )],
                Ok(Identity::user(token.subject)),
            ),
            Err(e) => refused(e),
        };
    };
    match config.issuers.check(token, algorithm, now, |_| None) {
        IssuerCheck::Valid(verified) => (
            vec![format!(
                "verified with the keys of issuer {:?}: sub {:?}, roles {}, expires at {}",
                verified.identity.name.as_deref().unwrap_or_default(),
                verified.identity.user.as_deref().unwrap_or_default(),
                verified.identity.role,
                verified.expires_at
            )],
            Ok(verified.identity),
        ),
        IssuerCheck::Refused(e) => refused(e),
        IssuerCheck::NeedsKeys { issuer, .. } => {
            let name = config
                .issuers
                .list
                .get(issuer)
                .map(|i| i.name.to_string())
                .unwrap_or_default();
            (
                vec![format!(
                    "issuer {name:?} has its keys fetched at run time (jwks_uri): explained without them, as before the first fetch"
                )],
                Err(Denial::KeysUnavailable),
            )
        }
    }
}

fn token_error(e: TokenError) -> String {
    format!("{e:?}: {}", e.message())
}

/// The token's header and claims as read (never its signature), with times against `now`.
fn token_parts(token: &str, now: u64) -> Vec<String> {
    let Some(parts) = jws::split(token) else {
        return vec!["not three base64url parts".to_owned()];
    };
    let mut said = Vec::new();
    let mut buffer = Vec::new();
    match jws::parse_header(parts.header, &mut buffer) {
        Some(header) => said.push(format!(
            "header: alg {}, kid {}",
            header.alg,
            header.kid.as_deref().map_or(
                "(none: every key of the algorithm is tried)".to_owned(),
                |k| format!("{k:?} (only the key with this kid is tried)")
            )
        )),
        None => said.push("header: not base64url JSON of a JOSE header".to_owned()),
    }
    let mut buffer = Vec::new();
    match jws::parse_claims(parts.payload, &mut buffer) {
        Some(claims) => {
            let when = |t: Option<u64>| match t {
                None => "absent".to_owned(),
                Some(t) if t >= now => format!("{t} (in {} s)", t - now),
                Some(t) => format!("{t} ({} s ago)", now - t),
            };
            said.push(format!(
                "claims: sub {}, token_type {}, iat {}, nbf {}, exp {}",
                claims
                    .sub
                    .as_deref()
                    .map_or("absent".to_owned(), |s| format!("{s:?}")),
                claims
                    .token_type
                    .as_deref()
                    .map_or("absent".to_owned(), |s| format!("{s:?}")),
                when(claims.iat),
                when(claims.nbf),
                when(claims.exp)
            ));
        }
        None => said.push("claims: not base64url JSON of the claims".to_owned()),
    }
    said.push(format!(
        "signature: {} bytes of base64url (not shown)",
        parts.signature.len()
    ));
    said
}
