//! Credential removal: what the upstream and the access log never see.

use super::{HeaderEdit, Value};
use crate::config::Config;
use crate::credential::spellings::{self, CredentialNames, Found};
use crate::request::{names, RequestView};

/// Removes every credential the request carries, used or not, in every spelling a server
/// might read, so the upstream never sees one; edits only what holds one.
pub(super) fn remove_credentials<'a>(
    spelled: CredentialNames<'_>,
    request: &RequestView<'a>,
    raw_path: &[u8],
    query: Option<&[u8]>,
    found: &Found,
    edits: &mut Vec<HeaderEdit<'a>>,
) {
    if request.authorization_count > 0 {
        edits.push(HeaderEdit::Remove(names::AUTHORIZATION));
    }
    // The token headers and their spellings, each name once (one removal takes every value).
    edits.extend(
        request
            .token_headers
            .iter()
            .map(|sent| HeaderEdit::Remove(sent.name)),
    );
    if found.cookie_credential {
        edits.push(HeaderEdit::Remove(names::COOKIE));
        for header in &request.cookies {
            if let Some(rest) = spellings::cookie_without_credentials(spelled, header) {
                edits.push(HeaderEdit::Add(names::COOKIE, Value::Bytes(rest)));
            }
        }
    }
    if let Some(target) = spellings::target_without_credentials(spelled, raw_path, query, found) {
        edits.push(HeaderEdit::SetPath(target));
    }
}

/// Whether a request trailer named `name` is removed before the upstream: the identity
/// headers (a client's own), and credentials in any spelling, which the filter never reads
/// from trailers and so never checked: an upstream that reads them must not find one.
pub fn trailer_is_removed(config: &Config, name: &str) -> bool {
    config.identity_headers.is_spoof(name)
        || config
            .token_headers
            .iter()
            .any(|source| crate::request::spells_header(name, &source.name))
        || ["authorization", "proxy-authorization", "cookie"]
            .iter()
            .any(|credential| crate::request::spells_header(name, credential))
}
