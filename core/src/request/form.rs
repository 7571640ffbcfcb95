//! Whether a request's body is a form that a server behind Envoy would read fields from, and
//! how, judged from its headers as servers judge them.
//!
//! A form body (`application/x-www-form-urlencoded`, werkzeug's `application/x-url-encoded`,
//! any `multipart/*`, which Python's `cgi` parses) can carry `access_token` (RFC 6750
//! section 2.2), which the filter does not read. A body without `Content-Type` is read as
//! urlencoded too: Rack and Python's `cgi` do so for a `POST`. What cannot be read with
//! certainty is refused rather than guessed at: several `Content-Type` headers (or a list in
//! one), a form that is compressed (Express's body-parser inflates gzip, deflate and br), a
//! multipart type without a usable boundary, a charset that is not ASCII-compatible
//! (UTF-16, UTF-32, UTF-7, EBCDIC: field names would not be ASCII bytes), parameters that
//! servers read differently (a starred one, a second one naming a boundary, a `,`), a type
//! that is no clean `type/subtype` but mentions a form.

/// How a form body is laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormKind {
    /// `name=value` pairs split on `&` (and `;`).
    Urlencoded,
    /// Parts between delimiters of this boundary (as sent, unquoted).
    Multipart { boundary: Vec<u8> },
}

/// Why a form body cannot be read with certainty, or names a credential (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormError {
    /// A field of the body is named like a credential.
    CredentialField,
    /// More than one `Content-Type` header, or a list of types in one.
    SeveralContentTypes,
    /// A `Content-Encoding` other than `identity` on a form body.
    Encoded,
    /// A multipart type without a boundary of 1 to 70 characters that RFC 2046 allows.
    NoBoundary,
    /// A charset other than UTF-8, ASCII or an ISO-8859 / Windows code page.
    Charset,
    /// A part's header longer than [`MAX_PART_HEADER`] bytes: busboy and others refuse them,
    /// and reading further would need unbounded memory.
    PartHeaderTooLong,
    /// A CR or LF that is not part of a CRLF in a part's header block: Django splits header
    /// lines on CRLF only, others on each.
    BareLineEnd,
    /// An extended (`name*`) field name in a charset other than UTF-8, US-ASCII or
    /// ISO-8859-1, or holding a control byte once decoded.
    NameCharset,
    /// A `Content-Type` that is no clean `type/subtype` but mentions a form.
    UnclearContentType,
    /// Form `Content-Type` parameters that servers read differently: an RFC 2231 starred
    /// parameter, a second parameter naming a boundary, a `,` outside quotes.
    AmbiguousParameters,
}

/// The longest multipart part header that is read (busboy's limit for a part's headers).
pub const MAX_PART_HEADER: usize = 16 * 1024;

/// The longest boundary RFC 2046 allows.
const MAX_BOUNDARY: usize = 70;

/// What kind of form the body is, if any. `has_body` is false when the headers end the
/// stream or announce an empty body. `content_types` and `content_encodings` are every value
/// of those headers, in order.
pub fn classify(
    has_body: bool,
    content_types: &[&[u8]],
    content_encodings: &[&[u8]],
) -> Result<Option<FormKind>, FormError> {
    if !has_body {
        return Ok(None);
    }
    let kind = match content_types {
        [] => FormKind::Urlencoded,
        [one] => match kind_of(one)? {
            Some(kind) => kind,
            None => return Ok(None),
        },
        _ => return Err(FormError::SeveralContentTypes),
    };
    let encoded = content_encodings.iter().any(|value| {
        value.split(|&b| b == b',').any(|coding| {
            let coding = coding.trim_ascii();
            !coding.is_empty() && !coding.eq_ignore_ascii_case(b"identity")
        })
    });
    if encoded {
        return Err(FormError::Encoded);
    }
    Ok(Some(kind))
}

