//! The plugin configuration: parsed from JSON, validated whole, compiled for the request path.
//!
//! Any problem refuses the whole configuration with an error that names the key
//! (`rules[3].mode: ...`); a configuration is never half applied. Secret values never appear
//! in an error.

pub mod key_strength;

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::credential::spellings;
use crate::credential::{is_b64token, CLIENT_ID_PARAM, CLIENT_SECRET_PARAM};
use crate::identity::{role, CredentialKind};
use crate::request::path;
use crate::request::spells_header;
use crate::rules::{default_roles, Matcher, Mode, Policy, Rule, RuleSet};
use crate::verify::keys::{ClientRegistry, KeyRing};
use crate::verify::token::{SigningKey, TokenVerifier};
use crate::verify::Verifiers;

/// The shortest HS256 secret accepted, in bytes (RFC 7518 section 3.2).
pub const MIN_SECRET_LEN: usize = 32;
/// The shortest API key, publishable key or client secret accepted, in bytes.
pub const MIN_KEY_LEN: usize = 24;
/// The largest `clock_skew_seconds` accepted.
pub const MAX_CLOCK_SKEW: u64 = 300;

/// A configuration refused: which key, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// A parser's message without the values it quotes (`invalid type: string "…"`): the value
/// may be a secret written in the wrong place, and the message goes to the log.
fn without_values(message: &str) -> String {
    /// How the parser quotes a value, and what is written instead.
    const QUOTED: [(&str, char, &str); 3] = [
        ("string \"", '"', "a string"),
        ("integer `", '`', "a number"),
        ("floating point `", '`', "a number"),
    ];
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some((at, opening, quote, plain)) = QUOTED
        .iter()
        .filter_map(|&(o, q, p)| rest.find(o).map(|at| (at, o, q, p)))
        .min_by_key(|found| found.0)
    {
        out.push_str(rest.get(..at).unwrap_or_default());
        out.push_str(plain);
        rest = skip_quoted(rest.get(at + opening.len()..).unwrap_or_default(), quote);
    }
    out.push_str(rest);
    out
}

/// What follows the closing `quote` (a backslash escapes the next character).
fn skip_quoted(text: &str, quote: char) -> &str {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            c if c == quote => return text.get(i + c.len_utf8()..).unwrap_or_default(),
            _ => {}
        }
    }
    ""
}

/// The identity headers' default names.
const DEFAULT_IDENTITY_HEADERS: [&str; 4] =
    ["x-auth-user", "x-auth-type", "x-auth-role", "x-auth-name"];

/// Names of the headers that carry the identity to the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHeaders {
    pub user: String,
    pub kind: String,
    pub role: String,
    pub name: String,
}

impl IdentityHeaders {
    /// Whether a client-sent header `name` spells one of these (any case, `_` for `-`).
    /// The default names are stripped too when others are configured: an upstream written
    /// for the defaults must never read a client's.
    pub fn is_spoof(&self, name: &str) -> bool {
        [&self.user, &self.kind, &self.role, &self.name]
            .iter()
            .map(|h| h.as_str())
            .chain(DEFAULT_IDENTITY_HEADERS)
            .any(|h| spells_header(name, h))
    }
}

/// Where browsers are sent to sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// `login_url` as configured.
    pub url: String,
    /// The query parameter that carries the original URL.
    pub return_param: String,
}

