//! Tokens in the configured token headers (`token_headers`): beside `Authorization: Bearer`,
//! read under the same rules (once, no comma, at most 8 KiB, `b64token`).

use std::borrow::Cow;

use super::{checked_bearer, Presented, Source, TokenHeader};
use crate::denial::{BadCredential, BadRequest, Denial};
use crate::request::{names, RequestView};

/// The one token header the request carries, as `(source index, value)`; a repeated one (or
/// one Envoy joined with `, `), or one in a spelling that is not read, is a 400, and two
/// sources are two methods.
pub(super) fn find<'a>(request: &RequestView<'a>) -> Result<Option<(usize, &'a [u8])>, Denial> {
    let mut found: Option<(usize, &'a [u8])> = None;
    for sent in &request.token_headers {
        let (Some(index), value) = (sent.source, sent.value) else {
            return Err(Denial::InvalidRequest(BadRequest::RepeatedTokenHeader));
        };
        if sent.repeated || value.contains(&b',') {
            return Err(Denial::InvalidRequest(BadRequest::RepeatedTokenHeader));
        }
        if found.replace((index, value)).is_some() {
            return Err(Denial::InvalidRequest(BadRequest::SeveralMethods));
        }
    }
    Ok(found)
}

/// The credential of token header `sources[index]` holding `value`: after the prefix (any
/// ASCII case, then any spaces), or the whole value without one. Without its prefix: a 401.
pub(super) fn credential<'a>(
    sources: &[TokenHeader],
    index: usize,
    value: &'a [u8],
) -> Result<Presented<'a>, Denial> {
    let missing = Denial::InvalidCredentials(BadCredential::MissingPrefix);
    let source = sources.get(index).ok_or(missing)?;
    let credential = match &source.prefix {
        Some(prefix) => after_prefix(value, prefix).ok_or(missing)?,
        None => value,
    };
    Ok(Presented::Bearer {
        value: checked_bearer(Cow::Borrowed(credential))?,
        source: Source::Header,
    })
}

/// The `Authorization` value after the prefix of an `authorization` token header, if one
/// matches.
pub(super) fn authorization_prefixed<'a>(
    sources: &[TokenHeader],
    value: &'a [u8],
) -> Option<&'a [u8]> {
    sources
        .iter()
        .filter(|s| s.name == names::AUTHORIZATION)
        .find_map(|s| after_prefix(value, s.prefix.as_deref()?))
}

/// `value` after `prefix` (compared in any ASCII case) and the spaces that follow it.
fn after_prefix<'a>(value: &'a [u8], prefix: &str) -> Option<&'a [u8]> {
    let head = value.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix.as_bytes()) {
        return None;
    }
    let rest = value.get(prefix.len()..)?;
    let spaces = rest.iter().take_while(|&&b| b == b' ').count();
    rest.get(spaces..)
}
