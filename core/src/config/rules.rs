//! The `rules` key and the login page they must leave open: paths, methods, modes and roles.

use super::checks::*;
use super::conditions::{compile_conditions, ConditionContext, RawConditions};
use super::raw::*;
use super::ConfigError;
use crate::identity::role;
use crate::request::path;
use crate::rules::hosts::HostPattern;
use crate::rules::{default_roles, Matcher, Mode, Policy, Rule, RuleSet};
use crate::verify::keys::ClientRegistry;

/// The roles a rule may name: the built-in ones, the clients', and any role name when an
/// issuer reads roles from its tokens' claims.
#[derive(Clone, Copy)]
pub(super) struct KnownRoles<'c> {
    pub(super) clients: &'c ClientRegistry,
    pub(super) from_claims: bool,
}

pub(super) fn compile_rules(
    raw: Vec<RawRule>,
    known: KnownRoles<'_>,
    context: &mut ConditionContext<'_>,
) -> Result<Vec<Rule>, ConfigError> {
    let mut rules: Vec<Rule> = Vec::with_capacity(raw.len());
    for (index, mut rule) in raw.into_iter().enumerate() {
        let at = format!("rules[{index}]");
        let conditions = RawConditions::take(&mut rule);
        let matcher = match (rule.path, rule.prefix) {
            (Some(p), None) => Matcher::Exact(normal_rule_path(&format!("{at}.path"), &p, false)?),
            (None, Some(p)) => {
                Matcher::Prefix(normal_rule_path(&format!("{at}.prefix"), &p, true)?)
            }
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    at,
                    "has both \"path\" and \"prefix\"; use one",
                ))
            }
            (None, None) => return Err(ConfigError::new(at, "needs \"path\" or \"prefix\"")),
        };
        let mode = parse_mode(&format!("{at}.mode"), &rule.mode)?;
        let methods = match rule.methods {
            Some(methods) => Some(compile_methods(&at, methods)?),
            None => None,
        };
        let roles = match (mode, rule.roles) {
            (Mode::Required, Some(roles)) => compile_roles(&at, roles, known)?,
            (Mode::Required, None) => default_roles(),
            (_, Some(_)) => {
                return Err(ConfigError::new(
                    format!("{at}.roles"),
                    "only a \"required\" rule takes roles",
                ))
            }
            (_, None) => Vec::new(),
        };
        let conditions = compile_conditions(&at, index, mode, conditions, context)?;
        let hosts = match rule.hosts {
            Some(hosts) => Some(compile_hosts(&at, hosts)?),
            None => None,
        };
        let compiled = Rule {
            index,
            matcher,
            methods,
            mode,
            roles,
            conditions,
            hosts,
        };
        if let Some(other) = rules.iter().find(|r| r.conflicts_with(&compiled)) {
            return Err(ConfigError::new(
                at,
                format!(
                    "matches the same requests as rules[{}]; merge them",
                    other.index
                ),
            ));
        }
        rules.push(compiled);
    }
    Ok(rules)
}

/// A rule path in normal form; a prefix loses its trailing slash (`/public/` is `/public`).
fn normal_rule_path(key: &str, given: &str, prefix: bool) -> Result<String, ConfigError> {
    let trimmed = match given.strip_suffix('/') {
        Some(t) if prefix && !t.is_empty() => t,
        _ => given,
    };
    let normal = path::normalize(trimmed.as_bytes())
        .map_err(|e| ConfigError::new(key, format!("\"{}\": {e}", given.escape_default())))?;
    if normal != trimmed {
        return Err(ConfigError::new(
            key,
            format!(
                "\"{}\" is not in normal form; write \"{normal}\"",
                given.escape_default()
            ),
        ));
    }
    Ok(normal)
}

