//! Who a request is, once the filter has checked its credential.

use std::rc::Rc;

use crate::request::spells_header;

/// The role names the filter itself assigns.
pub mod role {
    /// Role of a verified access token.
    pub const USER: &str = "user";
    /// Role of an API key, and the default role of a client.
    pub const ADMIN: &str = "admin";
    /// Role of a publishable key and of a request without a credential.
    pub const ANONYMOUS: &str = "anonymous";

    /// Whether `name` can be a role: 1 to 64 lower-case letters, digits, '-' or '_'.
    pub fn is_valid(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    }
}

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
    pub role: Rc<str>,
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
    /// The built-in role names, made once per VM.
    static BUILTIN_ROLES: [Rc<str>; 3] =
        [Rc::from(role::USER), Rc::from(role::ADMIN), Rc::from(role::ANONYMOUS)];
}

/// A shared copy of a built-in role name (`user`, `admin` or `anonymous`).
pub(crate) fn builtin_role(name: &str) -> Rc<str> {
    BUILTIN_ROLES
        .with(|roles| roles.iter().find(|r| &***r == name).cloned())
        .unwrap_or_else(|| Rc::from(name))
}

impl Identity {
    /// The identity of a request without a credential on an `optional` path.
    pub fn anonymous() -> Self {
        Identity {
            kind: CredentialKind::Anonymous,
            role: builtin_role(role::ANONYMOUS),
            user: None,
            name: None,
            claims: None,
        }
    }

    /// The identity a verified access token gives.
    pub fn user(subject: Rc<str>) -> Self {
        Identity {
            kind: CredentialKind::AccessToken,
            role: builtin_role(role::USER),
            user: Some(subject),
            name: None,
            claims: None,
        }
    }

    /// The roles this identity holds: `role` is one role, or an issuer's roles joined by `,`
    /// (role names never hold a comma).
    pub fn roles(&self) -> impl Iterator<Item = &str> {
        self.role.split(',')
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
    /// The headers of every issuer's `claims_to_headers`.
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
