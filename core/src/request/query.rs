//! Query strings: finding parameters by their decoded name, decoding values, removing parameters.
//!
//! Pairs are separated by `&`; `+` is a literal plus (RFC 3986), not a space.
//!
//! Decoding and encoding whole values go through the `percent-encoding` crate; [`Decoded`] is
//! our own because it decodes a stream of bytes (and a stream of decoded bytes, for a name
//! encoded twice) without copying, where the crate reads only slices.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

/// One `name[=value]` pair as it appears in the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    /// The whole pair, undecoded.
    pub raw: &'a [u8],
    /// The name, undecoded.
    pub name: &'a [u8],
    /// The value, undecoded; empty when the pair has no `=`.
    pub value: &'a [u8],
}

/// The non-empty pairs of a query, in order.
pub fn params(query: &[u8]) -> impl Iterator<Item = Param<'_>> {
    query
        .split(|&b| b == b'&')
        .filter(|raw| !raw.is_empty())
        .map(|raw| match raw.iter().position(|&b| b == b'=') {
            Some(eq) => Param {
                raw,
                name: raw.get(..eq).unwrap_or_default(),
                value: raw.get(eq + 1..).unwrap_or_default(),
            },
            None => Param {
                raw,
                name: raw,
                value: &[],
            },
        })
}

/// The value of one hex digit.
pub(crate) fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Decodes `%XX` escapes once; `None` when an escape is malformed.
pub fn percent_decode(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut rest = bytes;
    while let Some(at) = rest.iter().position(|&b| b == b'%') {
        let digit = |k: usize| rest.get(at + k).copied().and_then(hex_value).is_some();
        if !(digit(1) && digit(2)) {
            return None;
        }
        rest = rest.get(at + 3..).unwrap_or_default();
    }
    let decoded: std::borrow::Cow<'_, [u8]> = percent_encoding::percent_decode(bytes).into();
    Some(decoded.into_owned())
}

/// Bytes with every well-formed `%XX` escape decoded once, as an iterator (no copy).
#[derive(Debug, Clone)]
pub struct Decoded<I> {
    inner: I,
    /// Bytes read ahead and not yet given out, in order.
    ahead: [u8; 2],
    len: usize,
}

impl<I: Iterator<Item = u8>> Decoded<I> {
    pub fn new(inner: I) -> Self {
        Decoded {
            inner,
            ahead: [0; 2],
            len: 0,
        }
    }

    fn take(&mut self) -> Option<u8> {
        if self.len == 0 {
            return self.inner.next();
        }
        let first = self.ahead.first().copied();
        self.ahead = [self.ahead.get(1).copied().unwrap_or(0), 0];
        self.len -= 1;
        first
    }
}

impl<I: Iterator<Item = u8>> Iterator for Decoded<I> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let b = self.take()?;
        if b != b'%' {
            return Some(b);
        }
        while self.len < 2 {
            let Some(next) = self.inner.next() else { break };
            if let Some(slot) = self.ahead.get_mut(self.len) {
                *slot = next;
            }
            self.len += 1;
        }
        let hex = |i: usize| self.ahead.get(i).copied().and_then(hex_value);
        match (self.len, hex(0), hex(1)) {
            (2, Some(hi), Some(lo)) => {
                self.len = 0;
                Some(hi << 4 | lo)
            }
            _ => Some(b'%'),
        }
    }
}

/// Whether a raw parameter name decodes to `expected`, without allocating.
pub fn name_is(raw: &[u8], expected: &str) -> bool {
    let mut expected = expected.bytes();
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        let (decoded, width) = if b == b'%' {
            match (
                raw.get(i + 1).copied().and_then(hex_value),
                raw.get(i + 2).copied().and_then(hex_value),
            ) {
                (Some(hi), Some(lo)) => (hi << 4 | lo, 3),
                _ => return false,
            }
        } else {
            (b, 1)
        };
        if expected.next() != Some(decoded) {
            return false;
        }
        i += width;
    }
    expected.next().is_none()
}

/// The query without the pairs whose decoded name `drop` selects; `None` when nothing is left.
pub fn without(query: &[u8], drop: impl Fn(&[u8]) -> bool) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(query.len());
    for param in params(query).filter(|p| !drop(p.name)) {
        if !out.is_empty() {
            out.push(b'&');
        }
        out.extend_from_slice(param.raw);
    }
    (!out.is_empty()).then_some(out)
}