/// A validated configuration, ready for the request path.
#[derive(Debug, Clone)]
pub struct Config {
    pub verifier: TokenVerifier,
    pub keys: KeyRing,
    pub clients: ClientRegistry,
    pub rules: RuleSet,
    pub rule_count: usize,
    pub login: Option<Login>,
    pub token_query_param: String,
    pub token_cookie: String,
    pub identity_headers: IdentityHeaders,
    pub forward_credentials: bool,
    pub access_log_fields: AccessLogFields,
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
        let raw: RawConfig = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let key = match e.path().to_string() {
                p if p == "." => "configuration".to_owned(),
                p => p,
            };
            ConfigError::new(key, without_values(&e.inner().to_string()))
        })?;
        de.end()
            .map_err(|e| ConfigError::new("configuration", without_values(&e.to_string())))?;
        raw.compile(env)
    }

    /// The verifiers of credentials this configuration holds.
    pub fn verifiers(&self) -> Verifiers<'_> {
        Verifiers {
            tokens: &self.verifier,
            keys: &self.keys,
            clients: &self.clients,
        }
    }

    /// One line for the configuration log: counts only, never values.
    pub fn summary(&self) -> String {
        format!(
            "{} rules, {} secrets, {} API keys, {} publishable keys, {} clients, login redirect {}",
            self.rule_count,
            self.verifier.key_count(),
            self.keys.count(CredentialKind::ApiKey),
            self.keys.count(CredentialKind::PublishableKey),
            self.clients.len(),
            if self.login.is_some() { "on" } else { "off" },
        )
    }
}

