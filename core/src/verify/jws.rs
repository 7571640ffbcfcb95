//! The parts of a compact JWS and the JSON inside them, read the way jwt-simple reads them:
//! the same fields with the same types, duplicates refused, unknown fields ignored. Nothing
//! here checks a signature or a time; `token` does. Ours so that the header is read,
//! borrowing from the token, before any signature is checked; the token tests hold every
//! vector of tests/data/jwt-vectors.tsv to what jwt-simple decides.

use std::borrow::Cow;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::verify::base64url;

/// `header.payload.signature`, borrowed from the token.
#[derive(Debug, Clone, Copy)]
pub struct Compact<'t> {
    pub header: &'t str,
    pub payload: &'t str,
    pub signature: &'t str,
    /// `header.payload`: what the signature covers.
    pub signing_input: &'t str,
}

/// Splits a compact JWS into exactly three parts.
pub fn split(token: &str) -> Option<Compact<'_>> {
    let mut parts = token.splitn(4, '.');
    let header = parts.next()?;
    let payload = parts.next()?;
    let signature = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let signing_input = token.get(..header.len() + 1 + payload.len())?;
    Some(Compact {
        header,
        payload,
        signature,
        signing_input,
    })
}

/// `Some` whenever the field is there, whatever its value.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<de::IgnoredAny>, D::Error> {
    de::IgnoredAny::deserialize(deserializer).map(Some)
}

/// The JOSE header fields jwt-simple knows, with its types.
#[derive(Debug, Deserialize)]
pub struct Header<'a> {
    #[serde(borrow)]
    pub alg: Cow<'a, str>,
    #[serde(default, borrow)]
    pub kid: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub typ: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub cty: Option<Cow<'a, str>>,
    /// Present in any form (even `null`): the filter implements no critical parameter.
    #[serde(default, deserialize_with = "present")]
    pub crit: Option<de::IgnoredAny>,
    #[serde(default, borrow)]
    pub x5c: Option<Vec<Cow<'a, str>>>,
    #[serde(default, borrow)]
    pub jku: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub jwk: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub x5u: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub x5t: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "x5t#S256")]
    pub x5t_s256: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub salt: Option<Cow<'a, str>>,
}

impl Header<'_> {
    /// `typ`, when present, is `JWT` or `…+JWT`, in any case (as jwt-simple requires).
    pub(crate) fn is_jwt(&self) -> bool {
        self.typ.as_deref().is_none_or(|t| {
            let upper = t.to_ascii_uppercase();
            upper == "JWT" || upper.ends_with("+JWT")
        })
    }
}

/// The claims the filter reads, and the registered ones jwt-simple type-checks.
#[derive(Debug, Deserialize)]
pub struct Claims<'a> {
    #[serde(default, deserialize_with = "numeric_date")]
    pub iat: Option<u64>,
    #[serde(default, deserialize_with = "numeric_date")]
    pub exp: Option<u64>,
    #[serde(default, deserialize_with = "numeric_date")]
    pub nbf: Option<u64>,
    #[serde(default, borrow)]
    pub iss: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub sub: Option<Cow<'a, str>>,
    #[serde(default)]
    pub aud: Option<Audience>,
    #[serde(default, borrow)]
    pub jti: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub nonce: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub token_type: Option<Cow<'a, str>>,
}

/// `aud`: one string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

/// The latest time jwt-simple can represent (its clock counts seconds in 32 bits).
const MAX_SECONDS: u64 = u32::MAX as u64;

/// A NumericDate: a non-negative integer, or a number truncated towards zero; `null`,
/// strings and booleans are refused. Saturates where jwt-simple does.
fn numeric_date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    struct NumericDate;
    impl Visitor<'_> for NumericDate {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a NumericDate")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v.min(MAX_SECONDS))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v)
                .map(|v| v.min(MAX_SECONDS))
                .map_err(|_| E::custom("NumericDate must not be negative"))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
            // `as` saturates and maps NaN to 0, as jwt-simple's cast does.
            Ok((v as u64).min(MAX_SECONDS))
        }
    }
    deserializer.deserialize_any(NumericDate).map(Some)
}

/// Decodes a segment that must hold a JSON object and parses it as `T`.
fn parse_object<'b, T: Deserialize<'b>>(segment: &str, buffer: &'b mut Vec<u8>) -> Option<T> {
    buffer.clear();
    base64url::decode_into(segment.as_bytes(), buffer)?;
    // Structs also deserialize from JSON arrays; a JOSE header or claims set is an object.
    if buffer.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    if nesting_depth(buffer) > MAX_DEPTH {
        return None;
    }
    serde_json::from_slice(buffer).ok()
}

/// The deepest nesting accepted in a header or payload (fields the filter does not read are
/// skipped without a depth limit, so it is checked here).
pub const MAX_DEPTH: usize = 64;

