//! Path rules: which mode (and which roles) applies to a request.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::identity::role;
use crate::request::path::Readings;
use rustc_hash::FxBuildHasher;

/// How a path is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// Never checked.
    None,
    /// Anonymous requests pass; credentials that are sent must be valid.
    Optional,
    /// A valid credential with an allowed role is needed.
    Required,
}

impl Mode {
    /// The configuration spelling of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Optional => "optional",
            Mode::Required => "required",
        }
    }

    /// Parses the configuration spelling of a mode.
    pub fn parse(text: &str) -> Option<Mode> {
        match text {
            "none" => Some(Mode::None),
            "optional" => Some(Mode::Optional),
            "required" => Some(Mode::Required),
            _ => None,
        }
    }
}

/// What a rule matches on the normalised path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// Exactly this path.
    Exact(String),
    /// This path and everything below it, on segment boundaries.
    Prefix(String),
}

/// One configured rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Position in the configuration's `rules`, for logs.
    pub index: usize,
    pub matcher: Matcher,
    /// When set, the rule applies only to these methods.
    pub methods: Option<Vec<String>>,
    pub mode: Mode,
    /// Roles that may pass a `required` rule.
    pub roles: Vec<String>,
}

impl Rule {
    /// The rule's path as configured: `path /x` or `prefix /x`, with its methods if any.
    pub fn describe(&self) -> String {
        let mut text = match &self.matcher {
            Matcher::Exact(p) => format!("path {p}"),
            Matcher::Prefix(p) => format!("prefix {p}"),
        };
        if let Some(methods) = &self.methods {
            text.push_str(&format!(" methods {}", methods.join(",")));
        }
        text
    }

    /// Whether two rules would tie for the same request.
    pub(crate) fn conflicts_with(&self, other: &Rule) -> bool {
        if self.matcher != other.matcher {
            return false;
        }
        match (&self.methods, &other.methods) {
            (None, None) => true,
            (Some(a), Some(b)) => a.iter().any(|m| b.contains(m)),
            _ => false,
        }
    }
}

/// The protection that applies to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy<'r> {
    pub mode: Mode,
    /// Roles that may pass when the mode is `required` (borrowed from the rule).
    pub roles: Cow<'r, [String]>,
    /// The configuration index of the deciding rule; `None` for the default mode.
    pub rule: Option<usize>,
}

impl Policy<'_> {
    /// Whether a caller with `role` passes this policy.
    pub fn allows_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// The stricter of two policies; two `required` policies allow only the roles both allow.
    fn strictest<'r>(a: Policy<'r>, b: Policy<'r>) -> Policy<'r> {
        match a.mode.cmp(&b.mode) {
            std::cmp::Ordering::Less => b,
            std::cmp::Ordering::Greater => a,
            std::cmp::Ordering::Equal if a.mode == Mode::Required => {
                let roles: Vec<String> = a
                    .roles
                    .iter()
                    .filter(|r| b.roles.contains(r))
                    .cloned()
                    .collect();
                Policy {
                    mode: Mode::Required,
                    roles: Cow::Owned(roles),
                    rule: a.rule.or(b.rule),
                }
            }
            std::cmp::Ordering::Equal => a,
        }
    }
}

/// The roles a `required` rule allows when it names none.
pub(crate) fn default_roles() -> Vec<String> {
    vec![role::USER.to_owned(), role::ADMIN.to_owned()]
}

/// Positions in `rules`, the method-limited ones first.
type Candidates = Vec<usize>;

/// The rules, indexed for lookup by path, and the mode of paths no rule matches.
///
/// A request costs one lookup for an exact path and one per distinct prefix length configured,
/// however long the path: linear in its length.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<Rule>,
    exact: HashMap<String, Candidates, FxBuildHasher>,
    prefixes: HashMap<String, Candidates, FxBuildHasher>,
    /// The lengths of the keys of `prefixes`, longest first.
    prefix_lengths: Vec<usize>,
    root: Candidates,
    default_mode: Mode,
    default_roles: Vec<String>,
}

impl RuleSet {
    /// Builds the set; the caller has refused conflicting rules.
    pub fn new(rules: Vec<Rule>, default_mode: Mode) -> Self {
        let mut set = RuleSet {
            rules,
            exact: HashMap::default(),
            prefixes: HashMap::default(),
            prefix_lengths: Vec::new(),
            root: Vec::new(),
            default_mode,
            default_roles: if default_mode == Mode::Required {
                default_roles()
            } else {
                Vec::new()
            },
        };
        for (position, rule) in set.rules.iter().enumerate() {
            let slot = match &rule.matcher {
                Matcher::Exact(p) => set.exact.entry(p.clone()).or_default(),
                Matcher::Prefix(p) if p == "/" => &mut set.root,
                Matcher::Prefix(p) => set.prefixes.entry(p.clone()).or_default(),
            };
            slot.push(position);
        }
        let rules = &set.rules;
        let order = |list: &mut Candidates| {
            list.sort_by_key(|&i| rules.get(i).is_none_or(|r| r.methods.is_none()))
        };
        set.exact.values_mut().for_each(order);
        set.prefixes.values_mut().for_each(order);
        order(&mut set.root);
        set.prefix_lengths = set.prefixes.keys().map(String::len).collect();
        set.prefix_lengths.sort_unstable_by(|a, b| b.cmp(a));
        set.prefix_lengths.dedup();
        set
    }

