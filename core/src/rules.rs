//! Path rules: which mode (and which roles) applies to a request.

mod case;
pub mod conditions;
pub mod hosts;
mod index;

use std::borrow::Cow;

use crate::identity::role;
use crate::request::path::Readings;
use case::CaseIndexes;
use conditions::{ChosenConditions, Conditions};
use hosts::HostPattern;
use index::{applying, order_candidates, Asked, Candidates, Index};

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
    /// Conditions beyond roles (`required` rules only).
    pub conditions: Option<Box<Conditions>>,
    /// When set, the rule applies only to requests for these hosts.
    pub hosts: Option<Vec<HostPattern>>,
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
        if let Some(hosts) = &self.hosts {
            let hosts: Vec<String> = hosts.iter().map(HostPattern::describe).collect();
            text.push_str(&format!(" hosts {}", hosts.join(",")));
        }
        text
    }

    /// Whether two rules would tie for the same request.
    pub(crate) fn conflicts_with(&self, other: &Rule) -> bool {
        if self.matcher != other.matcher
            || !hosts::overlap(self.hosts.as_deref(), other.hosts.as_deref())
        {
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
    /// The conditions of every `required` rule chosen: all must hold.
    pub conditions: ChosenConditions<'r>,
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
                let conditions = a.conditions.merge(b.conditions);
                Policy {
                    mode: Mode::Required,
                    roles: Cow::Owned(roles),
                    rule: a.rule.or(b.rule),
                    conditions,
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
    /// Whether a rule is limited to hosts.
    has_hosts: bool,
    /// Every method a rule names, then the empty method, which none names and so stands for
    /// every other method: a request that may be served as any method is decided over these.
    every_method: Vec<Vec<u8>>,
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
        let mut every_method: Vec<Vec<u8>> = Vec::new();
        for method in rules.iter().flat_map(|r| r.methods.iter().flatten()) {
            if !every_method.iter().any(|m| m == method.as_bytes()) {
                every_method.push(method.as_bytes().to_vec());
            }
        }
        every_method.push(Vec::new());
        RuleSet {
            has_hosts: rules.iter().any(|r| r.hosts.is_some()),
            every_method,
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

    /// Methods whose policies together are every policy a path can have, whatever the method:
    /// each method a rule names, and the empty method for all others.
    pub fn every_method(&self) -> impl Iterator<Item = &[u8]> {
        self.every_method.iter().map(Vec::as_slice)
    }

    /// The mode of paths no rule matches.
    pub fn default_mode(&self) -> Mode {
        self.default_mode
    }

    /// Whether a rule is limited to hosts: only then is the request's host read.
    pub fn has_hosts(&self) -> bool {
        self.has_hosts
    }

    /// A host for each way a host can select rules: one each configured pattern matches, and
    /// one (empty) that none matches.
    pub(crate) fn sample_hosts(&self) -> Vec<String> {
        let patterns = self.rules.iter().flat_map(|r| r.hosts.iter().flatten());
        let mut samples: Vec<String> = patterns.map(HostPattern::example).collect();
        samples.push(String::new());
        samples
    }

    /// Whether any path can be `required`.
    pub(crate) fn any_required(&self) -> bool {
        let root_rule_covers_all = self.rules.iter().any(|r| {
            r.methods.is_none() && r.hosts.is_none() && r.matcher == Matcher::Prefix("/".into())
        });
        (self.default_mode == Mode::Required && !root_rule_covers_all)
            || self.rules.iter().any(|r| r.mode == Mode::Required)
    }

    /// The policy for one normalised path, read as it is: an exact rule, else the longest
    /// prefix on a segment boundary, else a rule for `/`, else the default mode.
    /// Host-scoped rules do not apply (as for a host none names).
    pub fn policy(&self, method: &[u8], path: &str) -> Policy<'_> {
        self.policy_in(&self.literal, &Asked { host: "", method }, path)
    }

    fn policy_in(&self, index: &Index, at: &Asked<'_>, path: &str) -> Policy<'_> {
        index
            .lookup(&self.rules, at, path)
            .or_else(|| applying(&self.rules, &self.root, at))
            .unwrap_or_else(|| Policy {
                mode: self.default_mode,
                roles: Cow::Borrowed(&self.default_roles),
                rule: None,
                conditions: ChosenConditions::None,
            })
    }

    /// The strictest policy over every reading of a path and every method the request may be
    /// served as, each reading also as routers read it ([`RuleSet::policy_for_path`]), for a
    /// request whose host no rule names.
    pub fn policy_for_request(&self, methods: &[&[u8]], readings: &Readings<'_>) -> Policy<'_> {
        self.policy_for_host("", methods, readings)
    }

    /// [`RuleSet::policy_for_request`] for a request to `host` (as read by
    /// [`crate::request::host::read`]; empty for none): rules limited to other hosts do not
    /// apply.
    pub fn policy_for_host(
        &self,
        host: &str,
        methods: &[&[u8]],
        readings: &Readings<'_>,
    ) -> Policy<'_> {
        let mut strictest: Option<Policy<'_>> = None;
        for method in methods {
            for reading in readings.iter() {
                let policy = self.policy_for_path_at(host, method, reading);
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
            conditions: ChosenConditions::None,
        })
    }

    /// The strictest policy of a normalised path read as it is and under case folding (a rule
    /// never loosens because of case), each also without a trailing slash (`/admin/` as
    /// `/admin`) and then without a format suffix (`/admin.json` as `/admin`), as many
    /// upstreams route them alike.
    /// Host-scoped rules do not apply.
    pub fn policy_for_path(&self, method: &[u8], path: &str) -> Policy<'_> {
        self.policy_for_path_at("", method, path)
    }

    /// [`RuleSet::policy_for_path`] for a request to `host`.
    pub fn policy_for_path_at(&self, host: &str, method: &[u8], path: &str) -> Policy<'_> {
        let at = Asked { host, method };
        let mut policy = self.as_routed(&self.literal, &at, path);
        for (index, folded) in self.case.readings(path) {
            let policy_folded = self.as_routed(index, &at, &folded);
            policy = Policy::strictest(policy, policy_folded);
        }
        policy
    }

    fn as_routed(&self, index: &Index, at: &Asked<'_>, path: &str) -> Policy<'_> {
        let policy = self.policy_in(index, at, path);
        match path.strip_suffix('/').filter(|bare| !bare.is_empty()) {
            Some(bare) => {
                let bare_policy = self.policy_in(index, at, bare);
                let cut = self.with_format_cut(index, at, bare, bare_policy);
                Policy::strictest(policy, cut)
            }
            None => self.with_format_cut(index, at, path, policy),
        }
    }

    /// `policy`, the policy of `path`, made as strict as `path` cut before a format suffix
    /// ([`format_cuts`]); kept as it is when an exact `none` rule names `path` (`/robots.txt`,
    /// opened on purpose). An exact rule that checks `path` does not end the reading: it
    /// would otherwise drop the roles and conditions of the path without its suffix.
    fn with_format_cut<'s>(
        &'s self,
        index: &Index,
        at: &Asked<'_>,
        path: &str,
        policy: Policy<'s>,
    ) -> Policy<'s> {
        let opened_exactly = policy
            .rule
            .and_then(|r| self.rules.get(r))
            .is_some_and(|r| matches!(r.matcher, Matcher::Exact(_)) && r.mode == Mode::None);
        if opened_exactly {
            return policy;
        }
        format_cuts(path).fold(policy, |policy, cut| {
            Policy::strictest(policy, self.policy_in(index, at, cut))
        })
    }

    /// [`RuleSet::policy_for_request`] for one method.
    pub fn policy_for_readings(&self, method: &[u8], readings: &Readings<'_>) -> Policy<'_> {
        self.policy_for_request(&[method], readings)
    }
}

/// `path` cut at the first and at the last `.` of its last segment, where something of the
/// segment remains: Rails routes `/admin.json` as `/admin(.:format)`, Spring MVC before 5.3
/// as `/admin.*`. Percent-encoded dots are decoded in a normalised path.
fn format_cuts(path: &str) -> impl Iterator<Item = &str> {
    let bytes = path.as_bytes();
    let start = bytes
        .iter()
        .rposition(|&b| b == b'/')
        .map_or(0, |slash| slash + 1);
    let segment = bytes.get(start..).unwrap_or_default();
    let first_dot = segment.iter().position(|&b| b == b'.');
    let last = first_dot.and_then(|first_dot| {
        let last = segment.iter().rposition(|&b| b == b'.')?;
        (last != first_dot).then_some(last)
    });
    let first = first_dot.filter(|&at| at > 0);
    [first, last]
        .into_iter()
        .flatten()
        .filter_map(move |at| path.get(..start + at))
}

impl Rule {
    pub(crate) fn policy(&self) -> Policy<'_> {
        Policy {
            mode: self.mode,
            roles: Cow::Borrowed(&self.roles),
            rule: Some(self.index),
            conditions: match &self.conditions {
                Some(conditions) => ChosenConditions::One(conditions),
                None => ChosenConditions::None,
            },
        }
    }
}

#[cfg(test)]
mod tests;
