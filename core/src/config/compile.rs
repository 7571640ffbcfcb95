//! From the JSON as written to the configuration the request path reads: every value
//! checked, every key resolved, the rules compiled.

use super::checks::*;
use super::issuers::compile_issuers;
use super::key_strength;
use super::raw::*;
use super::revocation::compile_revocation;
use super::{AccessLogFields, Config, ConfigError, MAX_CLOCK_SKEW};
use crate::credential::{is_b64token, CLIENT_ID_PARAM, CLIENT_SECRET_PARAM};
use crate::identity::{role, CredentialKind, IdentityHeaders};
use crate::request::path;
use crate::response::Login;
use crate::rules::{default_roles, Matcher, Mode, Policy, Rule, RuleSet};
use crate::verify::issuer::Issuers;
use crate::verify::keys::{ClientRegistry, KeyRing};
use crate::verify::token::{SigningKey, TokenVerifier};

impl RawConfig {
    pub(super) fn compile(
        self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
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
        let mut identity_headers = compile_identity_headers(self.identity_headers)?;
        let issuers = Issuers {
            list: compile_issuers(self.issuers, env, &mut identity_headers)?,
            clock_skew,
            max_lifetime: self.max_lifetime_seconds,
        };
        let known_roles = KnownRoles {
            clients: &clients,
            from_claims: issuers.list.iter().any(|i| i.roles_claim.is_some()),
        };
        let rules = RuleSet::new(compile_rules(self.rules, known_roles)?, default_mode);

        let nobody_can_authenticate = !verifier.has_keys()
            && issuers.is_empty()
            && keys.count(CredentialKind::ApiKey) == 0
            && keys.count(CredentialKind::PublishableKey) == 0
            && clients.is_empty();
        if nobody_can_authenticate && rules.any_required() {
            return Err(ConfigError::new(
                "secrets",
                "no secret, API key, publishable key, client or issuer is configured, yet some paths are required: nobody could pass",
            ));
        }

        let token_query_param = self
            .token_query_param
            .unwrap_or_else(|| "access_token".into());
        with_key("token_query_param", check_param_name(&token_query_param))?;
        if token_query_param == CLIENT_ID_PARAM || token_query_param == CLIENT_SECRET_PARAM {
            return Err(ConfigError::new(
                "token_query_param",
                format!("\"{token_query_param}\" is the name of a client credential parameter"),
            ));
        }
        let token_cookie = self.token_cookie.unwrap_or_else(|| "access_token".into());
        with_key("token_cookie", check_cookie_name(&token_cookie))?;

        let return_param = self.return_param.unwrap_or_else(|| "redirect".into());
        with_key("return_param", check_param_name(&return_param))?;
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
            issuers,
            revocation: self
                .revocation
                .map(|raw| compile_revocation(raw, self.max_lifetime_seconds))
                .transpose()?,
            rules,
            rule_count,
            login,
            token_query_param,
            token_cookie,
            identity_headers,
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
            with_key(format!("{at}.kid"), check_label(kid))?;
            if keys.iter().any(|k| k.kid.as_deref() == Some(kid)) {
                return Err(ConfigError::new(
                    format!("{at}.kid"),
                    format!("\"{kid}\" is already used by another secret"),
                ));
            }
        }
        let value = resolve_secret(&at, "key", secret.key, secret.key_env, env)?;
        with_key(format!("{at}.key"), check_secret(&value))?;
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
            with_key(format!("{at}.name"), check_label(&entry.name))?;
            if names.contains(&entry.name) {
                return Err(ConfigError::new(
                    format!("{at}.name"),
                    format!("\"{}\" is already used in {list}", entry.name),
                ));
            }
            let value = resolve_secret(&at, "key", entry.key, entry.key_env, env)?;
            with_key(format!("{at}.key"), check_key(&value, "a key"))?;
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
        with_key(
            format!("{at}.client_id"),
            check_param_name(&client.client_id),
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
        with_key(
            format!("{at}.client_secret"),
            check_key(&secret, "a client secret"),
        )?;
        if keys.contains(secret.as_bytes()) {
            return Err(ConfigError::new(
                format!("{at}.client_secret"),
                "is also configured as a key",
            ));
        }
        material.add(format!("{at}.client_secret"), &secret);
        let role = client.role.unwrap_or_else(|| role::ADMIN.into());
        with_key(format!("{at}.role"), check_role_name(&role))?;
        clients.add(&client.client_id, secret.as_bytes(), &role);
    }
    Ok(clients)
}

/// The roles a rule may name: the built-in ones, the clients', and any role name when an
/// issuer reads roles from its tokens' claims.
#[derive(Clone, Copy)]
struct KnownRoles<'c> {
    clients: &'c ClientRegistry,
    from_claims: bool,
}

fn compile_rules(raw: Vec<RawRule>, known: KnownRoles<'_>) -> Result<Vec<Rule>, ConfigError> {
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
            (Mode::Required, Some(roles)) => compile_roles(&at, roles, known)?,
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
    known: KnownRoles<'_>,
) -> Result<Vec<String>, ConfigError> {
    if roles.is_empty() {
        return Err(ConfigError::new(
            format!("{at}.roles"),
            "is empty; nobody could pass",
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(roles.len());
    for (j, name) in roles.into_iter().enumerate() {
        let is_known = [role::USER, role::ADMIN, role::ANONYMOUS].contains(&name.as_str())
            || known.clients.roles().any(|r| r == name)
            || (known.from_claims && check_role_name(&name).is_ok());
        if !is_known {
            return Err(ConfigError::new(
                format!("{at}.roles[{j}]"),
                format!(
                    "unknown role \"{}\" (expected user, admin, anonymous, a client's role, or a role name when an issuer has roles_claim)",
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
            rules.policy_for_path(method, &normal),
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
        with_key(
            format!("identity_headers.{field}"),
            check_identity_header(&name),
        )?;
        Ok(name)
    };
    let headers = IdentityHeaders {
        user: pick("user", raw.user, "x-auth-user")?,
        kind: pick("type", raw.kind, "x-auth-type")?,
        role: pick("role", raw.role, "x-auth-role")?,
        name: pick("name", raw.name, "x-auth-name")?,
        claims: Vec::new(),
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
