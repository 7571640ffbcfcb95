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

/// What a server sees after another decoded `path` once: every escape of a visible ASCII
/// character decoded (a `%25` stays encoded unless an escape follows it), cut at a decoded
/// `?` or `#`. `None` when that changes nothing an escape-aware reading has not seen.
fn decode_once(path: &[u8]) -> Option<Vec<u8>> {
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
fn after_authority(path: &[u8]) -> Option<Vec<u8>> {
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
fn without_vanishing_first_segment(path: &[u8]) -> Option<Vec<u8>> {
    let rest = path.strip_prefix(b"/")?;
    let end = rest.iter().position(|&b| b == b'/' || b == b'\\')?;
    let first = rest.get(..end)?;
    let once: Vec<u8> = crate::request::query::Decoded::new(first.iter().copied()).collect();
    let twice: Vec<u8> = crate::request::query::Decoded::new(once.iter().copied()).collect();
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
fn without_segment_trailers(path: &[u8]) -> Option<Vec<u8>> {
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
mod tests {
    use super::*;

    /// The literal reading.
    fn one(path: &str) -> Result<String, PathError> {
        Ok(readings(path.as_bytes())?.first().to_owned())
    }

    fn all(path: &str) -> Vec<String> {
        readings(path.as_bytes())
            .unwrap()
            .iter()
            .map(String::from)
            .collect()
    }

    #[test]
    fn split_target_separates_query_and_drops_fragment() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("/a/b", "/a/b", None),
            ("/a?x=1", "/a", Some("x=1")),
            ("/a?", "/a", Some("")),
            ("/a#frag?x", "/a", None),
            ("/a?x=1#f", "/a", Some("x=1")),
            ("/public/?../../admin", "/public/", Some("../../admin")),
            ("", "", None),
        ];
        for (target, path, query) in cases {
            let (p, q) = split_target(target.as_bytes());
            assert_eq!(p, path.as_bytes(), "{target}");
            assert_eq!(q, query.map(str::as_bytes), "{target}");
        }
    }

    #[test]
    fn normal_forms() {
        let cases: &[(&str, &str)] = &[
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a/b/", "/a/b/"),
            ("//a//b", "/a/b"),
            ("///admin/users", "/admin/users"),
            ("/./admin/users", "/admin/users"),
            ("/admin/users/.", "/admin/users/"),
            ("/public/..", "/"),
            ("/public/../", "/"),
            ("/public/../admin/users", "/admin/users"),
            ("/public/%2e%2e/admin/users", "/admin/users"),
            ("/public/%2E%2E/admin/users", "/admin/users"),
            ("/public/.%2e/admin/users", "/admin/users"),
            ("/public/%2e./admin/users", "/admin/users"),
            ("/%61dmin/users", "/admin/users"),
            ("/adm%69n/users", "/admin/users"),
            ("/%41DMIN/users", "/ADMIN/users"),
            ("/a%7eb", "/a~b"),
            ("/a%20b", "/a%20b"),
            ("/a%3ab", "/a%3Ab"),
            ("/a:b@c", "/a:b@c"),
            ("/a{b}", "/a%7Bb%7D"),
            ("/a%7Bb", "/a%7Bb"),
            ("/a%25b", "/a%25b"),
            ("/caf%C3%A9", "/caf%C3%A9"),
            ("/admin%20", "/admin%20"),
            ("/a/b/c/../../d", "/a/d"),
        ];
        for (input, expected) in cases {
            assert_eq!(one(input).as_deref(), Ok(*expected), "{input}");
        }
    }

    #[test]
    fn unnormalisable_paths_are_errors() {
        let cases: &[(&[u8], PathError)] = &[
            (b"", PathError::NotAbsolute),
            (b"admin/users", PathError::NotAbsolute),
            (b"*", PathError::NotAbsolute),
            (b"javascript:alert(1)", PathError::NotAbsolute),
            (b"/..", PathError::AboveRoot),
            (b"/../admin", PathError::AboveRoot),
            (b"/a/../..", PathError::AboveRoot),
            (b"/%2e%2e/x", PathError::AboveRoot),
            (b"/a%", PathError::MalformedEscape),
            (b"/a%2", PathError::MalformedEscape),
            (b"/a%zz", PathError::MalformedEscape),
            (b"/a%00b", PathError::ControlCharacter),
            (b"/public/%00/../admin", PathError::ControlCharacter),
            (b"/a%0d%0ab", PathError::ControlCharacter),
            (b"/a\tb", PathError::ControlCharacter),
            (b"/a\x7fb", PathError::ControlCharacter),
            (b"/\xc3\xa4dmin", PathError::NonAscii),
            (b"/\xff", PathError::NonAscii),
            (b"/%c0%af", PathError::InvalidUtf8),
            (b"/public/%c0%ae%c0%ae/admin", PathError::InvalidUtf8),
            (b"/%ff", PathError::InvalidUtf8),
        ];
        for (input, expected) in cases {
            assert_eq!(
                readings(input),
                Err(*expected),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn ambiguous_characters_give_every_reading() {
        let cases: &[(&str, &[&str])] = &[
            ("/admin%2Fusers", &["/admin%2Fusers", "/admin/users"]),
            // Decoded once and parsed as a URL: `//admin/users` has the authority `admin`.
            (
                "/%2Fadmin/users",
                &["/%2Fadmin/users", "/admin/users", "/users"],
            ),
            (
                "/public%2F..%2Fadmin",
                &["/public%2F..%2Fadmin", "/admin", "/public/../admin"],
            ),
            (
                "/public/..%2Fadmin",
                &["/public/..%2Fadmin", "/admin", "/public/../admin"],
            ),
            (
                "/public/..\\admin",
                &["/public/..%5Cadmin", "/admin", "/public/../admin"],
            ),
            (
                "/public\\..\\admin",
                &["/public%5C..%5Cadmin", "/admin", "/public/../admin"],
            ),
            ("/admin;x=1/users", &["/admin;x=1/users", "/admin/users"]),
            (
                "/public/..;/admin",
                &["/public/..;/admin", "/admin", "/public/../admin"],
            ),
            (
                "/public;/../admin",
                &["/admin", "/public;/../admin", "/public/../admin"],
            ),
            // Slashes merged before or after resolving `..`, or dots left alone.
            (
                "/admin//..//public/x",
                &["/public/x", "/admin/public/x", "/admin/../public/x"],
            ),
            ("/admin/../public/x", &["/public/x", "/admin/../public/x"]),
            ("/a//..", &["/", "/a/", "/a/.."]),
            // Decoded once or twice.
            ("/a%252Fb", &["/a%252Fb", "/a%2Fb", "/a/b"]),
            (
                "/public%252F..%252Fadmin",
                &[
                    "/public%252F..%252Fadmin",
                    "/public%2F..%2Fadmin",
                    "/admin",
                    "/public/../admin",
                ],
            ),
            ("/100%25", &["/100%25"]),
        ];
        for (input, expected) in cases {
            let got = all(input);
            assert_eq!(got.len(), expected.len(), "{input}: {got:?}");
            for e in *expected {
                assert!(got.iter().any(|g| g == e), "{input}: {got:?} lacks {e}");
            }
        }
    }

    #[test]
    fn readings_of_url_parsers_and_decoding_chains() {
        // Each path is also read as the second reading shows (found by the path differential
        // and an outside attack).
        let cases: &[(&str, &str)] = &[
            ("//public/admin", "/admin"),
            ("/\\public/admin", "/admin"),
            ("//admin", "/"),
            ("/admin%20", "/admin"),
            ("/public/%25%32%65%25%32%65/admin", "/admin"),
            ("/public/%252e%252e/admin", "/admin"),
            ("/%2561dmin", "/admin"),
            ("/adm%2569n", "/admin"),
            ("/admin%3F/../public", "/admin"),
            ("/admin%23/../public", "/admin"),
            ("/admin%3Bx", "/admin"),
            ("///x/admin", "/admin"),
            ("/\\/x/admin", "/admin"),
            ("/////x/admin", "/admin"),
            ("/admin.", "/admin"),
            ("/admin./x", "/admin/x"),
            ("/admin%2e", "/admin"),
            ("/admin%2E%2E%2E", "/admin"),
            ("/admin%20/x", "/admin/x"),
            ("/admin . /x", "/admin/x"),
            // Found by a third outside attack: an authority that appears only once the path
            // is decoded, or once its dot segments are resolved.
            ("/%2Fx/admin/x", "/admin/x"),
            ("/%5Cx/admin/x", "/admin/x"),
            ("/%2F%5Cx/admin/x", "/admin/x"),
            ("//x%5Cadmin/x", "/admin/x"),
            ("/%252Fx/admin/x", "/admin/x"),
            ("/.//x/admin/x", "/admin/x"),
            ("/x/..//x/admin/x", "/admin/x"),
            ("/%2e//x/admin/x", "/admin/x"),
            // Found by a fourth: a first segment that a server reads as nothing.
            ("/;/x/admin/x", "/admin/x"),
            ("/;jsessionid=1/x/admin/x", "/admin/x"),
            ("/%3B/x/admin/x", "/admin/x"),
            ("/%253B/x/admin/x", "/admin/x"),
            ("/;;//x/admin", "/admin"),
            ("/;%2F/x/admin", "/admin"),
            ("/%20/x/admin/y", "/admin/y"),
            ("/.%20/x/admin", "/admin"),
        ];
        for (path, reading) in cases {
            let got = all(path);
            assert!(got.iter().any(|g| g == reading), "{path}: {got:?}");
        }
    }

    #[test]
    fn long_ambiguous_paths_are_refused_not_read_at_length() {
        let unit = "/x%2Fy;p=1//z/..";
        let long = unit.repeat(60 * 1024 / unit.len());
        assert_eq!(readings(long.as_bytes()), Err(PathError::TooAmbiguous));
        let short = unit.repeat(1024 / unit.len());
        assert!(readings(short.as_bytes()).is_ok());
    }

    #[test]
    fn a_derived_path_equal_to_its_source_is_not_read_again() {
        // Found by the path fuzz target: decoding changed nothing, and the path was read
        // again and again until the stack overflowed.
        assert!(readings(b"//50%25..").is_ok());
    }

    #[test]
    fn decoding_twice_can_reveal_what_is_refused() {
        assert_eq!(readings(b"/a%2500"), Err(PathError::ControlCharacter));
        assert_eq!(
            readings(b"/a/%252e%252e/%252e%252e/.."),
            Err(PathError::AboveRoot)
        );
    }

    #[test]
    fn readings_are_closed_under_reading_again() {
        // Literally `/a/admin%2Fx`; a server that decodes `%2F` after another normalised
        // literally reads `/a/admin/x`, which the raw path's own split reading never shows.
        let raw = "/a/b%2F../../admin%2Fx";
        let found = all(raw);
        for reading in &found {
            for again in all(reading) {
                assert!(found.contains(&again), "{again} missing from {found:?}");
            }
        }
        assert!(found.contains(&"/a/admin/x".to_owned()), "{found:?}");
        let many = "/x%2F;a\\".repeat(12);
        let count = readings(many.as_bytes()).map_or(0, |r| r.iter().count());
        assert!((2..=MAX_READINGS).contains(&count), "{count}");
    }

    #[test]
    fn a_reading_that_climbs_above_the_root_refuses_the_path() {
        assert_eq!(
            readings(b"/a%2F..%2F..%2Fb"),
            Err(PathError::AboveRoot),
            "the separator reading climbs above the root"
        );
    }

    #[test]
    fn normalisation_is_idempotent() {
        for input in [
            "/a/./b/../c//d/",
            "/%61%2fb",
            "/x%7b%7D",
            "/public/..;/admin",
            "/a\\b",
        ] {
            for once in all(input) {
                let twice = all(&once);
                assert!(twice.contains(&once), "{input}: {once} -> {twice:?}");
            }
        }
    }

    #[test]
    fn plain_paths_are_borrowed_and_already_normal() {
        for plain in [
            "/",
            "/a",
            "/a/b/",
            "/a:b@c/d-e_f.g~h",
            "/a..b/.c/d.e",
            "/x!$&'()*+,=",
        ] {
            assert!(
                matches!(
                    readings(plain.as_bytes()),
                    Ok(Readings { first: Cow::Borrowed(_), ref others }) if others.is_empty()
                ),
                "{plain}"
            );
            assert_eq!(normalize(plain.as_bytes()).as_deref(), Ok(plain), "{plain}");
        }
        for not_plain in [
            "//a", "/a//b", "/./a", "/a/.", "/a/..", "/a/../b", "/%61", "/a;b", "/a\\b", "/a b",
            "/a{b",
        ] {
            assert!(
                already_normal(not_plain.as_bytes()).is_none(),
                "{not_plain}"
            );
        }
    }

    #[test]
    fn long_traversal_path_is_linear() {
        let mut path = String::from("/");
        for _ in 0..4_000 {
            path.push_str("a/../");
        }
        assert_eq!(one(&path).as_deref(), Ok("/"));
    }
}
