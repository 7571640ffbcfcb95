//! `issuers`: identity providers whose asymmetric tokens are accepted, checked and compiled.

use std::rc::Rc;

use serde::Deserialize;

use super::checks::{check_identity_header, check_word, with_key};
use super::ConfigError;
use crate::identity::IdentityHeaders;
use crate::verify::issuer::{ClaimHeader, Issuer, KeySource, RemoteKeys};
use crate::verify::jwks::{Algorithm, JwksError, KeySet};

/// How often fetched keys are refreshed unless `refresh_seconds` says otherwise.
pub const DEFAULT_REFRESH_SECONDS: u64 = 600;
/// The bounds of `refresh_seconds`.
pub const REFRESH_SECONDS: std::ops::RangeInclusive<u64> = 5..=86_400;
/// The most issuers one configuration holds.
const MAX_ISSUERS: usize = 16;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIssuer {
    name: String,
    issuer: String,
    audiences: Option<Vec<String>>,
    /// Kept as written: a JWKS object repeating a name must be seen before it is collapsed.
    jwks: Option<Box<serde_json::value::RawValue>>,
    jwks_env: Option<String>,
    jwks_uri: Option<String>,
    cluster: Option<String>,
    refresh_seconds: Option<u64>,
    algorithms: Option<Vec<String>>,
    subject_claim: Option<String>,
    roles_claim: Option<String>,
    claims_to_headers: Option<Vec<RawClaimHeader>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClaimHeader {
    claim: String,
    header: String,
}

/// Compiles `issuers`; the claim headers join `identity_headers` (stripped from clients).
pub(super) fn compile_issuers(
    raw: Vec<RawIssuer>,
    env: &dyn Fn(&str) -> Option<String>,
    identity_headers: &mut IdentityHeaders,
) -> Result<Vec<Issuer>, ConfigError> {
    if raw.len() > MAX_ISSUERS {
        return Err(ConfigError::new(
            "issuers",
            format!("holds more than {MAX_ISSUERS} issuers"),
        ));
    }
    let mut issuers: Vec<Issuer> = Vec::with_capacity(raw.len());
    for (i, raw) in raw.into_iter().enumerate() {
        let at = format!("issuers[{i}]");
        let issuer = compile_issuer(&at, raw, env, identity_headers)?;
        if issuers.iter().any(|other| other.name == issuer.name) {
            return Err(ConfigError::new(
                format!("{at}.name"),
                format!("\"{}\" names two issuers", issuer.name),
            ));
        }
        if issuers.iter().any(|other| other.issuer == issuer.issuer) {
            return Err(ConfigError::new(
                format!("{at}.issuer"),
                "is the issuer of another entry: a token's iss must name one issuer",
            ));
        }
        issuers.push(issuer);
    }
    Ok(issuers)
}

fn compile_issuer(
    at: &str,
    mut raw: RawIssuer,
    env: &dyn Fn(&str) -> Option<String>,
    identity_headers: &mut IdentityHeaders,
) -> Result<Issuer, ConfigError> {
    // It names counters and is the `x-auth-name` header: a lower-case word.
    with_key(format!("{at}.name"), check_word(&raw.name))?;
    with_key(format!("{at}.issuer"), check_text_value(&raw.issuer, 1024))?;
    let audiences = match raw.audiences.take() {
        Some(list) if list.is_empty() => {
            return Err(ConfigError::new(
                format!("{at}.audiences"),
                "is empty; leave it out to accept any audience",
            ))
        }
        Some(list) => list,
        None => Vec::new(),
    };
    for (j, audience) in audiences.iter().enumerate() {
        with_key(
            format!("{at}.audiences[{j}]"),
            check_text_value(audience, 1024),
        )?;
    }
    let algorithms = compile_algorithms(at, raw.algorithms.take())?;
    let subject_claim = raw.subject_claim.take().unwrap_or_else(|| "sub".into());
    with_key(
        format!("{at}.subject_claim"),
        check_text_value(&subject_claim, 256),
    )?;
    if let Some(roles_claim) = &raw.roles_claim {
        with_key(
            format!("{at}.roles_claim"),
            check_text_value(roles_claim, 256),
        )?;
    }
    let mut claims_to_headers = Vec::new();
    for (j, c) in raw
        .claims_to_headers
        .take()
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let key = format!("{at}.claims_to_headers[{j}]");
        with_key(format!("{key}.claim"), check_text_value(&c.claim, 256))?;
        let header = c.header.to_ascii_lowercase();
        with_key(format!("{key}.header"), check_identity_header(&header))?;
        if identity_headers.is_spoof(&header) && !identity_headers.claims.contains(&header) {
            return Err(ConfigError::new(
                format!("{key}.header"),
                format!("\"{header}\" is an identity header"),
            ));
        }
        if claims_to_headers
            .iter()
            .any(|h: &ClaimHeader| *h.header == *header)
        {
            return Err(ConfigError::new(
                format!("{key}.header"),
                format!("\"{header}\" is set from two claims of this issuer"),
            ));
        }
        if !identity_headers.claims.contains(&header) {
            identity_headers.claims.push(header.clone());
        }
        claims_to_headers.push(ClaimHeader {
            claim: c.claim,
            header: Rc::from(header),
        });
    }
    let keys = compile_keys(at, &raw, &algorithms, env)?;
    if raw.refresh_seconds.is_some() && raw.jwks_uri.is_none() {
        return Err(ConfigError::new(
            format!("{at}.refresh_seconds"),
            "applies to jwks_uri only",
        ));
    }
    Ok(Issuer {
        name: Rc::from(raw.name),
        issuer: raw.issuer,
        audiences,
        algorithms,
        subject_claim,
        roles_claim: raw.roles_claim,
        claims_to_headers,
        keys,
    })
}

