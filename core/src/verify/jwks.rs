//! An issuer's public keys, read from a JWKS (RFC 7517) and loaded with jwt-simple's strict
//! JWK import: a key loads only into the algorithm it describes (its `alg`, when present, must
//! be that algorithm), its `use` must be `sig` and its `key_ops` only `verify`, an RSA modulus
//! is 2048 to 4096 bits with exponent 65537. A key that fails any check is skipped and
//! counted, never fatal: the others still serve.

use jwt_simple::prelude::*;
use serde_json::{Map, Value};

use crate::verify::claims;
use crate::verify::curve_verify;
use crate::verify::jws;
#[cfg(feature = "native-crypto")]
use crate::verify::native_signature::NativeKey;
use crate::verify::rsa_verify::RsaVerifier;

/// The largest JWKS document read, in bytes (a fetched body beyond this is refused before
/// it is copied into the VM).
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// The most keys one JWKS may contribute; the rest are skipped.
pub const MAX_KEYS: usize = 64;

/// A signature algorithm an issuer's tokens may use. HS algorithms are not among them: an
/// issuer's key is public, and a public key must never serve as an HMAC secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl Algorithm {
    pub const ALL: [Algorithm; 9] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];

    /// The `alg` value of the JOSE header.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// The algorithm an exact `alg` value names.
    pub fn parse(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The JWK `kty` whose keys this algorithm uses.
    fn key_type(self) -> &'static str {
        match self {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => "RSA",
            Algorithm::ES256 | Algorithm::ES384 => "EC",
            Algorithm::EdDSA => "OKP",
        }
    }
}

/// A public key, typed by the one algorithm it verifies. RSA keys (RS*, PS*) are verified
/// by [`RsaVerifier`], the others by jwt-simple.
#[derive(Clone)]
enum Verifying {
    Rsa(RsaVerifier),
    ES256(ES256PublicKey),
    ES384(ES384PublicKey),
    EdDSA(Ed25519PublicKey),
}

/// One usable key of an issuer.
#[derive(Clone)]
pub struct PublicKey {
    pub kid: Option<String>,
    pub algorithm: Algorithm,
    key: Verifying,
    /// The same key for AWS-LC (the native module's RSA PKCS#1 and ECDSA checks).
    #[cfg(feature = "native-crypto")]
    native: Option<super::native_signature::NativeKey>,
    /// What the key is, whatever the JWKS around it: SHA-256 of its algorithm, `kid` and
    /// members as canonical JSON (names sorted). The same key fetched again has the same.
    pub digest: KeyDigest,
}

