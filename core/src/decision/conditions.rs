//! Step 7, after the role: the conditions of every rule chosen, each told to the trace.

use super::authenticate::TokenFacts;
use super::trace::{Step, Trace};
use crate::identity::Identity;
use crate::rules::conditions::{Caller, ConditionKind};
use crate::rules::Policy;

/// The kind of the first condition `identity` fails among the policy's rules, if any.
#[inline]
pub(super) fn first_failed(
    policy: &Policy<'_>,
    identity: &Identity,
    token: &TokenFacts,
    trace: &mut impl Trace,
) -> Option<ConditionKind> {
    if policy.conditions.is_empty() {
        return None;
    }
    checked(policy, identity, token, trace)
}

/// [`first_failed`] for a policy with conditions.
#[inline(never)]
fn checked(
    policy: &Policy<'_>,
    identity: &Identity,
    token: &TokenFacts,
    trace: &mut impl Trace,
) -> Option<ConditionKind> {
    let caller = Caller {
        kind: identity.kind,
        signer: token.signer,
        claims: token.claims.as_deref(),
    };
    let mut failed = None;
    for conditions in policy.conditions.as_slice() {
        for (kind, held) in conditions.check(&caller) {
            trace.step(Step::Condition {
                rule: conditions.rule,
                kind,
                held,
            });
            if !held && failed.is_none() {
                failed = Some(kind);
            }
        }
    }
    failed
}
