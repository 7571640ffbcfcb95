//! Checks of single values (secrets, keys, names, labels): each says what is wrong without
//! quoting a secret.

use super::key_strength;
use super::{ConfigError, MIN_KEY_LEN, MIN_SECRET_LEN};
use crate::credential::spellings;
use crate::request::path;
use crate::request::spells_header;
use crate::rules::Mode;

/// An HS256 secret: long enough, not a public key, not weak; described without quoting it.
pub(super) fn check_secret(key: &str) -> Result<(), String> {
    if key.len() < MIN_SECRET_LEN {
        return Err(format!(
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
        return Err("looks like a public key (PEM, SSH or JWK), not an HS256 secret".into());
    }
    check_text(key).and_then(|()| key_strength::check_strength(key))
}

/// No whitespace around a secret and no control characters in it (a copied newline, typically).
pub(super) fn check_text(value: &str) -> Result<(), String> {
    if value.trim() != value {
        return Err("has leading or trailing whitespace".into());
    }
    if value.chars().any(char::is_control) {
        return Err("holds control characters".into());
    }
    Ok(())
}

/// An API key, publishable key or client secret: long enough, short enough, not weak.
pub(super) fn check_key(key: &str, what: &str) -> Result<(), String> {
    if key.len() < MIN_KEY_LEN {
        return Err(format!(
            "is {} bytes; {what} needs at least {MIN_KEY_LEN}",
            key.len()
        ));
    }
    if key.len() > crate::verify::MAX_CREDENTIAL_LEN {
        return Err(format!(
            "is longer than {} bytes",
            crate::verify::MAX_CREDENTIAL_LEN
        ));
    }
    check_text(key).and_then(|()| key_strength::check_strength(key))
}

/// A label copied into an identity header: 1 to 128 visible ASCII characters, no comma.
pub(super) fn check_label(label: &str) -> Result<(), String> {
    if label.is_empty() || label.len() > 128 {
        return Err("must be 1 to 128 characters".into());
    }
    if !label.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
        return Err(format!(
            "\"{}\" must be visible ASCII without spaces or commas",
            label.escape_default()
        ));
    }
    Ok(())
}

/// A query parameter name we look for: 1 to 64 unreserved characters.
pub(super) fn check_param_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 || !name.bytes().all(path::is_unreserved) {
        return Err(format!(
            "\"{}\" must be 1 to 64 letters, digits, '-', '.', '_' or '~'",
            name.escape_default()
        ));
    }
    Ok(())
}

/// A cookie name (RFC 6265 token).
pub(super) fn check_cookie_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
    ok.then_some(())
        .ok_or_else(|| format!("\"{}\" is not a valid cookie name", name.escape_default()))
}

/// A role name, compared exactly: 1 to 128 printable ASCII characters without spaces or
/// commas (`Orders.Read`, `Admin`, `urn:acme:ops`).
pub(super) fn check_role_name(name: &str) -> Result<(), String> {
    crate::identity::role::is_valid(name)
        .then_some(())
        .ok_or_else(|| {
            format!(
                "\"{}\" must be 1 to 128 printable ASCII characters without spaces or commas",
                name.escape_default()
            )
        })
}

/// A name that labels counters and logs: 1 to 64 lower-case letters, digits, '-' or '_'.
pub(super) fn check_word(name: &str) -> Result<(), String> {
    crate::identity::role::is_word(name)
        .then_some(())
        .ok_or_else(|| {
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
    // What the upstream serves and caches by: a claim's value there would pick a byte range,
    // a condition or a cache entry for the client.
    "range",
    "if-range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "cache-control",
    "pragma",
    "trailer",
    "baggage",
    "priority",
];

pub(super) fn check_header_name(name: &str) -> Result<(), String> {
    let token = !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        });
    if !token {
        return Err(format!(
            "\"{}\" must be a lower-case HTTP header name",
            name.escape_default()
        ));
    }
    let reserved_family = ["x-envoy-", "grpc-", "x-b3-", "x-datadog-", "x-cloud-trace-"]
        .iter()
        .any(|prefix| name.starts_with(prefix));
    if RESERVED_HEADERS.iter().any(|r| spells_header(name, r)) || reserved_family {
        return Err(format!("\"{name}\" is reserved"));
    }
    Ok(())
}

/// A header the filter sets for the upstream (an identity header, a claim's header): a
/// header name that is not reserved, without `_` or `.` (many servers read them as `-`), not
/// named like a credential.
pub(super) fn check_identity_header(name: &str) -> Result<(), String> {
    check_header_name(name)?;
    if name.contains('_') || name.contains('.') {
        return Err(format!(
            "\"{name}\": use '-' instead of '_' or '.' (many servers read them the same)"
        ));
    }
    let credential_like = ["access_token", "client_id", "client_secret", "api_key"]
        .iter()
        .any(|c| spellings::loosely_named(name.as_bytes(), c));
    if credential_like {
        return Err(format!("\"{name}\" is named like a credential"));
    }
    Ok(())
}

/// A check's refusal, told at `key`.
pub(super) fn with_key(
    key: impl Into<String>,
    checked: Result<(), String>,
) -> Result<(), ConfigError> {
    checked.map_err(|problem| ConfigError::new(key, problem))
}

pub(super) fn parse_mode(key: &str, text: &str) -> Result<Mode, ConfigError> {
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
