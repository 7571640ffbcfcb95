//! The conditions of a rule (`issuers`, `credentials`, `audiences`, `scopes`, `claims`):
//! only on `required` rules, never empty, every name known, every claim test well formed.

use serde::Deserialize;
use serde_json::Value;

use super::raw::RawRule;
use super::ConfigError;
use crate::identity::CredentialKind;
use crate::rules::conditions::{ClaimCondition, ClaimTest, Conditions, TokenSigner};
use crate::rules::Mode;
use crate::verify::claim_values::ClaimPaths;

/// The name `issuers` gives the HS256 master secrets.
pub const SECRETS: &str = "secrets";

/// A claim path: `"a.b.c"`, or a list of keys (which may hold dots or slashes).
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawClaimPath {
    Dotted(String),
    Keys(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClaimCondition {
    claim: RawClaimPath,
    equals: Option<Value>,
    one_of: Option<Vec<Value>>,
    contains: Option<Value>,
    present: Option<bool>,
}

/// A rule's condition keys, taken from it.
pub(super) struct RawConditions {
    issuers: Option<Vec<String>>,
    credentials: Option<Vec<String>>,
    audiences: Option<Vec<String>>,
    scopes: Option<Vec<String>>,
    claims: Option<Vec<RawClaimCondition>>,
}

impl RawConditions {
    pub(super) fn take(rule: &mut RawRule) -> Self {
        RawConditions {
            issuers: rule.issuers.take(),
            credentials: rule.credentials.take(),
            audiences: rule.audiences.take(),
            scopes: rule.scopes.take(),
            claims: rule.claims.take(),
        }
    }
}

/// What conditions are checked against: the issuers' names, and the claim slots.
pub(super) struct ConditionContext<'c> {
    pub(super) issuer_names: Vec<&'c str>,
    pub(super) secrets: bool,
    pub(super) paths: &'c mut ClaimPaths,
}

/// The conditions of rule `index`, or `None` when it has none.
pub(super) fn compile_conditions(
    at: &str,
    index: usize,
    mode: Mode,
    rule: RawConditions,
    context: &mut ConditionContext<'_>,
) -> Result<Option<Box<Conditions>>, ConfigError> {
    let given = [
        ("issuers", rule.issuers.is_some()),
        ("credentials", rule.credentials.is_some()),
        ("audiences", rule.audiences.is_some()),
        ("scopes", rule.scopes.is_some()),
        ("claims", rule.claims.is_some()),
    ];
    let Some((first, _)) = given.iter().find(|(_, set)| *set) else {
        return Ok(None);
    };
    if mode != Mode::Required {
        return Err(ConfigError::new(
            format!("{at}.{first}"),
            "only a \"required\" rule takes conditions",
        ));
    }
    let mut conditions = Conditions {
        rule: index,
        ..Conditions::default()
    };
    if let Some(names) = rule.issuers {
        let key = format!("{at}.issuers");
        let mut signers = Vec::new();
        for (j, name) in non_empty(&key, names)?.into_iter().enumerate() {
            if name == SECRETS && context.issuer_names.contains(&SECRETS) {
                return Err(ConfigError::new(
                    format!("{key}[{j}]"),
                    "\"secrets\" names the master secrets, and an issuer is named so too: rename the issuer",
                ));
            }
            let signer = if name == SECRETS {
                context.secrets.then_some(TokenSigner::Secrets)
            } else {
                context
                    .issuer_names
                    .iter()
                    .position(|n| *n == name)
                    .map(TokenSigner::Issuer)
            };
            let Some(signer) = signer else {
                return Err(ConfigError::new(
                    format!("{key}[{j}]"),
                    format!(
                        "\"{}\" names no issuer (expected the name of an issuers entry, or \"secrets\" when secrets are configured)",
                        name.escape_default()
                    ),
                ));
            };
            signers.push(signer);
        }
        conditions.issuers = Some(signers);
    }
    if let Some(names) = rule.credentials {
        let key = format!("{at}.credentials");
        let mut kinds = Vec::new();
        for (j, name) in non_empty(&key, names)?.into_iter().enumerate() {
            let kind = CredentialKind::ALL
                .into_iter()
                .filter(|k| *k != CredentialKind::Anonymous)
                .find(|k| k.as_str() == name);
            let Some(kind) = kind else {
                return Err(ConfigError::new(
                    format!("{key}[{j}]"),
                    format!(
                        "unknown credential type \"{}\" (expected access_token, api_key, publishable_key or client)",
                        name.escape_default()
                    ),
                ));
            };
            kinds.push(kind);
        }
        conditions.credentials = Some(kinds);
    }
    if let Some(audiences) = rule.audiences {
        let key = format!("{at}.audiences");
        let audiences = words(&key, non_empty(&key, audiences)?, false)?;
        let slot = context.paths.slot(&["aud".to_owned()]);
        conditions.audiences = Some((audiences, slot));
    }
    if let Some(scopes) = rule.scopes {
        let key = format!("{at}.scopes");
        let scopes = words(&key, non_empty(&key, scopes)?, true)?;
        let slots = [
            context.paths.slot(&["scope".to_owned()]),
            context.paths.slot(&["scp".to_owned()]),
        ];
        conditions.scopes = Some((scopes, slots));
    }
    if let Some(claims) = rule.claims {
        let key = format!("{at}.claims");
        for (j, raw) in non_empty(&key, claims)?.into_iter().enumerate() {
            let condition = compile_claim(&format!("{key}[{j}]"), raw, context.paths)?;
            conditions.claims.push(condition);
        }
    }
    Ok(Some(Box::new(conditions)))
}

fn non_empty<T>(key: &str, list: Vec<T>) -> Result<Vec<T>, ConfigError> {
    if list.is_empty() {
        return Err(ConfigError::new(
            key,
            "is empty; leave it out, or name what may pass",
        ));
    }
    Ok(list)
}

/// Audiences or scopes: not empty; a scope is one space-free word (it is read from a
/// space-separated list).
fn words(key: &str, list: Vec<String>, scope: bool) -> Result<Vec<String>, ConfigError> {
    for (j, word) in list.iter().enumerate() {
        let bad = word.is_empty() || (scope && word.chars().any(char::is_whitespace));
        if bad {
            return Err(ConfigError::new(
                format!("{key}[{j}]"),
                if scope {
                    "must be one scope: not empty, without whitespace"
                } else {
                    "is empty"
                },
            ));
        }
    }
    Ok(list)
}

fn compile_claim(
    at: &str,
    raw: RawClaimCondition,
    paths: &mut ClaimPaths,
) -> Result<ClaimCondition, ConfigError> {
    let path = match raw.claim {
        RawClaimPath::Dotted(text) => text.split('.').map(str::to_owned).collect(),
        RawClaimPath::Keys(keys) => keys,
    };
    if path.is_empty() || path.iter().any(String::is_empty) {
        return Err(ConfigError::new(
            format!("{at}.claim"),
            "is an empty path or has an empty key",
        ));
    }
    let tests = [
        raw.equals.is_some(),
        raw.one_of.is_some(),
        raw.contains.is_some(),
        raw.present.is_some(),
    ];
    if tests.iter().filter(|t| **t).count() != 1 {
        return Err(ConfigError::new(
            at,
            "needs exactly one of \"equals\", \"one_of\", \"contains\" or \"present\"",
        ));
    }
    let scalar = |key: String, value: Value| {
        if crate::rules::conditions::is_exact_scalar(&value) {
            Ok(value)
        } else {
            Err(ConfigError::new(
                key,
                "must be a string, a boolean or an integer within 64 bits (numbers with a fraction or beyond 64 bits cannot be compared exactly: compare a string claim)",
            ))
        }
    };
    let test = match (raw.equals, raw.one_of, raw.contains, raw.present) {
        (Some(value), ..) => ClaimTest::Equals(scalar(format!("{at}.equals"), value)?),
        (_, Some(values), ..) => {
            let key = format!("{at}.one_of");
            let values = non_empty(&key, values)?;
            let values = values
                .into_iter()
                .enumerate()
                .map(|(k, v)| scalar(format!("{key}[{k}]"), v))
                .collect::<Result<Vec<_>, _>>()?;
            ClaimTest::OneOf(values)
        }
        (_, _, Some(value), _) => {
            let key = format!("{at}.contains");
            let value = scalar(key.clone(), value)?;
            if value
                .as_str()
                .is_some_and(|w| w.is_empty() || w.contains(' '))
            {
                return Err(ConfigError::new(
                    key,
                    "a string is matched as one space-separated word: it must not be empty or hold a space",
                ));
            }
            ClaimTest::Contains(value)
        }
        (.., Some(true)) => ClaimTest::Present,
        _ => {
            return Err(ConfigError::new(
                format!("{at}.present"),
                "must be true (leave the condition out otherwise)",
            ))
        }
    };
    let slot = paths.slot(&path);
    Ok(ClaimCondition { path, slot, test })
}

#[cfg(test)]
#[path = "conditions_tests.rs"]
mod tests;
