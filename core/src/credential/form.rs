//! Form bodies, read as they stream, for fields named like a credential.
//!
//! A form body is a place the filter does not read a credential from; on checked paths a
//! body whose field a server would read as a credential is refused ([`FormError`]). The body
//! comes in chunks: [`FormScanner`] keeps a bounded state across them (the readings of the
//! current field name, or of the current multipart header), does constant work per byte, and
//! answers as soon as a field name ends, so the chunk that completes one is never let on.
//!
//! A field name is judged as [`super::spellings::loosely_named`] judges a query parameter:
//! as sent, percent-decoded once and twice, leading whitespace and `+` skipped, case and
//! `+ .-[` folded, cut at `[` or NUL. Here that is done byte by byte ([`NameReader`]), so a
//! name of any length (`%20` padding) costs no memory.

use super::multipart::Multipart;
use super::spellings::CredentialNames;
use super::{CLIENT_ID_PARAM, CLIENT_SECRET_PARAM};
use crate::request::form::{FormError, FormKind};

/// The credential names a field is compared with: the token parameter, `client_id`,
/// `client_secret` and the token cookie (PHP's `$_REQUEST` merges cookies in).
pub(crate) const NAMES: usize = 4;
/// Readings of a name: as sent, decoded once, decoded twice.
const READINGS: usize = 3;

fn credential_names<'c>(names: CredentialNames<'c>) -> [&'c [u8]; NAMES] {
    [
        names.at.query_param.as_bytes(),
        CLIENT_ID_PARAM.as_bytes(),
        CLIENT_SECRET_PARAM.as_bytes(),
        names.at.cookie.as_bytes(),
    ]
}

/// Reads a form body chunk by chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormScanner {
    layout: Layout,
    /// Set once a verdict is reached: every later chunk gets it again.
    refused: Option<FormError>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Layout {
    Urlencoded(Box<Urlencoded>),
    Multipart(Box<Multipart>),
}

impl FormScanner {
    pub fn new(kind: &FormKind) -> Self {
        let layout = match kind {
            FormKind::Urlencoded => Layout::Urlencoded(Box::default()),
            FormKind::Multipart { boundary } => {
                Layout::Multipart(Box::new(Multipart::new(boundary)))
            }
        };
        FormScanner {
            layout,
            refused: None,
        }
    }

    /// Reads the next chunk; an error when the body is to be refused.
    pub fn push(&mut self, names: CredentialNames<'_>, chunk: &[u8]) -> Result<(), FormError> {
        if let Some(refused) = self.refused {
            return Err(refused);
        }
        let names = credential_names(names);
        let verdict = match &mut self.layout {
            Layout::Urlencoded(form) => form.push(&names, chunk),
            Layout::Multipart(form) => form.push(&names, chunk),
        };
        self.refused = verdict.err();
        verdict
    }

    /// The body ended (a last field name without `=` is judged).
    pub fn end(&mut self, names: CredentialNames<'_>) -> Result<(), FormError> {
        if let Some(refused) = self.refused {
            return Err(refused);
        }
        let names = credential_names(names);
        let verdict = match &mut self.layout {
            Layout::Urlencoded(form) => form.end(&names),
            Layout::Multipart(form) => form.end(&names),
        };
        self.refused = verdict.err();
        verdict
    }
}

/// `name=value` pairs split on `&` and `;` (which some parsers split on too).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Urlencoded {
    in_value: bool,
    name: NameReader,
}

impl Urlencoded {
    fn push(&mut self, names: &[&[u8]; NAMES], chunk: &[u8]) -> Result<(), FormError> {
        for &b in chunk {
            match b {
                b'&' | b';' => {
                    if !self.in_value {
                        self.end_name(names)?;
                    }
                    self.in_value = false;
                }
                b'=' if !self.in_value => {
                    self.end_name(names)?;
                    self.in_value = true;
                }
                _ if !self.in_value => self.name.push(names, b),
                _ => {}
            }
        }
        Ok(())
    }

    fn end(&mut self, names: &[&[u8]; NAMES]) -> Result<(), FormError> {
        if !self.in_value {
            self.end_name(names)?;
        }
        Ok(())
    }

    fn end_name(&mut self, names: &[&[u8]; NAMES]) -> Result<(), FormError> {
        let credential = self.name.end(names);
        self.name = NameReader::default();
        if credential {
            return Err(FormError::CredentialField);
        }
        Ok(())
    }
}

/// Whether a whole name reads as a credential name (a multipart field's `name`).
pub(crate) fn names_a_credential(names: &[&[u8]; NAMES], name: &[u8]) -> bool {
    let mut reader = NameReader::default();
    for &b in name {
        reader.push(names, b);
    }
    reader.end(names)
}

/// One field name, read byte by byte under every reading at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NameReader {
    once: Decoder,
    twice: Decoder,
    matches: [[Match; READINGS]; NAMES],
    /// No reading can match any more.
    dead: bool,
}