/// Whether a body of these content types may be JSON (`application/json`, `*/*+json`, any
/// type that says `json`): Laravel reads `_method` from a JSON body.
pub fn may_be_json(content_types: &[&[u8]]) -> bool {
    content_types
        .iter()
        .any(|value| value.windows(4).any(|w| w.eq_ignore_ascii_case(b"json")))
}

/// The form kind of one `Content-Type` value; `None` when it is no form.
///
/// A media type that is no clean `type/subtype` token (PHP cuts one at a space and reads
/// `application/x-www-form-urlencoded foo` as a form) is no form, unless it mentions one
/// (`form`, `urlencoded`, `multipart`, in any case): then it is refused.
fn kind_of(value: &[u8]) -> Result<Option<FormKind>, FormError> {
    let mut pieces = split_params(value);
    let essence = pieces.next().unwrap_or_default().trim_ascii();
    if essence.contains(&b',') {
        return Err(FormError::SeveralContentTypes);
    }
    if !essence.is_empty() && !clean_media_type(essence) {
        let lower = value.to_ascii_lowercase();
        let mentions = |word: &[u8]| lower.windows(word.len()).any(|w| w == word);
        if mentions(b"form") || mentions(b"urlencoded") || mentions(b"multipart") {
            return Err(FormError::UnclearContentType);
        }
        return Ok(None);
    }
    let essence = essence.to_ascii_lowercase();
    let multipart = essence.starts_with(b"multipart/");
    let urlencoded = essence.is_empty()
        || essence == b"application/x-www-form-urlencoded"
        || essence == b"application/x-url-encoded";
    if !multipart && !urlencoded {
        return Ok(None);
    }
    if ambiguous(value) {
        return Err(FormError::AmbiguousParameters);
    }
    let mut boundary = None;
    for piece in pieces {
        let Some((name, param)) = param(piece) else {
            if multipart && mentions_boundary(piece) {
                return Err(FormError::AmbiguousParameters);
            }
            continue;
        };
        if name.eq_ignore_ascii_case(b"charset") && !ascii_compatible(&param) {
            return Err(FormError::Charset);
        }
        if name.eq_ignore_ascii_case(b"boundary") {
            if boundary.is_some() {
                return Err(FormError::NoBoundary);
            }
            // PHP takes the first `boundary` as spelled, else in any case.
            if name != b"boundary" && piece.windows(8).any(|w| w == b"boundary") {
                return Err(FormError::AmbiguousParameters);
            }
            boundary = Some(param);
        } else if multipart && mentions_boundary(piece) {
            return Err(FormError::AmbiguousParameters);
        }
    }
    if !multipart {
        return Ok(Some(FormKind::Urlencoded));
    }
    match boundary {
        Some(boundary) if usable_boundary(&boundary) => Ok(Some(FormKind::Multipart { boundary })),
        _ => Err(FormError::NoBoundary),
    }
}

/// RFC 9110 `type/subtype`, both tokens.
fn clean_media_type(essence: &[u8]) -> bool {
    let token = |t: &[u8]| {
        !t.is_empty()
            && t.iter()
                .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    let mut halves = essence.splitn(2, |&b| b == b'/');
    matches!((halves.next(), halves.next()), (Some(t), Some(s)) if token(t) && token(s))
}

/// Parameters that servers read differently: an RFC 2231 starred one (`boundary*=`,
/// `charset*=`, which Django and Werkzeug decode), found even inside quotes, or a `,`
/// outside quotes (Tomcat splits parameters on it, the last boundary winning).
fn ambiguous(value: &[u8]) -> bool {
    let starred = value.split(|&b| b == b';').any(|piece| {
        piece
            .iter()
            .position(|&b| b == b'=')
            .and_then(|eq| piece.get(..eq))
            .is_some_and(|name| name.contains(&b'*'))
    });
    starred || split_params(value).any(unquoted_comma)
}

/// Whether a `,` stands outside a quoted string.
fn unquoted_comma(piece: &[u8]) -> bool {
    let (mut quoted, mut escaped) = (false, false);
    piece.iter().any(|&b| {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b',' if !quoted => return true,
            _ => {}
        }
        false
    })
}

