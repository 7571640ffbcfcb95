//! The provider's discovery document (OpenID Connect Discovery 1.0), read with
//! `oidc.discovery`: the endpoints sign-in uses, the configuration's own keys winning.

use super::config::{cluster_endpoint, is_plain_url, Endpoints, Oidc};

/// The most bytes of a discovery document read (providers publish a few kilobytes).
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// How often the document is fetched again after a good fetch (an hour), in milliseconds.
pub const REFRESH_MS: u64 = 3_600_000;

/// The endpoints of `oidc` from the discovery document `body`, the configuration's winning;
/// or why the document is refused (for the log: it quotes no value of the document).
pub fn endpoints(oidc: &Oidc, body: &[u8]) -> Result<Endpoints, String> {
    // Read as the provider's answers are: a member named twice refuses the document.
    let not_read = || "is not a JSON object of string endpoints".to_owned();
    let members = crate::verify::claims::parse_strict(body)
        .filter(serde_json::Value::is_object)
        .ok_or_else(not_read)?;
    // The endpoints sign-in reads, each a string when present; the other members are
    // ignored.
    let text = |name: &str| match members.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => value
            .as_str()
            .map(|s| Some(s.to_owned()))
            .ok_or_else(not_read),
    };
    let issuer = text("issuer")?.ok_or_else(not_read)?;
    // Section 4.3: the document's issuer is exactly the one it was fetched for (a provider
    // cannot speak for another, and endpoints of a mixed-up issuer are never used).
    if issuer != oidc.issuer_id {
        return Err(format!(
            "names another issuer than \"{}\"",
            oidc.issuer_id.escape_default()
        ));
    }
    // Fetched over https, its endpoints are https too: no browser or code is sent in clear.
    let https = oidc
        .discovery
        .as_ref()
        .is_none_or(|document| document.https);
    // Each endpoint the configuration names wins; one the document names must be plain.
    let pick = |configured: Option<String>, key: &'static str| -> Result<_, String> {
        if configured.is_some() {
            return Ok(configured);
        }
        match text(key)? {
            Some(url) if is_plain_url(&url) && (!https || url.starts_with("https://")) => {
                Ok(Some(url))
            }
            Some(_) => Err(format!(
                "has a {key} that is not an absolute {} URL of visible ASCII without a fragment",
                if https { "https" } else { "http(s)" }
            )),
            None => Ok(None),
        }
    };
    let configured = &oidc.configured;
    let authorization = pick(configured.authorization.clone(), "authorization_endpoint")?;
    let end_session = pick(configured.end_session.clone(), "end_session_endpoint")?;
    let token = match &configured.token {
        Some(endpoint) => Some(endpoint.clone()),
        None => pick(None, "token_endpoint")?.map(|url| cluster_endpoint(&url)),
    };
    let revocation = match &configured.revocation {
        Some(endpoint) => Some(endpoint.clone()),
        None => pick(None, "revocation_endpoint")?.map(|url| cluster_endpoint(&url)),
    };
    match (authorization, token) {
        (Some(authorization), Some(token)) => Ok(Endpoints {
            authorization,
            token,
            revocation,
            end_session,
        }),
        (None, _) => Err("has no authorization_endpoint".to_owned()),
        (_, None) => Err("has no token_endpoint".to_owned()),
    }
}