/// A string that holds a secret: its deserialisation errors never quote the value.
struct SecretText(String);

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
struct RawConfig {
    #[serde(default)]
    secrets: Vec<RawSecret>,
    #[serde(default)]
    api_keys: Vec<RawNamedKey>,
    #[serde(default)]
    publishable_keys: Vec<RawNamedKey>,
    #[serde(default)]
    clients: Vec<RawClient>,
    default_mode: Option<String>,
    #[serde(default)]
    rules: Vec<RawRule>,
    login_url: Option<String>,
    return_param: Option<String>,
    clock_skew_seconds: Option<u64>,
    max_lifetime_seconds: Option<u64>,
    token_query_param: Option<String>,
    token_cookie: Option<String>,
    identity_headers: Option<RawIdentityHeaders>,
    forward_credentials: Option<bool>,
    access_log_fields: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecret {
    kid: Option<String>,
    key: Option<SecretText>,
    key_env: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNamedKey {
    name: String,
    key: Option<SecretText>,
    key_env: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    client_id: String,
    client_secret: Option<SecretText>,
    client_secret_env: Option<String>,
    role: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    path: Option<String>,
    prefix: Option<String>,
    mode: String,
    methods: Option<Vec<String>>,
    roles: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentityHeaders {
    user: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    role: Option<String>,
    name: Option<String>,
}

/// Reads a secret given inline (`key`) or by environment variable (`key_env`).
fn resolve_secret(
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

/// Problems with an HS256 secret, described without quoting it.
fn secret_problem(key: &str) -> Option<String> {
    if key.len() < MIN_SECRET_LEN {
        return Some(format!(
            "is {} bytes; an HS256 secret needs at least {MIN_SECRET_LEN} (try `openssl rand -base64 32`)",
            key.len()
        ));
    }
    let looks_public = [
        "-----BEGIN",
        "ssh-rsa",
        "ssh-ed25519",
        "ecdsa-sha2-",
        "{\"kty\"",
    ]
    .iter()
    .any(|marker| key.contains(marker));
    if looks_public {
        return Some("looks like a public key (PEM, SSH or JWK), not an HS256 secret".into());
    }
    text_problem(key).or_else(|| key_strength::weakness(key))
}

/// Whitespace around a secret or control characters in it (a copied newline, typically).
fn text_problem(value: &str) -> Option<String> {
    if value.trim() != value {
        return Some("has leading or trailing whitespace".into());
    }
    if value.chars().any(char::is_control) {
        return Some("holds control characters".into());
    }
    None
}

/// Problems with an API key, publishable key or client secret.
fn key_problem(key: &str, what: &str) -> Option<String> {
    if key.len() < MIN_KEY_LEN {
        return Some(format!(
            "is {} bytes; {what} needs at least {MIN_KEY_LEN}",
            key.len()
        ));
    }
    if key.len() > crate::verify::MAX_CREDENTIAL_LEN {
        return Some(format!(
            "is longer than {} bytes",
            crate::verify::MAX_CREDENTIAL_LEN
        ));
    }
    text_problem(key).or_else(|| key_strength::weakness(key))
}

/// A label copied into an identity header: 1 to 128 visible ASCII characters, no comma.
fn label_problem(label: &str) -> Option<String> {
    if label.is_empty() || label.len() > 128 {
        return Some("must be 1 to 128 characters".into());
    }
    if !label.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
        return Some(format!(
            "\"{}\" must be visible ASCII without spaces or commas",
            label.escape_default()
        ));
    }
    None
}

/// A query parameter name we look for: 1 to 64 unreserved characters.
fn param_name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 64 || !name.bytes().all(path::is_unreserved) {
        return Some(format!(
            "\"{}\" must be 1 to 64 letters, digits, '-', '.', '_' or '~'",
            name.escape_default()
        ));
    }
    None
}

/// A cookie name (RFC 6265 token).
fn cookie_name_problem(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
    (!ok).then(|| format!("\"{}\" is not a valid cookie name", name.escape_default()))
}

/// A role name: 1 to 64 lower-case letters, digits, '-' or '_'.
fn role_name_problem(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    (!ok).then(|| {
        format!(
            "\"{}\" must be 1 to 64 lower-case letters, digits, '-' or '_'",
            name.escape_default()
        )
    })
}

/// Headers the filter must never overwrite: those it reads itself, and those that frame or
/// route the request.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "cookie",
    "origin",
    "accept",
    "x-requested-with",
    "access-control-request-method",
    "access-control-request-headers",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-for",
    "forwarded",
    "x-original-url",
    "x-rewrite-url",
    "set-cookie",
    "expect",
    "x-request-id",
    "x-real-ip",
    "x-forwarded-client-cert",
    "x-forwarded-prefix",
    "x-forwarded-port",
    "x-original-forwarded-for",
    "referer",
    "user-agent",
    "via",
    "content-encoding",
    "accept-encoding",
    "proxy-connection",
    "http2-settings",
    "early-data",
    "x-client-trace-id",
    "traceparent",
    "tracestate",
    "b3",
    "x-ot-span-context",
    "x-request-start",
    "x-amzn-trace-id",
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "keep-alive",
    "proxy-authorization",
];

fn header_name_problem(name: &str) -> Option<String> {
    let token = !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        });
    if !token {
        return Some(format!(
            "\"{}\" must be a lower-case HTTP header name",
            name.escape_default()
        ));
    }
    let reserved_family = ["x-envoy-", "grpc-", "x-b3-", "x-datadog-", "x-cloud-trace-"]
        .iter()
        .any(|prefix| name.starts_with(prefix));
    if RESERVED_HEADERS.iter().any(|r| spells_header(name, r)) || reserved_family {
        return Some(format!("\"{name}\" is reserved"));
    }
    None
}

fn check(key: impl Into<String>, problem: Option<String>) -> Result<(), ConfigError> {
    match problem {
        Some(p) => Err(ConfigError::new(key, p)),
        None => Ok(()),
    }
}

fn parse_mode(key: &str, text: &str) -> Result<Mode, ConfigError> {
    Mode::parse(text).ok_or_else(|| {
        ConfigError::new(
            key,
            format!(
                "unknown mode \"{}\" (expected none, optional, required)",
                text.escape_default()
            ),
        )
    })
}