fn compile_methods(at: &str, methods: Vec<String>) -> Result<Vec<String>, ConfigError> {
    if methods.is_empty() {
        return Err(ConfigError::new(
            format!("{at}.methods"),
            "is empty; leave it out to match every method",
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(methods.len());
    for (j, method) in methods.into_iter().enumerate() {
        let ok = !method.is_empty()
            && method.len() <= 32
            && method.bytes().all(|b| b.is_ascii_uppercase() || b == b'-');
        if !ok {
            return Err(ConfigError::new(
                format!("{at}.methods[{j}]"),
                format!(
                    "\"{}\" is not an upper-case HTTP method",
                    method.escape_default()
                ),
            ));
        }
        if !out.contains(&method) {
            out.push(method);
        }
    }
    Ok(out)
}

/// Host names (lower case, punycode for internationalised names) or `*.suffix`: no port,
/// scheme, path, trailing dot or upper case, each once.
fn compile_hosts(at: &str, hosts: Vec<String>) -> Result<Vec<HostPattern>, ConfigError> {
    if hosts.is_empty() {
        return Err(ConfigError::new(
            format!("{at}.hosts"),
            "is empty; leave it out to match every host",
        ));
    }
    let mut out: Vec<HostPattern> = Vec::with_capacity(hosts.len());
    for (j, host) in hosts.iter().enumerate() {
        let key = format!("{at}.hosts[{j}]");
        let Some(pattern) = HostPattern::parse(host) else {
            return Err(ConfigError::new(
                key,
                format!(
                    "\"{}\" is not a lower-case host name or \"*.suffix\" (no port, scheme, path or trailing dot; internationalised names in punycode, xn--)",
                    host.escape_default()
                ),
            ));
        };
        if out.contains(&pattern) {
            return Err(ConfigError::new(
                key,
                format!("\"{}\" is listed twice", host.escape_default()),
            ));
        }
        out.push(pattern);
    }
    Ok(out)
}

fn compile_roles(
    at: &str,
    roles: Vec<String>,
    known: KnownRoles<'_>,
) -> Result<Vec<String>, ConfigError> {
    if roles.is_empty() {
        return Err(ConfigError::new(
            format!("{at}.roles"),
            "is empty; nobody could pass",
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(roles.len());
    for (j, name) in roles.into_iter().enumerate() {
        let is_known = [role::USER, role::ADMIN, role::ANONYMOUS].contains(&name.as_str())
            || known.clients.roles().any(|r| r == name)
            || (known.from_claims && check_role_name(&name).is_ok());
        if !is_known {
            return Err(ConfigError::new(
                format!("{at}.roles[{j}]"),
                format!(
                    "unknown role \"{}\" (expected user, admin, anonymous, a client's role, or a role name when an issuer has roles_claim)",
                    name.escape_default()
                ),
            ));
        }
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

pub(super) fn check_login_url(url: &str, rules: &RuleSet) -> Result<(), ConfigError> {
    let bad = |problem: String| Err(ConfigError::new("login_url", problem));
    if url.is_empty() || !url.bytes().all(|b| b.is_ascii_graphic()) || url.contains('#') {
        return bad("must be visible ASCII without spaces or a fragment".into());
    }
    let absolute = ["https://", "http://"]
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme));
    if let Some(rest) = absolute {
        let host = rest.split(['/', '?']).next().unwrap_or_default();
        if host.is_empty() || host.contains('\\') || host.contains('@') {
            return bad(format!("\"{url}\" has no valid host"));
        }
        return Ok(());
    }
    if !url.starts_with('/') || url.starts_with("//") || url.contains('\\') {
        return bad(format!(
            "\"{url}\" must be an absolute http(s) URL or a path starting with a single /"
        ));
    }
    let (login_path, _) = path::split_target(url.as_bytes());
    let normal =
        path::normalize(login_path).map_err(|e| ConfigError::new("login_url", e.to_string()))?;
    let hosts = rules.sample_hosts();
    let browsers_pass = |method: &[u8]| {
        hosts.iter().all(|host| {
            matches!(
                rules.policy_for_path_at(host, method, &normal),
                Policy {
                    mode: Mode::None,
                    ..
                }
            )
        })
    };
    if !browsers_pass(b"GET") || !browsers_pass(b"HEAD") {
        return bad(format!(
            "the login page \"{normal}\" must be a \"none\" path, or browsers would be redirected in a loop"
        ));
    }
    Ok(())
}
