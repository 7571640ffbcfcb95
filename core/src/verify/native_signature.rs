//! Issuers' RSA (PKCS#1 v1.5: RS256, RS384, RS512) and ECDSA (ES256, ES384) signatures
//! checked with AWS-LC (feature `native-crypto`, the native module's): constant-time,
//! assembly-optimised arithmetic, on the key parsed once. The token around the signature is
//! read as for every key ([`super::jws::signed`]); PS* and EdDSA keys keep the pure-Rust
//! check. `core/tests/native_signatures.rs` runs crafted tokens through this and jwt-simple.

use aws_lc_rs::signature::{self as lc, ParsedPublicKey, RsaPublicKeyComponents};

use super::jwks::Algorithm;

/// A key parsed once for AWS-LC.
#[derive(Clone)]
pub struct NativeKey(ParsedPublicKey);

impl NativeKey {
    /// An RSA key of `algorithm` from its modulus and exponent (big-endian, as jwt-simple
    /// imported them); `None` for PS* (and a key AWS-LC refuses).
    pub fn rsa(algorithm: Algorithm, n: &[u8], e: &[u8]) -> Option<NativeKey> {
        let params = match algorithm {
            Algorithm::RS256 => &lc::RSA_PKCS1_2048_8192_SHA256,
            Algorithm::RS384 => &lc::RSA_PKCS1_2048_8192_SHA384,
            Algorithm::RS512 => &lc::RSA_PKCS1_2048_8192_SHA512,
            _ => return None,
        };
        let key = RsaPublicKeyComponents { n, e }
            .to_parsed_public_key(params)
            .ok()?;
        Some(NativeKey(key))
    }

    /// An EC key of `algorithm` from its uncompressed point.
    pub fn ec(algorithm: Algorithm, point: &[u8]) -> Option<NativeKey> {
        let curve = match algorithm {
            Algorithm::ES256 => &lc::ECDSA_P256_SHA256_FIXED,
            Algorithm::ES384 => &lc::ECDSA_P384_SHA384_FIXED,
            _ => return None,
        };
        ParsedPublicKey::new(curve, point).ok().map(NativeKey)
    }

    /// Whether `signature` is this key's signature of `input`.
    pub fn signs(&self, input: &[u8], signature: &[u8]) -> bool {
        self.0.verify_sig(input, signature).is_ok()
    }
}
