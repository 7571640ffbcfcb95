//! Key material checked as a whole when a configuration loads: every secret, API key,
//! publishable key and client secret must be strong on its own, and no two may be equal or
//! contain one another (a secret equal to a publishable key would let anyone mint tokens).
//! Problems are described without quoting the value.

/// The estimated strength below which a secret or key is refused, in bits.
pub const MIN_BITS: u32 = 128;

/// Estimates are summed in thousandths of a bit (integers keep float code out of the module).
const MILLI: u32 = 1000;

mod estimate;
mod words;

pub(crate) use estimate::estimated_bits;
use words::WELL_KNOWN;

/// Refuses a secret or key too weak to use, saying why (never quoting it).
pub(crate) fn check_strength(value: &str) -> Result<(), String> {
    let lower = value.to_ascii_lowercase();
    // Equal to a well-known secret, or holding one (a character added is no new secret).
    let known = WELL_KNOWN.iter().any(|w| {
        let w = w.to_ascii_lowercase();
        lower == w || (w.len() >= 16 && lower.contains(&w))
    });
    if known {
        return Err("is, or holds, a well-known secret from the public wordlists".into());
    }
    if distinct_bytes(value) < 8 || shortest_period(value.as_bytes()) <= value.len() / 2 {
        return Err("is too repetitive to be random".into());
    }
    // Text written as base64 or hex is no stronger than the text.
    let bits = [
        Some(value.as_bytes().to_vec()),
        base64_text(value),
        hex_text(value),
    ]
    .into_iter()
    .flatten()
    .filter_map(|text| String::from_utf8(text).ok())
    .map(|text| estimated_bits(&text).min(passphrase_bits(&text)))
    .min()
    .unwrap_or(0);
    if bits < MIN_BITS {
        return Err(format!(
            "has about {bits} bits of estimated entropy; at least {MIN_BITS} are needed (try `openssl rand -base64 32`)"
        ));
    }
    Ok(())
}

/// What a text of words is worth to an attacker who guesses words, not letters: prose and
/// passphrases (`To be, or not to be, that is the question:`) are about 11 bits a word (a
/// vocabulary of a few thousand; a word said again, 2 bits), plus a bit for each character that
/// is not a letter.
/// `u32::MAX` for fewer than four words, or when letters are less than three fifths of it.
fn passphrase_bits(text: &str) -> u32 {
    let mut seen: Vec<String> = Vec::new();
    let (mut words, mut repeated) = (0usize, 0usize);
    for word in text
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
    {
        // A word is lower case but for its first letter; anything else is no prose.
        if word.bytes().skip(1).any(|b| b.is_ascii_uppercase()) {
            return u32::MAX;
        }
        let word = word.to_ascii_lowercase();
        if seen.contains(&word) {
            repeated += 1;
        } else {
            words += 1;
            seen.push(word);
        }
    }
    let letters = text.bytes().filter(u8::is_ascii_alphabetic).count();
    let separators = text
        .bytes()
        .filter(|b| b.is_ascii_punctuation() || *b == b' ')
        .count();
    if words + repeated < 4 || letters * 5 < text.len() * 3 || separators + 1 < words + repeated {
        return u32::MAX;
    }
    let others = text.len() - letters;
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    count(words)
        .saturating_mul(11)
        .saturating_add(count(repeated).saturating_mul(2))
        .saturating_add(count(others))
}

/// `value` decoded as base64 (either alphabet, padded or not), when it is that and decodes
/// to printable ASCII of at least 8 characters.
fn base64_text(value: &str) -> Option<Vec<u8>> {
    let digits = value.trim_end_matches('=');
    if digits.len() < 11 {
        return None;
    }
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for c in digits.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push(u8::try_from((bits >> count) & 0xff).ok()?);
        }
    }
    printable(out)
}

/// `value` decoded as hex, when it is that and decodes to printable ASCII.
fn hex_text(value: &str) -> Option<Vec<u8>> {
    if value.len() < 16 || !value.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let out = value
        .as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(*pair.first()?)? << 4 | digit(*pair.get(1)?)?))
        .collect::<Option<Vec<u8>>>()?;
    printable(out)
}

fn printable(text: Vec<u8>) -> Option<Vec<u8>> {
    (text.len() >= 8 && text.iter().all(|b| b.is_ascii_graphic() || *b == b' ')).then_some(text)
}

fn distinct_bytes(value: &str) -> usize {
    let mut seen = [false; 256];
    for b in value.bytes() {
        if let Some(s) = seen.get_mut(usize::from(b)) {
            *s = true;
        }
    }
    seen.iter().filter(|&&s| s).count()
}

/// The length of the shortest unit whose repetition gives `bytes` (the prefix function of
/// Knuth, Morris and Pratt; linear). `bytes.len()` when it repeats nothing.
fn shortest_period(bytes: &[u8]) -> usize {
    let mut border = vec![0usize; bytes.len()];
    let mut k = 0;
    for (i, &b) in bytes.iter().enumerate().skip(1) {
        while k > 0 && bytes.get(k) != Some(&b) {
            k = border.get(k - 1).copied().unwrap_or(0);
        }
        if bytes.get(k) == Some(&b) {
            k += 1;
        }
        if let Some(slot) = border.get_mut(i) {
            *slot = k;
        }
    }
    let longest_border = border.last().copied().unwrap_or(0);
    let period = bytes.len() - longest_border;
    if period > 0 && bytes.len().is_multiple_of(period) {
        period
    } else {
        bytes.len()
    }
}

/// The first pair of entries (by position) where one equals or contains the other: the
/// later entry's label and the earlier entry's label.
pub(crate) fn first_overlap<'l>(entries: &[(&'l str, &[u8])]) -> Option<(&'l str, &'l str)> {
    for (i, (label, value)) in entries.iter().enumerate() {
        for (earlier_label, earlier) in entries.iter().take(i) {
            if contains(value, earlier) || contains(earlier, value) {
                return Some((label, earlier_label));
            }
        }
    }
    None
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && needle.len() <= haystack.len()
        && haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests;