impl RawConfig {
    fn compile(self, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let clock_skew = self.clock_skew_seconds.unwrap_or(60);
        if clock_skew > MAX_CLOCK_SKEW {
            return Err(ConfigError::new(
                "clock_skew_seconds",
                format!("{clock_skew} is more than the {MAX_CLOCK_SKEW} seconds accepted"),
            ));
        }
        if self.max_lifetime_seconds == Some(0) {
            return Err(ConfigError::new(
                "max_lifetime_seconds",
                "must be at least 1",
            ));
        }
        let mut material = Material::default();
        let verifier = TokenVerifier::new(
            compile_secrets(self.secrets, env, &mut material)?,
            clock_skew,
            self.max_lifetime_seconds,
        );
        let keys = compile_keys(self.api_keys, self.publishable_keys, env, &mut material)?;
        let clients = compile_clients(self.clients, env, &keys, &mut material)?;
        material.check()?;
        let default_mode = match &self.default_mode {
            Some(text) => parse_mode("default_mode", text)?,
            None => Mode::Required,
        };
        let rule_count = self.rules.len();
        let rules = RuleSet::new(compile_rules(self.rules, &clients)?, default_mode);

        let nobody_can_authenticate = !verifier.has_keys()
            && keys.count(CredentialKind::ApiKey) == 0
            && keys.count(CredentialKind::PublishableKey) == 0
            && clients.is_empty();
        if nobody_can_authenticate && rules.any_required() {
            return Err(ConfigError::new(
                "secrets",
                "no secret, API key, publishable key or client is configured, yet some paths are required: nobody could pass",
            ));
        }

        let token_query_param = self
            .token_query_param
            .unwrap_or_else(|| "access_token".into());
        check("token_query_param", param_name_problem(&token_query_param))?;
        if token_query_param == CLIENT_ID_PARAM || token_query_param == CLIENT_SECRET_PARAM {
            return Err(ConfigError::new(
                "token_query_param",
                format!("\"{token_query_param}\" is the name of a client credential parameter"),
            ));
        }
        let token_cookie = self.token_cookie.unwrap_or_else(|| "access_token".into());
        check("token_cookie", cookie_name_problem(&token_cookie))?;

        let return_param = self.return_param.unwrap_or_else(|| "redirect".into());
        check("return_param", param_name_problem(&return_param))?;
        let login = match self.login_url {
            Some(url) => {
                check_login_url(&url, &rules)?;
                Some(Login { url, return_param })
            }
            None => None,
        };

        Ok(Config {
            verifier,
            keys,
            clients,
            rules,
            rule_count,
            login,
            token_query_param,
            token_cookie,
            identity_headers: compile_identity_headers(self.identity_headers)?,
            forward_credentials: self.forward_credentials.unwrap_or(false),
            access_log_fields: match self.access_log_fields.as_deref() {
                None | Some("refusals") => AccessLogFields::Refusals,
                Some("every_request") => AccessLogFields::EveryRequest,
                Some(other) => {
                    return Err(ConfigError::new(
                        "access_log_fields",
                        format!(
                            "unknown value \"{}\" (expected refusals or every_request)",
                            other.escape_default()
                        ),
                    ))
                }
            },
        })
    }
}

/// Every secret and key of the configuration, by its key path, to check them together.
#[derive(Default)]
struct Material(Vec<(String, Vec<u8>)>);

impl Material {
    fn add(&mut self, key: String, value: &str) {
        self.0.push((key, value.as_bytes().to_vec()));
    }

    /// No two equal, and none containing another.
    fn check(&self) -> Result<(), ConfigError> {
        let entries: Vec<(&str, &[u8])> = self
            .0
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        match key_strength::first_overlap(&entries) {
            Some((key, other)) => Err(ConfigError::new(
                key,
                format!("is equal to, contains or is contained in {other}; every secret and key must be distinct"),
            )),
            None => Ok(()),
        }
    }
}

