//! Access tokens signed by identity providers ("issuers") with asymmetric keys.
//!
//! The JWS reader of this crate reads header and claims strictly (a repeated claim, `crit`,
//! a bad NumericDate refuse the token); the signature is checked (`jwks::PublicKey::signs`:
//! `rsa_verify` for RSA, `curve_verify` for ECDSA and EdDSA) with the one issuer's keys that
//! the token's `iss` names, of the token's exact algorithm and `kid`. Where the
//! keys come from (inline, or fetched and shared by the filter) is not this module's concern:
//! it is handed the key set the worker holds, and says when keys are missing.

use std::rc::Rc;

use serde_json::{Map, Value};

use crate::identity::{CredentialKind, Identity, RoleDrop, Roles};
use crate::verify::base64url;
use crate::verify::claims;
use crate::verify::jwks::{Algorithm, KeyDigest, KeySet};
use crate::verify::jws;
use crate::verify::revocation::TokenMarks;
use crate::verify::token::{check_times, is_safe_subject, TokenError};
use crate::verify::MAX_CREDENTIAL_LEN;

/// Where an issuer's keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Given in the configuration (`jwks` or `jwks_env`).
    Inline(Rc<KeySet>),
    /// Fetched from `jwks_uri` through an Envoy cluster, shared by the workers.
    Remote(RemoteKeys),
}

/// A `jwks_uri` as the filter fetches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteKeys {
    pub uri: String,
    /// The Envoy cluster the fetch goes through.
    pub cluster: String,
    /// The `:authority` and `:path` of the fetch.
    pub authority: String,
    pub path: String,
    pub refresh_seconds: u64,
}

/// A claim copied to a request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimHeader {
    pub claim: String,
    pub header: Rc<str>,
}

/// One trusted identity provider.
#[derive(Debug, Clone)]
pub struct Issuer {
    /// The label in logs, counters, the access log and `x-auth-name`.
    pub name: Rc<str>,
    /// The exact `iss` of its tokens.
    pub issuer: String,
    /// When not empty, `aud` must hold one of them.
    pub audiences: Vec<String>,
    pub algorithms: Vec<Algorithm>,
    pub subject_claim: String,
    pub roles_claim: Option<String>,
    pub claims_to_headers: Vec<ClaimHeader>,
    pub keys: KeySource,
}

impl Issuer {
    /// The fetched keys' description, when they are fetched.
    pub fn remote(&self) -> Option<&RemoteKeys> {
        match &self.keys {
            KeySource::Remote(remote) => Some(remote),
            KeySource::Inline(_) => None,
        }
    }
}

/// Why an issuer's token cannot be decided with the keys at hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeysNeeded {
    /// The issuer's keys were never fetched.
    NeverFetched,
    /// The token names a `kid` the issuer's current keys lack (the provider may have rotated).
    UnknownKid,
}

/// The result of checking an issuer's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerCheck {
    Valid(Box<VerifiedIssuerToken>),
    Refused(TokenError),
    /// Undecidable until issuer `issuer` (an index) has the keys it needs.
    NeedsKeys {
        issuer: usize,
        why: KeysNeeded,
    },
}

/// What a valid issuer token proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIssuerToken {
    pub identity: Identity,
    pub expires_at: u64,
    /// The issuer's index in the configuration.
    pub issuer: usize,
    /// The key that verified it.
    pub key: KeyDigest,
    /// What the revocation list knows the token by.
    pub marks: TokenMarks,
    /// Why a value of its roles claim was left out (the first), when one was.
    pub dropped_role: Option<RoleDrop>,
}

/// The configured issuers, and the time policy shared with the master secrets.
#[derive(Debug, Clone, Default)]
pub struct Issuers {
    pub list: Vec<Issuer>,
    pub clock_skew: u64,
    pub max_lifetime: Option<u64>,
}

impl Issuers {
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Checks `token` (its header's `alg` is `algorithm`) at unix time `now`; `keys_of(i)`
    /// gives the keys the worker holds for issuer `i`, `None` when never fetched.
    pub fn check<'k>(
        &self,
        token: &str,
        algorithm: Algorithm,
        now: u64,
        keys_of: impl Fn(usize) -> Option<&'k KeySet>,
    ) -> IssuerCheck {
        match self.check_inner(token, algorithm, now, keys_of) {
            Ok(check) => check,
            Err(e) => IssuerCheck::Refused(e),
        }
    }

