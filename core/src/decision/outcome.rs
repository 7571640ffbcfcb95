//! What a decision returns: the edits to the request, or the answer instead of it, and why.

use std::rc::Rc;

use crate::denial::Denial;
use crate::identity::Identity;
use crate::response::LocalResponse;

/// A change to the request before it goes upstream. Names borrow from the configuration or
/// the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit<'a> {
    /// Remove every header of this name.
    Remove(&'a str),
    /// Replace every value of this header with one (an identity header the client also sent).
    Set(&'a str, Value),
    /// Add a header value (an identity header, or a `Cookie` rebuilt without the credential).
    Add(&'a str, Value),
    /// Replace `:path`.
    SetPath(Vec<u8>),
}

/// A header value: shared text (identity values) or bytes built for this request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Shared(Rc<str>),
    Bytes(Vec<u8>),
}

impl Value {
    /// The value's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Value::Shared(text) => text.as_bytes(),
            Value::Bytes(bytes) => bytes,
        }
    }
}

/// What the adapter does with the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<'a> {
    /// Apply the edits, in order, and let the request on.
    Forward(Vec<HeaderEdit<'a>>),
    /// Apply the edits, then answer the request with this response. The edits remove every
    /// credential (headers, cookies, `:path` parameters), so that access logs never record one.
    Respond(LocalResponse, Vec<HeaderEdit<'a>>),
}

/// How the request was classified, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A CORS preflight, let on without a credential.
    Preflight,
    /// A `none` path: let on, not checked.
    Unchecked,
    /// Let on with this identity.
    Allowed(Identity),
    /// Refused with this error.
    Denied(Denial),
    /// A browser sent to sign in (the refusal it replaced).
    Redirected(Denial),
}

/// The decision and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'a> {
    pub action: Action<'a>,
    pub outcome: Outcome,
    /// The configuration index of the rule that applied; `None` for the default mode.
    pub rule: Option<usize>,
    /// For an access token: whether the cache of verified tokens answered.
    pub cache_hit: Option<bool>,
}

impl<'a> Decision<'a> {
    /// Lets the request on after `edits`.
    pub(crate) fn forward(
        edits: Vec<HeaderEdit<'a>>,
        outcome: Outcome,
        rule: Option<usize>,
    ) -> Self {
        Decision {
            action: Action::Forward(edits),
            outcome,
            rule,
            cache_hit: None,
        }
    }

    /// Answers the request with `response` after `edits`.
    pub(crate) fn respond(
        response: LocalResponse,
        edits: Vec<HeaderEdit<'a>>,
        outcome: Outcome,
        rule: Option<usize>,
    ) -> Self {
        Decision {
            action: Action::Respond(response, edits),
            outcome,
            rule,
            cache_hit: None,
        }
    }

    /// The same decision, recording whether the token cache answered.
    pub(crate) fn with_cache_hit(self, cache_hit: Option<bool>) -> Self {
        Decision { cache_hit, ..self }
    }
}