/// A key's [`PublicKey::digest`].
pub type KeyDigest = [u8; 32];

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    /// Loads one JWK (as JSON text) for `algorithm`, or `None` when jwt-simple refuses it.
    fn load(jwk: &str, algorithm: Algorithm) -> Option<PublicKey> {
        #[cfg(feature = "native-crypto")]
        let mut native = None;
        let key = match algorithm {
            // jwt-simple's import for every RSA algorithm: the JWK's `alg`, `use` and
            // `key_ops` are checked the same whatever the hash.
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => {
                let imported = match algorithm {
                    Algorithm::RS256 => RS256PublicKey::from_jwk(jwk).ok()?.to_components(),
                    Algorithm::RS384 => RS384PublicKey::from_jwk(jwk).ok()?.to_components(),
                    Algorithm::RS512 => RS512PublicKey::from_jwk(jwk).ok()?.to_components(),
                    Algorithm::PS256 => PS256PublicKey::from_jwk(jwk).ok()?.to_components(),
                    Algorithm::PS384 => PS384PublicKey::from_jwk(jwk).ok()?.to_components(),
                    _ => PS512PublicKey::from_jwk(jwk).ok()?.to_components(),
                };
                #[cfg(feature = "native-crypto")]
                {
                    native = NativeKey::rsa(algorithm, &imported.n, &imported.e);
                }
                Verifying::Rsa(RsaVerifier::new(&imported.n, &imported.e, algorithm)?)
            }
            Algorithm::ES256 => {
                let key = ES256PublicKey::from_jwk(jwk).ok()?;
                #[cfg(feature = "native-crypto")]
                {
                    native = NativeKey::ec(algorithm, &key.public_key().to_bytes_uncompressed());
                }
                Verifying::ES256(key)
            }
            Algorithm::ES384 => {
                let key = ES384PublicKey::from_jwk(jwk).ok()?;
                #[cfg(feature = "native-crypto")]
                {
                    native = NativeKey::ec(algorithm, &key.public_key().to_bytes_uncompressed());
                }
                Verifying::ES384(key)
            }
            Algorithm::EdDSA => Verifying::EdDSA(Ed25519PublicKey::from_jwk(jwk).ok()?),
        };
        Some(PublicKey {
            kid: None,
            algorithm,
            #[cfg(feature = "native-crypto")]
            native,
            key,
            digest: [0; 32],
        })
    }

    /// Whether AWS-LC checks this key's signatures (the native module's RSA PKCS#1 and
    /// ECDSA keys).
    #[cfg(feature = "native-crypto")]
    pub fn checked_natively(&self) -> bool {
        self.native.is_some()
    }

    /// Whether `token` carries this key's valid signature: its header names this key's
    /// algorithm and reads as jwt-simple requires ([`jws::signed`]), and [`PublicKey::signs`].
    /// Times are not looked at: the filter checks them itself.
    pub fn verifies(&self, token: &str) -> bool {
        jws::signed(token, self.algorithm.name())
            .is_some_and(|(input, signature)| self.signs(input, &signature))
    }

    /// Whether `signature` is this key's signature of `input` (a token's `header.payload`,
    /// whose header the caller read as [`jws::signed`] does).
    pub fn signs(&self, input: &str, signature: &[u8]) -> bool {
        #[cfg(feature = "native-crypto")]
        if let Some(native) = &self.native {
            return native.signs(input.as_bytes(), signature);
        }
        match &self.key {
            Verifying::Rsa(k) => k.verifies(input.as_bytes(), signature),
            Verifying::ES256(k) => curve_verify::es256(k, input, signature),
            Verifying::ES384(k) => curve_verify::es384(k, input, signature),
            Verifying::EdDSA(k) => curve_verify::eddsa(k, input, signature),
        }
    }
}

/// The members of a JWK passed on to jwt-simple: the key's material (including private
/// members, so that jwt-simple refuses a "public" key that leaks its private half) and its
/// metadata. Certificates (`x5c`, …) are not read: they would only lengthen the text.
const JWK_MEMBERS: [&str; 19] = [
    "kty", "kid", "alg", "use", "key_ops", "crv", "x", "y", "d", "n", "e", "p", "q", "dp", "dq",
    "qi", "oth", "k", "pub",
];

/// The members that only a private (or symmetric) key has.
pub const JWK_PRIVATE_MEMBERS: [&str; 9] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"];

/// The usable keys of a JWKS, and how many were skipped.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    pub keys: Vec<PublicKey>,
    /// JWKs that loaded into none of the allowed algorithms (or beyond [`MAX_KEYS`]).
    pub skipped: usize,
}

/// Why a JWKS document gives no keys at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwksError {
    TooLarge,
    /// Not a JSON object with a `keys` list.
    NotJwks,
    /// A JWKS, but none of its keys is usable.
    NoUsableKey,
}

impl std::fmt::Display for JwksError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JwksError::TooLarge => "the JWKS is larger than 256 KiB",
            JwksError::NotJwks => {
                "the document is not a JWKS (a JSON object with \"keys\", no name repeated)"
            }
            JwksError::NoUsableKey => "the JWKS holds no usable signing key",
        })
    }
}

