//! `revocation`: the feed of revoked tokens, polled through an Envoy cluster.

use serde::Deserialize;

use super::ConfigError;

/// How often the feed is polled unless `poll_seconds` says otherwise.
pub const DEFAULT_POLL_SECONDS: u64 = 5;
/// The bounds of `poll_seconds`.
pub const POLL_SECONDS: std::ops::RangeInclusive<u64> = 1..=300;

/// The revocation feed as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationFeed {
    /// The Envoy cluster the polls go through.
    pub cluster: String,
    /// The feed's `:path` (the cursor is added as a query parameter).
    pub path: String,
    /// The `:authority` of the polls.
    pub authority: String,
    pub poll_seconds: u64,
    /// Refuse tokens (503) once the list is this old.
    pub fail_closed_after: Option<u64>,
    /// `max_lifetime_seconds`, which a revocation feed requires: a subject's revocation is
    /// kept that long (and the clock skew) past its time.
    pub max_lifetime: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRevocation {
    cluster: String,
    path: String,
    authority: Option<String>,
    poll_seconds: Option<u64>,
    fail_closed_after_seconds: Option<u64>,
}

/// A printable ASCII text without spaces of 1 to `max` bytes.
fn check_token_text(key: &str, text: &str, max: usize) -> Result<(), ConfigError> {
    let ok = !text.is_empty() && text.len() <= max && text.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("must be 1 to {max} visible ASCII characters"),
        ))
    }
}

/// The feed as configured; `max_lifetime` is the configuration's `max_lifetime_seconds`,
/// without which no token lifetime bounds how long a subject's revocation must last.
pub(super) fn compile_revocation(
    raw: RawRevocation,
    max_lifetime: Option<u64>,
) -> Result<RevocationFeed, ConfigError> {
    let Some(max_lifetime) = max_lifetime else {
        return Err(ConfigError::new(
            "max_lifetime_seconds",
            "is required with revocation: a subject's revocation lasts that long past its time",
        ));
    };
    check_token_text("revocation.cluster", &raw.cluster, 256)?;
    check_token_text("revocation.path", &raw.path, 1024)?;
    if !raw.path.starts_with('/') || raw.path.contains('#') || raw.path.contains('?') {
        return Err(ConfigError::new(
            "revocation.path",
            "must start with '/' and hold no query or fragment (the filter adds ?cursor=)",
        ));
    }
    let authority = raw.authority.unwrap_or_else(|| raw.cluster.clone());
    check_token_text("revocation.authority", &authority, 256)?;
    let poll_seconds = raw.poll_seconds.unwrap_or(DEFAULT_POLL_SECONDS);
    if !POLL_SECONDS.contains(&poll_seconds) {
        return Err(ConfigError::new(
            "revocation.poll_seconds",
            format!("must be {} to {}", POLL_SECONDS.start(), POLL_SECONDS.end()),
        ));
    }
    if let Some(after) = raw.fail_closed_after_seconds {
        if after < poll_seconds.saturating_mul(2) {
            return Err(ConfigError::new(
                "revocation.fail_closed_after_seconds",
                format!("must be at least twice poll_seconds ({poll_seconds}): one failed poll must not refuse every token"),
            ));
        }
    }
    Ok(RevocationFeed {
        cluster: raw.cluster,
        path: raw.path,
        authority,
        poll_seconds,
        fail_closed_after: raw.fail_closed_after_seconds,
        max_lifetime,
    })
}
