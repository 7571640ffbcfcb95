//! Issuers' RSA (PKCS#1 v1.5) and ECDSA tokens checked with AWS-LC (feature `native-crypto`,
//! the native module's): its constant-time, assembly-optimised arithmetic for the signature,
//! and jwt-simple's own reading of the token around it, step by step as its `verify_token`
//! does with the options [`super::jwks`] passes (the length limit, three parts, the header's
//! fields and types, no `crit`, a `typ` of JWT, the key's `alg`, a readable `salt`, then the
//! signature, then claims it can read). PS* and EdDSA keys stay with jwt-simple.
//! `core/tests/native_signatures.rs` runs vectors and crafted signatures through both.

use aws_lc_rs::signature::{
    EcdsaVerificationAlgorithm, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents,
};
use jwt_simple::prelude::{JWTClaims, NoCustomClaims};
use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Decoder};
use serde::Deserialize;

use crate::verify::MAX_CREDENTIAL_LEN;

/// A key parsed once for AWS-LC, and the `alg` its tokens name.
#[derive(Clone)]
pub struct NativeKey {
    alg: &'static str,
    key: ParsedPublicKey,
}

/// jwt-simple's JOSE header, field for field (its types decide what a header may hold).
#[derive(Deserialize)]
#[allow(dead_code)]
struct Header {
    alg: String,
    cty: Option<String>,
    kid: Option<String>,
    typ: Option<String>,
    crit: Option<Vec<String>>,
    x5c: Option<Vec<String>>,
    jku: Option<String>,
    jwk: Option<String>,
    x5u: Option<String>,
    x5t: Option<String>,
    #[serde(rename = "x5t#S256")]
    x5t_s256: Option<String>,
    salt: Option<String>,
}

fn decode(text: &str) -> Option<Vec<u8>> {
    Base64UrlSafeNoPadding::decode_to_vec(text, None).ok()
}

impl NativeKey {
    /// An RSA key from its modulus and exponent (big-endian, as jwt-simple loaded them).
    pub fn rsa(
        alg: &'static str,
        n: &[u8],
        e: &[u8],
        params: &'static RsaParameters,
    ) -> Option<NativeKey> {
        let key = RsaPublicKeyComponents { n, e }
            .to_parsed_public_key(params)
            .ok()?;
        Some(NativeKey { alg, key })
    }

    /// An EC key from its uncompressed point.
    pub fn ec(
        alg: &'static str,
        point: &[u8],
        curve: &'static EcdsaVerificationAlgorithm,
    ) -> Option<NativeKey> {
        let key = ParsedPublicKey::new(curve, point).ok()?;
        Some(NativeKey { alg, key })
    }

    /// Whether `token` carries this key's valid signature, read as jwt-simple reads it.
    pub fn verifies(&self, token: &str) -> bool {
        self.check(token).is_some()
    }

    fn check(&self, token: &str) -> Option<()> {
        if token.len() > MAX_CREDENTIAL_LEN {
            return None;
        }
        let mut parts = token.split('.');
        let (header_b64, claims_b64, signature_b64) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: Header = serde_json::from_slice(&decode(header_b64)?).ok()?;
        if header.crit.as_ref().is_some_and(|crit| !crit.is_empty()) {
            return None;
        }
        if let Some(typ) = &header.typ {
            let typ = typ.to_uppercase();
            if typ != "JWT" && !typ.ends_with("+JWT") {
                return None;
            }
        }
        if header.alg != self.alg {
            return None;
        }
        if let Some(salt) = &header.salt {
            decode(salt)?;
        }
        let signature = decode(signature_b64)?;
        let signed = token.get(..header_b64.len() + 1 + claims_b64.len())?;
        self.key.verify_sig(signed.as_bytes(), &signature).ok()?;
        serde_json::from_slice::<JWTClaims<NoCustomClaims>>(&decode(claims_b64)?).ok()?;
        Some(())
    }
}