impl NameReader {
    pub(crate) fn push(&mut self, names: &[&[u8]; NAMES], b: u8) {
        if self.dead {
            return;
        }
        self.feed(names, 0, b);
        let (once, n) = self.once.push(b);
        for &d in once.get(..n).unwrap_or_default() {
            self.decoded_once(names, d);
        }
        self.settle();
    }

    /// Once no reading can match and no decoder holds a byte, the rest of the name is skipped.
    fn settle(&mut self) {
        self.dead = self.once.len == 0
            && self.twice.len == 0
            && self.matches.iter().flatten().all(|m| *m == Match::Dead);
    }

    fn decoded_once(&mut self, names: &[&[u8]; NAMES], d: u8) {
        self.feed(names, 1, d);
        let (twice, n) = self.twice.push(d);
        for &t in twice.get(..n).unwrap_or_default() {
            self.feed(names, 2, t);
        }
    }

    /// The name ended: whether some reading of it is a credential name.
    pub(crate) fn end(&mut self, names: &[&[u8]; NAMES]) -> bool {
        if self.dead {
            return false;
        }
        let (rest, n) = self.once.finish();
        for &d in rest.get(..n).unwrap_or_default() {
            self.decoded_once(names, d);
        }
        let (rest, n) = self.twice.finish();
        for &t in rest.get(..n).unwrap_or_default() {
            self.feed(names, 2, t);
        }
        self.matches
            .iter()
            .flatten()
            .any(|m| matches!(m, Match::Trail | Match::Cut))
    }

    fn feed(&mut self, names: &[&[u8]; NAMES], reading: usize, b: u8) {
        for (matches, name) in self.matches.iter_mut().zip(names) {
            if let Some(m) = matches.get_mut(reading) {
                *m = m.step(name, b);
            }
        }
    }
}

/// How far one reading of a name matches one credential name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Match {
    /// Leading whitespace or `+`, skipped.
    #[default]
    Skip,
    /// This many bytes of the credential name matched.
    At(usize),
    /// The whole credential name matched; only whitespace or `+` followed.
    Trail,
    /// Matched and cut at `[` or NUL: whatever follows.
    Cut,
    /// Cannot match.
    Dead,
}

impl Match {
    fn step(self, name: &[u8], b: u8) -> Match {
        let blank = b.is_ascii_whitespace() || b == b'+';
        match self {
            Match::Skip if blank => Match::Skip,
            Match::Skip => Match::At(0).step(name, b),
            Match::At(i) => match name.get(i) {
                None => Match::Trail.step(name, b),
                Some(&e) if b != 0 && fold(b) == fold(e) => {
                    if i + 1 == name.len() {
                        Match::Trail
                    } else {
                        Match::At(i + 1)
                    }
                }
                Some(_) => Match::Dead,
            },
            Match::Trail if b == b'[' || b == 0 => Match::Cut,
            Match::Trail if blank => Match::Trail,
            Match::Trail | Match::Dead => Match::Dead,
            Match::Cut => Match::Cut,
        }
    }
}

/// Bytes that servers read alike in a name: `+`, space, `.`, `-` and `[` as `_` (PHP), any case.
fn fold(b: u8) -> u8 {
    match b {
        b'+' | b' ' | b'.' | b'-' | b'[' => b'_',
        _ => b.to_ascii_lowercase(),
    }
}

/// Percent-decoding of a stream, byte by byte, as [`crate::request::query::Decoded`] does:
/// a well-formed `%XX` is one byte, anything else stays as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Decoder {
    /// `%` and at most one hex digit read after it.
    pending: [u8; 2],
    len: usize,
}

impl Decoder {
    /// The bytes decoded once `b` is read (at most three).
    fn push(&mut self, b: u8) -> ([u8; 3], usize) {
        let mut out = [0u8; 3];
        let mut n = 0;
        let mut emit = |byte: u8, out: &mut [u8; 3]| {
            if let Some(slot) = out.get_mut(n) {
                *slot = byte;
            }
            n += 1;
        };
        let hex = crate::request::query::hex_value;
        match (self.len, hex(b)) {
            (1, Some(_)) => {
                self.pending = [b'%', b];
                self.len = 2;
                return (out, n);
            }
            (2, Some(lo)) => {
                let hi = self.pending.get(1).copied().and_then(hex).unwrap_or(0);
                self.len = 0;
                emit(hi << 4 | lo, &mut out);
                return (out, n);
            }
            (0, _) => {}
            (len, None) => {
                for &p in self.pending.get(..len).unwrap_or_default() {
                    emit(p, &mut out);
                }
                self.len = 0;
            }
            _ => self.len = 0,
        }
        if b == b'%' {
            self.pending = [b'%', 0];
            self.len = 1;
        } else {
            emit(b, &mut out);
        }
        (out, n)
    }

    /// The bytes still held at the end of the name.
    fn finish(&mut self) -> ([u8; 3], usize) {
        let mut out = [0u8; 3];
        let len = self.len.min(2);
        for (slot, &p) in out
            .iter_mut()
            .zip(self.pending.get(..len).unwrap_or_default())
        {
            *slot = p;
        }
        self.len = 0;
        (out, len)
    }
}

#[cfg(test)]
#[path = "form_tests.rs"]
mod tests;
