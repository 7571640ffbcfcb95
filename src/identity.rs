//! Who a request is, once the filter has checked its credential.

/// The role names the filter itself assigns.
pub mod role {
    /// Role of a verified access token.
    pub const USER: &str = "user";
    /// Role of an API key, and the default role of a client.
    pub const ADMIN: &str = "admin";
    /// Role of a publishable key and of a request without a credential.
    pub const ANONYMOUS: &str = "anonymous";
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

/// A caller the filter vouches for: what the upstream receives in the identity headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub kind: CredentialKind,
    pub role: String,
    /// The `sub` of an access token.
    pub user: Option<String>,
    /// The name of a key, or the `client_id` of a client.
    pub name: Option<String>,
}

impl Identity {
    /// The identity of a request without a credential on an `optional` path.
    pub fn anonymous() -> Self {
        Identity {
            kind: CredentialKind::Anonymous,
            role: role::ANONYMOUS.to_owned(),
            user: None,
            name: None,
        }
    }
}
