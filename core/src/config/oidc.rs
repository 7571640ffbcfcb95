//! `oidc`: browser sign-in through an `issuers` entry with the authorization-code flow and
//! PKCE. Checked whole when the configuration loads; no error quotes a secret.

use serde::Deserialize;

use super::ConfigError;
use std::rc::Rc;

use crate::oidc::config::{
    cluster_endpoint, is_plain_url, ClusterEndpoint, Configured, Endpoints, Oidc,
    DEFAULT_SESSION_SECONDS, SESSION_SECONDS,
};
use crate::oidc::seal::Sealer;
use crate::rules::{Matcher, Mode, Rule, RuleSet};
use crate::verify::issuer::Issuer;

/// `oidc` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOidc {
    issuer: String,
    client_id: String,
    client_secret_env: Option<String>,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    discovery: Option<bool>,
    end_session_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
    cluster: String,
    redirect_path: String,
    logout_path: Option<String>,
    post_logout_redirect_uri: Option<String>,
    scopes: Option<Vec<String>>,
    cookie_key_env: String,
    cookie_secure: Option<bool>,
    session_seconds: Option<u64>,
}

fn err(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::new(format!("oidc.{key}"), problem)
}

/// An absolute `http(s)` URL without a fragment, visible ASCII ([`is_plain_url`]).
fn check_url(key: &str, url: &str) -> Result<(), ConfigError> {
    if is_plain_url(url) {
        Ok(())
    } else {
        Err(err(
            key,
            "must be an absolute http(s) URL of visible ASCII without a fragment",
        ))
    }
}

/// An endpoint reached through the cluster, from its URL.
fn endpoint(key: &str, url: &str) -> Result<ClusterEndpoint, ConfigError> {
    check_url(key, url)?;
    Ok(cluster_endpoint(url))
}

/// A path of the filter's own: `/` then visible ASCII, no query or fragment.
fn check_path(key: &str, path: &str) -> Result<(), ConfigError> {
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && path.len() <= 256
        && path.bytes().all(|b| b.is_ascii_graphic())
        && !path.contains(['?', '#', '%', '\\'])
        && !path.split('/').any(|s| s == "." || s == "..");
    if ok {
        Ok(())
    } else {
        Err(err(
            key,
            "must be a plain path: '/' then visible ASCII, without a query, '%', '\\' or dot segments",
        ))
    }
}

/// The callback and logout paths as rules ([`Oidc::own_paths`]); both were checked plain.
fn own_paths(redirect_path: &str, logout_path: Option<&str>) -> RuleSet {
    let rules = std::iter::once(redirect_path)
        .chain(logout_path)
        .enumerate()
        .map(|(index, path)| Rule {
            index,
            matcher: Matcher::Exact(path.to_owned()),
            methods: None,
            mode: Mode::Required,
            roles: Vec::new(),
            conditions: None,
            hosts: None,
        })
        .collect();
    RuleSet::new(rules, Mode::None)
}

/// Where the issuer `iss` publishes its discovery document (OpenID Connect Discovery 1.0
/// section 4: the issuer without a trailing `/`, then `/.well-known/openid-configuration`).
fn discovery_document(iss: &str) -> Result<ClusterEndpoint, ConfigError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        iss.trim_end_matches('/')
    );
    if !is_plain_url(&url) || iss.contains('?') {
        return Err(err(
            "discovery",
            "needs an issuer whose `issuer` is an http(s) URL without a query or fragment",
        ));
    }
    Ok(cluster_endpoint(&url))
}

impl RawOidc {
    /// The endpoints the configuration names, checked.
    fn configured_endpoints(&self) -> Result<Configured, ConfigError> {
        if let Some(url) = &self.authorization_endpoint {
            check_url("authorization_endpoint", url)?;
        }
        if let Some(url) = &self.end_session_endpoint {
            check_url("end_session_endpoint", url)?;
        }
        let cluster = |key: &str, url: &Option<String>| {
            url.as_deref().map(|url| endpoint(key, url)).transpose()
        };
        Ok(Configured {
            authorization: self.authorization_endpoint.clone(),
            token: cluster("token_endpoint", &self.token_endpoint)?,
            revocation: cluster("revocation_endpoint", &self.revocation_endpoint)?,
            end_session: self.end_session_endpoint.clone(),
        })
    }

