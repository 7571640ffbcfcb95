//! Host-scoped rules: the host names a rule is limited to, and how specific a match is.

use crate::request::host::is_host_name;

/// One configured host: a name (`api.example.com`) or every name below a suffix
/// (`*.example.com`, kept as `.example.com`). Lower case, no port, no trailing dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    Below(String),
}

/// How specific the rule of a host that matches without `hosts` is.
pub(crate) const EVERY_HOST: u32 = 0;
/// An exact host ranks above any wildcard (a wildcard's rank is its suffix's length + 1).
const EXACT_HOST: u32 = 1024;

impl HostPattern {
    /// Parses a configured host; `None` when it is not a lower-case host name or `*.suffix`.
    pub fn parse(text: &str) -> Option<HostPattern> {
        match text.strip_prefix("*.") {
            Some(suffix) => is_host_name(suffix).then(|| HostPattern::Below(format!(".{suffix}"))),
            None => is_host_name(text).then(|| HostPattern::Exact(text.to_owned())),
        }
    }

    /// How specific this pattern is for `host` (a read host), `None` when it does not match.
    fn rank(&self, host: &str) -> Option<u32> {
        match self {
            HostPattern::Exact(name) => (name == host).then_some(EXACT_HOST),
            HostPattern::Below(suffix) => (host.len() > suffix.len() && host.ends_with(suffix))
                .then(|| u32::try_from(suffix.len()).map_or(EXACT_HOST - 1, |n| n + 1)),
        }
    }

    /// The configuration spelling.
    pub fn describe(&self) -> String {
        match self {
            HostPattern::Exact(name) => name.clone(),
            HostPattern::Below(suffix) => format!("*{suffix}"),
        }
    }

    /// A host this pattern matches: itself, or a label before the suffix.
    pub(crate) fn example(&self) -> String {
        match self {
            HostPattern::Exact(name) => name.clone(),
            HostPattern::Below(suffix) => format!("a{suffix}"),
        }
    }
}

/// How specific a rule limited to `hosts` (`None`: every host) is for `host`; `None` when the
/// rule does not apply to it. Several patterns matching: the most specific counts.
pub(crate) fn rank(hosts: Option<&[HostPattern]>, host: &str) -> Option<u32> {
    match hosts {
        None => Some(EVERY_HOST),
        Some(patterns) => patterns.iter().filter_map(|p| p.rank(host)).max(),
    }
}

/// Whether two rules' hosts (`None`: every host) would tie for some host: they name the same
/// pattern (an exact name outranks a wildcard, a longer suffix a shorter one).
pub(crate) fn overlap(a: Option<&[HostPattern]>, b: Option<&[HostPattern]>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.iter().any(|p| b.contains(p)),
        _ => false,
    }
}
