//! A `multipart/*` body read as it streams, for parts whose field name is a credential's.
//!
//! Read the way the loosest parser reads it: a delimiter (`--` and the boundary) is found
//! anywhere, not only at a line's start (Django finds it so), the closing one included (what
//! follows is read as another part, as Django reads it). What follows a delimiter is the
//! part's header block, the rest of the delimiter's line first, up to an empty line, folded
//! lines joined; its lines end with CRLF, and a lone CR or LF in it is refused (Django splits
//! header lines on CRLF only, Python's `email` on each). A `Content-Disposition` header names the field
//! (every header is judged alike, whatever its name) with `name`, `name*` (RFC 5987, `UTF-8''access%5Ftoken`, as busboy
//! reads it; another charset than UTF-8, US-ASCII or ISO-8859-1, or a control byte, is refused)
//! or RFC 2231 continuations (`name*0`, `name*1`, as Python reads them), each judged
//! as a query parameter name is; parameters are split both with and without regard to quotes,
//! so that a `;` inside quotes hides nothing. A name holding an RFC 2047 encoded word (`=?`),
//! which Python's `email` may decode, counts as a credential name. Part content is no name
//! and is not kept. The delimiter is found with a KMP automaton: constant work per byte.

use super::form::{names_a_credential, NAMES};
use crate::request::form::{param, split_params, FormError, MAX_PART_HEADER};
use crate::request::query::hex_value;

