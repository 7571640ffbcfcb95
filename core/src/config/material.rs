//! Key material: the master secrets, API and publishable keys and client secrets, each
//! checked on its own and all of them together.

use super::checks::*;
use super::key_strength;
use super::raw::*;
use super::ConfigError;
use crate::credential::is_b64token;
use crate::identity::{role, CredentialKind};
use crate::verify::keys::{ClientRegistry, KeyRing};
use crate::verify::token::SigningKey;

/// Every secret and key of the configuration, by its key path, to check them together.
#[derive(Default)]
pub(super) struct Material(Vec<(String, Vec<u8>)>);

impl Material {
    pub(super) fn add(&mut self, key: String, value: &str) {
        self.0.push((key, value.as_bytes().to_vec()));
    }

    /// No two equal, and none containing another.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
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

pub(super) fn compile_secrets(
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

pub(super) fn compile_keys(
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

pub(super) fn compile_clients(
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