/// `path` without the `;name=value` segment parameters whose decoded name `drop` selects;
/// `None` when it has none of them. Credentials are never read from path parameters, but a
/// client may still put one there, and it must not reach a log or the login page.
pub(crate) fn path_without_params(path: &[u8], drop: impl Fn(&[u8]) -> bool) -> Option<Vec<u8>> {
    if !path.contains(&b';') {
        return None;
    }
    let mut out = Vec::with_capacity(path.len());
    let mut removed = false;
    for (i, segment) in path.split(|&b| b == b'/').enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        let mut parts = segment.split(|&b| b == b';');
        out.extend_from_slice(parts.next().unwrap_or_default());
        for param in parts {
            let name = param.split(|&b| b == b'=').next().unwrap_or_default();
            if drop(name) {
                removed = true;
            } else {
                out.push(b';');
                out.extend_from_slice(param);
            }
        }
    }
    removed.then_some(out)
}

/// Everything but the unreserved characters of RFC 3986.
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes everything but unreserved characters (for a whole URL carried as one value).
pub fn encode_component(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    out.extend(percent_encoding::percent_encode(bytes, NOT_UNRESERVED));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoded_iterator_agrees_with_the_copying_decoder() {
        for input in [
            "", "%", "%4", "%41", "a%41b", "%%41", "%4%41", "%zz%2541", "100%", "%252F",
        ] {
            let streamed: Vec<u8> = Decoded::new(input.bytes()).collect();
            let reference: Vec<u8> = percent_encoding::percent_decode(input.as_bytes()).collect();
            assert_eq!(streamed, reference, "{input}");
        }
    }

    #[test]
    fn path_parameters_named_as_credentials_are_dropped() {
        let drop = |name: &[u8]| name_is(name, "access_token");
        let cleaned = |p: &str| {
            path_without_params(p.as_bytes(), drop).map(|v| String::from_utf8(v).unwrap())
        };
        assert_eq!(cleaned("/api/x"), None);
        assert_eq!(cleaned("/api/x;v=1"), None);
        assert_eq!(
            cleaned("/api/x;access_token=abc").as_deref(),
            Some("/api/x")
        );
        assert_eq!(
            cleaned("/a;access%5Ftoken=abc;v=1/b;access_token").as_deref(),
            Some("/a;v=1/b")
        );
    }

    #[test]
    fn splits_pairs() {
        let got: Vec<_> = params(b"a=1&&b&c=&=d&e=f=g").collect();
        let names: Vec<&[u8]> = got.iter().map(|p| p.name).collect();
        let values: Vec<&[u8]> = got.iter().map(|p| p.value).collect();
        assert_eq!(names, vec![&b"a"[..], b"b", b"c", b"", b"e"]);
        assert_eq!(values, vec![&b"1"[..], b"", b"", b"d", b"f=g"]);
    }

    #[test]
    fn decodes_once() {
        assert_eq!(percent_decode(b"%65yJ").unwrap(), b"eyJ");
        assert_eq!(percent_decode(b"%2565").unwrap(), b"%65");
        assert_eq!(percent_decode(b"a+b").unwrap(), b"a+b");
        assert_eq!(percent_decode(b"%"), None);
        assert_eq!(percent_decode(b"%4"), None);
        assert_eq!(percent_decode(b"%zz"), None);
    }

    #[test]
    fn names_compare_decoded() {
        assert!(name_is(b"access_token", "access_token"));
        assert!(name_is(b"access%5Ftoken", "access_token"));
        assert!(name_is(b"access%5ftoken", "access_token"));
        assert!(!name_is(b"Access_Token", "access_token"));
        assert!(!name_is(b"access_token2", "access_token"));
        assert!(!name_is(b"access_toke", "access_token"));
        assert!(!name_is(b"access%", "access_token"));
        assert!(!name_is(b"access%255Ftoken", "access_token"));
    }

    #[test]
    fn removes_selected_pairs() {
        let drop = |n: &[u8]| name_is(n, "access_token");
        assert_eq!(without(b"access_token=x&page=2", drop).unwrap(), b"page=2");
        assert_eq!(
            without(b"a=1&access%5Ftoken=x&b=2", drop).unwrap(),
            b"a=1&b=2"
        );
        assert_eq!(without(b"access_token=x", drop), None);
        assert_eq!(without(b"a=1&&b", drop).unwrap(), b"a=1&b");
    }

    #[test]
    fn encodes_components() {
        assert_eq!(
            encode_component(b"https://h/app?x=1&y=a b"),
            "https%3A%2F%2Fh%2Fapp%3Fx%3D1%26y%3Da%20b"
        );
        assert_eq!(encode_component(b"a-b_c.d~e"), "a-b_c.d~e");
    }
}
