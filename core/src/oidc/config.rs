//! `oidc` as the request path reads it (checked when the configuration loads, by the
//! configuration's `oidc` module).

use std::rc::Rc;

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

/// Whether `url` is an absolute `http(s)` URL of visible ASCII, at most 2,048 bytes, without
/// a fragment, whose host is not empty and holds no `@` or `\\`.
pub fn is_plain_url(url: &str) -> bool {
    url.len() <= 2048
        && url.bytes().all(|b| b.is_ascii_graphic())
        && !url.contains('#')
        && ["https://", "http://"].iter().any(|scheme| {
            url.strip_prefix(scheme).is_some_and(|rest| {
                let host = rest.split(['/', '?']).next().unwrap_or_default();
                !host.is_empty() && !host.contains('@') && !host.contains('\\')
            })
        })
}

/// The scheme, authority and path of a URL that [`is_plain_url`].
pub fn cluster_endpoint(url: &str) -> ClusterEndpoint {
    let https = url.starts_with("https://");
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    };
    ClusterEndpoint {
        https,
        authority: authority.to_owned(),
        path: path.to_owned(),
    }
}

/// The provider's endpoints sign-in uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Where browsers are sent to sign in.
    pub authorization: String,
    /// Where codes and refresh tokens are exchanged (through the cluster).
    pub token: ClusterEndpoint,
    /// Where a logout revokes the refresh token (RFC 7009), when the provider has one.
    pub revocation: Option<ClusterEndpoint>,
    /// Where a logout sends the browser (RP-initiated logout), when the provider has one.
    pub end_session: Option<String>,
}

/// The endpoints the configuration names; each wins over the discovered one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Configured {
    pub authorization: Option<String>,
    pub token: Option<ClusterEndpoint>,
    pub revocation: Option<ClusterEndpoint>,
    pub end_session: Option<String>,
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
    /// The endpoints the configuration names.
    pub configured: Configured,
    /// With `discovery`: the issuer's `/.well-known/openid-configuration`, fetched through
    /// the cluster for the endpoints the configuration does not name.
    pub discovery: Option<ClusterEndpoint>,
    /// The endpoints, when the configuration names them all (no discovery).
    pub fixed: Option<Rc<Endpoints>>,
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

impl Oidc {
    /// The endpoints in use: the configuration's, or with discovery, those this worker
    /// installed (`discovered`, the configuration's winning); `None` until discovery has
    /// answered.
    pub fn endpoints<'a>(&'a self, discovered: Option<&'a Endpoints>) -> Option<&'a Endpoints> {
        match self.discovery {
            None => self.fixed.as_deref(),
            Some(_) => discovered,
        }
    }
}
