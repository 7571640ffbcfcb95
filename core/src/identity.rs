//! Who a request is, once the filter has checked its credential.

use std::rc::Rc;

use crate::request::spells_header;

mod roles;

pub use roles::{role, RoleDrop, Roles, MAX_ROLES, MAX_ROLE_LEN};

/// The kind of credential an identity comes from; its name is the `type` identity header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    AccessToken,
    ApiKey,
    PublishableKey,
    Client,
    Anonymous,
}

impl CredentialKind {
    /// Every kind, in the order their counters are defined.
    pub const ALL: [CredentialKind; 5] = [
        CredentialKind::AccessToken,
        CredentialKind::ApiKey,
        CredentialKind::PublishableKey,
        CredentialKind::Client,
        CredentialKind::Anonymous,
    ];

    /// The position of this kind in [`CredentialKind::ALL`].
    pub fn index(self) -> usize {
        match self {
            CredentialKind::AccessToken => 0,
            CredentialKind::ApiKey => 1,
            CredentialKind::PublishableKey => 2,
            CredentialKind::Client => 3,
            CredentialKind::Anonymous => 4,
        }
    }

    /// The value of the `type` identity header, shared.
    pub fn label(self) -> Rc<str> {
        KIND_LABELS
            .with(|labels| labels.get(self.index()).cloned())
            .unwrap_or_else(|| Rc::from(self.as_str()))
    }

    /// The value of the `type` identity header.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::AccessToken => "access_token",
            CredentialKind::ApiKey => "api_key",
            CredentialKind::PublishableKey => "publishable_key",
            CredentialKind::Client => "client",
            CredentialKind::Anonymous => "anonymous",
        }
    }
}

/// Headers copied from claims: each header's name and value.
pub type ClaimHeaders = Rc<[(Rc<str>, Rc<str>)]>;

/// A caller the filter vouches for: what the upstream receives in the identity headers.
/// The texts are shared (`Rc`), so making an identity copies nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub kind: CredentialKind,
    /// The roles, and the role header's value.
    pub role: Roles,
    /// The `sub` of an access token.
    pub user: Option<Rc<str>>,
    /// The name of a key, the `client_id` of a client, or the issuer of a token.
    pub name: Option<Rc<str>>,
    /// Headers copied from an issuer's token claims (`claims_to_headers`), name and value.
    pub claims: Option<ClaimHeaders>,
}

thread_local! {
    /// The `type` values, made once per VM, in the order of the variants.
    static KIND_LABELS: [Rc<str>; 5] = [
        Rc::from(CredentialKind::AccessToken.as_str()),
        Rc::from(CredentialKind::ApiKey.as_str()),
        Rc::from(CredentialKind::PublishableKey.as_str()),
        Rc::from(CredentialKind::Client.as_str()),
        Rc::from(CredentialKind::Anonymous.as_str()),
    ];
}

impl Identity {
    /// The identity of a request without a credential on an `optional` path.
    pub fn anonymous() -> Self {
        Identity {
            kind: CredentialKind::Anonymous,
            role: Roles::one(role::ANONYMOUS),
            user: None,
            name: None,
            claims: None,
        }
    }

    /// The identity a verified access token gives.
    pub fn user(subject: Rc<str>) -> Self {
        Identity {
            kind: CredentialKind::AccessToken,
            role: Roles::one(role::USER),
            user: Some(subject),
            name: None,
            claims: None,
        }
    }

    /// The names of the roles this identity holds.
    pub fn roles(&self) -> impl Iterator<Item = &str> {
        self.role.names()
    }
}

/// The identity headers' default names.
const DEFAULT_IDENTITY_HEADERS: [&str; 4] =
    ["x-auth-user", "x-auth-type", "x-auth-role", "x-auth-name"];

/// Names of the headers that carry the identity to the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHeaders {
    pub user: String,
    pub kind: String,
    pub role: String,
    pub name: String,
    /// The headers of every issuer's `claims_to_headers`, and the `payload_header`.
    pub claims: Vec<String>,
}

impl IdentityHeaders {
    /// Whether a client-sent header `name` spells one of these (any case, `_` for `-`).
    /// The default names are stripped too when others are configured: an upstream written
    /// for the defaults must never read a client's.
    pub fn is_spoof(&self, name: &str) -> bool {
        [&self.user, &self.kind, &self.role, &self.name]
            .into_iter()
            .chain(&self.claims)
            .map(|h| h.as_str())
            .chain(DEFAULT_IDENTITY_HEADERS)
            .any(|h| spells_header(name, h))
    }
}
