//! Request-target handling: splitting off the query and normalising the path for rule matching.
//!
//! The normal form decodes percent-encoded unreserved characters, writes every other escape
//! with upper-case hex, resolves `.` and `..` segments and merges repeated slashes. What
//! servers read differently gives several readings of one path, and the caller matches each
//! and keeps the strictest answer: an encoded `/` or `\\` decoded or not, a `;` parameter kept
//! or cut, repeated slashes merged before or after resolving `..` (RFC 3986 keeps empty
//! segments while resolving: `/a//..` is `/a/`), dot segments resolved or left as they are, and
//! percent-encoding decoded once or twice (`%252F`).

use std::borrow::Cow;
use std::fmt;

use super::query::hex_value;

mod derived;

use derived::{
    after_authority, decode_once, without_segment_trailers, without_vanishing_first_segment,
};

/// Why a path cannot be normalised; the request is refused with 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// No `:path` at all (for example a CONNECT request).
    Missing,
    /// The path does not start with `/`.
    NotAbsolute,
    /// A `..` segment climbs above the root.
    AboveRoot,
    /// A `%` not followed by two hex digits.
    MalformedEscape,
    /// A raw or percent-encoded control character.
    ControlCharacter,
    /// A raw byte outside ASCII.
    NonAscii,
    /// Percent-encoded bytes that are not UTF-8 (such as the overlong `%C0%AF`).
    InvalidUtf8,
    /// More readings than [`MAX_READINGS`]: no server reads a path that many ways.
    TooAmbiguous,
}

/// The most readings one path may have.
pub const MAX_READINGS: usize = 32;

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::Missing => "no path",
            PathError::NotAbsolute => "path does not start with /",
            PathError::AboveRoot => "path climbs above the root",
            PathError::MalformedEscape => "malformed percent escape",
            PathError::ControlCharacter => "control character in path",
            PathError::NonAscii => "raw non-ASCII byte in path",
            PathError::InvalidUtf8 => "percent-encoded bytes are not UTF-8",
            PathError::TooAmbiguous => "path has too many readings",
        })
    }
}

/// Splits a request target into its path and its query; a fragment is dropped.
pub fn split_target(target: &[u8]) -> (&[u8], Option<&[u8]>) {
    let end = target
        .iter()
        .position(|&b| b == b'#')
        .unwrap_or(target.len());
    let target = target.get(..end).unwrap_or(target);
    match target.iter().position(|&b| b == b'?') {
        Some(q) => (
            target.get(..q).unwrap_or(target),
            Some(target.get(q + 1..).unwrap_or_default()),
        ),
        None => (target, None),
    }
}

/// How ambiguous characters are read while normalising.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Reading {
    encoded_slash_separates: bool,
    backslash_separates: bool,
    strip_parameters: bool,
    dots: Dots,
}

/// How `.` and `..` segments are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Dots {
    /// Repeated slashes merged first, then dot segments resolved (Envoy's `merge_slashes`
    /// before `normalize_path`).
    #[default]
    MergeThenResolve,
    /// Dot segments resolved with empty segments kept (RFC 3986, WHATWG), slashes merged after.
    ResolveThenMerge,
    /// Dot segments left as they are (a server that resolves none).
    Literal,
    /// As [`Dots::ResolveThenMerge`], then read again by a URL parser: a result that starts
    /// with an empty segment (`/.//x/admin` resolves to `//x/admin`) is `//authority/rest`.
    ResolveThenParse,
}

/// What a first scan of a path found.
#[derive(Debug, Default)]
struct Scan {
    encoded_slash: bool,
    backslash: bool,
    semicolon: bool,
    /// A `.` right after something that may separate segments: a dot segment may follow.
    dot_after_separator: bool,
    /// Two separators in a row, or a `;` parameter: an empty segment may follow.
    empty_segment: bool,
    /// A `%25`, `%3F` or `%23`: a server behind one that decodes reads something else.
    decodes_again: bool,
}

/// The normal forms of one path, never none: the literal reading, borrowed when the path
/// already is normal, then any others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readings<'p> {
    first: Cow<'p, str>,
    others: Vec<String>,
}

impl Readings<'_> {
    /// Every reading, the literal one first.
    pub fn iter(&self) -> impl Iterator<Item = &str> + Clone {
        std::iter::once(&*self.first).chain(self.others.iter().map(String::as_str))
    }

    /// The literal reading (every character read as itself).
    pub fn first(&self) -> &str {
        &self.first
    }

    /// How many readings there are (at least one: there is no `is_empty`).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        1 + self.others.len()
    }
}

#[cfg(test)]
impl<'p> Readings<'p> {
    /// Readings given as they are (tests of what reads them).
    pub(crate) fn listed(first: &'p str, others: &[&str]) -> Self {
        Readings {
            first: Cow::Borrowed(first),
            others: others.iter().map(|o| o.to_string()).collect(),
        }
    }
}

