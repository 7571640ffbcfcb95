//! Strict base64url (RFC 4648 section 5) without padding, as JWS uses it.
//!
//! Padding, whitespace, the standard alphabet's `+`/`/` and non-zero unused trailing bits are
//! all refused, so a byte string has exactly one accepted encoding. Ours rather than the
//! decoder jwt-simple brings (ct_codecs) because it appends to one buffer reused for a token's
//! header and payload; a test checks that both accept exactly the same strings.

fn value(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Appends the bytes `input` encodes to `out`; `None` when `input` is not strict base64url.
pub(crate) fn decode_into(input: &[u8], out: &mut Vec<u8>) -> Option<()> {
    if input.len() % 4 == 1 {
        return None;
    }
    out.reserve(input.len() / 4 * 3 + 2);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &c in input {
        acc = (acc << 6) | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from(acc >> bits).ok()?);
            acc &= (1 << bits) - 1;
        }
    }
    (acc == 0).then_some(())
}

/// The bytes `input` encodes, or `None`.
pub fn decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    decode_into(input, &mut out).map(|()| out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Decoder, Encoder};

    #[test]
    fn round_trips_every_length() {
        let data: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
        for len in 0..200 {
            let encoded = Base64UrlSafeNoPadding::encode_to_string(&data[..len]).unwrap();
            assert_eq!(
                decode(encoded.as_bytes()).as_deref(),
                Some(&data[..len]),
                "{len}"
            );
        }
    }

    #[test]
    fn refuses_what_is_not_strict() {
        for bad in [
            "A",
            "AB=",
            "AB==",
            "A B",
            "AB\n",
            "+/",
            "ab/c",
            "AB.C",
            "RGLTUiXxHeUJFJkcBIqJ9l6ewE9lbRTb9Tqlh4pmGPp",
            "QQ=",
            "QR",
        ] {
            assert_eq!(decode(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(decode(b"").as_deref(), Some(&[][..]));
        assert_eq!(decode(b"QQ").as_deref(), Some(&b"A"[..]));
    }

    #[test]
    fn agrees_with_ct_codecs() {
        // The constant-time decoder jwt-simple uses: the same strings accepted, the same bytes.
        let samples = [
            "",
            "QQ",
            "QUI",
            "QUJD",
            "QR",
            "QUJDRA",
            "_-_-",
            "-_",
            "A_",
            "AAAA",
            "AAA",
            "AA",
            "eyJhbGciOiJIUzI1NiJ9",
            "RGLTUiXxHeUJFJkcBIqJ9l6ewE9lbRTb9Tqlh4pmGPo",
        ];
        for s in samples {
            let theirs = Base64UrlSafeNoPadding::decode_to_vec(s, None).ok();
            assert_eq!(decode(s.as_bytes()), theirs, "{s}");
        }
    }
}
