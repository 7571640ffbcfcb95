//! The plugin configuration: parsed from JSON, validated whole, compiled for the request path.
//!
//! Any problem refuses the whole configuration with an error that names the key
//! (`rules[3].mode: ...`); a configuration is never half applied. Secret values never appear
//! in an error.

mod checks;
mod compile;
mod conditions;
mod error;
mod error_path;
mod issuers;
pub mod key_strength;
mod material;
mod oidc;
mod raw;
mod revocation;
mod rules;
mod sources;

pub use error::ConfigError;
pub use revocation::RevocationFeed;

use error::{without_secret_names, without_values};
use raw::RawConfig;
use serde::Deserialize;

use crate::identity::{CredentialKind, IdentityHeaders};
use crate::response::Login;
use crate::rules::RuleSet;
use crate::verify::claim_values::ClaimPaths;
use crate::verify::issuer::Issuers;
use crate::verify::keys::{ClientRegistry, KeyRing};
use crate::verify::token::TokenVerifier;
use crate::verify::Verifiers;

/// The shortest HS256 secret accepted, in bytes (RFC 7518 section 3.2).
pub const MIN_SECRET_LEN: usize = 32;
/// The shortest API key, publishable key or client secret accepted, in bytes.
pub const MIN_KEY_LEN: usize = 24;
/// The largest `clock_skew_seconds` accepted.
pub const MAX_CLOCK_SKEW: u64 = 300;

/// A validated configuration, ready for the request path.
#[derive(Debug, Clone)]
pub struct Config {
    pub verifier: TokenVerifier,
    pub keys: KeyRing,
    pub clients: ClientRegistry,
    pub issuers: Issuers,
    /// The revocation feed, when one is configured.
    pub revocation: Option<RevocationFeed>,
    pub rules: RuleSet,
    /// The claims the rules' conditions read of a token (extracted once, when verified).
    pub claim_paths: ClaimPaths,
    pub rule_count: usize,
    pub login: Option<Login>,
    pub token_query_param: String,
    pub token_cookie: String,
    pub identity_headers: IdentityHeaders,
    pub forward_credentials: bool,
    pub access_log_fields: AccessLogFields,
    /// Token sources beside `Authorization: Bearer`.
    pub token_headers: Vec<crate::credential::TokenHeader>,
    /// The header of a verified token's claims (base64url JSON), when configured.
    pub payload_header: Option<String>,
    /// Browser sign-in through an OpenID provider, when configured.
    pub oidc: Option<crate::oidc::Oidc>,
}

/// Which decisions set the access-log properties (`wasm.tollgate.*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AccessLogFields {
    /// Refusals and redirects only: an allowed request's identity is in the identity headers,
    /// which the access log reads as `%REQ(X-AUTH-USER)%`.
    #[default]
    Refusals,
    /// Every decision (each field is a host call: about 2 µs).
    EveryRequest,
}

