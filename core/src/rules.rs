//! Path rules: which mode (and which roles) applies to a request.

mod case;
mod index;

use std::borrow::Cow;

use crate::identity::role;
use crate::request::path::Readings;
use case::CaseIndexes;
use index::{applying, order_candidates, Candidates, Index};

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
    pub(crate) fn strictest<'r>(a: Policy<'r>, b: Policy<'r>) -> Policy<'r> {
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

/// The rules, indexed for lookup by path and by folded path, and the mode of paths no rule
/// matches.
///
/// A request costs one lookup for an exact path and one per distinct prefix length configured,
/// however long the path: linear in its length; twice that when its case may be read.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<Rule>,
    literal: Index,
    case: CaseIndexes,
    root: Candidates,
    default_mode: Mode,
    default_roles: Vec<String>,
}

impl RuleSet {
    /// Builds the set; the caller has refused conflicting rules.
    pub fn new(rules: Vec<Rule>, default_mode: Mode) -> Self {
        let mut root: Candidates = rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.matcher == Matcher::Prefix("/".into()))
            .map(|(position, _)| position)
            .collect();
        order_candidates(&rules, &mut root);
        RuleSet {
            literal: Index::new(&rules, str::to_owned),
            case: CaseIndexes::new(&rules),
            rules,
            root,
            default_mode,
            default_roles: if default_mode == Mode::Required {
                default_roles()
            } else {
                Vec::new()
            },
        }
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

    /// The policy for one normalised path, read as it is: an exact rule, else the longest
    /// prefix on a segment boundary, else a rule for `/`, else the default mode.
    pub fn policy(&self, method: &[u8], path: &str) -> Policy<'_> {
        self.policy_in(&self.literal, method, path)
    }

    fn policy_in(&self, index: &Index, method: &[u8], path: &str) -> Policy<'_> {
        index
            .lookup(&self.rules, method, path)
            .or_else(|| applying(&self.rules, &self.root, method))
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

    /// The strictest policy of a normalised path and of the path without its trailing slash,
    /// each read as it is and under case folding (a rule never loosens because of case).
    pub fn policy_for_path(&self, method: &[u8], path: &str) -> Policy<'_> {
        let mut policy = self.with_and_without_slash(&self.literal, method, path);
        for (index, folded) in self.case.readings(path) {
            let policy_folded = self.with_and_without_slash(index, method, &folded);
            policy = Policy::strictest(policy, policy_folded);
        }
        policy
    }

    fn with_and_without_slash(&self, index: &Index, method: &[u8], path: &str) -> Policy<'_> {
        let policy = self.policy_in(index, method, path);
        match path.strip_suffix('/').filter(|bare| !bare.is_empty()) {
            Some(bare) => Policy::strictest(policy, self.policy_in(index, method, bare)),
            None => policy,
        }
    }

    /// [`RuleSet::policy_for_request`] for one method.
    pub fn policy_for_readings(&self, method: &[u8], readings: &Readings<'_>) -> Policy<'_> {
        self.policy_for_request(&[method], readings)
    }
}

impl Rule {
    pub(crate) fn policy(&self) -> Policy<'_> {
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

    fn mode_and_roles(set: &RuleSet, method: &str, path: &str) -> (Mode, Vec<String>) {
        let p = set.policy_for_readings(method.as_bytes(), &Readings::listed(path, &[]));
        (p.mode, p.roles.to_vec())
    }

    #[test]
    fn case_is_a_reading_and_never_loosens() {
        let mut admin = rule(0, prefix("/admin"), None, Mode::Required);
        admin.roles = vec!["admin".into()];
        let set = RuleSet::new(
            vec![
                admin,
                rule(1, prefix("/API"), None, Mode::Required),
                rule(2, exact("/api/health"), None, Mode::None),
                rule(3, prefix("/items"), Some(&["DELETE"]), Mode::Required),
            ],
            Mode::None,
        );
        let admin_only = (Mode::Required, vec!["admin".to_string()]);
        for path in ["/ADMIN/users", "/Admin/", "/aDmIn", "/admin/x"] {
            assert_eq!(mode_and_roles(&set, "GET", path), admin_only, "{path}");
            assert_eq!(mode_and_roles(&set, "DELETE", path), admin_only, "{path}");
        }
        for path in ["/api/orders", "/Api", "/API/x"] {
            assert_eq!(
                mode_and_roles(&set, "GET", path).0,
                Mode::Required,
                "{path}"
            );
        }
        assert_eq!(mode_and_roles(&set, "GET", "/api/HEALTH").0, Mode::None);
        assert_eq!(mode_and_roles(&set, "DELETE", "/ITEMS/1").0, Mode::Required);
        assert_eq!(mode_and_roles(&set, "GET", "/ITEMS/1").0, Mode::None);
        let deny = RuleSet::new(
            vec![rule(0, prefix("/public"), None, Mode::None)],
            Mode::Required,
        );
        assert_eq!(mode_and_roles(&deny, "GET", "/public/x").0, Mode::None);
        assert_eq!(mode_and_roles(&deny, "GET", "/PUBLIC/x").0, Mode::Required);
    }

    #[test]
    fn spellings_that_fold_alike_give_the_strictest() {
        let mut admins = rule(0, prefix("/admin"), None, Mode::Required);
        admins.roles = vec!["admin".into()];
        let set = RuleSet::new(
            vec![admins, rule(1, prefix("/Admin"), None, Mode::Optional)],
            Mode::None,
        );
        for path in ["/admin", "/Admin/x", "/ADMIN"] {
            let p = set.policy_for_readings(b"GET", &Readings::listed(path, &[]));
            assert_eq!(p.roles.to_vec(), ["admin"], "{path}");
        }
    }

    #[test]
    fn letters_outside_ascii_that_fold_onto_ascii() {
        let set = RuleSet::new(
            vec![
                rule(0, prefix("/admin"), None, Mode::Required),
                rule(1, prefix("/keys"), None, Mode::Required),
                rule(2, prefix("/secret"), None, Mode::Required),
                rule(3, prefix("/w%C4%B1ki"), None, Mode::Required),
            ],
            Mode::None,
        );
        for path in [
            "/adm%C4%B1n",
            "/ADM%C4%B0N/x",
            "/%E2%84%AAEYS",
            "/%C5%BFecret",
            "/wiki",
            "/WIKI/x",
            "/w%C4%B0ki",
        ] {
            assert_eq!(
                mode_and_roles(&set, "GET", path).0,
                Mode::Required,
                "{path}"
            );
        }
        assert_eq!(mode_and_roles(&set, "GET", "/adm%C3%AFn").0, Mode::None);
        // A server folding the long s but not the dotless i routes to `/x/s`: every subset of
        // the characters is a reading.
        let partial = RuleSet::new(
            vec![
                rule(0, prefix("/x/s"), None, Mode::Required),
                rule(1, prefix("/x/s/i"), None, Mode::None),
            ],
            Mode::None,
        );
        assert_eq!(
            mode_and_roles(&partial, "GET", "/x/%C5%BF/%C4%B1").0,
            Mode::Required
        );
    }

    #[test]
    fn nothing_to_fold_costs_no_folded_lookup() {
        let set = sample();
        assert!(set.case.readings("/public/x%C3%A9").is_empty());
        assert_eq!(set.case.readings("/Public").len(), 1);
        let capitals = RuleSet::new(vec![rule(0, prefix("/API"), None, Mode::None)], Mode::None);
        assert_eq!(capitals.case.readings("/api").len(), 1);
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