/// Whether a piece holds `boundary` in any case (PHP takes the first one it finds).
fn mentions_boundary(piece: &[u8]) -> bool {
    piece
        .windows(8)
        .any(|w| w.eq_ignore_ascii_case(b"boundary"))
}

/// The `;`-separated pieces of a header value, a `;` inside a quoted string kept.
pub(crate) fn split_params(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(value);
    std::iter::from_fn(move || {
        let text = rest?;
        let (mut quoted, mut escaped) = (false, false);
        for (i, &b) in text.iter().enumerate() {
            match b {
                _ if escaped => escaped = false,
                b'\\' if quoted => escaped = true,
                b'"' => quoted = !quoted,
                b';' if !quoted => {
                    rest = text.get(i + 1..);
                    return text.get(..i);
                }
                _ => {}
            }
        }
        rest = None;
        Some(text)
    })
}

/// A `name=value` parameter, the name trimmed, the value trimmed and unquoted.
pub(crate) fn param(piece: &[u8]) -> Option<(&[u8], Vec<u8>)> {
    let eq = piece.iter().position(|&b| b == b'=')?;
    let name = piece.get(..eq)?.trim_ascii();
    let value = piece.get(eq + 1..)?.trim_ascii();
    Some((name, unquote(value)))
}

/// A quoted string's content with its backslash escapes read; anything else as it is.
pub(crate) fn unquote(value: &[u8]) -> Vec<u8> {
    let Some(inner) = value.strip_prefix(b"\"") else {
        return value.to_vec();
    };
    let inner = inner.strip_suffix(b"\"").unwrap_or(inner);
    let mut out = Vec::with_capacity(inner.len());
    let mut escaped = false;
    for &b in inner {
        if !escaped && b == b'\\' {
            escaped = true;
            continue;
        }
        escaped = false;
        out.push(b);
    }
    out
}

/// RFC 2046: 1 to 70 of `0-9A-Za-z'()+_,-./:=?` and space, not ending in a space.
fn usable_boundary(boundary: &[u8]) -> bool {
    (1..=MAX_BOUNDARY).contains(&boundary.len())
        && boundary.last() != Some(&b' ')
        && boundary
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b))
}