    /// The rule at configuration index `index`.
    pub fn rule(&self, index: usize) -> Option<&Rule> {
        self.rules.get(index)
    }

    /// The mode of paths no rule matches.
    pub fn default_mode(&self) -> Mode {
        self.default_mode
    }

    /// Whether any path can be `required`.
    pub(crate) fn any_required(&self) -> bool {
        let root_rule_covers_all = self
            .rules
            .iter()
            .any(|r| r.methods.is_none() && r.matcher == Matcher::Prefix("/".into()));
        (self.default_mode == Mode::Required && !root_rule_covers_all)
            || self.rules.iter().any(|r| r.mode == Mode::Required)
    }

    /// The policy of the rules among `candidates` that apply to `method`: the strictest of the
    /// method-limited ones that name it (a rule for `GET` also covers `HEAD`), else the one
    /// without methods; `None` when none applies.
    fn applying(&self, candidates: Option<&Candidates>, method: &[u8]) -> Option<Policy<'_>> {
        let mut limited: Option<Policy<'_>> = None;
        for rule in candidates?.iter().filter_map(|&i| self.rules.get(i)) {
            match &rule.methods {
                Some(methods) if methods.iter().any(|m| covers(m, method)) => {
                    let policy = rule.policy();
                    limited = Some(match limited {
                        Some(other) => Policy::strictest(other, policy),
                        None => policy,
                    });
                }
                Some(_) => {}
                None => return limited.or_else(|| Some(rule.policy())),
            }
        }
        limited
    }

    /// The policy for one normalised path: an exact rule, else the longest prefix on a
    /// segment boundary, else a rule for `/`, else the default mode.
    pub fn policy(&self, method: &[u8], path: &str) -> Policy<'_> {
        let mut found = self.applying(self.exact.get(path), method);
        for &len in &self.prefix_lengths {
            if found.is_some() {
                break;
            }
            let on_boundary = len == path.len() || path.as_bytes().get(len) == Some(&b'/');
            if let (true, Some(candidate)) = (on_boundary, path.get(..len)) {
                found = self.applying(self.prefixes.get(candidate), method);
            }
        }
        found
            .or_else(|| self.applying(Some(&self.root), method))
            .unwrap_or_else(|| Policy {
                mode: self.default_mode,
                roles: Cow::Borrowed(&self.default_roles),
                rule: None,
            })
    }

    /// The strictest policy over every reading of a path and every method the request may be
    /// served as. A reading with a trailing slash is also read without it (`/admin/` as
    /// `/admin`), as many upstreams route both alike.
    pub fn policy_for_request(&self, methods: &[&[u8]], readings: &Readings<'_>) -> Policy<'_> {
        let mut strictest: Option<Policy<'_>> = None;
        for method in methods {
            for reading in readings.iter() {
                let policy = self.policy_for_path(method, reading);
                strictest = Some(match strictest {
                    Some(other) => Policy::strictest(other, policy),
                    None => policy,
                });
            }
        }
        // A request always has a method; were the list ever empty, the answer is the
        // strictest there is.
        strictest.unwrap_or_else(|| Policy {
            mode: Mode::Required,
            roles: Cow::Owned(Vec::new()),
            rule: None,
        })
    }

    /// The stricter policy of a normalised path and of the path without its trailing slash.
    pub fn policy_for_path(&self, method: &[u8], path: &str) -> Policy<'_> {
        let policy = self.policy(method, path);
        match path.strip_suffix('/').filter(|bare| !bare.is_empty()) {
            Some(bare) => Policy::strictest(policy, self.policy(method, bare)),
            None => policy,
        }
    }

    /// [`RuleSet::policy_for_request`] for one method.
    pub fn policy_for_readings(&self, method: &[u8], readings: &Readings<'_>) -> Policy<'_> {
        self.policy_for_request(&[method], readings)
    }
}

/// Whether a rule naming `configured` (upper case) applies to `method`: the same method, or
/// `GET` for `HEAD` (servers answer `HEAD` with the `GET` handler).
fn covers(configured: &str, method: &[u8]) -> bool {
    configured.as_bytes() == method || (configured == "GET" && method == b"HEAD")
}

