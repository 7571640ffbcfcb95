//! From the JSON as written to the configuration the request path reads: every value
//! checked, every key resolved, the rules compiled.

use super::checks::*;
use super::conditions::ConditionContext;
use super::issuers::compile_issuers;
use super::material::{compile_clients, compile_keys, compile_secrets, Material};
use super::raw::*;
use super::revocation::compile_revocation;
use super::rules::{check_login_url, compile_rules, KnownRoles};
use super::sources::{compile_payload_header, compile_token_headers};
use super::{AccessLogFields, Config, ConfigError, MAX_CLOCK_SKEW};
use crate::credential::{CLIENT_ID_PARAM, CLIENT_SECRET_PARAM};
use crate::identity::{CredentialKind, IdentityHeaders};
use crate::response::Login;
use crate::rules::{Mode, RuleSet};
use crate::verify::claim_values::ClaimPaths;
use crate::verify::issuer::Issuers;
use crate::verify::token::TokenVerifier;

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
        let oidc = self
            .oidc
            .map(|raw| raw.compile(&issuers.list, env))
            .transpose()?;
        let known_roles = KnownRoles {
            clients: &clients,
            from_claims: issuers.list.iter().any(|i| i.roles_claim.is_some()),
        };
        let mut claim_paths = ClaimPaths::default();
        let mut conditions = ConditionContext {
            issuer_names: issuers.list.iter().map(|i| &*i.name).collect(),
            secrets: verifier.has_keys(),
            paths: &mut claim_paths,
        };
        let rules = compile_rules(self.rules, known_roles, &mut conditions)?;
        let rules = RuleSet::new(rules, default_mode);
        let token_headers = compile_token_headers(self.token_headers, &identity_headers)?;
        let payload_header =
            compile_payload_header(self.payload_header, &identity_headers, &token_headers)?;
        // An identity header: stripped from clients like the claim headers.
        identity_headers.claims.extend(payload_header.clone());

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
        // Sign-in takes its own cookies, in any spelling, out of every request: a token cookie
        // named like one would never be read.
        if oidc.is_some() && crate::oidc::cookies::is_ours(token_cookie.as_bytes()) {
            return Err(ConfigError::new(
                "token_cookie",
                "is a name of sign-in's own cookies (tollgate-signin, tollgate-session, tollgate-refresh, in any case, __Host- prefixed or not)",
            ));
        }

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
            claim_paths,
            rule_count,
            login,
            token_query_param,
            token_cookie,
            identity_headers,
            forward_credentials: self.forward_credentials.unwrap_or(false),
            token_headers,
            payload_header,
            oidc,
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