fn compile_secrets(
    raw: Vec<RawSecret>,
    env: &dyn Fn(&str) -> Option<String>,
    material: &mut Material,
) -> Result<Vec<SigningKey>, ConfigError> {
    let mut keys: Vec<SigningKey> = Vec::with_capacity(raw.len());
    for (i, secret) in raw.into_iter().enumerate() {
        let at = format!("secrets[{i}]");
        if let Some(kid) = &secret.kid {
            check(format!("{at}.kid"), label_problem(kid))?;
            if keys.iter().any(|k| k.kid.as_deref() == Some(kid)) {
                return Err(ConfigError::new(
                    format!("{at}.kid"),
                    format!("\"{kid}\" is already used by another secret"),
                ));
            }
        }
        let value = resolve_secret(&at, "key", secret.key, secret.key_env, env)?;
        check(format!("{at}.key"), secret_problem(&value))?;
        material.add(format!("{at}.key"), &value);
        keys.push(SigningKey::new(secret.kid, value.as_bytes()));
    }
    Ok(keys)
}

fn compile_keys(
    api_keys: Vec<RawNamedKey>,
    publishable_keys: Vec<RawNamedKey>,
    env: &dyn Fn(&str) -> Option<String>,
    material: &mut Material,
) -> Result<KeyRing, ConfigError> {
    let mut ring = KeyRing::default();
    let lists = [
        ("api_keys", CredentialKind::ApiKey, api_keys),
        (
            "publishable_keys",
            CredentialKind::PublishableKey,
            publishable_keys,
        ),
    ];
    for (list, kind, entries) in lists {
        let mut names: Vec<String> = Vec::with_capacity(entries.len());
        for (i, entry) in entries.into_iter().enumerate() {
            let at = format!("{list}[{i}]");
            check(format!("{at}.name"), label_problem(&entry.name))?;
            if names.contains(&entry.name) {
                return Err(ConfigError::new(
                    format!("{at}.name"),
                    format!("\"{}\" is already used in {list}", entry.name),
                ));
            }
            let value = resolve_secret(&at, "key", entry.key, entry.key_env, env)?;
            check(format!("{at}.key"), key_problem(&value, "a key"))?;
            if !is_b64token(value.as_bytes()) {
                return Err(ConfigError::new(
                    format!("{at}.key"),
                    "may hold only letters, digits and '-', '.', '_', '~', '+', '/' (then '=' padding), so it can travel as a Bearer credential",
                ));
            }
            if crate::verify::token::is_token_shaped(&value) {
                return Err(ConfigError::new(
                    format!("{at}.key"),
                    "has two dots, like a token; keys must not look like tokens",
                ));
            }
            if ring.contains(value.as_bytes()) {
                return Err(ConfigError::new(
                    format!("{at}.key"),
                    "the same key is configured twice",
                ));
            }
            material.add(format!("{at}.key"), &value);
            ring.add(kind, &entry.name, value.as_bytes());
            names.push(entry.name);
        }
    }
    Ok(ring)
}

fn compile_clients(
    raw: Vec<RawClient>,
    env: &dyn Fn(&str) -> Option<String>,
    keys: &KeyRing,
    material: &mut Material,
) -> Result<ClientRegistry, ConfigError> {
    let mut clients = ClientRegistry::default();
    for (i, client) in raw.into_iter().enumerate() {
        let at = format!("clients[{i}]");
        check(
            format!("{at}.client_id"),
            param_name_problem(&client.client_id),
        )?;
        if clients.contains(&client.client_id) {
            return Err(ConfigError::new(
                format!("{at}.client_id"),
                format!("\"{}\" is already configured", client.client_id),
            ));
        }
        let secret = resolve_secret(
            &at,
            "client_secret",
            client.client_secret,
            client.client_secret_env,
            env,
        )?;
        check(
            format!("{at}.client_secret"),
            key_problem(&secret, "a client secret"),
        )?;
        if keys.contains(secret.as_bytes()) {
            return Err(ConfigError::new(
                format!("{at}.client_secret"),
                "is also configured as a key",
            ));
        }
        material.add(format!("{at}.client_secret"), &secret);
        let role = client.role.unwrap_or_else(|| role::ADMIN.into());
        check(format!("{at}.role"), role_name_problem(&role))?;
        clients.add(&client.client_id, secret.as_bytes(), &role);
    }
    Ok(clients)
}

