//! The identity headers the upstream reads.

use std::rc::Rc;

use super::{HeaderEdit, Value};
use crate::config::Config;
use crate::identity::{CredentialKind, Identity};

/// Sets the identity headers: added when the client sent none of that name (the cheaper host
/// call), else replacing every value it sent (instead of removing them first).
pub(super) fn annotate<'a>(
    config: &'a Config,
    identity: &Identity,
    edits: &mut Vec<HeaderEdit<'a>>,
) {
    let names = &config.identity_headers;
    let values = [
        (names.kind.as_str(), Some(identity.kind.label())),
        // A token whose every role was left out has none: the header is not set.
        (
            names.role.as_str(),
            (!identity.role.is_empty()).then(|| identity.role.header_value()),
        ),
        (names.user.as_str(), identity.user.clone()),
        (names.name.as_str(), identity.name.clone()),
    ];
    let claims = identity.claims.as_deref().unwrap_or_default().iter();
    let claims = claims.filter_map(|(header, value)| {
        let name = names.claims.iter().find(|n| **n == **header)?;
        Some((name.as_str(), Some(Rc::clone(value))))
    });
    for (name, value) in values.into_iter().chain(claims) {
        let Some(value) = value else {
            continue;
        };
        let sent = edits.len();
        edits.retain(|e| !removes(e, name));
        let value = Value::Shared(value);
        edits.push(if edits.len() < sent {
            HeaderEdit::Set(name, value)
        } else {
            HeaderEdit::Add(name, value)
        });
    }
}

/// Sets the payload header (`payload_header`) of a verified access token: its claims as
/// verified, which are the token's middle part (base64url JSON without padding, at most
/// 8 KiB as the token is). Keys and clients have none.
pub(super) fn annotate_payload<'a>(
    config: &'a Config,
    identity: &Identity,
    token: &str,
    edits: &mut Vec<HeaderEdit<'a>>,
) {
    let Some(name) = config.payload_header.as_deref() else {
        return;
    };
    if identity.kind != CredentialKind::AccessToken {
        return;
    }
    if let Some(payload) = token.split('.').nth(1) {
        set(name, Value::Bytes(payload.as_bytes().to_vec()), edits);
    }
}

/// Sets header `name`: added when the client sent none of that name, else replacing the
/// removal of what it sent (as [`annotate`] does).
#[cold]
fn set<'a>(name: &'a str, value: Value, edits: &mut Vec<HeaderEdit<'a>>) {
    let sent = edits.len();
    edits.retain(|e| !removes(e, name));
    edits.push(if edits.len() < sent {
        HeaderEdit::Set(name, value)
    } else {
        HeaderEdit::Add(name, value)
    });
}

/// Whether `edit` removes the header `name` the client sent.
fn removes(edit: &HeaderEdit<'_>, name: &str) -> bool {
    matches!(edit, HeaderEdit::Remove(removed) if *removed == name)
}
