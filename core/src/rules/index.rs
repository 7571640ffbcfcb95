//! Rules indexed by one spelling of their paths, and the lookup of the most specific one.

use std::collections::HashMap;

use rustc_hash::FxBuildHasher;

use super::hosts;
use super::{Matcher, Policy, Rule};

/// What a lookup is asked besides the path: the request's host (empty: a host no rule names)
/// and one method it may be served as.
#[derive(Debug, Clone, Copy)]
pub(super) struct Asked<'a> {
    pub(super) host: &'a str,
    pub(super) method: &'a [u8],
}

/// Positions in the rules, the host-limited ones first, then the method-limited ones.
pub(super) type Candidates = Vec<usize>;

/// The rules whose path spells one key, one list per path as configured: under case folding
/// `/Admin` and `/admin` share a key, and each keeps its own most-specific choice.
type Spellings = Vec<(String, Candidates)>;

/// Rules by path (exact) and by prefix, each spelled by one function of the configured path.
///
/// A lookup costs one hash per exact path and one per distinct prefix length: linear in the
/// path's length.
#[derive(Debug, Clone, Default)]
pub(super) struct Index {
    exact: HashMap<String, Spellings, FxBuildHasher>,
    prefixes: HashMap<String, Spellings, FxBuildHasher>,
    /// The lengths of the keys of `prefixes`, longest first.
    prefix_lengths: Vec<usize>,
}

impl Index {
    /// Indexes every rule but those for `/` under `spell(path)`.
    pub(super) fn new(rules: &[Rule], spell: impl Fn(&str) -> String) -> Self {
        let mut index = Index::default();
        for (position, rule) in rules.iter().enumerate() {
            let (map, path) = match &rule.matcher {
                Matcher::Exact(p) => (&mut index.exact, p),
                Matcher::Prefix(p) if p == "/" => continue,
                Matcher::Prefix(p) => (&mut index.prefixes, p),
            };
            let spellings = map.entry(spell(path)).or_default();
            match spellings.iter_mut().find(|(original, _)| original == path) {
                Some((_, list)) => list.push(position),
                None => spellings.push((path.clone(), vec![position])),
            }
        }
        let order = |spellings: &mut Spellings| {
            for (_, list) in spellings.iter_mut() {
                order_candidates(rules, list);
            }
        };
        index.exact.values_mut().for_each(order);
        index.prefixes.values_mut().for_each(order);
        index.prefix_lengths = index.prefixes.keys().map(String::len).collect();
        index.prefix_lengths.sort_unstable_by(|a, b| b.cmp(a));
        index.prefix_lengths.dedup();
        index
    }

    /// The policy of an exact rule for `path`, else of the longest prefix on a segment
    /// boundary; `None` when no rule applies. Spellings sharing the key give the strictest.
    pub(super) fn lookup<'r>(
        &self,
        rules: &'r [Rule],
        at: &Asked<'_>,
        path: &str,
    ) -> Option<Policy<'r>> {
        if let Some(found) = strictest_spelling(rules, self.exact.get(path), at) {
            return Some(found);
        }
        for &len in &self.prefix_lengths {
            let on_boundary = len == path.len() || path.as_bytes().get(len) == Some(&b'/');
            if let (true, Some(candidate)) = (on_boundary, path.get(..len)) {
                let found = strictest_spelling(rules, self.prefixes.get(candidate), at);
                if found.is_some() {
                    return found;
                }
            }
        }
        None
    }
}

/// Puts the host-limited rules first, then the method-limited ones: a rule limited to neither
/// comes last, and is the least specific.
pub(super) fn order_candidates(rules: &[Rule], list: &mut Candidates) {
    list.sort_by_key(|&i| {
        rules
            .get(i)
            .map(|r| (r.hosts.is_none(), r.methods.is_none()))
    });
}

fn strictest_spelling<'r>(
    rules: &'r [Rule],
    spellings: Option<&Spellings>,
    at: &Asked<'_>,
) -> Option<Policy<'r>> {
    match spellings?.as_slice() {
        [(_, list)] => applying(rules, list, at),
        several => several
            .iter()
            .filter_map(|(_, list)| applying(rules, list, at))
            .reduce(Policy::strictest),
    }
}

/// The policy of the most specific rules among `candidates` that apply to `host` and
/// `method`: a rule for the exact host over one for a wildcard (the longer suffix first) over
/// one without hosts; at the same host, the strictest of the method-limited ones that name the
/// method (a rule for `GET` also covers `HEAD`) over the one without methods. `None` when none
/// applies. Linear in the candidates; the host is compared only by rules that name hosts.
pub(super) fn applying<'r>(
    rules: &'r [Rule],
    candidates: &Candidates,
    at: &Asked<'_>,
) -> Option<Policy<'r>> {
    // Most often the first candidate is limited to neither hosts nor methods: it comes last in
    // the order (see `order_candidates`), so it is the only one and applies.
    match candidates.first().and_then(|&i| rules.get(i)) {
        Some(rule) if rule.hosts.is_none() && rule.methods.is_none() => Some(rule.policy()),
        _ => most_specific(rules, candidates, at),
    }
}

/// [`applying`] when the first candidate is limited to hosts or methods.
#[inline(never)]
fn most_specific<'r>(
    rules: &'r [Rule],
    candidates: &Candidates,
    &Asked { host, method }: &Asked<'_>,
) -> Option<Policy<'r>> {
    let mut best: Option<((u32, bool), Policy<'r>)> = None;
    for rule in candidates.iter().filter_map(|&i| rules.get(i)) {
        let limited = match &rule.methods {
            Some(methods) if methods.iter().any(|m| covers(m, method)) => true,
            Some(_) => continue,
            None => false,
        };
        let host_rank = match &rule.hosts {
            // Last in the order (see `order_candidates`): what came before is more specific.
            None if !limited => return best.map(|(_, p)| p).or_else(|| Some(rule.policy())),
            None => hosts::EVERY_HOST,
            Some(patterns) => match hosts::rank(Some(patterns), host) {
                Some(rank) => rank,
                None => continue,
            },
        };
        let rank = (host_rank, limited);
        let policy = rule.policy();
        best = match best {
            Some((other_rank, other)) if other_rank > rank => Some((other_rank, other)),
            Some((other_rank, other)) if other_rank == rank => {
                Some((rank, Policy::strictest(other, policy)))
            }
            _ => Some((rank, policy)),
        };
    }
    best.map(|(_, policy)| policy)
}

/// Whether a rule naming `configured` (upper case) applies to `method`: the same method, or
/// `GET` for `HEAD` (servers answer `HEAD` with the `GET` handler).
fn covers(configured: &str, method: &[u8]) -> bool {
    configured.as_bytes() == method || (configured == "GET" && method == b"HEAD")
}
