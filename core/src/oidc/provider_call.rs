//! The POSTs to the provider made for a request (the code exchange, a refresh, a
//! revocation): form bodies, client authentication, and reading the token answer.

use jwt_simple::reexports::ct_codecs::{Base64, Encoder};

use super::config::{ClusterEndpoint, Oidc};
use crate::request::query::encode_component;

/// How long the provider has to answer while the request waits, in milliseconds.
pub const CALL_TIMEOUT_MS: u64 = 5_000;
/// The largest token answer read.
pub const MAX_ANSWER: usize = 64 * 1024;

/// A POST to send through the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderCall {
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// A form POST of `fields` to `endpoint`, authenticated as the client: HTTP Basic when it
/// has a secret (RFC 6749 section 2.3.1, each part form-encoded), else `client_id` in the
/// form (a public client).
pub fn post(oidc: &Oidc, endpoint: &ClusterEndpoint, fields: &[(&str, &str)]) -> ProviderCall {
    let mut body = String::new();
    let mut add = |name: &str, value: &str| {
        if !body.is_empty() {
            body.push('&');
        }
        body.push_str(name);
        body.push('=');
        body.push_str(&encode_component(value.as_bytes()));
    };
    for (name, value) in fields {
        add(name, value);
    }
    let mut headers = vec![
        (":method", "POST".to_owned()),
        (":path", endpoint.path.clone()),
        (":authority", endpoint.authority.clone()),
        (
            ":scheme",
            if endpoint.https { "https" } else { "http" }.to_owned(),
        ),
        (
            "content-type",
            "application/x-www-form-urlencoded".to_owned(),
        ),
        ("accept", "application/json".to_owned()),
        ("user-agent", "tollgate".to_owned()),
    ];
    match &oidc.client_secret {
        Some(secret) => {
            let pair = format!(
                "{}:{}",
                encode_component(oidc.client_id.as_bytes()),
                encode_component(secret.as_bytes())
            );
            let encoded = Base64::encode_to_string(pair.as_bytes()).unwrap_or_default();
            headers.push(("authorization", format!("Basic {encoded}")));
        }
        None => add("client_id", &oidc.client_id),
    }
    headers.push(("content-length", body.len().to_string()));
    ProviderCall {
        headers,
        body: body.into_bytes(),
    }
}

/// A token endpoint's answer (RFC 6749 section 5.1, OpenID Connect Core 3.1.3.3).
#[derive(Debug)]
pub struct Tokens {
    pub access_token: String,
    pub id_token: Option<String>,
    pub refresh_token: Option<String>,
}

/// The tokens of a `200` answer with `body`; `None` for any other answer.
pub fn tokens(status: Option<&str>, body: &[u8]) -> Option<Tokens> {
    if status != Some("200") || body.len() > MAX_ANSWER {
        return None;
    }
    let answer = crate::verify::claims::parse_strict(body)?;
    let text = |name: &str| answer.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let tokens = Tokens {
        access_token: text("access_token")?,
        id_token: text("id_token"),
        refresh_token: text("refresh_token"),
    };
    let printable = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic());
    let ok = printable(&tokens.access_token)
        && tokens.id_token.as_deref().is_none_or(printable)
        && tokens.refresh_token.as_deref().is_none_or(printable);
    ok.then_some(tokens)
}
