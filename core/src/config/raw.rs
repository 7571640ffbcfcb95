//! The configuration's JSON as written: every key, nothing checked yet.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::ConfigError;

/// A string that holds a secret: its deserialisation errors never quote the value.
pub(super) struct SecretText(pub(super) String);

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecretVisitor;
        impl<'de> Visitor<'de> for SecretVisitor {
            type Value = SecretText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SecretText, E> {
                Ok(SecretText(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<SecretText, E> {
                Err(E::custom("expected a string"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<SecretText, E> {
                Err(E::custom("expected a string"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<SecretText, E> {
                Err(E::custom("expected a string"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<SecretText, E> {
                Err(E::custom("expected a string"))
            }
        }
        deserializer.deserialize_any(SecretVisitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) secrets: Vec<RawSecret>,
    #[serde(default)]
    pub(super) api_keys: Vec<RawNamedKey>,
    #[serde(default)]
    pub(super) publishable_keys: Vec<RawNamedKey>,
    #[serde(default)]
    pub(super) clients: Vec<RawClient>,
    #[serde(default)]
    pub(super) issuers: Vec<super::issuers::RawIssuer>,
    pub(super) revocation: Option<super::revocation::RawRevocation>,
    pub(super) default_mode: Option<String>,
    #[serde(default)]
    pub(super) rules: Vec<RawRule>,
    pub(super) login_url: Option<String>,
    pub(super) return_param: Option<String>,
    pub(super) clock_skew_seconds: Option<u64>,
    pub(super) max_lifetime_seconds: Option<u64>,
    pub(super) token_query_param: Option<String>,
    pub(super) token_cookie: Option<String>,
    pub(super) identity_headers: Option<RawIdentityHeaders>,
    pub(super) forward_credentials: Option<bool>,
    pub(super) access_log_fields: Option<String>,
    #[serde(default)]
    pub(super) token_headers: Vec<super::sources::RawTokenHeader>,
    pub(super) payload_header: Option<String>,
    pub(super) oidc: Option<super::oidc::RawOidc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSecret {
    pub(super) kid: Option<String>,
    pub(super) key: Option<SecretText>,
    pub(super) key_env: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNamedKey {
    pub(super) name: String,
    pub(super) key: Option<SecretText>,
    pub(super) key_env: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClient {
    pub(super) client_id: String,
    pub(super) client_secret: Option<SecretText>,
    pub(super) client_secret_env: Option<String>,
    pub(super) role: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub(super) path: Option<String>,
    pub(super) prefix: Option<String>,
    pub(super) mode: String,
    pub(super) methods: Option<Vec<String>>,
    pub(super) roles: Option<Vec<String>>,
    pub(super) issuers: Option<Vec<String>>,
    pub(super) credentials: Option<Vec<String>>,
    pub(super) audiences: Option<Vec<String>>,
    pub(super) scopes: Option<Vec<String>>,
    pub(super) claims: Option<Vec<super::conditions::RawClaimCondition>>,
    pub(super) hosts: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIdentityHeaders {
    pub(super) user: Option<String>,
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) role: Option<String>,
    pub(super) name: Option<String>,
}

/// Reads a secret given inline (`key`) or by environment variable (`key_env`).
pub(super) fn resolve_secret(
    at: &str,
    inline_name: &str,
    inline: Option<SecretText>,
    env_name: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let env_key = format!("{inline_name}_env");
    match (inline, env_name) {
        (Some(SecretText(value)), None) => Ok(value),
        (None, Some(var)) => match env(&var) {
            Some(value) if !value.is_empty() => Ok(value),
            Some(_) => Err(ConfigError::new(
                format!("{at}.{env_key}"),
                format!("environment variable \"{var}\" is empty"),
            )),
            None => Err(ConfigError::new(
                format!("{at}.{env_key}"),
                format!("environment variable \"{var}\" is not set"),
            )),
        },
        (Some(_), Some(_)) => Err(ConfigError::new(
            at,
            format!("has both \"{inline_name}\" and \"{env_key}\"; use one"),
        )),
        (None, None) => Err(ConfigError::new(
            at,
            format!("needs \"{inline_name}\" or \"{env_key}\""),
        )),
    }
}