    /// Checks `oidc` against the configured `issuers`; `env` reads the VM's environment.
    pub(super) fn compile(
        self,
        issuers: &[Issuer],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Oidc, ConfigError> {
        let (issuer, entry) = issuers
            .iter()
            .enumerate()
            .find(|(_, i)| *i.name == *self.issuer)
            .ok_or_else(|| {
                err(
                    "issuer",
                    format!(
                        "\"{}\" names no issuers entry",
                        self.issuer.escape_default()
                    ),
                )
            })?;
        let configured = self.configured_endpoints()?;
        let plain = |text: &str| {
            !text.is_empty() && text.len() <= 256 && text.bytes().all(|b| b.is_ascii_graphic())
        };
        if !plain(&self.client_id) {
            return Err(err(
                "client_id",
                "must be 1 to 256 visible ASCII characters",
            ));
        }
        if !plain(&self.cluster) {
            return Err(err("cluster", "must be 1 to 256 visible ASCII characters"));
        }
        let client_secret = match self.client_secret_env {
            Some(name) => match env(&name) {
                Some(secret) if !secret.is_empty() => Some(secret),
                Some(_) => return Err(err("client_secret_env", "is empty")),
                None => {
                    return Err(err(
                        "client_secret_env",
                        format!("\"{}\" is not set", name.escape_default()),
                    ))
                }
            },
            None => None,
        };
        let discovery = match self.discovery {
            Some(true) => Some(discovery_document(&entry.issuer)?),
            _ => None,
        };
        let required = |key| Err(err(key, "is required (or set oidc.discovery to true)"));
        let fixed = match (&discovery, &configured.authorization, &configured.token) {
            (Some(_), ..) => None,
            (None, None, _) => return required("authorization_endpoint"),
            (None, _, None) => return required("token_endpoint"),
            (None, Some(authorization), Some(token)) => Some(Rc::new(Endpoints {
                authorization: authorization.clone(),
                token: token.clone(),
                revocation: configured.revocation.clone(),
                end_session: configured.end_session.clone(),
            })),
        };
        if let Some(url) = &self.post_logout_redirect_uri {
            check_url("post_logout_redirect_uri", url)?;
        }
        check_path("redirect_path", &self.redirect_path)?;
        if let Some(path) = &self.logout_path {
            check_path("logout_path", path)?;
            if *path == self.redirect_path {
                return Err(err("logout_path", "is the redirect_path"));
            }
        }
        let mut scopes = vec!["openid".to_owned()];
        for (n, scope) in self.scopes.unwrap_or_default().into_iter().enumerate() {
            let ok = !scope.is_empty()
                && scope.len() <= 128
                && scope
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
            if !ok {
                return Err(err(
                    &format!("scopes[{n}]"),
                    "must be visible ASCII without spaces, quotes or backslashes",
                ));
            }
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        let keys = match env(&self.cookie_key_env) {
            Some(keys) => keys,
            None => {
                return Err(err(
                    "cookie_key_env",
                    format!("\"{}\" is not set", self.cookie_key_env.escape_default()),
                ))
            }
        };
        let sealer = Sealer::parse(&keys).map_err(|e| err("cookie_key_env", e.to_string()))?;
        let session_seconds = self.session_seconds.unwrap_or(DEFAULT_SESSION_SECONDS);
        if !SESSION_SECONDS.contains(&session_seconds) {
            return Err(err(
                "session_seconds",
                format!(
                    "must be {} to {}",
                    SESSION_SECONDS.start(),
                    SESSION_SECONDS.end()
                ),
            ));
        }
        Ok(Oidc {
            issuer,
            issuer_id: entry.issuer.clone(),
            client_id: self.client_id,
            client_secret,
            configured,
            discovery,
            fixed,
            cluster: self.cluster,
            own_paths: own_paths(&self.redirect_path, self.logout_path.as_deref()),
            redirect_path: self.redirect_path,
            logout_path: self.logout_path,
            post_logout_redirect_uri: self.post_logout_redirect_uri,
            scope: scopes.join(" "),
            sealer,
            cookie_secure: self.cookie_secure.unwrap_or(true),
            session_seconds,
        })
    }
}
