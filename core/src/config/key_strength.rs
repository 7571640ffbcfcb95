//! Key material checked as a whole when a configuration loads: every secret, API key,
//! publishable key and client secret must be strong on its own, and no two may be equal or
//! contain one another (a secret equal to a publishable key would let anyone mint tokens).
//! Problems are described without quoting the value.

/// The estimated strength below which a secret or key is refused, in bits.
pub const MIN_BITS: u32 = 128;

/// Estimates are summed in thousandths of a bit (integers keep float code out of the module).
const MILLI: u32 = 1000;

/// Secrets and keys from the public JWT wordlists (jwt_tool's `jwt-common.txt`, the
/// `jwt.secrets.list` of wallarm/jwt-secrets) and from tutorials, long enough to pass the
/// length rules; compared ignoring case.
const WELL_KNOWN: &[&str] = &[
    "12345678901234567890123456789012",
    "00000000000000000000000000000000",
    "your-256-bit-secret-your-256-bit",
    "your-super-secret-jwt-token-with-at-least-32-characters-long",
    "super-secret-jwt-token-with-at-least-32-characters-long",
    "your-secret-key-change-in-production",
    "change-this-to-a-long-random-secret",
    "my-super-secret-key-that-is-long-enough",
    "supersecretkeythatshouldbechanged",
    "this-is-a-very-long-secret-key-for-jwt",
    "thisismysecretkeyforjwttoken",
    "your_jwt_secret_key_here_change_me",
    "your-very-secure-secret-key-here",
    "a-string-secret-at-least-256-bits-long",
    "qwertyuiopasdfghjklzxcvbnm123456",
    "abcdefghijklmnopqrstuvwxyz012345",
    "0123456789abcdefghijklmnopqrstuvwxyz",
    "gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
    "5367566B59703373367639792F423F4528482B4D6251655468576D5A71347437",
    "404E635266556A586E3272357538782F413F4428472B4B6250645367566B5970",
    "SkVYp3s6v9y/B?E(H+MbQeThWmZq4t7w",
    "this-is-a-generic-HS256-secret-key-and-you-should-really-change-it",
    "the quick brown fox jumps over the lazy dog",
    "correct horse battery staple",
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
];

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

/// Words that placeholder and tutorial secrets are made of; each is worth [`WORD_BITS`].
const PLACEHOLDER_WORDS: &[&str] = &[
    "secret",
    "password",
    "passwd",
    "change",
    "changeme",
    "your",
    "here",
    "replace",
    "example",
    "sample",
    "placeholder",
    "default",
    "token",
    "key",
    "signing",
    "private",
    "super",
    "make",
    "secure",
    "long",
    "enough",
    "characters",
    "chars",
    "bit",
    "bits",
    "this",
    "that",
    "with",
    "least",
    "min",
    "jwt",
    "demo",
    "test",
    "production",
    "prod",
    "development",
    "dev",
    "admin",
    "user",
    "value",
    "string",
    "random",
    "supabase",
    "auth",
    "api",
    "hmac",
    "sha",
    "256",
    "512",
    "1234",
    "qwerty",
    "letmein",
    "welcome",
    "abc",
    // Common words of four letters or more (a famous phrase is a handful of words).
    "about",
    "after",
    "again",
    "also",
    "always",
    "another",
    "because",
    "been",
    "before",
    "being",
    "between",
    "both",
    "could",
    "does",
    "down",
    "each",
    "even",
    "every",
    "first",
    "from",
    "give",
    "good",
    "great",
    "have",
    "hello",
    "home",
    "into",
    "just",
    "know",
    "last",
    "life",
    "like",
    "little",
    "look",
    "love",
    "made",
    "many",
    "master",
    "more",
    "most",
    "much",
    "must",
    "name",
    "never",
    "next",
    "only",
    "other",
    "over",
    "people",
    "place",
    "right",
    "same",
    "should",
    "show",
    "some",
    "still",
    "such",
    "take",
    "than",
    "them",
    "then",
    "there",
    "these",
    "they",
    "thing",
    "think",
    "those",
    "three",
    "through",
    "time",
    "under",
    "very",
    "want",
    "water",
    "well",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "will",
    "word",
    "work",
    "world",
    "would",
    "write",
    "year",
    "quick",
    "brown",
    "jumps",
    "lazy",
    "lorem",
    "ipsum",
    "dolor",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "correct",
    "horse",
    "battery",
    "staple",
    "dragon",
    "monkey",
    "football",
    "baseball",
    "shadow",
    "sunshine",
    "princess",
    "access",
    "login",
    "system",
    "server",
    "service",
    "config",
    "local",
    "cloud",
    "data",
    "pass",
    "root",
    "temp",
    "really",
    "should",
    "generic",
    // Keyboard walks.
    "asdf",
    "zxcv",
    "1qaz",
    "2wsx",
    "3edc",
    "4rfv",
    "5tgb",
    "6yhn",
    "7ujm",
    "8ik,",
    "9ol.",
    "zaq1",
    "xsw2",
    "cde3",
    "vfr4",
    "bgt5",
    "nhy6",
    "mju7",
    "zaq12",
    "wsxcde",
    "34rfv",
    "bgt56",
    "yhnmju",
    "78ik",
];