impl Config {
    /// Parses and validates `json`; `env` reads the VM's environment variables (`*_env` keys).
    pub fn parse(json: &[u8], env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        if json.iter().all(u8::is_ascii_whitespace) {
            return Err(ConfigError::new(
                "configuration",
                "is empty; expected a JSON object",
            ));
        }
        if json.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ConfigError::new("configuration", "is not a JSON object"));
        }
        let mut de = serde_json::Deserializer::from_slice(json);
        let raw = RawConfig::deserialize(&mut de).map_err(|e| {
            let path = error_path::path_at(json, e.line(), e.column());
            let (key, problem) = without_secret_names(&path, &e.to_string());
            let key = match key {
                "." | "" => "configuration",
                key => key,
            };
            ConfigError::new(key, without_values(&problem))
        })?;
        de.end()
            .map_err(|e| ConfigError::new("configuration", without_values(&e.to_string())))?;
        raw.compile(env)
    }

    /// The verifiers of credentials this configuration holds.
    pub(crate) fn verifiers(&self) -> Verifiers<'_> {
        Verifiers {
            tokens: &self.verifier,
            keys: &self.keys,
            clients: &self.clients,
            issuers: &self.issuers,
            claim_paths: &self.claim_paths,
            revocation: self.revocation.as_ref().map(|feed| {
                crate::verify::revocation::RevocationCheck {
                    fail_closed_after: feed.fail_closed_after,
                }
            }),
        }
    }

    /// What the configuration allows that an operator may not mean, one line each (logged as
    /// warnings when it loads).
    pub fn warnings(&self) -> Vec<String> {
        self.issuers
            .list
            .iter()
            .filter(|issuer| issuer.audiences.is_empty())
            .map(|issuer| {
                format!(
                    "issuer {}: no audiences: its tokens meant for any audience are accepted, other clients' tokens included; set audiences",
                    issuer.name
                )
            })
            .collect()
    }

    /// One line for the configuration log: counts only, never values.
    pub fn summary(&self) -> String {
        format!(
            "{} rules, {} secrets, {} API keys, {} publishable keys, {} clients, {} issuers, login redirect {}{}",
            self.rule_count,
            self.verifier.key_count(),
            self.keys.count(CredentialKind::ApiKey),
            self.keys.count(CredentialKind::PublishableKey),
            self.clients.len(),
            self.issuers.list.len(),
            if self.login.is_some() { "on" } else { "off" },
            if self.oidc.is_some() { ", browser sign-in on" } else { "" },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Mode;

    const SECRET: &str = "7jEUH6BbgKjxMNrUFuGdcCBCw7e9xADwni2rTqFa";

    fn env(name: &str) -> Option<String> {
        match name {
            "TOLLGATE_SECRET" => Some(SECRET.into()),
            "EMPTY" => Some(String::new()),
            "API_KEY" => Some("sk_live_6P9vU6xQXZgHpQPTe8uGTxBy3w".into()),
            "CLIENT_SECRET" => Some("cs_live_NdXQFG7wTTdYap4fT2SfKTf3Ab".into()),
            _ => None,
        }
    }

    fn parse(json: &str) -> Result<Config, ConfigError> {
        Config::parse(json.as_bytes(), &env)
    }

    #[test]
    fn minimal_configuration_and_defaults() {
        let c = parse(&format!(r#"{{"secrets":[{{"key":"{SECRET}"}}]}}"#)).unwrap();
        assert_eq!(c.token_query_param, "access_token");
        assert_eq!(c.token_cookie, "access_token");
        assert_eq!(c.identity_headers.user, "x-auth-user");
        assert_eq!(c.identity_headers.kind, "x-auth-type");
        assert_eq!(c.identity_headers.role, "x-auth-role");
        assert_eq!(c.identity_headers.name, "x-auth-name");
        assert!(!c.forward_credentials);
        assert!(c.login.is_none());
        assert_eq!(c.rules.policy(b"GET", "/anything").mode, Mode::Required);
        assert!(!c.summary().contains(SECRET));
    }

    #[test]
    fn full_configuration() {
        let c = parse(
            r#"{
            "secrets": [{"kid": "2026-11", "key_env": "TOLLGATE_SECRET"},
                        {"kid": "2026-10", "key": "previous-secret-4TqrxYCoq6TBUrbbswc"}],
            "api_keys": [{"name": "backend", "key_env": "API_KEY"}],
            "publishable_keys": [{"name": "web", "key": "pk_live_KPyEcCgeLBGQg3WcMdTVbi9PAn"}],
            "clients": [{"client_id": "reporting", "client_secret_env": "CLIENT_SECRET", "role": "reports"}],
            "default_mode": "optional",
            "rules": [
                {"prefix": "/public/", "mode": "none"},
                {"path": "/login", "mode": "none"},
                {"prefix": "/admin", "mode": "required", "roles": ["admin"]},
                {"prefix": "/reports", "mode": "required", "methods": ["GET"], "roles": ["reports", "admin"]}
            ],
            "login_url": "/login?tenant=acme",
            "return_param": "return_to",
            "clock_skew_seconds": 30,
            "max_lifetime_seconds": 86400,
            "token_query_param": "token",
            "token_cookie": "session",
            "identity_headers": {"user": "X-User", "type": "x-credential-type"},
            "forward_credentials": true
        }"#,
        )
        .unwrap();
        assert_eq!(c.rule_count, 4);
        assert_eq!(c.identity_headers.user, "x-user");
        assert_eq!(c.identity_headers.kind, "x-credential-type");
        assert_eq!(c.identity_headers.role, "x-auth-role");
        assert_eq!(c.rules.policy(b"GET", "/public").mode, Mode::None);
        assert_eq!(c.rules.policy(b"GET", "/elsewhere").mode, Mode::Optional);
        assert_eq!(
            c.rules.policy(b"GET", "/reports/x").roles,
            vec!["reports".to_string(), "admin".to_string()]
        );
        assert_eq!(c.login.as_ref().unwrap().return_param, "return_to");
        assert!(c.forward_credentials);
        assert_eq!(
            c.summary(),
            "4 rules, 2 secrets, 1 API keys, 1 publishable keys, 1 clients, 0 issuers, login redirect on"
        );
    }

    #[test]
    fn parser_messages_never_quote_values() {
        for (json, key) in [
            (
                r#"{"secrets": "a-secret-LqVAx9JiRk-RAVgmC7XsK-KEmE"}"#,
                "secrets",
            ),
            (
                r#"{"secrets": ["a-secret-LqVAx9JiRk-RAVgmC7XsK-KEmE"]}"#,
                "secrets[0]",
            ),
            (
                r#"{"secrets": [{"key": 98765432109876543210}]}"#,
                "secrets[0].key",
            ),
            (r#"{"secrets": [{"key": 98765.4321}]}"#, "secrets[0].key"),
            (
                r#"{"clients": [{"client_id": "a", "client_secret": "x\"a-secret-0123456789"}], "b": 1}"#,
                "b",
            ),
        ] {
            let e = Config::parse(json.as_bytes(), &|_| None).unwrap_err();
            assert_eq!(e.key, key, "{e}");
            for value in ["a-secret-0123456789", "98765"] {
                assert!(!e.to_string().contains(value), "{e}");
            }
        }
        assert_eq!(
            without_values(r#"invalid type: string "a\"b", expected x"#),
            "invalid type: a string, expected x"
        );
    }

    #[test]
    fn refused_configurations_name_the_key() {
        let s = format!(r#"{{"key":"{SECRET}"}}"#);
        let cases: Vec<(String, &str, &str)> = vec![
            ("".into(), "configuration", "empty"),
            ("not json".into(), "configuration", "not a JSON object"),
            ("[]".into(), "configuration", "not a JSON object"),
            ("{\"secrets\": [".into(), "secrets", "EOF"),
            (format!(r#"{{"secrets":[{s}]}} trailing"#), "configuration", "trailing"),
            (r#"{"secret": []}"#.into(), "secret", "unknown field `secret`"),
            ("{}".into(), "secrets", "nobody could pass"),
            (r#"{"default_mode":"optional","rules":[{"prefix":"/a","mode":"required"}]}"#.into(), "secrets", "nobody could pass"),
            (r#"{"secrets":[{"key":"short"}]}"#.into(), "secrets[0].key", "at least 32"),
            (r#"{"secrets":[{"key":"0123456789abcdefghijklmnopqrstu"}]}"#.into(), "secrets[0].key", "31 bytes"),
            (format!(r#"{{"secrets":[{{"key":"{SECRET}\n"}}]}}"#), "secrets[0].key", "whitespace"),
            (r#"{"secrets":[{"key":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}]}"#.into(), "secrets[0].key", "repetitive"),
            (r#"{"secrets":[{"key":"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEtest\n-----END PUBLIC KEY-----\n"}]}"#.into(), "secrets[0].key", "public key"),
            (r#"{"secrets":[{"key":12345678901234567890123456789012345}]}"#.into(), "secrets[0].key", "expected a string"),
            (r#"{"secrets":[{"kid":"a"}]}"#.into(), "secrets[0]", "needs \"key\" or \"key_env\""),
            (format!(r#"{{"secrets":[{{"key":"{SECRET}","key_env":"TOLLGATE_SECRET"}}]}}"#), "secrets[0]", "use one"),
            (r#"{"secrets":[{"key_env":"UNSET_VARIABLE"}]}"#.into(), "secrets[0].key_env", "\"UNSET_VARIABLE\" is not set"),
            (r#"{"secrets":[{"key_env":"EMPTY"}]}"#.into(), "secrets[0].key_env", "is empty"),
            (format!(r#"{{"secrets":[{{"kid":"a","key":"{SECRET}"}},{{"kid":"a","key_env":"TOLLGATE_SECRET"}}]}}"#), "secrets[1].kid", "already used"),
            (format!(r#"{{"secrets":[{s}],"default_mode":"sometimes"}}"#), "default_mode", "unknown mode \"sometimes\""),
            (format!(r#"{{"secrets":[{s}],"rules":[{{"prefix":"/a","mode":"none"}},{{"prefix":"/b","mode":"none"}},{{"prefix":"/c","mode":"none"}},{{"prefix":"/d","mode":"requried"}}]}}"#), "rules[3].mode", "unknown mode \"requried\" (expected none, optional, required)"),
            (format!(r#"{{"secrets":[{s}],"rules":[{{"mode":"none"}}]}}"#), "rules[0]", "needs \"path\" or \"prefix\""),
            (format!(r#"{{"secrets":[{s}],"rules":[{{"path":"/a","prefix":"/a","mode":"none"}}]}}"#), "rules[0]", "use one"),
            (format!(r#"{{"secrets":[{s}],"rules":[{{"prefix":"/a","mode":"none","extra":1}}]}}"#), "rules[0].extra", "unknown field `extra`"),
            (format!(r#"{{"secrets":[{s}],"rules":[{{"prefix":"/a//b","mode":"none"}}]}}"#), "rules[0].prefix", "write \"/a/b\""),
            (format!(r#"{{"secrets":[{s}],"rules":[{{"path":"/a/../b","mode":"none"}}]}}"#), "rules[0].path", "write \"/b\""),
            (format!(r#"{{"secrets":[{s}],"rules":[{{"path":"/%61","mode":"none"}}]}}"#), "rules[0].path", "write \"/a\""),
            (format!(r#"{{"secrets":[{s}],"rules":[{{"path":"a","mode":"none"}}]}}"#), "rules[0].path", "does not start with /"),
            (format!(r#"{{"secrets":[{s}],"rules":[{{"prefix":"/a","mode":"none","roles":["user"]}}]}}"#), "rules[0].roles", "only a \"required\" rule"),
            (format!(r#"{{"secrets":[{s}],"rules":[{{"prefix":"/a","mode":"required","roles":["root"]}}]}}"#), "rules[0].roles[0]", "unknown role \"root\""),
            (format!(r#"{{"secrets":[{s}],"rules":[{{"prefix":"/a","mode":"required","roles":[]}}]}}"#), "rules[0].roles", "nobody could pass"),
            (format!(r#"{{"secrets":[{s}],"rules":[{{"prefix":"/a","mode":"none","methods":["get"]}}]}}"#), "rules[0].methods[0]", "upper-case"),
            (format!(r#"{{"secrets":[{s}],"rules":[{{"prefix":"/a","mode":"none","methods":[]}}]}}"#), "rules[0].methods", "is empty"),
            (format!(r#"{{"secrets":[{s}],"rules":[{{"prefix":"/a","mode":"none"}},{{"prefix":"/a/","mode":"required"}}]}}"#), "rules[1]", "same requests as rules[0]"),
            (format!(r#"{{"secrets":[{s}],"clock_skew_seconds":-1}}"#), "clock_skew_seconds", "invalid value"),
            (format!(r#"{{"secrets":[{s}],"clock_skew_seconds":3600}}"#), "clock_skew_seconds", "more than"),
            (format!(r#"{{"secrets":[{s}],"clock_skew_seconds":"60"}}"#), "clock_skew_seconds", "invalid type"),
            (format!(r#"{{"secrets":[{s}],"max_lifetime_seconds":0}}"#), "max_lifetime_seconds", "at least 1"),
            (format!(r#"{{"secrets":[{s}],"token_query_param":"a b"}}"#), "token_query_param", "must be"),
            (format!(r#"{{"secrets":[{s}],"token_query_param":"client_id"}}"#), "token_query_param", "client credential"),
            (format!(r#"{{"secrets":[{s}],"token_cookie":"a;b"}}"#), "token_cookie", "not a valid cookie name"),
            (format!(r#"{{"secrets":[{s}],"identity_headers":{{"user":"authorization"}}}}"#), "identity_headers.user", "reserved"),
            (format!(r#"{{"secrets":[{s}],"identity_headers":{{"user":"range"}}}}"#), "identity_headers.user", "reserved"),
            (format!(r#"{{"secrets":[{s}],"identity_headers":{{"user":"baggage"}}}}"#), "identity_headers.user", "reserved"),
            (format!(r#"{{"secrets":[{s}],"identity_headers":{{"user":"trailer"}}}}"#), "identity_headers.user", "reserved"),
            (format!(r#"{{"secrets":[{s}],"identity_headers":{{"user":"x user"}}}}"#), "identity_headers.user", "header name"),
            (format!(r#"{{"secrets":[{s}],"identity_headers":{{"user":"x_user"}}}}"#), "identity_headers.user", "instead of '_'"),
            (format!(r#"{{"secrets":[{s}],"identity_headers":{{"role":"x-auth-user"}}}}"#), "identity_headers.user", "two identity fields"),
            (format!(r#"{{"secrets":[{s}],"identity_headers":{{"group":"x-g"}}}}"#), "identity_headers.group", "unknown field `group`"),
            (format!(r#"{{"secrets":[{s}],"forward_credentials":"yes"}}"#), "forward_credentials", "invalid type"),
            (format!(r#"{{"secrets":[{s}],"login_url":"/login"}}"#), "login_url", "must be a \"none\" path"),
            (format!(r#"{{"secrets":[{s}],"login_url":"//evil.example/login","rules":[{{"prefix":"/","mode":"none"}}]}}"#), "login_url", "single /"),
            (format!(r#"{{"secrets":[{s}],"login_url":"javascript:alert(1)"}}"#), "login_url", "absolute http(s) URL"),
            (format!(r#"{{"secrets":[{s}],"login_url":"https:///x"}}"#), "login_url", "no valid host"),
            (format!(r#"{{"secrets":[{s}],"login_url":"https://a b"}}"#), "login_url", "visible ASCII"),
            (format!(r#"{{"secrets":[{s}],"login_url":"https://auth.example.com","return_param":""}}"#), "return_param", "must be"),
            (r#"{"api_keys":[{"name":"a","key":"short"}]}"#.into(), "api_keys[0].key", "at least 24"),
            (r#"{"api_keys":[{"name":"a","key":"sk_live_ZAZW6GZrmfN4CgsWwdHj klm"}]}"#.into(), "api_keys[0].key", "only letters"),
            (r#"{"api_keys":[{"name":"a","key_env":"API_KEY"},{"name":"b","key_env":"API_KEY"}]}"#.into(), "api_keys[1].key", "twice"),
            (r#"{"api_keys":[{"name":"a","key":"sk_live.hcV4Xii57k7wCzZN.RLu9qTM4mr"}]}"#.into(), "api_keys[0].key", "two dots"),
            (r#"{"api_keys":[{"name":"a","key_env":"API_KEY"}],"publishable_keys":[{"name":"b","key_env":"API_KEY"}]}"#.into(), "publishable_keys[0].key", "twice"),
            (r#"{"api_keys":[{"name":"a b","key_env":"API_KEY"}]}"#.into(), "api_keys[0].name", "visible ASCII"),
            (r#"{"clients":[{"client_id":"c"}]}"#.into(), "clients[0]", "needs \"client_secret\" or \"client_secret_env\""),
            (r#"{"clients":[{"client_id":"c","client_secret_env":"CLIENT_SECRET","role":"a,b"}]}"#.into(), "clients[0].role", "without spaces or commas"),
            (r#"{"clients":[{"client_id":"c","client_secret_env":"CLIENT_SECRET"},{"client_id":"c","client_secret_env":"CLIENT_SECRET"}]}"#.into(), "clients[1].client_id", "already configured"),
        ];
        for (json, key, problem) in cases {
            match parse(&json) {
                Ok(_) => panic!("accepted: {json}"),
                Err(e) => {
                    assert_eq!(e.key, key, "{json}: {e}");
                    assert!(e.problem.contains(problem), "{json}: {e}");
                }
            }
        }
    }

    #[test]
    fn a_secret_written_where_a_key_belongs_is_not_quoted() {
        let secret = "sk_live_Q7w8E9r0T1y2U3i4O5p6A7s8";
        for json in [
            format!(r#"{{"api_keys": [{{"name": "backend", "{secret}": null}}]}}"#),
            format!(r#"{{"secrets": [{{"kid": "old", "{secret}": "x"}}]}}"#),
            format!(r#"{{"{secret}": 1}}"#),
        ] {
            let e = Config::parse(json.as_bytes(), &|_| None).unwrap_err();
            let text = e.to_string();
            assert!(!text.contains(secret), "{text}");
            assert!(text.contains("unknown field"), "{text}");
        }
        // A plain typo is still named.
        let e = Config::parse(br#"{"rules": [], "defualt_mode": "none"}"#, &|_| None).unwrap_err();
        assert!(e.to_string().contains("defualt_mode"), "{e}");
    }

    #[test]
    fn errors_never_quote_secrets() {
        let secret_like = "0123456789abcdefghijklmnopqrstuvwxyz";
        for json in [
            format!(r#"{{"secrets":[{{"key":"{secret_like} "}}]}}"#),
            format!(r#"{{"api_keys":[{{"name":"n","key":"{secret_like}!"}}]}}"#),
            format!(r#"{{"secrets":[{{"key":"{secret_like}","bogus":1}}]}}"#),
        ] {
            let e = parse(&json).unwrap_err().to_string();
            assert!(!e.contains(secret_like), "{e}");
        }
    }

    #[test]
    fn login_path_must_be_open() {
        let ok = format!(
            r#"{{"secrets":[{{"key":"{SECRET}"}}],"login_url":"/login?x=1","rules":[{{"path":"/login","mode":"none"}}]}}"#
        );
        assert!(parse(&ok).is_ok());
        let absolute = format!(
            r#"{{"secrets":[{{"key":"{SECRET}"}}],"login_url":"https://auth.example.com/login?tenant=acme"}}"#
        );
        assert!(parse(&absolute).is_ok());
        // A rule for GET also covers HEAD.
        let get_only = format!(
            r#"{{"secrets":[{{"key":"{SECRET}"}}],"login_url":"/login","rules":[{{"path":"/login","mode":"none","methods":["GET"]}}]}}"#
        );
        assert!(parse(&get_only).is_ok());
        let post_only = format!(
            r#"{{"secrets":[{{"key":"{SECRET}"}}],"login_url":"/login","rules":[{{"path":"/login","mode":"none","methods":["POST"]}}]}}"#
        );
        assert_eq!(parse(&post_only).unwrap_err().key, "login_url");
    }

    #[test]
    fn root_none_rule_needs_no_credentials() {
        assert!(parse(r#"{"rules":[{"prefix":"/","mode":"none"}]}"#).is_ok());
        assert!(parse(r#"{"default_mode":"optional"}"#).is_ok());
    }
}
