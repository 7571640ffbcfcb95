//! Random values from the host (WASI `random_get` in the `.wasm`, the kernel natively), and
//! the base64url text they travel as.

use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Encoder};

/// `N` random bytes; `None` when the host gives none.
pub fn bytes<const N: usize>() -> Option<[u8; N]> {
    let mut out = [0u8; N];
    getrandom::getrandom(&mut out).ok()?;
    Some(out)
}

/// 32 random bytes as base64url (43 characters): a state, a nonce or a PKCE verifier.
pub fn token() -> Option<String> {
    bytes::<32>().map(|b| encode(&b))
}

/// `bytes` in base64url without padding.
pub fn encode(bytes: &[u8]) -> String {
    Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap_or_default()
}

/// The PKCE `S256` challenge of `verifier` (RFC 7636 section 4.2).
pub fn challenge(verifier: &str) -> String {
    encode(&hmac_sha256::Hash::hash(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7636_appendix_b() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn tokens_are_fresh() {
        let (a, b) = (token().unwrap(), token().unwrap());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }
}
