//! `token_headers` (token sources beside `Authorization: Bearer`) and `payload_header`
//! (the verified claims for the upstream): checked against every header the filter reads or
//! sets.

use serde::Deserialize;

use super::checks::{check_header_name, check_identity_header, with_key};
use super::ConfigError;
use crate::credential::TokenHeader;
use crate::identity::IdentityHeaders;
use crate::request::{names, spells_header};

/// The longest `prefix` of a token header.
const MAX_PREFIX_LEN: usize = 64;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTokenHeader {
    pub(super) name: String,
    pub(super) prefix: Option<String>,
}

/// The token headers: each a header name the filter reads nothing else from, with `_` or `.`
/// in no name (servers read them as `-`), each once; `authorization` only with a prefix
/// other than `Bearer`.
pub(super) fn compile_token_headers(
    raw: Vec<RawTokenHeader>,
    identity: &IdentityHeaders,
) -> Result<Vec<TokenHeader>, ConfigError> {
    if raw.len() > 8 {
        return Err(ConfigError::new(
            "token_headers",
            "holds more than 8 sources",
        ));
    }
    let mut out: Vec<TokenHeader> = Vec::with_capacity(raw.len());
    for (i, source) in raw.into_iter().enumerate() {
        let at = format!("token_headers[{i}]");
        let name = source.name;
        let bad_name = |problem: String| Err(ConfigError::new(format!("{at}.name"), problem));
        if name.is_empty() {
            return bad_name("is empty".into());
        }
        if name.starts_with(':') {
            return bad_name(format!("\"{}\" is a pseudo-header", name.escape_default()));
        }
        if name == names::AUTHORIZATION {
            if source.prefix.is_none() {
                return bad_name(
                    "\"authorization\" is read as Bearer already; give another prefix (such as \"Token \")".into(),
                );
            }
        } else {
            with_key(format!("{at}.name"), check_header_name(&name))?;
            if name.contains('_') || name.contains('.') {
                return bad_name(format!(
                    "\"{name}\": use '-' instead of '_' or '.' (many servers read them the same)"
                ));
            }
        }
        if identity.is_spoof(&name) {
            return bad_name(format!("\"{name}\" is an identity header"));
        }
        if out.iter().any(|o| spells_header(&name, &o.name)) {
            return bad_name(format!("\"{name}\" is a token source twice"));
        }
        if let Some(prefix) = &source.prefix {
            let printable = prefix.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
            if prefix.trim().is_empty() || prefix.len() > MAX_PREFIX_LEN || !printable {
                return Err(ConfigError::new(
                    format!("{at}.prefix"),
                    "must be 1 to 64 printable ASCII characters, not only spaces",
                ));
            }
            // A prefix that reads `Bearer ...` would take Bearer credentials from the scheme.
            let lower = prefix.to_ascii_lowercase();
            if "bearer ".starts_with(&lower) || lower.starts_with("bearer") {
                return Err(ConfigError::new(
                    format!("{at}.prefix"),
                    "Bearer is read already; leave this source out",
                ));
            }
        }
        out.push(TokenHeader {
            name,
            prefix: source.prefix,
        });
    }
    Ok(out)
}

/// The header of the verified claims: one the filter may set (as an identity header), and
/// none that it reads or sets otherwise.
pub(super) fn compile_payload_header(
    raw: Option<String>,
    identity: &IdentityHeaders,
    sources: &[TokenHeader],
) -> Result<Option<String>, ConfigError> {
    let Some(name) = raw else {
        return Ok(None);
    };
    with_key("payload_header", check_identity_header(&name))?;
    let taken = identity.is_spoof(&name) || sources.iter().any(|s| spells_header(&name, &s.name));
    if taken {
        return Err(ConfigError::new(
            "payload_header",
            format!("\"{name}\" is a header the filter already reads or sets"),
        ));
    }
    Ok(Some(name))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn refused(extra: &str) -> String {
        let json = format!(
            r#"{{"api_keys":[{{"name":"a","key":"sk_live_hcV4Xii57k7wCzZNRLu9qTM4mr"}}],{extra}}}"#
        );
        match Config::parse(json.as_bytes(), &|_| None) {
            Ok(_) => panic!("accepted: {extra}"),
            Err(e) => e.to_string(),
        }
    }

    fn accepted(extra: &str) -> Config {
        let json = format!(
            r#"{{"api_keys":[{{"name":"a","key":"sk_live_hcV4Xii57k7wCzZNRLu9qTM4mr"}}],{extra}}}"#
        );
        Config::parse(json.as_bytes(), &|_| None).unwrap()
    }

    #[test]
    fn token_headers_and_the_payload_header_load() {
        let config = accepted(
            r#""token_headers":[{"name":"x-access-token"},{"name":"authorization","prefix":"Token "}],"payload_header":"x-jwt-payload""#,
        );
        assert_eq!(config.token_headers.len(), 2);
        assert_eq!(config.payload_header.as_deref(), Some("x-jwt-payload"));
        assert!(config.identity_headers.is_spoof("x_jwt_payload"));
    }

    #[test]
    fn bad_sources_are_refused_naming_the_key() {
        for (extra, key, says) in [
            (
                r#""token_headers":[{"name":""}]"#,
                "token_headers[0].name",
                "empty",
            ),
            (
                r#""token_headers":[{"name":":path"}]"#,
                "token_headers[0].name",
                "pseudo",
            ),
            (
                r#""token_headers":[{"name":"X Token"}]"#,
                "token_headers[0].name",
                "header name",
            ),
            (
                r#""token_headers":[{"name":"x_access_token"}]"#,
                "token_headers[0].name",
                "'-'",
            ),
            (
                r#""token_headers":[{"name":"x-t"},{"name":"x-t","prefix":"T "}]"#,
                "token_headers[1].name",
                "twice",
            ),
            (
                r#""token_headers":[{"name":"x-auth-user"}]"#,
                "token_headers[0].name",
                "identity",
            ),
            (
                r#""token_headers":[{"name":"cookie"}]"#,
                "token_headers[0].name",
                "reserved",
            ),
            (
                r#""token_headers":[{"name":"x-http-method-override"}]"#,
                "token_headers[0].name",
                "reserved",
            ),
            (
                r#""token_headers":[{"name":"authorization"}]"#,
                "token_headers[0].name",
                "prefix",
            ),
            (
                r#""token_headers":[{"name":"authorization","prefix":"Bear"}]"#,
                "token_headers[0].prefix",
                "Bearer",
            ),
            (
                r#""token_headers":[{"name":"authorization","prefix":"bearer "}]"#,
                "token_headers[0].prefix",
                "Bearer",
            ),
            (
                r#""token_headers":[{"name":"x-t","prefix":" "}]"#,
                "token_headers[0].prefix",
                "printable",
            ),
            (
                r#""token_headers":[{"name":"x-t","prefix":"T\u00e9 "}]"#,
                "token_headers[0].prefix",
                "printable",
            ),
            (
                r#""token_headers":[{"name":"x-t","other":1}]"#,
                "token_headers[0]",
                "unknown field",
            ),
            (
                r#""payload_header":"x-auth-role""#,
                "payload_header",
                "already",
            ),
            (
                r#""payload_header":"authorization""#,
                "payload_header",
                "reserved",
            ),
            (r#""payload_header":"x_payload""#, "payload_header", "'-'"),
            (
                r#""token_headers":[{"name":"x-jwt"}],"payload_header":"x-jwt""#,
                "payload_header",
                "already",
            ),
        ] {
            let error = refused(extra);
            assert!(
                error.starts_with(key) && error.contains(says),
                "{extra}: {error}"
            );
        }
    }
}
