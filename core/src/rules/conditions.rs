//! Conditions on a `required` rule beyond roles: which issuers and credential types may pass,
//! and what the token's `aud`, scopes and claims must hold.
//!
//! What a token's conditions read is extracted once, when it is verified ([`TokenClaims`]),
//! and rides with the cache entry: a cache hit never parses the token again.

use serde_json::{Number, Value};

use crate::identity::CredentialKind;
use crate::verify::claim_values::TokenClaims;

/// The kind of a condition: what a refusal's fixed message names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConditionKind {
    Issuer,
    Credential,
    Audience,
    Scope,
    Claim,
}

impl ConditionKind {
    /// The configuration key of this kind.
    pub fn key(self) -> &'static str {
        match self {
            ConditionKind::Issuer => "issuers",
            ConditionKind::Credential => "credentials",
            ConditionKind::Audience => "audiences",
            ConditionKind::Scope => "scopes",
            ConditionKind::Claim => "claims",
        }
    }
}

/// Whose keys signed a token: the master secrets or issuer `i` of the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSigner {
    Secrets,
    Issuer(usize),
}

/// What the conditions read of a verified credential.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub kind: CredentialKind,
    /// For an access token: whose keys verified it.
    pub signer: Option<TokenSigner>,
    /// For an access token: the claims the conditions read.
    pub claims: Option<&'a TokenClaims>,
}

/// A test on one claim's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimTest {
    /// The claim is this scalar.
    Equals(Value),
    /// The claim is one of these scalars.
    OneOf(Vec<Value>),
    /// An array claim has an element equal to it; a string claim has it as a space-separated
    /// word (a string value only).
    Contains(Value),
    /// The claim is there, whatever its value (`null` included).
    Present,
}

/// A condition on one claim: the claim's slot in [`TokenClaims`], and its test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimCondition {
    /// The keys from the payload's top level down.
    pub path: Vec<String>,
    pub slot: usize,
    pub test: ClaimTest,
}

/// The conditions of one rule; at least one is set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Conditions {
    /// The configuration index of the rule.
    pub rule: usize,
    pub issuers: Option<Vec<TokenSigner>>,
    pub credentials: Option<Vec<CredentialKind>>,
    /// The audiences, and the slot of `aud`.
    pub audiences: Option<(Vec<String>, usize)>,
    /// The scopes, and the slots of `scope` and `scp`.
    pub scopes: Option<(Vec<String>, [usize; 2])>,
    pub claims: Vec<ClaimCondition>,
}

impl Conditions {
    /// Each condition in order, with whether `caller` satisfies it.
    pub fn check<'s>(
        &'s self,
        caller: &'s Caller<'_>,
    ) -> impl Iterator<Item = (ConditionKind, bool)> + 's {
        let value = move |slot: usize| caller.claims.and_then(|c| c.get(slot));
        let issuers = self.issuers.as_ref().map(|allowed| {
            let held = caller.signer.is_some_and(|s| allowed.contains(&s));
            (ConditionKind::Issuer, held)
        });
        let credentials = self
            .credentials
            .as_ref()
            .map(|allowed| (ConditionKind::Credential, allowed.contains(&caller.kind)));
        let audiences = self.audiences.as_ref().map(|(allowed, slot)| {
            let held = match value(*slot) {
                Some(Value::String(aud)) => allowed.contains(aud),
                Some(Value::Array(auds)) => auds
                    .iter()
                    .any(|a| a.as_str().is_some_and(|a| allowed.iter().any(|x| x == a))),
                _ => false,
            };
            (ConditionKind::Audience, held)
        });
        let scopes = self.scopes.as_ref().map(|(needed, [scope, scp])| {
            let granted = |wanted: &str| {
                [value(*scope), value(*scp)]
                    .into_iter()
                    .flatten()
                    .any(|v| holds_word(v, wanted))
            };
            (ConditionKind::Scope, needed.iter().all(|s| granted(s)))
        });
        let claims = self
            .claims
            .iter()
            .map(move |c| (ConditionKind::Claim, claim_holds(&c.test, value(c.slot))));
        issuers
            .into_iter()
            .chain(credentials)
            .chain(audiences)
            .chain(scopes)
            .chain(claims)
    }
}

/// `scope`/`scp`: a space-separated string holding `wanted` as a word, or an array holding
/// it as an element.
fn holds_word(value: &Value, wanted: &str) -> bool {
    match value {
        Value::String(words) => words.split(' ').any(|w| w == wanted),
        Value::Array(items) => items.iter().any(|i| i.as_str() == Some(wanted)),
        _ => false,
    }
}

fn claim_holds(test: &ClaimTest, value: Option<&Value>) -> bool {
    let Some(value) = value else {
        return false;
    };
    match test {
        ClaimTest::Present => true,
        ClaimTest::Equals(wanted) => scalar_equals(value, wanted),
        ClaimTest::OneOf(wanted) => wanted.iter().any(|w| scalar_equals(value, w)),
        ClaimTest::Contains(wanted) => match (value, wanted) {
            (Value::Array(items), _) => items.iter().any(|i| scalar_equals(i, wanted)),
            (Value::String(words), Value::String(word)) => words.split(' ').any(|w| w == word),
            _ => false,
        },
    }
}

