//! How many bits an attacker must guess to find a secret: a rough estimate, read left to
//! right.

use super::words::PLACEHOLDER_WORDS;
use super::MILLI;

/// What a placeholder word costs an attacker who tries a dictionary (about 2^7 words).
pub(super) const WORD_BITS: u32 = 7 * MILLI;

/// What a run that repeats earlier text costs (where it starts and how long it is).
const REPEAT_BITS: u32 = 8 * MILLI;

/// Only the first this many bytes are analysed; what follows counts at full rate.
const ANALYSED: usize = 512;

/// A rough estimate of the bits an attacker must guess, read left to right: a placeholder
/// word is worth [`WORD_BITS`]; a run of three or more bytes that repeats earlier text,
/// [`REPEAT_BITS`]; a byte that repeats the one before, continues a run (`ab`, `ba`) or an
/// arithmetic step (`aceg`, `aeim`), or reuses a separator seen before, one bit; any other,
/// log2 of the alphabet its character classes span (lower case, upper case, digits, others).
pub(crate) fn estimated_bits(value: &str) -> u32 {
    let bytes = value.as_bytes();
    let classes = [
        (bytes.iter().any(u8::is_ascii_lowercase), 26),
        (bytes.iter().any(u8::is_ascii_uppercase), 26),
        (bytes.iter().any(u8::is_ascii_digit), 10),
        (bytes.iter().any(|b| !b.is_ascii_alphanumeric()), 33),
    ];
    let alphabet: u32 = classes
        .iter()
        .filter(|(present, _)| *present)
        .map(|c| c.1)
        .sum();
    let per_char = milli_log2(alphabet);
    let analysed = bytes.get(..ANALYSED).unwrap_or(bytes);
    let unanalysed = u32::try_from(bytes.len() - analysed.len()).unwrap_or(u32::MAX);
    let mut bits = per_char.saturating_mul(unanalysed);
    let mut separators_seen = [false; 256];
    let (mut previous, mut step): (Option<u8>, Option<i16>) = (None, None);
    let mut i = 0;
    while let Some(&b) = analysed.get(i) {
        let rest = analysed.get(i..).unwrap_or_default();
        let word = PLACEHOLDER_WORDS
            .iter()
            .filter(|w| {
                rest.get(..w.len())
                    .is_some_and(|r| r.eq_ignore_ascii_case(w.as_bytes()))
            })
            .map(|w| w.len())
            .max();
        let (cost, width) = match (word, longest_earlier_repeat(analysed, i)) {
            (Some(w), Some(r)) if r > w => (REPEAT_BITS, r),
            (Some(w), _) => (WORD_BITS, w),
            (None, Some(r)) => (REPEAT_BITS, r),
            (None, None) => {
                let diff = previous.map(|p| i16::from(b) - i16::from(p));
                // A step repeated, next to the byte before or the one before that (`a1b2c3`).
                let lag2 = i
                    .checked_sub(2)
                    .and_then(|j| analysed.get(j))
                    .map(|&p| i16::from(b) - i16::from(p));
                let lag2_before = i
                    .checked_sub(3)
                    .and_then(|j| Some((analysed.get(j)?, analysed.get(j + 2)?)))
                    .map(|(&p, &q)| i16::from(q) - i16::from(p));
                let runs = diff.is_some_and(|d| d.abs() <= 1)
                    || (diff.is_some() && diff == step)
                    || (lag2 == lag2_before && lag2.is_some_and(|d| d.abs() == 1));
                let separator = !b.is_ascii_alphanumeric();
                let slot = separators_seen.get_mut(usize::from(b));
                let seen = separator && slot.as_ref().is_some_and(|s| **s);
                if let (true, Some(slot)) = (separator, slot) {
                    *slot = true;
                }
                step = diff;
                previous = Some(b);
                let cost = if runs || seen { MILLI } else { per_char };
                (cost, 1)
            }
        };
        if width > 1 {
            previous = analysed.get(i + width - 1).copied();
            step = None;
        }
        bits = bits.saturating_add(cost);
        i += width;
    }
    bits / MILLI
}

/// log2 of an alphabet size (a sum of the class sizes 26, 26, 10 and 33), in thousandths.
pub(super) fn milli_log2(alphabet: u32) -> u32 {
    match alphabet {
        10 => 3322,
        26 => 4700,
        33 => 5044,
        36 => 5170,
        43 => 5426,
        52 => 5700,
        59 => 5883,
        62 => 5954,
        69 => 6109,
        78 => 6285,
        85 => 6409,
        95 => 6570,
        _ => MILLI,
    }
}

/// The length of the longest run of three or more bytes starting at `at` that also starts
/// earlier in `bytes` (it may overlap `at`, as in `abcabcabc`).
fn longest_earlier_repeat(bytes: &[u8], at: usize) -> Option<usize> {
    let rest = bytes.get(at..)?;
    let longest = (0..at)
        .map(|start| {
            let earlier = bytes.get(start..).unwrap_or_default();
            earlier.iter().zip(rest).take_while(|(a, b)| a == b).count()
        })
        .max()
        .unwrap_or(0);
    (longest >= 3).then_some(longest)
}
