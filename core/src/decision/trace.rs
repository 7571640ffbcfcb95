//! What the decision does, step by step, told to whoever asks (`tollgate explain`).
//!
//! The decision calls [`Trace::step`] at each step with what it found, borrowed: nothing is
//! built or copied for the trace. The filter passes [`NoTrace`], whose empty method is
//! inlined away with the events it would have received.

use crate::credential::spellings::Found;
use crate::credential::Presented;
use crate::denial::Denial;
use crate::identity::Identity;
use crate::request::form::FormError;
use crate::request::path::{PathError, Readings};
use crate::request::RequestView;
use crate::rules::conditions::ConditionKind;
use crate::rules::{Mode, Policy};
use crate::verify::issuer::KeysNeeded;
use crate::verify::token::TokenError;
use crate::verify::Signer;

/// Told each step of a decision, in order. A refusal is the returned decision's: it belongs
/// to the last step told.
pub trait Trace {
    /// One step and what it found (valid for this call only).
    fn step(&mut self, step: Step<'_>);
}

/// The trace of the filter: tells nothing, costs nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTrace;

impl Trace for NoTrace {
    #[inline(always)]
    fn step(&mut self, _: Step<'_>) {}
}

/// One step of the decision, in the order of README's "How a request is decided".
#[derive(Debug, Clone, Copy)]
pub enum Step<'t> {
    /// 1. The request as read; its `spoofed` identity headers are removed on every path.
    Request(&'t RequestView<'t>),
    /// 2. The request has no `:path` (a 400 follows).
    NoPath,
    /// 2. The path cannot be read (a 400 follows).
    UnreadablePath { raw: &'t [u8], error: PathError },
    /// 3. A CORS preflight: let on, unless a credential hides behind an encoded separator.
    Preflight { found: &'t Found },
    /// 4. A method override that is no method token, or too many (a 400 follows).
    BadMethodOverride,
    /// 4. Rules are limited to hosts and the request's host is not one plain host name (a 400
    ///    follows).
    UnclearHost,
    /// 4. The host read when rules are limited to hosts, the methods the request may be served
    ///    as, the path's readings, and the strictest policy over them.
    Policy {
        host: Option<&'t str>,
        methods: &'t [&'t [u8]],
        readings: &'t Readings<'t>,
        policy: &'t Policy<'t>,
    },
    /// 5. A form body follows that cannot be read with certainty (a 400 follows).
    FormBody(FormError),
    /// 5. Where the request carries credentials (`query` is the target's query).
    Found {
        request: &'t RequestView<'t>,
        query: Option<&'t [u8]>,
        found: &'t Found,
    },
    /// 5. The one credential presented, or none.
    Presented(Option<&'t Presented<'t>>),
    /// 6. No credential: `optional` goes on as anonymous, `required` is refused.
    NothingToVerify(Mode),
    /// 7. A bearer value that is not token-shaped: the configured key it is, if any.
    Key(Option<&'t Identity>),
    /// 7. Client credentials: the client they authenticate, if any.
    Client {
        id: &'t [u8],
        identity: Option<&'t Identity>,
    },
    /// 7. A token the cache of verified tokens answered for (under current keys).
    Cached(&'t Identity),
    /// 7. Whose keys verify the token, from its header.
    Signer(Signer),
    /// 7. The token verified: by the master secrets (`issuer` `None`) or an issuer's keys.
    Verified {
        issuer: Option<usize>,
        identity: &'t Identity,
        expires_at: u64,
    },
    /// 7. The token refused.
    TokenRefused(TokenError),
    /// 7. Issuer `issuer` lacks the keys to decide (fetching them could change the answer).
    NeedsKeys { issuer: usize, why: KeysNeeded },
    /// 7. The revocation list, when a feed is configured: why it refuses the token, if it does.
    Revocation(Option<Denial>),
    /// 7. Whether the identity's role passes the policy.
    Role {
        identity: &'t Identity,
        policy: &'t Policy<'t>,
        passes: bool,
    },
    /// 7. One condition of rule `rule` (its configuration index), held or failed.
    Condition {
        rule: usize,
        kind: ConditionKind,
        held: bool,
    },
}