impl Rule {
    fn policy(&self) -> Policy<'_> {
        Policy {
            mode: self.mode,
            roles: Cow::Borrowed(&self.roles),
            rule: Some(self.index),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(index: usize, matcher: Matcher, methods: Option<&[&str]>, mode: Mode) -> Rule {
        Rule {
            index,
            matcher,
            methods: methods.map(|m| m.iter().map(|s| s.to_string()).collect()),
            mode,
            roles: if mode == Mode::Required {
                default_roles()
            } else {
                Vec::new()
            },
        }
    }

    fn exact(p: &str) -> Matcher {
        Matcher::Exact(p.into())
    }

    fn prefix(p: &str) -> Matcher {
        Matcher::Prefix(p.into())
    }

    fn sample() -> RuleSet {
        RuleSet::new(
            vec![
                rule(0, prefix("/public"), None, Mode::None),
                rule(1, exact("/login"), None, Mode::None),
                rule(2, prefix("/feed"), None, Mode::Optional),
                rule(3, prefix("/public/private"), None, Mode::Required),
                rule(4, exact("/public/private/open"), None, Mode::None),
                rule(5, prefix("/feed"), Some(&["POST"]), Mode::Required),
                rule(6, prefix("/"), Some(&["OPTIONS"]), Mode::None),
            ],
            Mode::Required,
        )
    }

    #[test]
    fn most_specific_rule_wins_whatever_the_order() {
        let set = sample();
        let cases: &[(&str, &str, Mode, Option<usize>)] = &[
            ("GET", "/public", Mode::None, Some(0)),
            ("GET", "/public/", Mode::None, Some(0)),
            ("GET", "/public/x/y", Mode::None, Some(0)),
            ("GET", "/publicity", Mode::Required, None),
            ("GET", "/public-admin/x", Mode::Required, None),
            ("GET", "/public..", Mode::Required, None),
            ("GET", "/login", Mode::None, Some(1)),
            ("GET", "/login/", Mode::Required, None),
            ("GET", "/login/x", Mode::Required, None),
            ("GET", "/feed/x", Mode::Optional, Some(2)),
            ("POST", "/feed/x", Mode::Required, Some(5)),
            ("GET", "/public/private/x", Mode::Required, Some(3)),
            ("GET", "/public/private/open", Mode::None, Some(4)),
            ("GET", "/public/private/open/x", Mode::Required, Some(3)),
            ("OPTIONS", "/api", Mode::None, Some(6)),
            ("GET", "/api", Mode::Required, None),
            ("GET", "/", Mode::Required, None),
        ];
        for (method, path, mode, rule) in cases {
            let p = set.policy(method.as_bytes(), path);
            assert_eq!((p.mode, p.rule), (*mode, *rule), "{method} {path}");
        }
    }

    #[test]
    fn strictest_reading_wins() {
        let set = sample();
        assert_eq!(
            set.policy_for_readings(b"GET", &Readings::listed("/public/x", &["/admin"]))
                .mode,
            Mode::Required
        );
        assert_eq!(
            set.policy_for_readings(b"GET", &Readings::listed("/public/x", &["/feed/y"]))
                .mode,
            Mode::Optional
        );
    }

    #[test]
    fn a_trailing_slash_is_also_read_without_it() {
        let set = RuleSet::new(
            vec![
                rule(0, exact("/admin"), None, Mode::Required),
                rule(1, exact("/login"), None, Mode::None),
            ],
            Mode::None,
        );
        let mode = |p: &str| {
            set.policy_for_readings(b"GET", &Readings::listed(p, &[]))
                .mode
        };
        assert_eq!(mode("/admin/"), Mode::Required);
        assert_eq!(mode("/admin//"), Mode::None);
        assert_eq!(mode("/"), Mode::None);
        let strict = RuleSet::new(
            vec![rule(0, exact("/login"), None, Mode::None)],
            Mode::Required,
        );
        assert_eq!(
            strict
                .policy_for_readings(b"GET", &Readings::listed("/login/", &[]))
                .mode,
            Mode::Required,
            "never less strict than the literal path"
        );
    }

    #[test]
    fn two_required_readings_allow_only_common_roles() {
        let mut admin_only = rule(0, prefix("/admin"), None, Mode::Required);
        admin_only.roles = vec!["admin".into()];
        let set = RuleSet::new(vec![admin_only], Mode::Required);
        let p = set.policy_for_readings(b"GET", &Readings::listed("/admin/x", &["/other"]));
        assert_eq!(p.roles.to_vec(), vec!["admin".to_string()]);
        assert!(!p.allows_role("user"));
    }

    #[test]
    fn conflicts() {
        let a = rule(0, prefix("/a"), None, Mode::None);
        let b = rule(1, prefix("/a"), None, Mode::Required);
        let c = rule(2, prefix("/a"), Some(&["GET"]), Mode::Required);
        let d = rule(3, prefix("/a"), Some(&["GET", "POST"]), Mode::None);
        let e = rule(4, exact("/a"), None, Mode::None);
        assert!(a.conflicts_with(&b));
        assert!(!a.conflicts_with(&c));
        assert!(c.conflicts_with(&d));
        assert!(!a.conflicts_with(&e));
    }

    #[test]
    fn root_prefix_matches_everything() {
        let set = RuleSet::new(vec![rule(0, prefix("/"), None, Mode::None)], Mode::Required);
        assert_eq!(set.policy(b"GET", "/anything/x").mode, Mode::None);
        assert!(!set.any_required());
    }
}
