//! The sign-in service's own configuration (`demo/signin/signin.json`).

use serde::Deserialize;

use crate::password;

/// A user who may sign in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub username: String,
    /// Argon2id hash in PHC form (`tollgate-signin hash-password` makes one).
    #[serde(default)]
    pub password_hash: String,
    /// Refused when present: passwords are never stored in plain text.
    #[serde(default)]
    password: Option<serde::de::IgnoredAny>,
    /// The `sub` of the tokens issued to this user.
    pub sub: String,
    pub name: String,
}

/// How many failed sign-ins are allowed in a window before the service answers 429
/// (`ratelimit.rs` says how they are counted).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignInLimits {
    /// Failures per account (username) from one client address.
    pub per_account: u32,
    /// Failures per client address, for any account (wrong admin keys count here too).
    pub per_address: u32,
    /// Failures per account from every address; beyond, only addresses that have not failed
    /// on it may try it.
    pub account_budget: u32,
    pub window_seconds: u64,
}

impl Default for SignInLimits {
    fn default() -> Self {
        SignInLimits {
            per_account: 5,
            per_address: 20,
            account_budget: 50,
            window_seconds: 900,
        }
    }
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
    /// The longest lifetime of any access token the filter accepts with this master key (the
    /// filter's `max_lifetime_seconds`; tokens minted elsewhere with the same key may live
    /// longer than this service's own): a subject revocation is served that long plus the
    /// filter's clock skew. At least `access_ttl_seconds`.
    #[serde(default = "default_max_token_lifetime")]
    pub max_token_lifetime_seconds: u64,
    /// The cookie the filter reads tokens from.
    pub cookie: String,
    /// Whether cookies carry `Secure` (true whenever browsers reach the service over https).
    #[serde(default)]
    pub cookie_secure: bool,
    /// Hosts (`host[:port]`) the service may send a browser back to after sign-in, and
    /// whose pages may post its forms.
    pub trusted_hosts: Vec<String>,
    /// Proxies (IP addresses) whose `X-Forwarded-For` names the client; others' is ignored.
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    #[serde(default)]
    pub sign_in_limits: SignInLimits,
    /// The SQLite database of sessions and revocations (its directory is created). Several
    /// instances of the service may share one file.
    #[serde(default = "default_database")]
    pub database: String,
    /// The environment variable holding the admin key (`Authorization: Bearer <key>` on the
    /// revocation endpoints); none: no admin.
    #[serde(default)]
    pub admin_key_env: Option<String>,
    pub users: Vec<User>,
}

/// The example Envoy's `max_lifetime_seconds` (two hours).
fn default_max_token_lifetime() -> u64 {
    7200
}

fn default_database() -> String {
    ".run/signin.db".into()
}

impl Settings {
    /// Reads the file at `path`.
    pub fn load(path: &str) -> Result<Settings, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        Settings::parse(&text).map_err(|e| format!("{path}: {e}"))
    }

    /// Parses and checks a configuration; errors never quote a password or its hash.
    pub fn parse(text: &str) -> Result<Settings, String> {
        let mut settings: Settings = serde_json::from_str(text).map_err(|e| e.to_string())?;
        // Compared with clients' addresses as those are: IPv4-mapped IPv6 as IPv4.
        for proxy in &mut settings.trusted_proxies {
            *proxy = proxy.to_canonical();
        }
        if settings.users.is_empty() {
            return Err("users is empty".into());
        }
        for (i, user) in settings.users.iter().enumerate() {
            if user.password.is_some() {
                return Err(format!(
                    "users[{i}].password: plain-text passwords are not accepted; store \
                     \"password_hash\" (make one with `tollgate-signin hash-password`)"
                ));
            }
            if let Some(problem) = password::hash_problem(&user.password_hash) {
                return Err(format!(
                    "users[{i}].password_hash {problem} (make one with `tollgate-signin hash-password`)"
                ));
            }
        }
        if settings.max_token_lifetime_seconds < settings.access_ttl_seconds {
            return Err(
                "max_token_lifetime_seconds is shorter than access_ttl_seconds: subject \
                 revocations would end before the tokens they cover"
                    .into(),
            );
        }
        if settings.database.is_empty() {
            return Err("database is empty".into());
        }
        if settings.admin_key_env.as_deref() == Some("") {
            return Err("admin_key_env is empty".into());
        }
        let limits = &settings.sign_in_limits;
        if limits.per_account == 0
            || limits.per_address == 0
            || limits.account_budget == 0
            || limits.window_seconds == 0
        {
            return Err("sign_in_limits: every limit must be at least 1".into());
        }
        Ok(settings)
    }

    /// The user named `username` (compared in constant time with each name).
    pub fn user(&self, username: &str) -> Option<&User> {
        let name = digest(username);
        let mut found = None;
        for user in &self.users {
            if same(&digest(&user.username), &name) {
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
    subtle::ConstantTimeEq::ct_eq(&a[..], &b[..]).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const DEMO: &str = include_str!("../signin.json");

    #[test]
    fn demo_configuration_parses_and_finds_users() {
        let s = Settings::parse(DEMO).unwrap();
        let demo = s.user("demo").unwrap();
        assert_eq!(demo.sub, "lUpa");
        assert!(password::verify("demo-password", &demo.password_hash));
        assert!(s.user("nobody").is_none());
        assert!(s.user("").is_none());
        assert!(!s.cookie_secure, "the demo is served over plain http");
    }

    #[test]
    fn subject_revocations_cover_the_longest_token_lifetime() {
        assert_eq!(
            Settings::parse(DEMO).unwrap().max_token_lifetime_seconds,
            7200
        );
        let unset = DEMO.replace("\"max_token_lifetime_seconds\": 7200,", "");
        assert_eq!(
            Settings::parse(&unset).unwrap().max_token_lifetime_seconds,
            7200
        );
        let short = DEMO.replace(
            "\"max_token_lifetime_seconds\": 7200",
            "\"max_token_lifetime_seconds\": 600",
        );
        let err = Settings::parse(&short).unwrap_err();
        assert!(err.contains("max_token_lifetime_seconds"), "{err}");
    }

    #[test]
    fn plain_text_passwords_are_refused_without_being_quoted() {
        let text = DEMO.replace("\"password_hash\"", "\"password\"");
        let err = Settings::parse(&text).unwrap_err();
        assert!(err.contains("users[0].password"), "{err}");
        assert!(err.contains("hash-password"), "{err}");
        assert!(!err.contains("$argon2id"), "{err}");
    }

    #[test]
    fn a_password_hash_must_be_argon2id() {
        let s = Settings::parse(DEMO).unwrap();
        let text = DEMO.replace(&s.users[0].password_hash, "demo-password");
        let err = Settings::parse(&text).unwrap_err();
        assert!(err.contains("users[0].password_hash"), "{err}");
        assert!(!err.contains("demo-password"), "{err}");
    }

    #[test]
    fn a_password_hash_weaker_than_the_services_own_is_refused_at_start() {
        let s = Settings::parse(DEMO).unwrap();
        let weak = s.users[0]
            .password_hash
            .replace("m=19456,t=2,p=1", "m=8,t=1,p=1");
        let err = Settings::parse(&DEMO.replace(&s.users[0].password_hash, &weak)).unwrap_err();
        assert!(err.contains("users[0].password_hash"), "{err}");
        assert!(err.contains("weaker Argon2 parameters"), "{err}");
        assert!(err.contains("hash-password"), "{err}");
        assert!(!err.contains("$argon2id"), "{err}");
    }
}