fn compile_rules(raw: Vec<RawRule>, clients: &ClientRegistry) -> Result<Vec<Rule>, ConfigError> {
    let mut rules: Vec<Rule> = Vec::with_capacity(raw.len());
    for (index, rule) in raw.into_iter().enumerate() {
        let at = format!("rules[{index}]");
        let matcher = match (rule.path, rule.prefix) {
            (Some(p), None) => Matcher::Exact(normal_rule_path(&format!("{at}.path"), &p, false)?),
            (None, Some(p)) => {
                Matcher::Prefix(normal_rule_path(&format!("{at}.prefix"), &p, true)?)
            }
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    at,
                    "has both \"path\" and \"prefix\"; use one",
                ))
            }
            (None, None) => return Err(ConfigError::new(at, "needs \"path\" or \"prefix\"")),
        };
        let mode = parse_mode(&format!("{at}.mode"), &rule.mode)?;
        let methods = match rule.methods {
            Some(methods) => Some(compile_methods(&at, methods)?),
            None => None,
        };
        let roles = match (mode, rule.roles) {
            (Mode::Required, Some(roles)) => compile_roles(&at, roles, clients)?,
            (Mode::Required, None) => default_roles(),
            (_, Some(_)) => {
                return Err(ConfigError::new(
                    format!("{at}.roles"),
                    "only a \"required\" rule takes roles",
                ))
            }
            (_, None) => Vec::new(),
        };
        let compiled = Rule {
            index,
            matcher,
            methods,
            mode,
            roles,
        };
        if let Some(other) = rules.iter().find(|r| r.conflicts_with(&compiled)) {
            return Err(ConfigError::new(
                at,
                format!(
                    "matches the same requests as rules[{}]; merge them",
                    other.index
                ),
            ));
        }
        rules.push(compiled);
    }
    Ok(rules)
}

/// A rule path in normal form; a prefix loses its trailing slash (`/public/` is `/public`).
fn normal_rule_path(key: &str, given: &str, prefix: bool) -> Result<String, ConfigError> {
    let trimmed = match given.strip_suffix('/') {
        Some(t) if prefix && !t.is_empty() => t,
        _ => given,
    };
    let normal = path::normalize(trimmed.as_bytes())
        .map_err(|e| ConfigError::new(key, format!("\"{}\": {e}", given.escape_default())))?;
    if normal != trimmed {
        return Err(ConfigError::new(
            key,
            format!(
                "\"{}\" is not in normal form; write \"{normal}\"",
                given.escape_default()
            ),
        ));
    }
    Ok(normal)
}

