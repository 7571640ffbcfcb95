//! Strict base64url (RFC 4648 section 5) without padding, as JWS uses it.
//!
//! Padding, whitespace, the standard alphabet's `+`/`/` and non-zero unused trailing bits are
//! all refused, so a byte string has exactly one accepted encoding. Ours rather than the
//! decoder jwt-simple brings (ct_codecs) because it appends to one buffer reused for a token's
//! header and payload; a test checks that both accept exactly the same strings.

/// Each byte's 6-bit value, or 0xFF for a byte outside the alphabet. (Built at compile time:
/// an index out of range would fail the build, never a request.)
#[allow(clippy::indexing_slicing)]
const VALUES: [u8; 256] = {
    let mut table = [0xFF; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut i = 0;
    while i < alphabet.len() {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// The 6-bit value of `c` (0xFF outside the alphabet: its high bit marks it).
fn value(c: u8) -> u32 {
    u32::from(VALUES.get(usize::from(c)).copied().unwrap_or(0xFF))
}

/// Appends the bytes `input` encodes to `out`; `None` when `input` is not strict base64url.
/// Four characters at a time, through a table, into room made once: a session cookie or a
/// token is decoded in a few instructions a byte.
pub(crate) fn decode_into(input: &[u8], out: &mut Vec<u8>) -> Option<()> {
    if input.len() % 4 == 1 {
        return None;
    }
    let start = out.len();
    let whole = input.len() / 4;
    out.resize(start + whole * 3, 0);
    let mut quads = input.chunks_exact(4);
    let written = out.get_mut(start..).unwrap_or_default().chunks_exact_mut(3);
    for (quad, bytes) in quads.by_ref().zip(written) {
        let &[a, b, c, d] = quad else { return None };
        let (a, b, c, d) = (value(a), value(b), value(c), value(d));
        if (a | b | c | d) & 0x80 != 0 {
            return None;
        }
        let n = (a << 18) | (b << 12) | (c << 6) | d;
        bytes.copy_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }
    match *quads.remainder() {
        [] => Some(()),
        // The unused trailing bits must be zero: a byte string has one encoding.
        [a, b] => {
            let (a, b) = (value(a), value(b));
            ((a | b) & 0x80 == 0 && b & 0x0F == 0).then(|| out.push(((a << 2) | (b >> 4)) as u8))
        }
        [a, b, c] => {
            let (a, b, c) = (value(a), value(b), value(c));
            let n = (a << 18) | (b << 12) | (c << 6);
            ((a | b | c) & 0x80 == 0 && c & 0x03 == 0)
                .then(|| out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8]))
        }
        _ => None,
    }
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
