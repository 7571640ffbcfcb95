//! A `multipart/*` body read as it streams, for parts whose field name is a credential's.
//!
//! Read the way the loosest parser reads it: a delimiter (`--` and the boundary) starts at
//! the body's start or after any line end, CR alone included (Python's `email` splits lines on
//! CR, LF and CRLF); whatever follows it on its line is skipped; then come the part's headers
//! up to an empty line, folded lines joined. A `Content-Disposition` header names the field
//! (every header is judged alike, whatever its name) with `name`, `name*` (RFC 5987, `UTF-8''access%5Ftoken`, as busboy
//! reads it) or RFC 2231 continuations (`name*0`, `name*1`, as Python reads them), each judged
//! as a query parameter name is; parameters are split both with and without regard to quotes,
//! so that a `;` inside quotes hides nothing. A name holding an RFC 2047 encoded word (`=?`),
//! which Python's `email` may decode, counts as a credential name. Part content is no name
//! and is not kept. The delimiter is found with a KMP automaton: constant work per byte.

use super::form::{names_a_credential, NAMES};
use crate::request::form::{param, split_params, FormError, MAX_PART_HEADER};

/// Where the reader is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Preamble, part content or epilogue: only delimiters matter.
    Content,
    /// The rest of a delimiter's line; `dashes` of its first bytes were `-`, `first` of them read.
    Delimiter { read: u8, dashes: u8 },
    /// A part's headers; `line_start` at the start of a line.
    Headers { line_start: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Multipart {
    /// A line end (CR read as LF), `--` and the boundary.
    delimiter: Vec<u8>,
    /// KMP failure function of `delimiter`.
    failure: Vec<usize>,
    /// How much of `delimiter` the last bytes match.
    matched: usize,
    state: State,
    /// The last byte was a CR (an LF right after it ends no second line).
    after_cr: bool,
    /// The current header, folded lines joined; at most [`MAX_PART_HEADER`] bytes.
    header: Vec<u8>,
}

impl Multipart {
    pub(crate) fn new(boundary: &[u8]) -> Self {
        let mut delimiter = b"\n--".to_vec();
        delimiter.extend_from_slice(boundary);
        let failure = failure_of(&delimiter);
        Multipart {
            delimiter,
            failure,
            // The body's start counts as a line end.
            matched: 1,
            state: State::Content,
            after_cr: false,
            header: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, names: &[&[u8]; NAMES], chunk: &[u8]) -> Result<(), FormError> {
        for &b in chunk {
            if self.delimiter_ends(b) {
                self.end_header(names)?;
                self.state = State::Delimiter { read: 0, dashes: 0 };
                self.after_cr = false;
                continue;
            }
            let after_cr = std::mem::replace(&mut self.after_cr, b == b'\r');
            let line_end = b == b'\r' || b == b'\n';
            match self.state {
                State::Content => {}
                State::Delimiter { read, dashes } if !line_end => {
                    let dash = u8::from(read < 2 && b == b'-');
                    self.state = State::Delimiter {
                        read: read.saturating_add(1),
                        dashes: dashes + dash,
                    };
                }
                // The closing delimiter: what follows is epilogue (still searched).
                State::Delimiter { dashes: 2, .. } => self.state = State::Content,
                State::Delimiter { .. } => self.state = State::Headers { line_start: true },
                State::Headers { .. } if b == b'\n' && after_cr => {}
                State::Headers { line_start } if line_end => {
                    if line_start {
                        // An empty line: the headers end, the content begins.
                        self.end_header(names)?;
                        self.state = State::Content;
                    } else {
                        self.state = State::Headers { line_start: true };
                    }
                }
                State::Headers { line_start } => {
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

    /// Feeds one byte (CR read as LF) to the delimiter automaton: whether a delimiter ends here.
    fn delimiter_ends(&mut self, b: u8) -> bool {
        let b = if b == b'\r' { b'\n' } else { b };
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
        if names_field(names, &header) {
            return Err(FormError::CredentialField);
        }
        Ok(())
    }
}

/// Whether a part header names a field that reads as a credential. Every header is judged,
/// not only `Content-Disposition` (in any case): a header name a parser trims or reads
/// otherwise (`Content-Disposition :`, a misspelling some parser accepts) hides nothing.
fn names_field(names: &[&[u8]; NAMES], header: &[u8]) -> bool {
    let Some(colon) = header.iter().position(|&b| b == b':') else {
        return false;
    };
    let value = header.get(colon + 1..).unwrap_or_default();
    let quoted: Vec<_> = split_params(value).filter_map(param).collect();
    // Split on every `;`, with stray quotes dropped (a quoted `;` is no separator to all).
    let naive: Vec<_> = value
        .split(|&b| b == b';')
        .filter_map(param)
        .map(|(key, value)| (key, value.into_iter().filter(|&b| b != b'"').collect()))
        .collect();
    names_credential(names, &quoted) || names_credential(names, &naive)
}

/// Whether a `Content-Disposition`'s parameters name a credential field.
fn names_credential(names: &[&[u8]; NAMES], params: &[(&[u8], Vec<u8>)]) -> bool {
    let credential =
        |text: &[u8]| names_a_credential(names, text) || text.windows(2).any(|w| w == b"=?");
    let mut continued: Vec<(u32, &[u8])> = Vec::new();
    for (key, value) in params {
        let key = key.to_ascii_lowercase();
        let Some(rest) = key.strip_prefix(b"name") else {
            continue;
        };
        let text = if rest.ends_with(b"*") {
            rfc5987_text(value)
        } else {
            &value[..]
        };
        if rest.is_empty() || rest == b"*" {
            if credential(text) || credential(value) {
                return true;
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
    !joined.is_empty() && credential(&joined)
}

/// The text of an RFC 5987 value (`charset'language'text`): after the second `'`, or all of it.
fn rfc5987_text(value: &[u8]) -> &[u8] {
    let mut quotes = value.iter().enumerate().filter(|(_, &b)| b == b'\'');
    match (quotes.next(), quotes.next()) {
        (Some(_), Some((second, _))) => value.get(second + 1..).unwrap_or_default(),
        _ => value,
    }
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
