//! What a decision returns: the edits to the request, or the answer instead of it, and why.

use super::authenticate::KeyWait;
use std::rc::Rc;

use crate::denial::Denial;
use crate::identity::Identity;
use crate::request::form::FormKind;
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

/// The headers the upstream gets: `edits` applied in order to `headers` as Envoy applies them.
/// `Remove` drops every value of the name, `Set` replaces every value with one, `Add` appends
/// one, `SetPath` replaces `:path`. Names compare exactly (the host hands them lower-case).
pub fn apply_edits<N, V>(headers: &[(N, V)], edits: &[HeaderEdit<'_>]) -> Vec<(String, Vec<u8>)>
where
    N: AsRef<str>,
    V: AsRef<[u8]>,
{
    let mut out: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(n, v)| (n.as_ref().to_owned(), v.as_ref().to_vec()))
        .collect();
    for edit in edits {
        match edit {
            HeaderEdit::Remove(name) => out.retain(|(n, _)| n != name),
            HeaderEdit::Set(name, value) => {
                out.retain(|(n, _)| n != name);
                out.push(((*name).to_owned(), value.as_bytes().to_vec()));
            }
            HeaderEdit::Add(name, value) => {
                out.push(((*name).to_owned(), value.as_bytes().to_vec()))
            }
            HeaderEdit::SetPath(path) => {
                out.retain(|(n, _)| n != ":path");
                out.push((":path".to_owned(), path.clone()));
            }
        }
    }
    out
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
    /// Set when fetching an issuer's keys could change this decision: the adapter may hold
    /// the request until they are fetched and decide it again.
    pub awaits_keys: Option<KeyWait>,
    /// A form body follows on a checked path: it is to be read for credential fields before
    /// the request goes on (set on a request let on, and on one that awaits keys).
    pub form: Option<FormKind>,
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
            awaits_keys: None,
            form: None,
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
            awaits_keys: None,
            form: None,
        }
    }

    /// The same decision, recording whether the token cache answered.
    pub(crate) fn with_cache_hit(self, cache_hit: Option<bool>) -> Self {
        Decision { cache_hit, ..self }
    }

    /// The same decision, with the form body that is to be read.
    pub(crate) fn with_form(self, form: Option<FormKind>) -> Self {
        Decision { form, ..self }
    }

    /// The same decision, marked as one that fetching an issuer's keys could change.
    pub(crate) fn awaiting(self, awaits_keys: Option<KeyWait>) -> Self {
        Decision {
            awaits_keys,
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_apply_as_envoy_applies_them() {
        let headers = vec![
            (":path", b"/a?access_token=x".to_vec()),
            ("x-auth-user", b"mallory".to_vec()),
            ("x-auth-user", b"eve".to_vec()),
            ("authorization", b"Bearer x".to_vec()),
            ("cookie", b"a=1".to_vec()),
        ];
        let edits = vec![
            HeaderEdit::Remove("authorization"),
            HeaderEdit::Set("x-auth-user", Value::Shared("alice".into())),
            HeaderEdit::Add("cookie", Value::Bytes(b"b=2".to_vec())),
            HeaderEdit::SetPath(b"/a".to_vec()),
        ];
        let out = apply_edits(&headers, &edits);
        let text: Vec<(&str, &[u8])> = out.iter().map(|(n, v)| (n.as_str(), &v[..])).collect();
        assert_eq!(
            text,
            vec![
                ("cookie", &b"a=1"[..]),
                ("x-auth-user", b"alice"),
                ("cookie", b"b=2"),
                (":path", b"/a"),
            ]
        );
    }
}
