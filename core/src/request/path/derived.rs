//! The other paths a server may see in a path: decoded once more, after a URL parser's
//! authority, without a first segment that vanishes, without segments' trailing dots and
//! spaces. Each is shorter than the path it comes from.

use super::escape_at;
use crate::request::query::{hex_value, Decoded};

/// What a server sees after another decoded `path` once: every escape of a visible ASCII
/// character decoded (a `%25` stays encoded unless an escape follows it), cut at a decoded
/// `?` or `#`. `None` when that changes nothing an escape-aware reading has not seen.
pub(super) fn decode_once(path: &[u8]) -> Option<Vec<u8>> {
    let mut decoded: Vec<(u8, bool)> = Vec::with_capacity(path.len());
    let mut i = 0;
    while let Some(&b) = path.get(i) {
        match (b, escape_at(path, i)) {
            (b'%', Ok(v)) if v.is_ascii_graphic() => {
                decoded.push((v, true));
                i += 3;
            }
            _ => {
                decoded.push((b, false));
                i += 1;
            }
        }
    }
    let mut out = Vec::with_capacity(decoded.len());
    let mut revealing = false;
    for (at, &(b, was_escape)) in decoded.iter().enumerate() {
        match (b, was_escape) {
            (b'?' | b'#', true) => {
                revealing = true;
                break;
            }
            (b'%', true) => {
                let hex = |k: usize| decoded.get(k).and_then(|d| hex_value(d.0)).is_some();
                if hex(at + 1) && hex(at + 2) {
                    revealing = true;
                    out.push(b'%');
                } else {
                    out.extend_from_slice(b"%25");
                }
            }
            _ => out.push(b),
        }
    }
    if out.is_empty() {
        out.push(b'/');
    }
    // A decoded separator that makes the path start with two is read as an authority.
    let separator = |b: Option<&u8>| matches!(b, Some(b'/' | b'\\'));
    revealing |= separator(out.first()) && separator(out.get(1));
    revealing.then_some(out)
}

/// The rest of a path that a URL parser reads as `//authority/rest` (two or more separators,
/// `/` or `\\`, at the start: the WHATWG parser skips them all before the host), from the
/// separator after the authority; `/` when there is none.
pub(super) fn after_authority(path: &[u8]) -> Option<Vec<u8>> {
    let is_separator = |b: &u8| *b == b'/' || *b == b'\\';
    if !(path.first().is_some_and(is_separator) && path.get(1).is_some_and(is_separator)) {
        return None;
    }
    let start = path.iter().position(|b| !is_separator(b))?;
    let rest = path.get(start..)?;
    let mut out = vec![b'/'];
    if let Some(sep) = rest.iter().position(is_separator) {
        out.extend_from_slice(rest.get(sep + 1..).unwrap_or_default());
    }
    Some(out)
}

/// `path` without its first segment when a server reads that segment as nothing: only a `;`
/// parameter (`/;x/…`, `/%3B/…`), or dots and spaces with at least one space (`/%20/…`), so
/// that what follows starts with `//` and a URL parser reads an authority (`/;/x/admin` is
/// `//x/admin`, whose path is `/admin`). `None` when the first segment is anything else.
pub(super) fn without_vanishing_first_segment(path: &[u8]) -> Option<Vec<u8>> {
    let rest = path.strip_prefix(b"/")?;
    let end = rest.iter().position(|&b| b == b'/' || b == b'\\')?;
    let first = rest.get(..end)?;
    let once: Vec<u8> = Decoded::new(first.iter().copied()).collect();
    let twice: Vec<u8> = Decoded::new(once.iter().copied()).collect();
    let vanishes = |s: &[u8]| {
        s.first() == Some(&b';') || (s.contains(&b' ') && s.iter().all(|&b| b == b' ' || b == b'.'))
    };
    if !(vanishes(&once) || vanishes(&twice)) {
        return None;
    }
    let mut out = vec![b'/'];
    out.extend_from_slice(rest.get(end..)?);
    Some(out)
}

/// `path` with the dots and spaces that end a segment removed (`/admin./x`, `/admin%20`,
/// `/admin%2e`), as Windows and IIS map paths; a segment of nothing else (`..`) stays.
/// `None` when nothing changes.
pub(super) fn without_segment_trailers(path: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(path.len());
    let mut changed = false;
    let mut rest = path;
    loop {
        let end = rest
            .iter()
            .position(|&b| b == b'/' || b == b'\\')
            .unwrap_or(rest.len());
        let segment = rest.get(..end).unwrap_or_default();
        let mut keep = segment.len();
        loop {
            let head = segment.get(..keep).unwrap_or_default();
            let trailer = [&b"."[..], b" ", b"%2e", b"%2E", b"%20"]
                .iter()
                .find(|t| head.ends_with(t))
                .map(|t| t.len());
            match trailer {
                Some(len) => keep -= len,
                None => break,
            }
        }
        if keep > 0 && keep < segment.len() {
            changed = true;
        } else {
            keep = segment.len();
        }
        out.extend_from_slice(segment.get(..keep).unwrap_or_default());
        match rest.get(end) {
            Some(&separator) => {
                out.push(separator);
                rest = rest.get(end + 1..).unwrap_or_default();
            }
            None => break,
        }
    }
    changed.then_some(out)
}
