//! A bearer credential's syntax: `Authorization: Bearer`, and the RFC 6750 `b64token` every
//! token or key is held to.

use std::borrow::Cow;

use super::{Presented, Source};
use crate::denial::{BadCredential, Denial};
use crate::verify::MAX_CREDENTIAL_LEN;

/// Parses `Bearer <credential>` (scheme in any case, then one or more spaces).
pub(super) fn bearer_from_header(value: &[u8]) -> Result<Presented<'_>, Denial> {
    let (scheme, rest) = match value.iter().position(|&b| b == b' ') {
        Some(sp) => (
            value.get(..sp).unwrap_or_default(),
            value.get(sp..).unwrap_or_default(),
        ),
        None => (value, &[][..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(Denial::InvalidCredentials(BadCredential::NotBearer));
    }
    let spaces = rest.iter().take_while(|&&b| b == b' ').count();
    let credential = rest.get(spaces..).unwrap_or_default();
    Ok(Presented::Bearer {
        value: checked_bearer(Cow::Borrowed(credential))?,
        source: Source::Header,
    })
}

/// Whether `value` is a bearer credential as the decision reads one (not empty, not too long,
/// RFC 6750 `b64token`).
pub fn is_bearer_credential(value: &[u8]) -> bool {
    checked_bearer(Cow::Borrowed(value)).is_ok()
}

/// Checks length, then the RFC 6750 `b64token` grammar; the result is ASCII.
pub(super) fn checked_bearer(value: Cow<'_, [u8]>) -> Result<Cow<'_, str>, Denial> {
    let invalid = |reason| Err(Denial::InvalidCredentials(reason));
    if value.is_empty() {
        return invalid(BadCredential::Empty);
    }
    if value.len() > MAX_CREDENTIAL_LEN {
        return invalid(BadCredential::TooLong);
    }
    if !is_b64token(&value) {
        return invalid(BadCredential::BadCharacters);
    }
    Ok(match value {
        Cow::Borrowed(bytes) => Cow::Borrowed(std::str::from_utf8(bytes).unwrap_or_default()),
        Cow::Owned(bytes) => Cow::Owned(String::from_utf8(bytes).unwrap_or_default()),
    })
}

/// The characters of a `b64token` body, by byte value.
#[allow(clippy::indexing_slicing)] // Evaluated at compile time: out of bounds fails the build.
const B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] =
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    table
};

/// `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="` (RFC 6750 section 2.1).
pub(crate) fn is_b64token(value: &[u8]) -> bool {
    let padding = value.iter().rev().take_while(|&&b| b == b'=').count();
    let body = value.get(..value.len() - padding).unwrap_or_default();
    // Folded without an early exit (the table's index is a byte: never out of bounds), so
    // that the loop runs without a branch per byte.
    #[allow(clippy::indexing_slicing)]
    let all = body
        .iter()
        .fold(true, |all, &b| all & B64TOKEN[usize::from(b)]);
    !body.is_empty() && all
}
