//! `oidc`: browser sign-in through an `issuers` entry with the authorization-code flow and
//! PKCE. Checked whole when the configuration loads; no error quotes a secret.

use serde::Deserialize;

use super::ConfigError;
use crate::oidc::config::{ClusterEndpoint, Oidc, DEFAULT_SESSION_SECONDS, SESSION_SECONDS};
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
    authorization_endpoint: String,
    token_endpoint: String,
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

/// An absolute `http(s)` URL without a fragment, visible ASCII.
fn check_url(key: &str, url: &str) -> Result<(), ConfigError> {
    let ok = url.len() <= 2048
        && url.bytes().all(|b| b.is_ascii_graphic())
        && !url.contains('#')
        && ["https://", "http://"].iter().any(|scheme| {
            url.strip_prefix(scheme).is_some_and(|rest| {
                let host = rest.split(['/', '?']).next().unwrap_or_default();
                !host.is_empty() && !host.contains('@') && !host.contains('\\')
            })
        });
    if ok {
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
    let https = url.starts_with("https://");
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    };
    Ok(ClusterEndpoint {
        https,
        authority: authority.to_owned(),
        path: path.to_owned(),
    })
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

impl RawOidc {
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
        check_url("authorization_endpoint", &self.authorization_endpoint)?;
        let token_endpoint = endpoint("token_endpoint", &self.token_endpoint)?;
        let revocation_endpoint = self
            .revocation_endpoint
            .map(|url| endpoint("revocation_endpoint", &url))
            .transpose()?;
        if let Some(url) = &self.end_session_endpoint {
            check_url("end_session_endpoint", url)?;
        }
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
            authorization_endpoint: self.authorization_endpoint,
            token_endpoint,
            revocation_endpoint,
            end_session_endpoint: self.end_session_endpoint,
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
