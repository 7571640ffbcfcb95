//! `oidc` as the request path reads it (checked when the configuration loads, by the
//! configuration's `oidc` module).

use super::seal::Sealer;

/// How long a session lasts unless `session_seconds` says otherwise (8 hours).
pub const DEFAULT_SESSION_SECONDS: u64 = 8 * 3600;
/// The bounds of `session_seconds`.
pub const SESSION_SECONDS: std::ops::RangeInclusive<u64> = 60..=30 * 24 * 3600;

/// An endpoint reached through the Envoy cluster: what its requests carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterEndpoint {
    pub https: bool,
    pub authority: String,
    pub path: String,
}

/// Browser sign-in, checked.
#[derive(Debug, Clone)]
pub struct Oidc {
    /// The `issuers` entry whose keys check the ID token (its index).
    pub issuer: usize,
    /// Its `iss`.
    pub issuer_id: String,
    pub client_id: String,
    /// The client secret (HTTP Basic at the token endpoint), when the client has one.
    pub client_secret: Option<String>,
    pub authorization_endpoint: String,
    pub token_endpoint: ClusterEndpoint,
    pub revocation_endpoint: Option<ClusterEndpoint>,
    pub end_session_endpoint: Option<String>,
    pub cluster: String,
    pub redirect_path: String,
    pub logout_path: Option<String>,
    /// The callback and logout paths as `required` rules over a default of `none`: a request
    /// path the rules read as one of them (any reading, case or format suffix) is theirs.
    pub own_paths: crate::rules::RuleSet,
    pub post_logout_redirect_uri: Option<String>,
    /// The `scope` sent, space-separated (always with `openid`).
    pub scope: String,
    pub sealer: Sealer,
    /// Cookies are `Secure` and `__Host-` prefixed.
    pub cookie_secure: bool,
    pub session_seconds: u64,
}
