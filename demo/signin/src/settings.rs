//! The sign-in service's own configuration (`demo/signin/signin.json`).

use serde::Deserialize;

/// A user who may sign in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub username: String,
    /// Demo only: a real service stores a password hash.
    pub password: String,
    /// The `sub` of the tokens issued to this user.
    pub sub: String,
    pub name: String,
}

/// The configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub listen: String,
    /// The environment variable holding the master key (the filter's current secret).
    pub secret_env: String,
    /// The `kid` of that secret in the filter's configuration.
    pub kid: Option<String>,
    pub access_ttl_seconds: u64,
    pub refresh_ttl_seconds: u64,
    /// The cookie the filter reads tokens from.
    pub cookie: String,
    /// Hosts (`host[:port]`) the service may send a browser back to after sign-in.
    pub trusted_hosts: Vec<String>,
    pub users: Vec<User>,
}

impl Settings {
    /// Reads the file at `path`.
    pub fn load(path: &str) -> Result<Settings, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        let settings: Settings = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
        if settings.users.is_empty() {
            return Err(format!("{path}: users is empty"));
        }
        Ok(settings)
    }

    /// The user with these credentials; every user is compared, in constant time.
    pub fn authenticate(&self, username: &str, password: &str) -> Option<&User> {
        let (name, secret) = (digest(username), digest(password));
        let mut found = None;
        for user in &self.users {
            if same(&digest(&user.username), &name) & same(&digest(&user.password), &secret) {
                found = Some(user);
            }
        }
        found
    }
}

fn digest(text: &str) -> [u8; 32] {
    hmac_sha256::Hash::hash(text.as_bytes())
}

/// Equality of two digests that takes the same time wherever they differ.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        serde_json::from_str(include_str!("../signin.json")).unwrap()
    }

    #[test]
    fn demo_configuration_parses_and_authenticates() {
        let s = settings();
        assert_eq!(s.authenticate("demo", "demo-password").unwrap().sub, "lUpa");
        assert!(s.authenticate("demo", "demo-passwor").is_none());
        assert!(s.authenticate("demo", "").is_none());
        assert!(s.authenticate("nobody", "demo-password").is_none());
        assert!(s.authenticate("", "").is_none());
    }
}