/// `algorithms`, every one asymmetric; all of them when absent.
fn compile_algorithms(at: &str, raw: Option<Vec<String>>) -> Result<Vec<Algorithm>, ConfigError> {
    let Some(names) = raw else {
        return Ok(Algorithm::ALL.to_vec());
    };
    if names.is_empty() {
        return Err(ConfigError::new(
            format!("{at}.algorithms"),
            "is empty; leave it out to accept every supported algorithm",
        ));
    }
    let mut algorithms = Vec::new();
    for (j, name) in names.iter().enumerate() {
        let Some(algorithm) = Algorithm::parse(name) else {
            let why = if name.to_ascii_uppercase().starts_with("HS") {
                "is never accepted from an issuer: its keys are public, and a public key must not be an HMAC secret".to_string()
            } else {
                format!(
                    "\"{}\" is not supported (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)",
                    name.escape_default()
                )
            };
            return Err(ConfigError::new(format!("{at}.algorithms[{j}]"), why));
        };
        if !algorithms.contains(&algorithm) {
            algorithms.push(algorithm);
        }
    }
    Ok(algorithms)
}

/// Exactly one of `jwks`, `jwks_env` and `jwks_uri` (with `cluster`).
fn compile_keys(
    at: &str,
    raw: &RawIssuer,
    algorithms: &[Algorithm],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<KeySource, ConfigError> {
    let given = [
        raw.jwks.is_some(),
        raw.jwks_env.is_some(),
        raw.jwks_uri.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(ConfigError::new(
            at,
            "needs exactly one of \"jwks\", \"jwks_env\" and \"jwks_uri\"",
        ));
    }
    if raw.cluster.is_some() != raw.jwks_uri.is_some() {
        return Err(ConfigError::new(
            format!("{at}.cluster"),
            "goes with jwks_uri: the Envoy cluster the keys are fetched through",
        ));
    }
    if let (Some(uri), Some(cluster)) = (&raw.jwks_uri, &raw.cluster) {
        let (authority, path) =
            split_uri(uri).map_err(|e| ConfigError::new(format!("{at}.jwks_uri"), e))?;
        with_key(format!("{at}.cluster"), check_text_value(cluster, 256))?;
        let refresh_seconds = raw.refresh_seconds.unwrap_or(DEFAULT_REFRESH_SECONDS);
        if !REFRESH_SECONDS.contains(&refresh_seconds) {
            return Err(ConfigError::new(
                format!("{at}.refresh_seconds"),
                format!(
                    "must be {} to {}",
                    REFRESH_SECONDS.start(),
                    REFRESH_SECONDS.end()
                ),
            ));
        }
        return Ok(KeySource::Remote(RemoteKeys {
            uri: uri.clone(),
            cluster: cluster.clone(),
            authority,
            path,
            refresh_seconds,
        }));
    }
    let jwks_text = raw.jwks.as_ref().map(|written| written.get().trim());
    let (key, text) = match (jwks_text, &raw.jwks_env) {
        (Some(written), _) if written.starts_with('{') => {
            (format!("{at}.jwks"), written.to_owned())
        }
        (Some(written), _) if written.starts_with('"') => {
            let text: String = serde_json::from_str(written).map_err(|_| {
                ConfigError::new(
                    format!("{at}.jwks"),
                    "must be a JWKS object (or its JSON text)",
                )
            })?;
            (format!("{at}.jwks"), text)
        }
        (Some(_), _) => {
            return Err(ConfigError::new(
                format!("{at}.jwks"),
                "must be a JWKS object (or its JSON text)",
            ))
        }
        (None, Some(var)) => {
            let key = format!("{at}.jwks_env");
            let text = env(var).filter(|t| !t.is_empty()).ok_or_else(|| {
                ConfigError::new(
                    &key,
                    format!("environment variable \"{var}\" is not set or empty"),
                )
            })?;
            (key, text)
        }
        (None, None) => return Err(ConfigError::new(at, "has no keys")),
    };
    match KeySet::holds_private_material(text.as_bytes()) {
        Some(false) => {}
        Some(true) => {
            return Err(ConfigError::new(
                key,
                "holds private key material: give the issuer's public keys only",
            ))
        }
        None => return Err(ConfigError::new(key, JwksError::NotJwks.to_string())),
    }
    let set = KeySet::parse(text.as_bytes(), algorithms)
        .map_err(|e| ConfigError::new(&key, e.to_string()))?;
    if set.keys.is_empty() {
        return Err(ConfigError::new(key, JwksError::NoUsableKey.to_string()));
    }
    Ok(KeySource::Inline(Rc::new(set)))
}

/// An `http://` or `https://` URL as `:authority` and `:path`.
fn split_uri(uri: &str) -> Result<(String, String), String> {
    check_text_value(uri, 2048)?;
    let rest = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))
        .ok_or("must be an http:// or https:// URL")?;
    if rest.contains('#') || rest.contains(' ') || rest.contains('\\') {
        return Err("must not hold '#', spaces or '\\'".into());
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let plain = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    if !plain {
        return Err("must name a host (and port), without user information".into());
    }
    if uri.starts_with("http://") && !is_local_host(authority) {
        return Err(
            "is http:// to a remote host: anyone on the way could serve keys; use https:// (with a cluster that originates TLS), or http:// to a loopback address or a mesh-local service (*.svc, *.svc.cluster.local)".into(),
        );
    }
    Ok((authority.to_owned(), path.to_owned()))
}

/// A host whose plain-HTTP traffic does not cross an untrusted network: a loopback address, or
/// a Kubernetes service name (the mesh's mutual TLS carries it).
fn is_local_host(authority: &str) -> bool {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((host, after)) => match after {
                "" => (host, None),
                after => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return false,
                },
            },
            None => return false,
        },
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    let host = host.to_ascii_lowercase();
    // An address literal must be a loopback one (a name such as `127.0.0.1.example.com` is
    // not an address).
    if let Ok(address) = host.parse::<std::net::IpAddr>() {
        return address.is_loopback();
    }
    let label =
        |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let is_name = host.split('.').all(label);
    is_name
        && (host == "localhost" || host.ends_with(".svc") || host.ends_with(".svc.cluster.local"))
}

/// A non-empty printable ASCII text of at most `max` bytes.
fn check_text_value(text: &str, max: usize) -> Result<(), String> {
    if text.is_empty() || text.len() > max {
        return Err(format!("must be 1 to {max} characters"));
    }
    if !text.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err("must be printable ASCII".into());
    }
    Ok(())
}