/// Charsets in which every ASCII byte means its ASCII character.
fn ascii_compatible(charset: &[u8]) -> bool {
    let charset = charset.to_ascii_lowercase();
    let numbered = |prefix: &[u8]| {
        charset
            .strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.len() <= 2 && n.iter().all(u8::is_ascii_digit))
    };
    matches!(
        &charset[..],
        b"utf-8" | b"utf8" | b"us-ascii" | b"ascii" | b"latin1" | b"latin-1"
    ) || numbered(b"iso-8859-")
        || numbered(b"windows-125")
        || numbered(b"cp125")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(content_type: &str) -> Result<Option<FormKind>, FormError> {
        classify(true, &[content_type.as_bytes()], &[])
    }

    #[test]
    fn content_types_as_servers_read_them() {
        let url = Ok(Some(FormKind::Urlencoded));
        assert_eq!(of("application/x-www-form-urlencoded"), url);
        assert_eq!(
            of(" Application/X-WWW-Form-URLEncoded ; charset=UTF-8"),
            url
        );
        assert_eq!(of("application/x-url-encoded"), url);
        assert_eq!(of(""), url);
        assert_eq!(classify(true, &[], &[]), url);
        assert_eq!(classify(false, &[], &[]), Ok(None));
        let multipart = |b: &str| {
            Ok(Some(FormKind::Multipart {
                boundary: b.as_bytes().to_vec(),
            }))
        };
        assert_eq!(of("multipart/form-data; boundary=xyz"), multipart("xyz"));
        assert_eq!(
            of("Multipart/Form-Data;BOUNDARY=\"a:b c\""),
            multipart("a:b c")
        );
        assert_eq!(of("multipart/mixed; boundary=q"), multipart("q"));
        for other in [
            "application/json",
            "text/plain",
            "application/x-www-form-urlencodedx",
        ] {
            assert_eq!(of(other), Ok(None), "{other}");
        }
    }

    #[test]
    fn what_cannot_be_read_with_certainty_is_refused() {
        let cases: &[(&str, FormError)] = &[
            ("multipart/form-data", FormError::NoBoundary),
            ("multipart/form-data; boundary=", FormError::NoBoundary),
            (
                "multipart/form-data; boundary=\"a\r\nb\"",
                FormError::NoBoundary,
            ),
            (
                "multipart/form-data; boundary=a; boundary=b",
                FormError::NoBoundary,
            ),
            (
                "application/json, application/x-www-form-urlencoded",
                FormError::SeveralContentTypes,
            ),
            (
                "application/x-www-form-urlencoded; charset=utf-16",
                FormError::Charset,
            ),
            (
                "multipart/form-data; boundary=a; charset=UTF-7",
                FormError::Charset,
            ),
            (
                "application/x-www-form-urlencoded; charset=ibm037",
                FormError::Charset,
            ),
        ];
        for (content_type, error) in cases {
            assert_eq!(of(content_type), Err(*error), "{content_type}");
        }
        let long = format!("multipart/form-data; boundary={}", "b".repeat(71));
        assert_eq!(of(&long), Err(FormError::NoBoundary));
        let two: [&[u8]; 2] = [b"text/plain", b"application/x-www-form-urlencoded"];
        assert_eq!(
            classify(true, &two, &[]),
            Err(FormError::SeveralContentTypes)
        );
        let form: [&[u8]; 1] = [b"application/x-www-form-urlencoded"];
        assert_eq!(classify(true, &form, &[b"gzip"]), Err(FormError::Encoded));
        assert_eq!(
            classify(true, &form, &[b"identity, br"]),
            Err(FormError::Encoded)
        );
        assert_eq!(
            classify(true, &form, &[b"identity"]),
            Ok(Some(FormKind::Urlencoded))
        );
        let json: [&[u8]; 1] = [b"application/json"];
        assert_eq!(classify(true, &json, &[b"gzip"]), Ok(None));
    }

    #[test]
    fn parameters_servers_read_differently_are_refused() {
        for content_type in [
            "multipart/form-data; boundary=BBB; boundary*=utf-8''AAA",
            "multipart/form-data; xboundary=AAA; boundary=BBB",
            "multipart/form-data; boundary=BBB; x=1, boundary=AAA",
            "multipart/form-data; boundary=XX; charset*=utf-16le",
            "multipart/form-data; x=\"boundary=AAA\"; boundary=BBB",
            "multipart/form-data; BOUNDARY=BBB; x=boundary",
            "application/x-www-form-urlencoded; x=\"a;charset*=utf-16le\"",
            "application/x-www-form-urlencoded; a=1, b=2",
        ] {
            assert_eq!(
                of(content_type),
                Err(FormError::AmbiguousParameters),
                "{content_type}"
            );
        }
        let webkit = "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxk";
        assert!(matches!(of(webkit), Ok(Some(FormKind::Multipart { .. }))));
        assert!(matches!(
            of("multipart/form-data; boundary=\"a,b\""),
            Ok(Some(FormKind::Multipart { .. }))
        ));
    }

    #[test]
    fn a_type_that_is_no_clean_token_but_names_a_form_is_refused() {
        for content_type in [
            "application/x-www-form-urlencoded foo",
            "application/x-www-form-urlencoded\tfoo",
            "multipart/form-data x; boundary=XX",
            "application/json foo urlencoded",
            "Multipart",
            "form",
        ] {
            assert_eq!(
                of(content_type),
                Err(FormError::UnclearContentType),
                "{content_type}"
            );
        }
        for other in ["text/plain foo", "application/json ", "text/x-form"] {
            assert_eq!(of(other), Ok(None), "{other}");
        }
    }
}