/// How deeply `[` and `{` nest in a JSON text, strings skipped.
fn nesting_depth(json: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Decodes and parses the header; `None` when it is not base64url JSON of the right shape.
pub fn parse_header<'b>(segment: &str, buffer: &'b mut Vec<u8>) -> Option<Header<'b>> {
    parse_object(segment, buffer)
}

/// Decodes and parses the payload; `None` when it is not base64url JSON of the right shape.
pub fn parse_claims<'b>(segment: &str, buffer: &'b mut Vec<u8>) -> Option<Claims<'b>> {
    parse_object(segment, buffer)
}

/// What a signature must cover and the signature's bytes, when `token` is a compact JWS
/// whose header names exactly `alg` and whose header and payload read as jwt-simple's
/// `verify_token` requires, or more strictly (`crit` in any form, a `salt`, a nesting deeper
/// than [`MAX_DEPTH`] refuse it): what it checks besides the signature and the times.
pub fn signed<'t>(token: &'t str, alg: &str) -> Option<(&'t str, Vec<u8>)> {
    if token.len() > crate::verify::MAX_CREDENTIAL_LEN {
        return None;
    }
    let parts = split(token)?;
    let mut buffer = Vec::new();
    let header = parse_header(parts.header, &mut buffer)?;
    if header.alg != alg || header.crit.is_some() || header.salt.is_some() || !header.is_jwt() {
        return None;
    }
    parse_claims(parts.payload, &mut buffer)?;
    let mut signature = Vec::with_capacity(parts.signature.len() / 4 * 3 + 2);
    base64url::decode_into(parts.signature.as_bytes(), &mut signature)?;
    Some((parts.signing_input, signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Encoder};

    /// Parses `json` as a payload segment would be.
    fn claims(json: &str) -> Option<Claims<'static>> {
        let segment = Base64UrlSafeNoPadding::encode_to_string(json.as_bytes()).unwrap();
        let buffer: &'static mut Vec<u8> = Box::leak(Box::default());
        parse_claims(&segment, buffer)
    }

    #[test]
    fn depth_is_limited() {
        let nested = |n: usize| format!(r#"{{"x":{}{}}}"#, "[".repeat(n), "]".repeat(n));
        assert!(claims(&nested(MAX_DEPTH - 1)).is_some());
        assert!(claims(&nested(MAX_DEPTH)).is_none());
        assert!(claims(&nested(200)).is_none());
        assert!(claims(
            r#"{"x":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"["}"#
        )
        .is_some());
        assert_eq!(nesting_depth(br#"{"a":"\"{["}"#), 1);
    }

    #[test]
    fn splits_exactly_three_parts() {
        let c = split("a.b.c").unwrap();
        assert_eq!(
            (c.header, c.payload, c.signature, c.signing_input),
            ("a", "b", "c", "a.b")
        );
        assert!(split("a.b.").is_some());
        for bad in ["", "a", "a.b", "a.b.c.", "a.b.c.d", "a.b.c.d.e"] {
            assert!(split(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn numeric_dates() {
        let exp = |json: &str| claims(json).map(|c| c.exp);
        assert_eq!(exp(r#"{"exp":4102444800}"#), Some(Some(4_102_444_800)));
        assert_eq!(exp(r#"{"exp":1700000000}"#), Some(Some(1_700_000_000)));
        assert_eq!(exp(r#"{"exp":1700000000.9}"#), Some(Some(1_700_000_000)));
        assert_eq!(exp(r#"{"exp":-1.0}"#), Some(Some(0)));
        assert_eq!(exp(r#"{"exp":1e10}"#), Some(Some(MAX_SECONDS)));
        assert_eq!(
            exp(r#"{"exp":18446744073709551616}"#),
            Some(Some(MAX_SECONDS))
        );
        assert_eq!(exp(r#"{}"#), Some(None));
        for bad in [
            r#"{"exp":-1}"#,
            r#"{"exp":"1700000000"}"#,
            r#"{"exp":null}"#,
            r#"{"exp":true}"#,
            r#"{"exp":1e400}"#,
            r#"{"exp":1,"exp":2}"#,
        ] {
            assert!(claims(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn duplicates_and_types_are_refused() {
        for bad in [
            r#"{"sub":"a","sub":"b"}"#,
            r#"{"token_type":"refresh","token_type":"access"}"#,
            r#"{"sub":123}"#,
            r#"{"token_type":1}"#,
            r#"{"aud":5}"#,
            r#"[]"#,
            r#"null"#,
        ] {
            assert!(claims(bad).is_none(), "{bad}");
        }
        assert!(claims(r#"{"aud":["a","b"],"x":{"y":[1,2]}}"#).is_some());
        assert!(claims(r#"{"tok\u0065n_type":"access"}"#)
            .is_some_and(|c| c.token_type.as_deref() == Some("access")));
    }
}