/// What a placeholder word costs an attacker who tries a dictionary (about 2^7 words).
const WORD_BITS: u32 = 7 * MILLI;

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
fn milli_log2(alphabet: u32) -> u32 {
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
mod tests {
    use super::*;

    #[test]
    fn logarithms_of_every_alphabet() {
        for mask in 1u32..16 {
            let sizes = [26, 26, 10, 33];
            let alphabet: u32 = (0..4)
                .filter(|b| mask & (1 << b) != 0)
                .map(|b| sizes[b])
                .sum();
            let exact = (f64::from(alphabet).log2() * 1000.0).round() as u32;
            assert!(milli_log2(alphabet).abs_diff(exact) <= 1, "{alphabet}");
        }
    }

    #[test]
    fn weak_material_is_refused() {
        for weak in [
            "12345678901234567890123456789012",
            "abcdefghabcdefghabcdefghabcdefgh",
            "aaaaaaaaaaaaaaaaaaaaaaaa",
            "0123456789abcdefghijklmnopqrstu",
            "your-super-secret-jwt-token-with-at-least-32-characters-long",
            "abababababababababababababababab",
            "xyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyz",
            // Found by an outside attack on the first version of these rules.
            "secretkeysecretkeysecretkeysecretkey1",
            "mysecretkeymysecretkeymysecretkeyX",
            "changemechangemechangemechangeme12",
            "Password1Password2Password3Password4",
            "your-256-bit-secret-key-here-make-it-secure",
            "your-256-bit-secret-min-32-chars-long-change-this",
            "your-256-bit-secret-your-256-bit!",
            "super-secret-jwt-token-with-at-least-32-characters-long!",
            "5367566B59703373367639792F423F4528482B4D6251655468576D5A71347437",
            "404E635266556A586E3272357538782F413F4428472B4B6250645367566B5970",
            "acegikmoqsuwy02468bdfhjlnprtvxz13579",
            // Found by a third outside attack, and by the attack on the sign-in service.
            "this-is-a-generic-HS256-secret-key-and-you-should-really-change-it",
            "SkVYp3s6v9y/B?E(H+MbQeThWmZq4t7w1",
            "cGFzc3dvcmQxMjNwYXNzd29yZDEyMw==",
            "aeimquyCGKOSW048<@DHLPTX`dhlptx|",
            "the quick brown fox jumps over the lazy dog",
            "Lorem ipsum dolor sit amet, consectetur adipiscing",
            "correct horse battery staple correct",
            // Found by a fourth: prose, interleaved steps, keyboard walks.
            "To be, or not to be, that is the question:",
            "It was the best of times, it was the worst of times",
            "Four score and seven years ago our fathers brought forth",
            "All work and no play makes Jack a dull boy.",
            "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8",
            "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
            "zaq12wsxcde34rfvbgt56yhnmju78ik,lo9",
        ] {
            assert!(check_strength(weak).is_err(), "{weak}");
        }
    }

    #[test]
    fn random_material_passes() {
        for strong in [
            "q7Fz-2mLx9Rv_T4kWp1Nc8Hs3Bd6Yg0J",
            "sk_live_9fK2mQx7Lr4Tz8Wc1Vb6Nh3Pd5",
            "Zr4Qm8Vn2Lp6Xw1Ty9Hs3Kd7Bf5Gj0Ae",
            "Vb3xK9qL2mW7pR4tY8nZ1cF6hJ5sD0gA",
        ] {
            assert_eq!(check_strength(strong), Ok(()), "{strong}");
        }
    }

    #[test]
    fn periods() {
        assert_eq!(shortest_period(b"abcabcabc"), 3);
        assert_eq!(shortest_period(b"abcabcab"), 8);
        assert_eq!(shortest_period(b"aaaa"), 1);
        assert_eq!(shortest_period(b"abcd"), 4);
        assert_eq!(shortest_period(b""), 0);
    }

    #[test]
    fn overlaps() {
        let a: &[u8] = b"first-key-material-0123";
        let b: &[u8] = b"xx-first-key-material-0123-yy";
        let c: &[u8] = b"unrelated-material-9876";
        assert_eq!(
            first_overlap(&[("secrets[0]", a), ("api_keys[0]", c)]),
            None
        );
        assert_eq!(
            first_overlap(&[("secrets[0]", a), ("api_keys[0]", c), ("clients[0]", b)]),
            Some(("clients[0]", "secrets[0]"))
        );
        assert_eq!(
            first_overlap(&[("secrets[0]", a), ("publishable_keys[0]", a)]),
            Some(("publishable_keys[0]", "secrets[0]"))
        );
    }
}
