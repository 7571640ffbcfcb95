//! What the command's tests share: running the built `tollgate`, random secrets, scratch files.

#![allow(dead_code, clippy::unwrap_used, clippy::indexing_slicing)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tollgate_core::verify::token::{claims_for, SigningKey};
pub use tollgate_testkit::root;
use tollgate_testkit::NOW;

/// A fresh scratch directory under `target/tmp`.
pub fn scratch(label: &str) -> PathBuf {
    let dir = root()
        .join("target/tmp")
        .join(format!("cli-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `len` random letters and digits (a key that passes the configuration's strength checks).
pub fn random_alnum(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; len];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// What a run of the command gave.
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Both streams, to look for secrets in.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// The `warning: …` lines of the output.
    pub fn warnings(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with("warning: "))
            .collect()
    }
}

/// Runs `tollgate` with `args` from the repository's root, with a clean `TOLLGATE_*`
/// environment.
pub fn tollgate(args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    command.args(args).current_dir(root());
    for (name, _) in std::env::vars() {
        if name.starts_with("TOLLGATE_") {
            command.env_remove(name);
        }
    }
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().unwrap();
    Run {
        status: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// An env file of random secrets for `names`, written in `dir`; returns its path and values.
pub fn env_file(dir: &Path, names: &[(&str, &str)]) -> (PathBuf, Vec<String>) {
    let mut text = String::from("# random test secrets\n");
    let mut values = Vec::new();
    for (name, prefix) in names {
        // Cookie keys are `kid:key`, the key 32 bytes in base64url: 43 characters, the last
        // one's low four bits zero.
        let value = if name.ends_with("COOKIE_KEYS") {
            format!("{prefix}{}A", random_alnum(42))
        } else {
            format!("{prefix}{}", random_alnum(40))
        };
        text.push_str(&format!("{name}={value}\n"));
        values.push(value);
    }
    let path = dir.join("secrets.env");
    std::fs::write(&path, text).unwrap();
    (path, values)
}

/// The variables envoy/envoy.yaml's configuration names (as scripts/demo-secrets.sh makes).
pub const ENVOY_VARS: [(&str, &str); 6] = [
    ("TOLLGATE_SECRET", ""),
    ("TOLLGATE_API_KEY", "sk_demo_"),
    ("TOLLGATE_PUBLISHABLE_KEY", "pk_demo_"),
    ("TOLLGATE_CLIENT_SECRET", "cs_demo_"),
    ("TOLLGATE_OIDC_CLIENT_SECRET", "oc_demo_"),
    ("TOLLGATE_COOKIE_KEYS", "demo:"),
];

/// The variables the Istio WasmPlugin's configuration names (envoy/istio/gateway-secrets.yaml).
pub const ISTIO_VARS: [(&str, &str); 4] = [
    ("TOLLGATE_SECRET", ""),
    ("TOLLGATE_SECRET_PREVIOUS", ""),
    ("TOLLGATE_API_KEY", "sk_live_"),
    ("TOLLGATE_REPORTING_SECRET", "cs_live_"),
];

/// A token for `sub` signed with `secret` (kid `demo`) at [`NOW`].
pub fn token(secret: &str, sub: &str) -> String {
    SigningKey::new(Some("demo".into()), secret.as_bytes())
        .sign(claims_for(sub, "access", NOW, 3600))
        .unwrap()
}

/// No secret, token or signature of `secrets` and `tokens` in `text`.
pub fn assert_no_secret(text: &str, secrets: &[String], tokens: &[String]) {
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret is printed:\n{text}"
        );
    }
    for token in tokens {
        let signature = token.rsplit('.').next().unwrap();
        let payload = token.split('.').nth(1).unwrap();
        assert!(
            !text.contains(signature),
            "a token signature is printed:\n{text}"
        );
        assert!(
            !text.contains(payload),
            "a token payload is printed:\n{text}"
        );
    }
}