fn compile_methods(at: &str, methods: Vec<String>) -> Result<Vec<String>, ConfigError> {
    if methods.is_empty() {
        return Err(ConfigError::new(
            format!("{at}.methods"),
            "is empty; leave it out to match every method",
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(methods.len());
    for (j, method) in methods.into_iter().enumerate() {
        let ok = !method.is_empty()
            && method.len() <= 32
            && method.bytes().all(|b| b.is_ascii_uppercase() || b == b'-');
        if !ok {
            return Err(ConfigError::new(
                format!("{at}.methods[{j}]"),
                format!(
                    "\"{}\" is not an upper-case HTTP method",
                    method.escape_default()
                ),
            ));
        }
        if !out.contains(&method) {
            out.push(method);
        }
    }
    Ok(out)
}

fn compile_roles(
    at: &str,
    roles: Vec<String>,
    clients: &ClientRegistry,
) -> Result<Vec<String>, ConfigError> {
    if roles.is_empty() {
        return Err(ConfigError::new(
            format!("{at}.roles"),
            "is empty; nobody could pass",
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(roles.len());
    for (j, name) in roles.into_iter().enumerate() {
        let known = [role::USER, role::ADMIN, role::ANONYMOUS].contains(&name.as_str())
            || clients.roles().any(|r| r == name);
        if !known {
            return Err(ConfigError::new(
                format!("{at}.roles[{j}]"),
                format!(
                    "unknown role \"{}\" (expected user, admin, anonymous or a client's role)",
                    name.escape_default()
                ),
            ));
        }
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

fn check_login_url(url: &str, rules: &RuleSet) -> Result<(), ConfigError> {
    let bad = |problem: String| Err(ConfigError::new("login_url", problem));
    if url.is_empty() || !url.bytes().all(|b| b.is_ascii_graphic()) || url.contains('#') {
        return bad("must be visible ASCII without spaces or a fragment".into());
    }
    let absolute = ["https://", "http://"]
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme));
    if let Some(rest) = absolute {
        let host = rest.split(['/', '?']).next().unwrap_or_default();
        if host.is_empty() || host.contains('\\') || host.contains('@') {
            return bad(format!("\"{url}\" has no valid host"));
        }
        return Ok(());
    }
    if !url.starts_with('/') || url.starts_with("//") || url.contains('\\') {
        return bad(format!(
            "\"{url}\" must be an absolute http(s) URL or a path starting with a single /"
        ));
    }
    let (login_path, _) = path::split_target(url.as_bytes());
    let normal =
        path::normalize(login_path).map_err(|e| ConfigError::new("login_url", e.to_string()))?;
    let browsers_pass = |method: &[u8]| {
        matches!(
            rules.policy(method, &normal),
            Policy {
                mode: Mode::None,
                ..
            }
        )
    };
    if !browsers_pass(b"GET") || !browsers_pass(b"HEAD") {
        return bad(format!(
            "the login page \"{normal}\" must be a \"none\" path, or browsers would be redirected in a loop"
        ));
    }
    Ok(())
}

fn compile_identity_headers(
    raw: Option<RawIdentityHeaders>,
) -> Result<IdentityHeaders, ConfigError> {
    let raw = raw.unwrap_or(RawIdentityHeaders {
        user: None,
        kind: None,
        role: None,
        name: None,
    });
    let pick = |field: &str, given: Option<String>, default: &str| -> Result<String, ConfigError> {
        let name = given.unwrap_or_else(|| default.into()).to_ascii_lowercase();
        let key = format!("identity_headers.{field}");
        check(&key, header_name_problem(&name))?;
        if name.contains('_') || name.contains('.') {
            return Err(ConfigError::new(
                key,
                format!(
                    "\"{name}\": use '-' instead of '_' or '.' (many servers read them the same)"
                ),
            ));
        }
        let credential_like = ["access_token", "client_id", "client_secret", "api_key"]
            .iter()
            .any(|c| spellings::loosely_named(name.as_bytes(), c));
        if credential_like {
            return Err(ConfigError::new(
                key,
                format!("\"{name}\" is named like a credential"),
            ));
        }
        Ok(name)
    };
    let headers = IdentityHeaders {
        user: pick("user", raw.user, "x-auth-user")?,
        kind: pick("type", raw.kind, "x-auth-type")?,
        role: pick("role", raw.role, "x-auth-role")?,
        name: pick("name", raw.name, "x-auth-name")?,
    };
    let all = [
        ("user", &headers.user),
        ("type", &headers.kind),
        ("role", &headers.role),
        ("name", &headers.name),
    ];
    for (i, (field, name)) in all.iter().enumerate() {
        if all.iter().skip(i + 1).any(|(_, other)| other == name) {
            return Err(ConfigError::new(
                format!("identity_headers.{field}"),
                format!("\"{name}\" is used for two identity fields"),
            ));
        }
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "4 rules, 2 secrets, 1 API keys, 1 publishable keys, 1 clients, login redirect on"
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
            (r#"{"clients":[{"client_id":"c","client_secret_env":"CLIENT_SECRET","role":"Admin"}]}"#.into(), "clients[0].role", "lower-case"),
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
