//! ECDSA (ES256, ES384) and EdDSA signatures of issuers' tokens: the primitives jwt-simple's
//! `verify_token` calls, with the same hashing, on the signing input and signature the JWS
//! reader gives. jwt-simple's own token path (its header and claims readers, error types)
//! then stays out of the .wasm; jwt-simple still imports the keys.

use jwt_simple::prelude::*;
use p256::ecdsa::signature::DigestVerifier as _;

/// Whether `signature` (`r || s`, 64 bytes) is `key`'s ES256 signature of `input`.
pub fn es256(key: &ES256PublicKey, input: &str, signature: &[u8]) -> bool {
    let Ok(signature) = p256::ecdsa::Signature::try_from(signature) else {
        return false;
    };
    key.public_key()
        .as_ref()
        .verify_digest(
            |digest: &mut hmac_sha256::Hash| {
                digest.update(input.as_bytes());
                Ok(())
            },
            &signature,
        )
        .is_ok()
}

/// Whether `signature` (`r || s`, 96 bytes) is `key`'s ES384 signature of `input`.
pub fn es384(key: &ES384PublicKey, input: &str, signature: &[u8]) -> bool {
    let Ok(signature) = p384::ecdsa::Signature::try_from(signature) else {
        return false;
    };
    key.public_key()
        .as_ref()
        .verify_digest(
            |digest: &mut hmac_sha512::sha384::Hash| {
                digest.update(input.as_bytes());
                Ok(())
            },
            &signature,
        )
        .is_ok()
}

/// Whether `signature` (64 bytes) is `key`'s Ed25519 signature of `input`.
pub fn eddsa(key: &Ed25519PublicKey, input: &str, signature: &[u8]) -> bool {
    let Ok(signature) = ed25519_compact::Signature::from_slice(signature) else {
        return false;
    };
    key.public_key().as_ref().verify(input, &signature).is_ok()
}
