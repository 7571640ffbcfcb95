//! The filter's signature checks (verify/rsa_verify.rs, verify/curve_verify.rs, behind the
//! JWS reader, reached through `KeySet` and `PublicKey::verifies`) against jwt-simple's
//! `verify_token`, the reference: every token, crafted here or made from the JWT catalogue,
//! must be accepted or refused by both alike. Where the filter reads a
//! token more strictly than jwt-simple (listed below, with why), it refuses and jwt-simple
//! accepts: the strict reading wins.

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use jwt_simple::prelude::*;
use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Decoder, Encoder};
use rsa::pkcs8::DecodePrivateKey;
use rsa::rand_core::{Infallible, TryCryptoRng, TryRng};
use rsa::sha2::{Digest, Sha256, Sha384, Sha512};
use rsa::traits::PublicKeyParts;
use rsa::{BoxedUint, PrivateKey};
use tollgate_core::verify::jwks::{Algorithm, KeySet};
use tollgate_core::verify::rsa_verify::RsaVerifier;
use tollgate_testkit::prelude::*;

/// The catalogue's clock.
const NOW: u64 = 1_750_000_000;
const VECTORS: &str = include_str!("../../tests/data/jwt-vectors.tsv");
const CLAIMS: &str = r#"{"iss":"https://idp.example.com","sub":"alice","exp":4102444800,"iat":1700000000,"jti":"0"}"#;

/// DigestInfo prefixes (RFC 8017, section 9.2, note 1) and the SHA-256 one without its NULL.
const DI_SHA256: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
const DI_SHA256_NO_NULL: &[u8] = &[
    0x30, 0x2f, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x04,
    0x20,
];
const DI_SHA384: &[u8] = &[
    0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05,
    0x00, 0x04, 0x30,
];
const DI_SHA512: &[u8] = &[
    0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05,
    0x00, 0x04, 0x40,
];

fn b64(bytes: &[u8]) -> String {
    Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap()
}

fn unb64(text: &str) -> Option<Vec<u8>> {
    Base64UrlSafeNoPadding::decode_to_vec(text, None).ok()
}

/// A seeded generator for PSS salts (the signatures need not be secret).
struct TestRng(u64);

impl TryRng for TestRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Ok(self.0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for b in dst {
            *b = self.try_next_u64()? as u8;
        }
        Ok(())
    }
}

impl TryCryptoRng for TestRng {}

/// A test key: its private half for crafting, its public JWK (no `alg`) for both verifiers.
struct Key {
    private: PrivateKey,
    n: Vec<u8>,
    jwk: String,
}

