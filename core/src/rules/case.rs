//! Case as a reading of a path: many servers match paths case-insensitively (Express and Koa
//! by default, ASP.NET Core, IIS, Envoy routes with `case_sensitive: false`), so a rule's path
//! also covers the request's path under case folding, and the strictest answer wins.
//!
//! ASCII letters fold to lower case. Four characters outside ASCII have a simple case mapping
//! onto an ASCII letter, and some servers fold them with it: each is folded in one reading and
//! not in another, so that whichever a server folds, its answer is among those read.

use super::index::Index;
use super::Matcher;
use super::Rule;

/// Characters outside ASCII whose simple case mapping is an ASCII letter, as a normal path
/// spells them (percent-encoded UTF-8, upper-case hex), and that letter in lower case.
const SPECIALS: [(&[u8], u8); 4] = [
    // U+0130 LATIN CAPITAL LETTER I WITH DOT ABOVE: lower case `i` (Java's equalsIgnoreCase).
    (b"%C4%B0", b'i'),
    // U+0131 LATIN SMALL LETTER DOTLESS I: upper case `I` (ICU, Java).
    (b"%C4%B1", b'i'),
    // U+017F LATIN SMALL LETTER LONG S: upper case `S` (.NET OrdinalIgnoreCase, Java, Go).
    (b"%C5%BF", b's'),
    // U+212A KELVIN SIGN: lower case `k` (Java, Go's EqualFold).
    (b"%E2%84%AA", b'k'),
];

/// What a path holds that folding changes: an upper-case ASCII letter outside an escape, and
/// which of [`SPECIALS`] (a bit each).
fn foldable(path: &str) -> (bool, u8) {
    let bytes = path.as_bytes();
    let mut upper = false;
    let mut kinds = 0u8;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let rest = bytes.get(i..).unwrap_or_default();
            for (bit, (spelling, _)) in SPECIALS.iter().enumerate() {
                if rest.starts_with(spelling) {
                    kinds |= 1 << bit;
                }
            }
            i += 3;
        } else {
            upper |= b.is_ascii_uppercase();
            i += 1;
        }
    }
    (upper, kinds)
}

/// `path` with ASCII letters outside escapes in lower case and the [`SPECIALS`] named by
/// `kinds` replaced by their letter.
pub(super) fn fold(path: &str, kinds: u8) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'%' {
            out.push(b.to_ascii_lowercase());
            i += 1;
            continue;
        }
        let rest = bytes.get(i..).unwrap_or_default();
        let special = SPECIALS
            .iter()
            .enumerate()
            .find(|(bit, (spelling, _))| kinds & (1 << bit) != 0 && rest.starts_with(spelling));
        match special {
            Some((_, (spelling, letter))) => {
                out.push(*letter);
                i += spelling.len();
            }
            None => {
                let escape = rest.get(..3).unwrap_or(rest);
                out.extend_from_slice(escape);
                i += escape.len();
            }
        }
    }
    // Only ASCII bytes were changed, into ASCII bytes: the text stays UTF-8.
    String::from_utf8(out).unwrap_or_else(|_| path.to_owned())
}

/// The rules indexed by their folded paths, one index per set of [`SPECIALS`] folded.
#[derive(Debug, Clone, Default)]
pub(super) struct CaseIndexes {
    /// By the [`SPECIALS`] folded (a subset of `rule_kinds`).
    by_kinds: Vec<(u8, Index)>,
    /// The [`SPECIALS`] some rule's path holds.
    rule_kinds: u8,
    /// Whether some rule's path changes when folded.
    rules_fold: bool,
}

impl CaseIndexes {
    pub(super) fn new(rules: &[Rule]) -> Self {
        let mut rules_fold = false;
        let mut rule_kinds = 0;
        for rule in rules {
            let (Matcher::Exact(path) | Matcher::Prefix(path)) = &rule.matcher;
            let (upper, kinds) = foldable(path);
            rules_fold |= upper || kinds != 0;
            rule_kinds |= kinds;
        }
        let by_kinds = submasks(rule_kinds)
            .map(|kinds| (kinds, Index::new(rules, |p| fold(p, kinds))))
            .collect();
        CaseIndexes {
            by_kinds,
            rule_kinds,
            rules_fold,
        }
    }

    /// Each folded reading of `path` with the index to look it up in; none when neither the
    /// path nor any rule has anything to fold (the folded lookup would be the literal one).
    pub(super) fn readings(&self, path: &str) -> Vec<(&Index, String)> {
        // One pass the compiler vectorises decides for most paths: no capital, no escape.
        let maybe = path
            .bytes()
            .fold(false, |seen, b| seen | b.is_ascii_uppercase() | (b == b'%'));
        if !maybe && !self.rules_fold {
            return Vec::new();
        }
        let (upper, path_kinds) = foldable(path);
        if !upper && path_kinds == 0 && !self.rules_fold {
            return Vec::new();
        }
        submasks(path_kinds | self.rule_kinds)
            .filter_map(|kinds| {
                let rule_kinds = kinds & self.rule_kinds;
                let index = self
                    .by_kinds
                    .iter()
                    .find(|(k, _)| *k == rule_kinds)
                    .map(|(_, index)| index)?;
                Some((index, fold(path, kinds & path_kinds)))
            })
            .collect()
    }
}

/// Every subset of the bits of `mask`, the empty one first.
fn submasks(mask: u8) -> impl Iterator<Item = u8> {
    (0..=mask).filter(move |m| m & !mask == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_lowers_ascii_letters_outside_escapes() {
        assert_eq!(fold("/API/Orders%C3%A9", 0), "/api/orders%C3%A9");
        assert_eq!(fold("/adm%C4%B1n", 0), "/adm%C4%B1n");
        assert_eq!(fold("/adm%C4%B1n", 0b10), "/admin");
        assert_eq!(fold("/%E2%84%AAey/%C5%BFecret", 0b1100), "/key/secret");
        assert_eq!(
            fold("/a%", 0),
            "/a%",
            "text that is not normal is folded as it is"
        );
    }

    #[test]
    fn what_a_path_holds_to_fold() {
        assert_eq!(foldable("/api/orders%C3%A9"), (false, 0));
        assert_eq!(
            foldable("/api/%C3%89"),
            (false, 0),
            "escapes are not letters"
        );
        assert_eq!(foldable("/Api"), (true, 0));
        assert_eq!(foldable("/%C4%B0%C4%B1%C5%BF%E2%84%AA"), (false, 0b1111));
    }

    #[test]
    fn every_subset() {
        assert_eq!(submasks(0).collect::<Vec<_>>(), [0]);
        assert_eq!(submasks(0b101).collect::<Vec<_>>(), [0, 1, 4, 5]);
    }
}