/// The normal form of `path` under every reading its characters allow, without duplicates.
///
/// One reading for an ordinary path; more when it holds an encoded `/`, a `\`, a `;`, a
/// `%25` escape, or dot segments next to empty ones. The set is closed: reading any of its
/// readings again (as a chain of two servers might) gives nothing new. The first is the
/// literal reading; readings with dot segments left as they are may hold `.` and `..`.
pub fn readings(path: &[u8]) -> Result<Readings<'_>, PathError> {
    if let Some(plain) = already_normal(path) {
        return Ok(Readings {
            first: Cow::Borrowed(plain),
            others: Vec::new(),
        });
    }
    let mut out: Vec<String> = Vec::with_capacity(1);
    let mut budget = MAX_WORK;
    add_readings(path, &mut out, &mut budget)?;
    let mut next = 0;
    while let Some(reading) = out.get(next).cloned() {
        // The path itself was read already (it may be one of its own readings).
        if reading.as_bytes() != path {
            add_readings(reading.as_bytes(), &mut out, &mut budget)?;
        }
        next += 1;
    }
    // `add_readings` gives at least one reading or an error.
    let mut readings = out.into_iter();
    let first = readings.next().ok_or(PathError::NotAbsolute)?;
    Ok(Readings {
        first: Cow::Owned(first),
        others: readings.collect(),
    })
}

/// The most bytes normalised for one request, all readings together: a long path with many
/// readings is refused ([`PathError::TooAmbiguous`]) rather than read at length.
pub const MAX_WORK: usize = 128 << 10;

/// Adds the readings of `path` that `out` does not hold yet.
fn add_readings(path: &[u8], out: &mut Vec<String>, budget: &mut usize) -> Result<(), PathError> {
    let scan = scan(path)?;
    let dots: &[Dots] = match (scan.dot_after_separator, scan.empty_segment) {
        (false, _) => &[Dots::MergeThenResolve],
        (true, false) => &[Dots::MergeThenResolve, Dots::Literal],
        (true, true) => &[
            Dots::MergeThenResolve,
            Dots::ResolveThenMerge,
            Dots::Literal,
            Dots::ResolveThenParse,
        ],
    };
    for &dots in dots {
        for bits in 0u8..8 {
            let reading = Reading {
                encoded_slash_separates: bits & 1 != 0,
                backslash_separates: bits & 2 != 0,
                strip_parameters: bits & 4 != 0,
                dots,
            };
            if (reading.encoded_slash_separates && !scan.encoded_slash)
                || (reading.backslash_separates && !scan.backslash)
                || (reading.strip_parameters && !scan.semicolon)
            {
                continue;
            }
            *budget = budget
                .checked_sub(path.len())
                .ok_or(PathError::TooAmbiguous)?;
            push_new(out, normalize_with(path, reading)?)?;
        }
    }
    // Each derived path is shorter than `path`, so this recursion ends.
    let decoded = scan.decodes_again.then(|| decode_once(path)).flatten();
    let derived = [
        decoded,
        after_authority(path),
        without_segment_trailers(path),
        without_vanishing_first_segment(path),
    ];
    for derived in derived.iter().flatten().filter(|d| d.as_slice() != path) {
        add_readings(derived, out, budget)?;
    }
    Ok(())
}

/// Adds `reading` to `out` unless it is there; more than [`MAX_READINGS`] is an error.
fn push_new(out: &mut Vec<String>, reading: String) -> Result<(), PathError> {
    if !out.contains(&reading) {
        if out.len() == MAX_READINGS {
            return Err(PathError::TooAmbiguous);
        }
        out.push(reading);
    }
    Ok(())
}

/// `path` as text when it already is in normal form with a single reading: only plain path
/// characters (no `%`, `\` or `;`), no empty, `.` or `..` segment.
fn already_normal(path: &[u8]) -> Option<&str> {
    if path.first() != Some(&b'/') {
        return None;
    }
    let mut segment_start = 1;
    for (i, &b) in path.iter().enumerate().skip(1) {
        if b == b'/' {
            if !plain_segment(path.get(segment_start..i)?) {
                return None;
            }
            segment_start = i + 1;
        } else if !is_path_char(b) || b == b';' {
            return None;
        }
    }
    let last = path.get(segment_start..)?;
    if last.ends_with(b".") {
        return None;
    }
    std::str::from_utf8(path).ok()
}

/// A segment between two slashes that normalisation keeps as it is.
fn plain_segment(segment: &[u8]) -> bool {
    !segment.is_empty() && !segment.ends_with(b".")
}

/// The normal form of `path`, reading every character literally (used for configured rules).
pub fn normalize(path: &[u8]) -> Result<String, PathError> {
    scan(path)?;
    normalize_with(path, Reading::default())
}

/// Decodes the escape starting at `at` (which holds `%`).
fn escape_at(path: &[u8], at: usize) -> Result<u8, PathError> {
    let hi = path.get(at + 1).copied().and_then(hex_value);
    let lo = path.get(at + 2).copied().and_then(hex_value);
    match (hi, lo) {
        (Some(hi), Some(lo)) => Ok(hi << 4 | lo),
        _ => Err(PathError::MalformedEscape),
    }
}

fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// RFC 3986 unreserved characters: always decoded.
pub fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Characters kept raw in a normal path: unreserved, sub-delims, `:` and `@`.
fn is_path_char(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

/// Validates the whole path once and notes which ambiguous characters it holds.
fn scan(path: &[u8]) -> Result<Scan, PathError> {
    if path.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    let mut scan = Scan::default();
    let mut decoded_high: Vec<u8> = Vec::new();
    // Whether the previous character may separate segments under some reading.
    let mut after_separator = false;
    let mut i = 0;
    while let Some(&b) = path.get(i) {
        let (v, width) = match b {
            b'%' => {
                let v = escape_at(path, i)?;
                if is_control(v) {
                    return Err(PathError::ControlCharacter);
                }
                match v {
                    b'/' => {
                        scan.encoded_slash = true;
                        scan.decodes_again = true;
                    }
                    b'\\' => {
                        scan.backslash = true;
                        scan.decodes_again = true;
                    }
                    b'%' | b'?' | b'#' => scan.decodes_again = true,
                    b';' => {
                        scan.semicolon = true;
                        scan.empty_segment = true;
                    }
                    _ => {}
                }
                (v, 3)
            }
            b'\\' => {
                scan.backslash = true;
                (b, 1)
            }
            b';' => {
                scan.semicolon = true;
                scan.empty_segment = true;
                (b, 1)
            }
            _ if is_control(b) => return Err(PathError::ControlCharacter),
            _ if !b.is_ascii() => return Err(PathError::NonAscii),
            _ => (b, 1),
        };
        let separator = matches!(v, b'/' | b'\\');
        scan.empty_segment |= separator && after_separator;
        scan.dot_after_separator |= v == b'.' && after_separator;
        after_separator = separator;
        decoded_high.push(v);
        i += width;
    }
    if decoded_high.iter().any(|b| !b.is_ascii()) && std::str::from_utf8(&decoded_high).is_err() {
        return Err(PathError::InvalidUtf8);
    }
    Ok(scan)
}

/// Builds the normal form under one reading; `path` has passed `scan`.
fn normalize_with(path: &[u8], reading: Reading) -> Result<String, PathError> {
    let mut segments: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut in_parameters = false;
    // The empty segment before the leading `/` is never one.
    let mut leading = true;
    let mut i = 0;
    while let Some(&b) = path.get(i) {
        let (byte, encoded, width) = if b == b'%' {
            (escape_at(path, i)?, true, 3)
        } else {
            (b, false, 1)
        };
        i += width;
        let separates = match (byte, encoded) {
            (b'/', false) => true,
            (b'/', true) => reading.encoded_slash_separates,
            (b'\\', _) => reading.backslash_separates,
            _ => false,
        };
        if separates {
            let segment = std::mem::take(&mut current);
            if !std::mem::take(&mut leading) {
                close_segment(&mut segments, segment, reading.dots)?;
            }
            in_parameters = false;
            continue;
        }
        if in_parameters {
            continue;
        }
        if byte == b';' && reading.strip_parameters {
            in_parameters = true;
        } else if is_unreserved(byte) || (!encoded && is_path_char(byte)) {
            current.push(char::from(byte));
        } else {
            push_escape(&mut current, byte);
        }
    }
    let trailing_slash = match (current.as_str(), reading.dots) {
        ("", _) => true,
        ("." | "..", Dots::Literal) => {
            segments.push(current);
            false
        }
        (".", _) => true,
        ("..", _) => {
            segments.pop().ok_or(PathError::AboveRoot)?;
            true
        }
        _ => {
            segments.push(current);
            false
        }
    };
    if reading.dots == Dots::ResolveThenParse {
        let empty = segments.iter().take_while(|s| s.is_empty()).count();
        if empty > 0 {
            segments.drain(..(empty + 1).min(segments.len()));
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for segment in segments.iter().filter(|s| !s.is_empty()) {
        out.push('/');
        out.push_str(segment);
    }
    let ends_empty = segments.last().is_some_and(String::is_empty);
    if out.is_empty() || trailing_slash || ends_empty {
        out.push('/');
    }
    Ok(out)
}

/// Ends a segment that a separator follows.
fn close_segment(segments: &mut Vec<String>, segment: String, dots: Dots) -> Result<(), PathError> {
    match (segment.as_str(), dots) {
        (_, Dots::Literal) if !segment.is_empty() => segments.push(segment),
        ("", Dots::ResolveThenMerge | Dots::ResolveThenParse) => segments.push(segment),
        ("" | ".", _) => {}
        ("..", _) => {
            segments.pop().ok_or(PathError::AboveRoot)?;
        }
        _ => segments.push(segment),
    }
    Ok(())
}

fn push_escape(out: &mut String, byte: u8) {
    out.push_str(percent_encoding::percent_encode_byte(byte));
}

#[cfg(test)]
mod tests;
