//! Tokens as an identity provider signs them, for `{mint: {issuer, key, claims}}` in a cases
//! file: any claims, signed with a private key (PEM PKCS#8, or a private JWK), under the
//! `alg` and `kid` of the issuer's key that the private key matches.
//!
//! The filter never signs; this signing code lives in the command, with jwt-simple, as the
//! `mint-token` tool's does.

use jwt_simple::prelude::*;
use serde_json::{Map, Value};
use tollgate_core::verify::jwks::{Algorithm, KeySet};

/// A private key loaded for one algorithm.
enum PrivateKey {
    RS256(RS256KeyPair),
    RS384(RS384KeyPair),
    RS512(RS512KeyPair),
    PS256(PS256KeyPair),
    PS384(PS384KeyPair),
    PS512(PS512KeyPair),
    ES256(ES256KeyPair),
    ES384(ES384KeyPair),
    EdDSA(Ed25519KeyPair),
}

/// Applies `$body` to the key pair inside any variant.
macro_rules! each {
    ($key:expr, $k:ident => $body:expr) => {
        match $key {
            PrivateKey::RS256($k) => $body,
            PrivateKey::RS384($k) => $body,
            PrivateKey::RS512($k) => $body,
            PrivateKey::PS256($k) => $body,
            PrivateKey::PS384($k) => $body,
            PrivateKey::PS512($k) => $body,
            PrivateKey::ES256($k) => $body,
            PrivateKey::ES384($k) => $body,
            PrivateKey::EdDSA($k) => $body,
        }
    };
}

/// Loads `text` (PEM, or a JWK when it starts with `{`) as a key of `algorithm`.
fn load(text: &str, algorithm: Algorithm) -> Option<PrivateKey> {
    macro_rules! read {
        ($t:ty, $v:ident) => {{
            let jwk = text.trim_start().starts_with('{');
            let key = if jwk {
                <$t>::from_jwk(text).ok()?
            } else {
                <$t>::from_pem(text).ok()?
            };
            PrivateKey::$v(key)
        }};
    }
    Some(match algorithm {
        Algorithm::RS256 => read!(RS256KeyPair, RS256),
        Algorithm::RS384 => read!(RS384KeyPair, RS384),
        Algorithm::RS512 => read!(RS512KeyPair, RS512),
        Algorithm::PS256 => read!(PS256KeyPair, PS256),
        Algorithm::PS384 => read!(PS384KeyPair, PS384),
        Algorithm::PS512 => read!(PS512KeyPair, PS512),
        Algorithm::ES256 => read!(ES256KeyPair, ES256),
        Algorithm::ES384 => read!(ES384KeyPair, ES384),
        Algorithm::EdDSA => read!(Ed25519KeyPair, EdDSA),
    })
}

impl PrivateKey {
    /// `claims` exactly as given, signed, with `kid` in the header when given.
    fn sign(self, claims: &Map<String, Value>, kid: Option<&str>) -> Result<String, String> {
        let claims = JWTClaims {
            issued_at: None,
            expires_at: None,
            invalid_before: None,
            issuer: None,
            subject: None,
            audiences: None,
            jwt_id: None,
            nonce: None,
            custom: claims.clone(),
        };
        each!(self, k => match kid {
            Some(kid) => k.with_key_id(kid).sign(claims),
            None => k.sign(claims),
        })
        .map_err(|_| "the key cannot sign these claims".to_owned())
    }
}

/// What the key file may hold, for error messages.
pub const KEY_FORMATS: &str =
    "a PEM private key (PKCS#8: RSA, EC P-256 or P-384, Ed25519) or a private JWK";

/// Signs `claims` with the private key `text`. `keys` are the issuer's public keys (inline, or
/// given with `--jwks`): the token gets the `alg` and `kid` of the one the private key
/// matches. A key that matches none still signs (a token the filter must refuse), under the
/// first algorithm its type allows and the JWK's own `kid`, if any. `kid` overrides the `kid`.
pub fn mint(
    text: &str,
    keys: Option<&KeySet>,
    claims: &Map<String, Value>,
    kid: Option<&str>,
) -> Result<String, String> {
    let algorithms: Vec<Algorithm> = Algorithm::ALL
        .into_iter()
        .filter(|a| load(text, *a).is_some())
        .collect();
    let sign = |algorithm: Algorithm, kid: Option<&str>| match load(text, algorithm) {
        Some(key) => key.sign(claims, kid),
        None => Err(format!("the file is not {KEY_FORMATS}")),
    };
    if let Some(keys) = keys {
        for &algorithm in &algorithms {
            let probe = sign(algorithm, None)?;
            if let Some(public) = keys
                .candidates(algorithm, None)
                .find(|k| k.verifies(&probe))
            {
                return sign(algorithm, kid.or(public.kid.as_deref()));
            }
        }
    }
    match algorithms.first() {
        Some(&algorithm) => sign(algorithm, kid),
        None => Err(format!("the file is not {KEY_FORMATS}")),
    }
}
