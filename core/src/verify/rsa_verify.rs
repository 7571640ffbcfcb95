//! RSA signatures of issuers' tokens (RS256/384/512: PKCS#1 v1.5; PS256/384/512: PSS with a
//! salt as long as the hash), on RustCrypto's `rsa` 0.10 and its Montgomery arithmetic
//! (crypto-bigint): a new RS256 token costs about a third of what jwt-simple's path (`rsa` 0.9
//! over num-bigint-dig) cost inside Envoy (docs/performance.md).
//!
//! jwt-simple still imports the key (its strict JWK policy: 2048 to 4096 bits, exponent
//! 65537), and this module holds the key to the same policy again. With the exponent fixed,
//! a PKCS#1 v1.5 check raises the signature to 65537 itself, 16 squarings and one
//! multiplication (the crate's exponentiation, constant-time in the base with 4-bit windows,
//! makes 35), then compares the whole encoded message with the one expected (RFC 8017, section
//! 8.2.2): a signature of the wrong length, a representative not below the modulus, another
//! hash or a DigestInfo of another spelling (without its NULL parameters) is refused. PSS goes
//! through the crate. jwt-simple stays the reference: `core/tests/signature_differential.rs`
//! holds every accept and refuse of this path to its.

use crypto_bigint::modular::BoxedMontyForm;
use crypto_bigint::SquareAssign;
use rsa::pss::Pss;
use rsa::sha2::{Digest, Sha256, Sha384, Sha512};
use rsa::traits::{PublicKeyParts, SignatureScheme};
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
            return Pss::<D>::new()
                .verify(&self.key, &hashed, signature)
                .is_ok();
        }
        let Some(encoded) = self.public_operation(signature) else {
            return false;
        };
        let digest_info = Pkcs1v15Sign::new::<D>().prefix;
        let k = encoded.len();
        let t_len = digest_info.len() + hashed.len();
        // 00 01, at least eight FF, 00, DigestInfo, hash.
        let Some(padding) = k.checked_sub(t_len + 3).filter(|&p| p >= 8) else {
            return false;
        };
        let expected = [0x00, 0x01]
            .into_iter()
            .chain(std::iter::repeat_n(0xff, padding))
            .chain([0x00])
            .chain(digest_info.iter().copied())
            .chain(hashed.iter().copied());
        encoded.iter().copied().eq(expected)
    }

    /// `signature^65537 mod n` as `k` bytes (the modulus' length), when the signature is `k`
    /// bytes long and below the modulus (RFC 8017, RSAVP1 and I2OSP).
    fn public_operation(&self, signature: &[u8]) -> Option<Vec<u8>> {
        let k = self.key.size();
        if signature.len() != k {
            return None;
        }
        let params = self.key.n_params();
        let s = BoxedUint::from_be_slice(signature, params.bits_precision()).ok()?;
        if s >= *self.key.n().as_ref() {
            return None;
        }
        let base = BoxedMontyForm::new(s, params);
        let mut power = base.clone();
        for _ in 0..16 {
            power.square_assign();
        }
        power *= &base;
        let bytes = power.retrieve().to_be_bytes();
        bytes.get(bytes.len().checked_sub(k)?..).map(<[u8]>::to_vec)
    }
}

fn trim_leading_zeros(x: &[u8]) -> &[u8] {
    let first = x.iter().position(|&b| b != 0).unwrap_or(x.len());
    x.get(first..).unwrap_or_default()
}