/// Where the reader is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Preamble or part content: only delimiters matter.
    Content,
    /// A part's headers, the rest of the delimiter's line first; `line_start` after a CRLF.
    Headers { line_start: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Multipart {
    /// `--` and the boundary.
    delimiter: Vec<u8>,
    /// KMP failure function of `delimiter`.
    failure: Vec<usize>,
    /// How much of `delimiter` the last bytes match.
    matched: usize,
    state: State,
    /// The last byte was a CR in a part's headers (an LF must follow).
    after_cr: bool,
    /// The current header, folded lines joined; at most [`MAX_PART_HEADER`] bytes.
    header: Vec<u8>,
}

impl Multipart {
    pub(crate) fn new(boundary: &[u8]) -> Self {
        let mut delimiter = b"--".to_vec();
        delimiter.extend_from_slice(boundary);
        let failure = failure_of(&delimiter);
        Multipart {
            delimiter,
            failure,
            matched: 0,
            state: State::Content,
            after_cr: false,
            header: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, names: &[&[u8]; NAMES], chunk: &[u8]) -> Result<(), FormError> {
        for &b in chunk {
            if self.delimiter_ends(b) {
                // The delimiter's first bytes, read into the header, are no part of it.
                let kept = self
                    .header
                    .len()
                    .saturating_sub(self.delimiter.len().saturating_sub(1));
                self.header.truncate(kept);
                self.end_header(names)?;
                self.state = State::Headers { line_start: false };
                self.after_cr = false;
                continue;
            }
            let State::Headers { line_start } = self.state else {
                continue;
            };
            if std::mem::replace(&mut self.after_cr, b == b'\r') {
                if b != b'\n' {
                    return Err(FormError::BareLineEnd);
                }
                if line_start {
                    // An empty line: the headers end, the content begins.
                    self.end_header(names)?;
                    self.state = State::Content;
                } else {
                    self.state = State::Headers { line_start: true };
                }
                continue;
            }
            match b {
                b'\r' => {}
                b'\n' => return Err(FormError::BareLineEnd),
                _ => {
                    if line_start && b != b' ' && b != b'\t' {
                        self.end_header(names)?;
                    }
                    self.state = State::Headers { line_start: false };
                    if self.header.len() >= MAX_PART_HEADER {
                        return Err(FormError::PartHeaderTooLong);
                    }
                    self.header.push(b);
                }
            }
        }
        Ok(())
    }

    pub(crate) fn end(&mut self, names: &[&[u8]; NAMES]) -> Result<(), FormError> {
        if matches!(self.state, State::Headers { .. }) {
            self.end_header(names)?;
        }
        Ok(())
    }

    /// Feeds one byte to the delimiter automaton: whether a delimiter ends here.
    fn delimiter_ends(&mut self, b: u8) -> bool {
        loop {
            if self.delimiter.get(self.matched) == Some(&b) {
                self.matched += 1;
                break;
            }
            if self.matched == 0 {
                break;
            }
            self.matched = self.failure.get(self.matched - 1).copied().unwrap_or(0);
        }
        if self.matched == self.delimiter.len() {
            self.matched = self
                .failure
                .get(self.matched.saturating_sub(1))
                .copied()
                .unwrap_or(0);
            return true;
        }
        false
    }

    /// Judges the header read so far, and forgets it.
    fn end_header(&mut self, names: &[&[u8]; NAMES]) -> Result<(), FormError> {
        let header = std::mem::take(&mut self.header);
        names_field(names, &header)
    }
}

/// Whether a part header names a field that reads as a credential. Every header is judged,
/// not only `Content-Disposition` (in any case): a header name a parser trims or reads
/// otherwise (`Content-Disposition :`, a misspelling some parser accepts) hides nothing.
fn names_field(names: &[&[u8]; NAMES], header: &[u8]) -> Result<(), FormError> {
    let Some(colon) = header.iter().position(|&b| b == b':') else {
        return Ok(());
    };
    let value = header.get(colon + 1..).unwrap_or_default();
    let quoted: Vec<_> = split_params(value).filter_map(param).collect();
    // Split on every `;`, with stray quotes dropped (a quoted `;` is no separator to all).
    let naive: Vec<_> = value
        .split(|&b| b == b';')
        .filter_map(param)
        .map(|(key, value)| (key, value.into_iter().filter(|&b| b != b'"').collect()))
        .collect();
    if names_credential(names, &quoted)? || names_credential(names, &naive)? {
        return Err(FormError::CredentialField);
    }
    Ok(())
}

/// Whether a `Content-Disposition`'s parameters name a credential field; an error for an
/// extended name in another charset.
fn names_credential(
    names: &[&[u8]; NAMES],
    params: &[(&[u8], Vec<u8>)],
) -> Result<bool, FormError> {
    let credential =
        |text: &[u8]| names_a_credential(names, text) || text.windows(2).any(|w| w == b"=?");
    let mut continued: Vec<(u32, &[u8])> = Vec::new();
    for (key, value) in params {
        let key = key.to_ascii_lowercase();
        let Some(rest) = key.strip_prefix(b"name") else {
            continue;
        };
        let text = if rest.ends_with(b"*") {
            rfc5987_text(value)?
        } else {
            &value[..]
        };
        if rest.is_empty() || rest == b"*" {
            if credential(text) || credential(value) {
                return Ok(true);
            }
            continue;
        }
        let number = rest
            .strip_prefix(b"*")
            .map(|n| n.strip_suffix(b"*").unwrap_or(n));
        let index = number
            .and_then(|n| std::str::from_utf8(n).ok())
            .and_then(|n| n.parse::<u32>().ok());
        if let Some(index) = index {
            continued.push((index, text));
        }
    }
    continued.sort_by_key(|(index, _)| *index);
    let joined: Vec<u8> = continued
        .into_iter()
        .flat_map(|(_, text)| text.to_vec())
        .collect();
    Ok(!joined.is_empty() && credential(&joined))
}

/// The text of an RFC 5987 value (`charset'language'text`): after the second `'`, or all of
/// it. An error when the charset is not UTF-8, US-ASCII or ISO-8859-1 (Django decodes
/// `utf-16le''a%00c%00...`), or the text decodes to a control byte.
fn rfc5987_text(value: &[u8]) -> Result<&[u8], FormError> {
    let mut quotes = value.iter().enumerate().filter(|(_, &b)| b == b'\'');
    let text = match (quotes.next(), quotes.next()) {
        (Some((first, _)), Some((second, _))) => {
            let charset = value.get(..first).unwrap_or_default().to_ascii_lowercase();
            if !matches!(&charset[..], b"utf-8" | b"us-ascii" | b"iso-8859-1") {
                return Err(FormError::NameCharset);
            }
            value.get(second + 1..).unwrap_or_default()
        }
        _ => value,
    };
    if percent_decoded(text).any(|b| b.is_ascii_control()) {
        return Err(FormError::NameCharset);
    }
    Ok(text)
}

/// The bytes of `text` with well-formed `%XX` escapes decoded once.
fn percent_decoded(text: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let mut rest = text;
    std::iter::from_fn(move || {
        let (&first, tail) = rest.split_first()?;
        let escape = match tail {
            [hi, lo, ..] if first == b'%' => hex_value(*hi).zip(hex_value(*lo)),
            _ => None,
        };
        match escape {
            Some((hi, lo)) => {
                rest = tail.get(2..).unwrap_or_default();
                Some(hi << 4 | lo)
            }
            None => {
                rest = tail;
                Some(first)
            }
        }
    })
}

/// The KMP failure function: for each prefix, the longest proper prefix that is also a suffix.
fn failure_of(pattern: &[u8]) -> Vec<usize> {
    let mut failure = vec![0; pattern.len()];
    let mut k = 0;
    for i in 1..pattern.len() {
        let Some(&b) = pattern.get(i) else { break };
        while k > 0 && pattern.get(k) != Some(&b) {
            k = failure.get(k - 1).copied().unwrap_or(0);
        }
        if pattern.get(k) == Some(&b) {
            k += 1;
        }
        if let Some(slot) = failure.get_mut(i) {
            *slot = k;
        }
    }
    failure
}