    fn check_inner<'k>(
        &self,
        token: &str,
        algorithm: Algorithm,
        now: u64,
        keys_of: impl Fn(usize) -> Option<&'k KeySet>,
    ) -> Result<IssuerCheck, TokenError> {
        if token.len() > MAX_CREDENTIAL_LEN {
            return Err(TokenError::TooLong);
        }
        let parts = jws::split(token).ok_or(TokenError::Malformed)?;
        let mut buffer = Vec::new();
        let header = jws::parse_header(parts.header, &mut buffer).ok_or(TokenError::Malformed)?;
        if header.crit.is_some() {
            return Err(TokenError::CriticalHeader);
        }
        if header.salt.is_some() || !header.is_jwt() {
            return Err(TokenError::Malformed);
        }
        if header.alg != algorithm.name() {
            return Err(TokenError::Algorithm);
        }
        let kid = header.kid.as_deref().map(str::to_owned);
        let mut claims_buffer = Vec::new();
        let claims =
            jws::parse_claims(parts.payload, &mut claims_buffer).ok_or(TokenError::Malformed)?;
        let iss = claims.iss.as_deref().ok_or(TokenError::UnknownIssuer)?;
        let (index, issuer) = self
            .list
            .iter()
            .enumerate()
            .find(|(_, i)| i.issuer == iss)
            .ok_or(TokenError::UnknownIssuer)?;
        if !issuer.algorithms.contains(&algorithm) {
            return Err(TokenError::Algorithm);
        }
        // The claims are checked before any key is looked up: a token that could not pass
        // anyway never costs a signature check, nor makes the keys be fetched again.
        if !is_access_token_type(header.typ.as_deref()) {
            return Err(TokenError::NotAccessToken);
        }
        let expires_at = check_times(&claims, self.clock_skew, self.max_lifetime, now)?;
        if claims.token_type.as_deref().is_some_and(|t| t != "access") {
            return Err(TokenError::NotAccessToken);
        }
        if !issuer.audiences.is_empty() && !audience_matches(&claims.aud, &issuer.audiences) {
            return Err(TokenError::WrongAudience);
        }
        let keys = match &issuer.keys {
            KeySource::Inline(set) => Some(&**set),
            KeySource::Remote(_) => keys_of(index),
        };
        let Some(keys) = keys else {
            return Ok(IssuerCheck::NeedsKeys {
                issuer: index,
                why: KeysNeeded::NeverFetched,
            });
        };
        if let Some(kid) = &kid {
            if !keys.has_kid(algorithm, kid) {
                return match issuer.keys {
                    KeySource::Inline(_) => Err(TokenError::UnknownKeyId),
                    KeySource::Remote(_) => Ok(IssuerCheck::NeedsKeys {
                        issuer: index,
                        why: KeysNeeded::UnknownKid,
                    }),
                };
            }
        }
        // The header and claims were read above as `jws::signed` reads them: the signature
        // is decoded once and tried against a few keys only, with a `kid` or without: each
        // try is a signature verification, and a provider may publish dozens of keys, several
        // under one `kid`.
        let mut signature = Vec::new();
        base64url::decode_into(parts.signature.as_bytes(), &mut signature)
            .ok_or(TokenError::BadSignature)?;
        let key = keys
            .candidates(algorithm, kid.as_deref())
            .take(MAX_KEY_TRIES)
            .find(|key| key.signs(parts.signing_input, &signature))
            .ok_or(TokenError::BadSignature)?;
        let payload = claims::parse_payload(parts.payload).ok_or(TokenError::Malformed)?;
        let (identity, dropped_role) = identity(issuer, &payload)?;
        let marks = TokenMarks {
            issuer: Some(Rc::clone(&issuer.name)),
            subject: identity.user.clone().unwrap_or_else(|| Rc::from("")),
            jti: claims.jti.as_deref().map(Rc::from),
            issued_at: claims.iat,
            digest: TokenMarks::digest_of(parts.signing_input),
        };
        Ok(IssuerCheck::Valid(Box::new(VerifiedIssuerToken {
            identity,
            expires_at,
            issuer: index,
            key: key.digest,
            marks,
            dropped_role,
        })))
    }
}

/// The most keys a token is tried against (the keys of its `kid`, or of its algorithm when
/// it names none).
pub const MAX_KEY_TRIES: usize = 2;

/// Whether a JOSE `typ` may be an access token's: absent, `JWT`, or RFC 9068's `at+jwt`
/// (any case, with or without `application/`). Other `+jwt` types (logout, security events,
/// DPoP proofs) are tokens of another purpose from the same provider.
fn is_access_token_type(typ: Option<&str>) -> bool {
    typ.is_none_or(|t| {
        let t = t.to_ascii_lowercase();
        let t = t.strip_prefix("application/").unwrap_or(&t);
        t == "jwt" || t == "at+jwt"
    })
}

/// Whether `aud` (a string or a list) holds one of `allowed`.
fn audience_matches(aud: &Option<jws::Audience>, allowed: &[String]) -> bool {
    match aud {
        Some(jws::Audience::One(a)) => allowed.contains(a),
        Some(jws::Audience::Many(list)) => list.iter().any(|a| allowed.contains(a)),
        None => false,
    }
}

/// Who a valid token of `issuer` makes the caller, and why a role was left out, if one was.
fn identity(
    issuer: &Issuer,
    payload: &Map<String, Value>,
) -> Result<(Identity, Option<RoleDrop>), TokenError> {
    let subject = claims::lookup(payload, &issuer.subject_claim)
        .and_then(Value::as_str)
        .filter(|s| is_safe_subject(s))
        .ok_or(TokenError::BadSubject)?;
    let named = issuer
        .roles_claim
        .as_deref()
        .and_then(|path| claims::lookup(payload, path))
        .map(claims::strings)
        .unwrap_or_default();
    let (role, dropped_role) = Roles::from_claim(named);
    let headers: Vec<(Rc<str>, Rc<str>)> = issuer
        .claims_to_headers
        .iter()
        .filter_map(|c| {
            let value = claims::header_value(claims::lookup(payload, &c.claim)?)?;
            Some((Rc::clone(&c.header), Rc::from(value)))
        })
        .collect();
    let identity = Identity {
        kind: CredentialKind::AccessToken,
        role,
        user: Some(Rc::from(subject)),
        name: Some(Rc::clone(&issuer.name)),
        claims: (!headers.is_empty()).then(|| Rc::from(headers)),
    };
    Ok((identity, dropped_role))
}
