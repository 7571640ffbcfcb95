//! What happens to browser sign-ins, counted (`tollgate.oidc.*`).

/// What happened to a browser sign-in (`tollgate.oidc.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInEvent {
    Started,
    Completed,
    /// A callback whose state matched no sign-in under way (no provider call made).
    FailedState,
    /// The provider answered the callback with `error=`.
    FailedProvider,
    /// The token endpoint failed, was slow, or answered no tokens.
    FailedTokenEndpoint,
    /// The ID token did not pass (signature, issuer, audience, nonce, times).
    FailedIdToken,
    /// The provider's endpoints are not known yet: its discovery document has not been
    /// fetched (a 503 page; counted for sign-ins started and callbacks alike).
    FailedDiscovery,
    Refreshed,
    RefreshFailed,
    LoggedOut,
}

impl SignInEvent {
    pub const ALL: [SignInEvent; 10] = [
        SignInEvent::Started,
        SignInEvent::Completed,
        SignInEvent::FailedState,
        SignInEvent::FailedProvider,
        SignInEvent::FailedTokenEndpoint,
        SignInEvent::FailedIdToken,
        SignInEvent::FailedDiscovery,
        SignInEvent::Refreshed,
        SignInEvent::RefreshFailed,
        SignInEvent::LoggedOut,
    ];

    /// The last part of the counter's name.
    pub fn as_str(self) -> &'static str {
        match self {
            SignInEvent::Started => "login_started",
            SignInEvent::Completed => "login_completed",
            SignInEvent::FailedState => "login_failed.state",
            SignInEvent::FailedProvider => "login_failed.provider_error",
            SignInEvent::FailedTokenEndpoint => "login_failed.token_endpoint",
            SignInEvent::FailedIdToken => "login_failed.id_token",
            SignInEvent::FailedDiscovery => "login_failed.discovery",
            SignInEvent::Refreshed => "refreshed",
            SignInEvent::RefreshFailed => "refresh_failed",
            SignInEvent::LoggedOut => "logged_out",
        }
    }

    /// Its position in [`SignInEvent::ALL`].
    pub fn index(self) -> usize {
        SignInEvent::ALL
            .iter()
            .position(|e| *e == self)
            .unwrap_or_default()
    }
}