impl Key {
    fn from_pem(file: &str) -> Key {
        let pem =
            std::fs::read_to_string(root().join("tests/data/issuer-keys").join(file)).unwrap();
        let private = PrivateKey::from_pkcs8_pem(&pem).unwrap();
        let n = private.n().as_ref().to_be_bytes_trimmed_vartime().to_vec();
        let jwk = format!(r#"{{"kty":"RSA","n":"{}","e":"AQAB"}}"#, b64(&n));
        Key { private, n, jwk }
    }

    /// Bytes in the modulus.
    fn k(&self) -> usize {
        self.n.len()
    }

    /// `m` to the private exponent: the signature whose encoded message is `em`.
    fn raw(&self, em: &[u8]) -> Vec<u8> {
        let m = BoxedUint::from_be_slice_vartime(em);
        let s =
            rsa::hazmat::rsa_decrypt_and_check(&self.private, None::<&mut TestRng>, &m).unwrap();
        fixed(&s.to_be_bytes_trimmed_vartime(), self.k())
    }

    /// A PKCS#1 v1.5 encoded message of `k` bytes: `00 01 FF.. 00 || t`.
    fn em(&self, t: &[u8]) -> Vec<u8> {
        let mut em = vec![0x00, 0x01];
        em.resize(self.k() - t.len() - 1, 0xff);
        em.push(0x00);
        em.extend_from_slice(t);
        em
    }

    /// An RS256 signature of `input`, crafted from the standard encoding.
    fn rs256(&self, input: &str) -> Vec<u8> {
        self.raw(&self.em(&[DI_SHA256, &Sha256::digest(input)].concat()))
    }

    fn pss<D: Digest + rsa::sha2::digest::FixedOutputReset>(
        &self,
        input: &str,
        salt: usize,
    ) -> Vec<u8> {
        let hashed = D::digest(input);
        let padding = rsa::pss::Pss::<D>::new_with_salt(salt);
        self.private
            .sign_with_rng(&mut TestRng(0x9e37_79b9_7f4a_7c15), padding, &hashed)
            .unwrap()
    }
}

/// `bytes` as a big-endian number of exactly `len` bytes.
fn fixed(bytes: &[u8], len: usize) -> Vec<u8> {
    let mut out = vec![0; len.saturating_sub(bytes.len())];
    out.extend_from_slice(bytes);
    out
}

/// `x + delta` (delta -1, 0 or 1) on a big-endian number of fixed width.
fn plus(x: &[u8], delta: i8) -> Vec<u8> {
    let mut out = x.to_vec();
    for byte in out.iter_mut().rev() {
        let (value, carry) = if delta >= 0 {
            byte.overflowing_add(delta as u8)
        } else {
            byte.overflowing_sub(1)
        };
        *byte = value;
        if !carry || delta == 0 {
            break;
        }
    }
    out
}

fn signing_input(header: &str, claims: &str) -> String {
    format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()))
}

fn token(input: &str, signature: &[u8]) -> String {
    format!("{input}.{}", b64(signature))
}

/// Whether the filter's path accepts `token` with the key of `jwk` loaded for `alg`.
fn ours(jwk: &str, alg: &str, token: &str) -> bool {
    let jwks = format!(r#"{{"keys":[{jwk}]}}"#);
    let set = KeySet::parse(jwks.as_bytes(), &[Algorithm::parse(alg).unwrap()]).unwrap();
    set.keys.iter().any(|k| k.verifies(token))
}

/// Whether jwt-simple accepts it, told what the filter tells it (the signature only).
fn reference(jwk: &str, alg: &str, token: &str) -> bool {
    let options = || {
        Some(VerificationOptions {
            artificial_time: Some(Duration::from_secs(NOW)),
            time_tolerance: Some(Duration::from_secs(NOW)),
            accept_future: true,
            max_token_length: Some(8192),
            ..VerificationOptions::default()
        })
    };
    macro_rules! check {
        ($key:ty) => {
            <$key>::from_jwk(jwk)
                .is_ok_and(|k| k.verify_token::<NoCustomClaims>(token, options()).is_ok())
        };
    }
    match alg {
        "RS256" => check!(RS256PublicKey),
        "RS384" => check!(RS384PublicKey),
        "RS512" => check!(RS512PublicKey),
        "PS256" => check!(PS256PublicKey),
        "PS384" => check!(PS384PublicKey),
        "PS512" => check!(PS512PublicKey),
        "ES256" => check!(ES256PublicKey),
        "ES384" => check!(ES384PublicKey),
        "EdDSA" => check!(Ed25519PublicKey),
        other => panic!("{other}"),
    }
}

/// Both verdicts must agree; returns it.
fn same(jwk: &str, alg: &str, token: &str, case: &str) -> bool {
    let (a, b) = (ours(jwk, alg, token), reference(jwk, alg, token));
    assert_eq!(a, b, "{case}: the filter says {a}, jwt-simple says {b}");
    a
}

#[path = "signature_differential/crafted.rs"]
mod crafted;
#[path = "signature_differential/curves.rs"]
mod curves;
#[path = "signature_differential/keys.rs"]
mod keys;
#[path = "signature_differential/vectors.rs"]
mod vectors;