impl KeySet {
    /// Reads a JWKS, keeping the keys that load into one of `allowed`. A key without `alg`
    /// loads into every allowed algorithm of its type. A JWKS with no usable key is a key set
    /// all the same (empty): a provider that withdrew its keys is believed.
    pub fn parse(document: &[u8], allowed: &[Algorithm]) -> Result<KeySet, JwksError> {
        if document.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge);
        }
        // A repeated name (two "keys", two "n") would be read differently by other parsers.
        let value = claims::parse_strict(document).ok_or(JwksError::NotJwks)?;
        let Some(Value::Array(jwks)) = value.get("keys") else {
            return Err(JwksError::NotJwks);
        };
        let mut set = KeySet::default();
        for (index, jwk) in jwks.iter().enumerate() {
            let loaded = if index < MAX_KEYS {
                load_jwk(jwk, allowed)
            } else {
                Vec::new()
            };
            if loaded.is_empty() {
                set.skipped += 1;
            }
            // A copy of a key already read is the same key: kept once.
            for key in loaded {
                if !set.holds(&key.digest) {
                    set.keys.push(key);
                }
            }
        }
        Ok(set)
    }

    /// Whether any object of a JWKS text, at any depth, has a member only a private or
    /// symmetric key has (`d`, `p`, `k`, …); `None` when the text is not strict JSON.
    pub fn holds_private_material(document: &[u8]) -> Option<bool> {
        fn private(value: &Value) -> bool {
            match value {
                Value::Object(members) => members
                    .iter()
                    .any(|(name, v)| JWK_PRIVATE_MEMBERS.contains(&name.as_str()) || private(v)),
                Value::Array(items) => items.iter().any(private),
                _ => false,
            }
        }
        claims::parse_strict(document).map(|v| private(&v))
    }

    /// The keys that may have signed a token with `algorithm` and `kid`: with a `kid`, only
    /// keys of that `kid`; without, every key of the algorithm.
    pub fn candidates<'s>(
        &'s self,
        algorithm: Algorithm,
        kid: Option<&'s str>,
    ) -> impl Iterator<Item = &'s PublicKey> + 's {
        self.keys
            .iter()
            .filter(move |k| k.algorithm == algorithm && (kid.is_none() || k.kid.as_deref() == kid))
    }

    /// Whether the set holds the key of `digest`.
    pub fn holds(&self, digest: &KeyDigest) -> bool {
        self.keys.iter().any(|k| &k.digest == digest)
    }

    /// Whether `other` holds the same keys, whatever their order or the JSON around them:
    /// the same keys fetched again.
    pub fn same_keys(&self, other: &KeySet) -> bool {
        self.keys.len() == other.keys.len()
            && self.keys.iter().all(|k| other.holds(&k.digest))
            && other.keys.iter().all(|k| self.holds(&k.digest))
    }

    /// Whether a key named `kid` is known for `algorithm`.
    pub fn has_kid(&self, algorithm: Algorithm, kid: &str) -> bool {
        self.candidates(algorithm, Some(kid)).next().is_some()
    }
}

/// A key's digest: its algorithm, `kid` and canonical members, each length-prefixed.
fn key_digest(algorithm: Algorithm, kid: Option<&str>, canonical: &str) -> KeyDigest {
    let mut hash = hmac_sha256::Hash::new();
    for part in [algorithm.name(), kid.unwrap_or(""), canonical] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hash.update([u8::from(kid.is_some())]);
    hash.finalize()
}

/// The keys one JWK gives, one per allowed algorithm it loads into.
fn load_jwk(jwk: &Value, allowed: &[Algorithm]) -> Vec<PublicKey> {
    let Value::Object(members) = jwk else {
        return Vec::new();
    };
    let kty = members.get("kty").and_then(Value::as_str);
    let kid = match members.get("kid") {
        None => None,
        Some(Value::String(kid)) if !kid.is_empty() && kid.len() <= 256 => Some(kid.clone()),
        Some(_) => return Vec::new(),
    };
    let kept: Map<String, Value> = members
        .iter()
        .filter(|(name, _)| JWK_MEMBERS.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let text = Value::Object(kept).to_string();
    allowed
        .iter()
        .filter(|a| Some(a.key_type()) == kty)
        .filter_map(|&algorithm| PublicKey::load(&text, algorithm))
        .map(|key| PublicKey {
            digest: key_digest(key.algorithm, kid.as_deref(), &text),
            kid: kid.clone(),
            ..key
        })
        .collect()
}
