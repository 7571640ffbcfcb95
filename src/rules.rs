//! Path rules: which mode (and which roles) applies to a request.

use crate::identity::role;

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

impl Matcher {
    fn matches(&self, path: &str) -> bool {
        match self {
            Matcher::Exact(p) => p == path,
            Matcher::Prefix(p) => {
                p == "/"
                    || path
                        .strip_prefix(p.as_str())
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            }
        }
    }

    /// Orders rules: an exact path first, then longer prefixes.
    fn specificity(&self) -> (bool, usize) {
        match self {
            Matcher::Exact(p) => (true, p.len()),
            Matcher::Prefix(p) => (false, p.len()),
        }
    }
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
    fn applies(&self, method: &[u8], path: &str) -> bool {
        let method_ok = match &self.methods {
            Some(methods) => methods.iter().any(|m| m.as_bytes() == method),
            None => true,
        };
        method_ok && self.matcher.matches(path)
    }

    fn rank(&self) -> (bool, usize, bool) {
        let (exact, len) = self.matcher.specificity();
        (exact, len, self.methods.is_some())
    }

    /// Whether two rules would tie for the same request.
    pub fn conflicts_with(&self, other: &Rule) -> bool {
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
pub struct Policy {
    pub mode: Mode,
    /// Roles that may pass when the mode is `required`.
    pub roles: Vec<String>,
    /// The configuration index of the deciding rule; `None` for the default mode.
    pub rule: Option<usize>,
}

impl Policy {
    /// Whether a caller with `role` passes this policy.
    pub fn allows_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// The stricter of two policies; two `required` policies allow only the roles both allow.
    fn strictest(self, other: Policy) -> Policy {
        match self.mode.cmp(&other.mode) {
            std::cmp::Ordering::Less => other,
            std::cmp::Ordering::Greater => self,
            std::cmp::Ordering::Equal if self.mode == Mode::Required => {
                let roles = self
                    .roles
                    .into_iter()
                    .filter(|r| other.roles.contains(r))
                    .collect();
                Policy {
                    mode: Mode::Required,
                    roles,
                    rule: self.rule.or(other.rule),
                }
            }
            std::cmp::Ordering::Equal => self,
        }
    }
}

/// The roles a `required` rule allows when it names none.
pub fn default_roles() -> Vec<String> {
    vec![role::USER.to_owned(), role::ADMIN.to_owned()]
}

/// Rules sorted most specific first, and the mode of paths no rule matches.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<Rule>,
    default_mode: Mode,
}

impl RuleSet {
    /// Builds the set; the caller has refused conflicting rules.
    pub fn new(mut rules: Vec<Rule>, default_mode: Mode) -> Self {
        rules.sort_by(|a, b| b.rank().cmp(&a.rank()).then(a.index.cmp(&b.index)));
        RuleSet {
            rules,
            default_mode,
        }
    }

    /// Whether any path can be `required`.
    pub fn any_required(&self) -> bool {
        let root_rule_covers_all = self
            .rules
            .iter()
            .any(|r| r.methods.is_none() && r.matcher == Matcher::Prefix("/".into()));
        (self.default_mode == Mode::Required && !root_rule_covers_all)
            || self.rules.iter().any(|r| r.mode == Mode::Required)
    }

    /// The policy for one normalised path.
    pub fn policy(&self, method: &[u8], path: &str) -> Policy {
        match self.rules.iter().find(|r| r.applies(method, path)) {
            Some(rule) => Policy {
                mode: rule.mode,
                roles: rule.roles.clone(),
                rule: Some(rule.index),
            },
            None => Policy {
                mode: self.default_mode,
                roles: if self.default_mode == Mode::Required {
                    default_roles()
                } else {
                    Vec::new()
                },
                rule: None,
            },
        }
    }

    /// The strictest policy over every reading of a path.
    pub fn policy_for_readings(&self, method: &[u8], readings: &[String]) -> Policy {
        let mut policies = readings.iter().map(|p| self.policy(method, p));
        let first = policies.next().unwrap_or_else(|| self.policy(method, "/"));
        policies.fold(first, Policy::strictest)
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
        let readings = vec!["/public/x".to_string(), "/admin".to_string()];
        assert_eq!(
            set.policy_for_readings(b"GET", &readings).mode,
            Mode::Required
        );
        let readings = vec!["/public/x".to_string(), "/feed/y".to_string()];
        assert_eq!(
            set.policy_for_readings(b"GET", &readings).mode,
            Mode::Optional
        );
    }

    #[test]
    fn two_required_readings_allow_only_common_roles() {
        let mut admin_only = rule(0, prefix("/admin"), None, Mode::Required);
        admin_only.roles = vec!["admin".into()];
        let set = RuleSet::new(vec![admin_only], Mode::Required);
        let readings = vec!["/admin/x".to_string(), "/other".to_string()];
        let p = set.policy_for_readings(b"GET", &readings);
        assert_eq!(p.roles, vec!["admin".to_string()]);
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
