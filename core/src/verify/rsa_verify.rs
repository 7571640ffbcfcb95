//! RSA signatures of issuers' tokens (RS256/384/512: PKCS#1 v1.5; PS256/384/512: PSS with a
//! salt as long as the hash), checked with RustCrypto's `rsa` 0.10, whose Montgomery
//! arithmetic (crypto-bigint) makes a verification in the .wasm about 2.5 times cheaper than
//! jwt-simple's path (`rsa` 0.9 over num-bigint-dig).
//!
//! jwt-simple still imports the key (its strict JWK policy: 2048 to 4096 bits, exponent
//! 65537), and this module holds the key to the same policy again. The encoded message is
//! compared whole, so a signature of the wrong length, a representative not below the
//! modulus, another hash or a DigestInfo of another spelling (without its NULL parameters) is
//! refused. jwt-simple stays the reference: `core/tests/signature_differential.rs` holds every
//! accept and refuse of this path to its.

use rsa::pss::Pss;
use rsa::sha2::{Digest, Sha256, Sha384, Sha512};
use rsa::traits::SignatureScheme;
use rsa::{BoxedUint, Pkcs1v15Sign, PublicKey};

use crate::verify::jwks::Algorithm;

/// The smallest and largest modulus accepted, in bits (jwt-simple's policy).
pub const MODULUS_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;
/// The only public exponent accepted.
const EXPONENT: [u8; 3] = [1, 0, 1];

/// The hash an algorithm signs.
#[derive(Debug, Clone, Copy)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

/// An RSA public key, for the one algorithm it verifies.
#[derive(Clone)]
pub struct RsaVerifier {
    key: PublicKey,
    hash: Hash,
    pss: bool,
}

impl std::fmt::Debug for RsaVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaVerifier")
            .field("hash", &self.hash)
            .field("pss", &self.pss)
            .finish_non_exhaustive()
    }
}

impl RsaVerifier {
    /// The key of modulus `n` and exponent `e` (big-endian, leading zeros allowed) for
    /// `algorithm`; `None` for an algorithm that is not RSA, an exponent other than 65537, a
    /// modulus outside [`MODULUS_BITS`] or an even one.
    pub fn new(n: &[u8], e: &[u8], algorithm: Algorithm) -> Option<RsaVerifier> {
        let (hash, pss) = match algorithm {
            Algorithm::RS256 => (Hash::Sha256, false),
            Algorithm::RS384 => (Hash::Sha384, false),
            Algorithm::RS512 => (Hash::Sha512, false),
            Algorithm::PS256 => (Hash::Sha256, true),
            Algorithm::PS384 => (Hash::Sha384, true),
            Algorithm::PS512 => (Hash::Sha512, true),
            Algorithm::ES256 | Algorithm::ES384 | Algorithm::EdDSA => return None,
        };
        if trim_leading_zeros(e) != EXPONENT {
            return None;
        }
        let n = trim_leading_zeros(n);
        let bits = n.first().map_or(0, |top| {
            (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize)
        });
        if !MODULUS_BITS.contains(&bits) {
            return None;
        }
        let key = PublicKey::new_with_size_limits(
            BoxedUint::from_be_slice_vartime(n),
            BoxedUint::from_be_slice_vartime(&EXPONENT),
            MODULUS_BITS,
        )
        .ok()?;
        Some(RsaVerifier { key, hash, pss })
    }

    /// Whether `signature` is this key's signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match self.hash {
            Hash::Sha256 => self.check::<Sha256>(message, signature),
            Hash::Sha384 => self.check::<Sha384>(message, signature),
            Hash::Sha512 => self.check::<Sha512>(message, signature),
        }
    }

    fn check<D>(&self, message: &[u8], signature: &[u8]) -> bool
    where
        D: Digest
            + rsa::sha2::digest::FixedOutputReset
            + rsa::sha2::digest::const_oid::AssociatedOid,
    {
        let hashed = D::digest(message);
        if self.pss {
            // Pss::new: the salt is exactly as long as the hash (RFC 7518, section 3.5).
            Pss::<D>::new()
                .verify(&self.key, &hashed, signature)
                .is_ok()
        } else {
            Pkcs1v15Sign::new::<D>()
                .verify(&self.key, &hashed, signature)
                .is_ok()
        }
    }
}

fn trim_leading_zeros(x: &[u8]) -> &[u8] {
    let first = x.iter().position(|&b| b != 0).unwrap_or(x.len());
    x.get(first..).unwrap_or_default()
}