/// Two JSON scalars of the same type and value: a string is never a number or a boolean.
/// Numbers are integers within 64 bits (the configuration holds no other) and compare
/// exactly: a claim written with a fraction or an exponent, or beyond 64 bits, was read as
/// a float, which cannot be compared exactly, and equals nothing. Arrays, objects and
/// `null` equal nothing.
pub fn scalar_equals(value: &Value, wanted: &Value) -> bool {
    match (value, wanted) {
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => integers_equal(a, b),
        _ => false,
    }
}

/// Whether two numbers are the same integer within 64 bits.
fn integers_equal(a: &Number, b: &Number) -> bool {
    match (a.as_i64(), b.as_i64(), a.as_u64(), b.as_u64()) {
        (Some(x), Some(y), _, _) => x == y,
        (_, _, Some(x), Some(y)) => x == y,
        // A float on either side, or one beyond i64 and the other negative.
        _ => false,
    }
}

/// Whether a configured value can be compared exactly: a string, a boolean, or an integer
/// within 64 bits.
pub fn is_exact_scalar(value: &Value) -> bool {
    match value {
        Value::String(_) | Value::Bool(_) => true,
        Value::Number(n) => n.is_i64() || n.is_u64(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_are_never_coerced() {
        assert!(scalar_equals(&json!("a"), &json!("a")));
        assert!(!scalar_equals(&json!("1"), &json!(1)));
        assert!(!scalar_equals(&json!(1), &json!(true)));
        assert!(!scalar_equals(&json!("true"), &json!(true)));
        assert!(!scalar_equals(&json!(["a"]), &json!("a")));
        assert!(!scalar_equals(&json!(null), &json!("null")));
        // Only integers within 64 bits compare: a float was read lossily.
        assert!(!scalar_equals(&json!(1.0), &json!(1)));
        assert!(!scalar_equals(
            &json!(9_007_199_254_740_992.0),
            &json!(9_007_199_254_740_993_i64)
        ));
        assert!(scalar_equals(&json!(i64::MIN), &json!(i64::MIN)));
        assert!(scalar_equals(&json!(u64::MAX), &json!(u64::MAX)));
        assert!(!scalar_equals(&json!(-1), &json!(u64::MAX)));
        assert!(!scalar_equals(&json!(1.5), &json!(1)));
    }

    #[test]
    fn contains_reads_arrays_and_space_separated_words() {
        let contains =
            |value: Value, word: Value| claim_holds(&ClaimTest::Contains(word), Some(&value));
        assert!(contains(json!(["a", "b"]), json!("b")));
        assert!(contains(json!([1, 2]), json!(2)));
        assert!(!contains(json!(["a b"]), json!("a")));
        assert!(contains(json!("a  b "), json!("b")));
        assert!(!contains(json!("a\tb"), json!("a")));
        assert!(!contains(json!("ab"), json!("a")));
        assert!(!contains(json!({"a": 1}), json!("a")));
        assert!(!contains(json!("1 2"), json!(1)));
        assert!(!claim_holds(&ClaimTest::Present, None));
        assert!(claim_holds(&ClaimTest::Present, Some(&json!(null))));
    }
}

/// The conditions of the rules a policy was chosen from, all of which must hold: none (most
/// configurations name none, and then a lookup carries nothing to free), one rule's, or those
/// of several rules, each once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ChosenConditions<'r> {
    #[default]
    None,
    One(&'r Conditions),
    /// Boxed: a policy stays small, as it is moved through every lookup.
    Several(Box<Vec<&'r Conditions>>),
}

impl<'r> ChosenConditions<'r> {
    /// Whether no rule chosen has conditions.
    pub fn is_empty(&self) -> bool {
        matches!(self, ChosenConditions::None)
    }

    /// Each rule's conditions, in the order the rules were chosen.
    pub fn as_slice(&self) -> &[&'r Conditions] {
        match self {
            ChosenConditions::None => &[],
            ChosenConditions::One(one) => std::slice::from_ref(one),
            ChosenConditions::Several(several) => several,
        }
    }

    /// Both sets: those of `self`, then those of `other` not among them.
    pub(crate) fn merge(self, other: ChosenConditions<'r>) -> ChosenConditions<'r> {
        match (self, other) {
            (held, ChosenConditions::None) => held,
            (ChosenConditions::None, added) => added,
            (held, added) => {
                let mut all = match held {
                    ChosenConditions::Several(several) => *several,
                    held => held.as_slice().to_vec(),
                };
                for &c in added.as_slice() {
                    if !all.iter().any(|&seen| std::ptr::eq(seen, c)) {
                        all.push(c);
                    }
                }
                match all.as_slice() {
                    [one] => ChosenConditions::One(one),
                    _ => ChosenConditions::Several(Box::new(all)),
                }
            }
        }
    }
}
