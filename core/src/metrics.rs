//! The counters the filter keeps, and which one each decision increments.
//!
//! Envoy publishes them under its `wasmcustom` namespace: `tollgate.allowed.access_token`
//! is `wasmcustom.tollgate.allowed.access_token` on `/stats` and
//! `tollgate_allowed{credential_type="access_token"}` on `/stats/prometheus` once the
//! example `stats_tags` extract the last segment.

use crate::decision::Outcome;
use crate::denial::Code;
use crate::identity::CredentialKind;

/// One counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Let on with an identity of this kind.
    Allowed(CredentialKind),
    /// Refused with this error code.
    Denied(Code),
    /// A browser sent to sign in.
    Redirected,
    /// A `none` path, let on unchecked.
    Unchecked,
    /// A CORS preflight, let on.
    Preflight,
    /// A configuration loaded (once per VM: the main thread and each worker).
    ConfigLoaded,
    /// A configuration refused.
    ConfigFailed,
    /// An access token answered from the cache of verified tokens.
    CacheHit,
    /// An access token verified in full (and cached when valid).
    CacheMiss,
    /// A host call of the request path that the host refused (a header change fails the
    /// request closed).
    HostCallFailed,
    /// A token verified in full whose roles claim held a value the role header cannot carry
    /// (left out; the token never becomes `user` for it).
    RoleDropped,
    /// A browser sign-in through the OpenID provider: started, completed, failed, a session
    /// refreshed, a logout.
    SignIn(SignInEvent),
}

pub use crate::oidc::SignInEvent;

impl Counter {
    /// Every counter, in a fixed order: [`Counter::index`] is the position here.
    pub fn all() -> Vec<Counter> {
        let mut all: Vec<Counter> = CredentialKind::ALL.map(Counter::Allowed).to_vec();
        all.extend(Code::ALL.map(Counter::Denied));
        all.extend([
            Counter::Redirected,
            Counter::Unchecked,
            Counter::Preflight,
            Counter::ConfigLoaded,
            Counter::ConfigFailed,
            Counter::CacheHit,
            Counter::CacheMiss,
            Counter::HostCallFailed,
            Counter::RoleDropped,
        ]);
        all.extend(SignInEvent::ALL.map(Counter::SignIn));
        all
    }

    /// The position of this counter in [`Counter::all`].
    pub fn index(self) -> usize {
        let kinds = CredentialKind::ALL.len();
        let codes = Code::ALL.len();
        match self {
            Counter::Allowed(kind) => kind.index(),
            Counter::Denied(code) => kinds + code.index(),
            Counter::Redirected => kinds + codes,
            Counter::Unchecked => kinds + codes + 1,
            Counter::Preflight => kinds + codes + 2,
            Counter::ConfigLoaded => kinds + codes + 3,
            Counter::ConfigFailed => kinds + codes + 4,
            Counter::CacheHit => kinds + codes + 5,
            Counter::CacheMiss => kinds + codes + 6,
            Counter::HostCallFailed => kinds + codes + 7,
            Counter::RoleDropped => kinds + codes + 8,
            Counter::SignIn(event) => kinds + codes + 9 + event.index(),
        }
    }

    /// The metric name the filter defines.
    pub fn name(self) -> String {
        match self {
            Counter::Allowed(kind) => format!("tollgate.allowed.{}", kind.as_str()),
            Counter::Denied(code) => {
                format!("tollgate.denied.{}", code.as_str().to_ascii_lowercase())
            }
            Counter::Redirected => "tollgate.redirected".into(),
            Counter::Unchecked => "tollgate.unchecked".into(),
            Counter::Preflight => "tollgate.preflight".into(),
            Counter::ConfigLoaded => "tollgate.config.loaded".into(),
            Counter::ConfigFailed => "tollgate.config.failed".into(),
            Counter::CacheHit => "tollgate.token_cache.hit".into(),
            Counter::CacheMiss => "tollgate.token_cache.miss".into(),
            Counter::HostCallFailed => "tollgate.host_call_failed".into(),
            Counter::RoleDropped => "tollgate.role_dropped".into(),
            Counter::SignIn(event) => format!("tollgate.oidc.{}", event.as_str()),
        }
    }

    /// The counter a decision increments.
    pub(crate) fn for_outcome(outcome: &Outcome) -> Counter {
        match outcome {
            Outcome::Allowed(identity) => Counter::Allowed(identity.kind),
            Outcome::Denied(denial) => Counter::Denied(denial.code()),
            Outcome::Redirected(_) => Counter::Redirected,
            Outcome::Unchecked => Counter::Unchecked,
            Outcome::Preflight => Counter::Preflight,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::denial::{BadCredential, Denial};
    use crate::identity::Identity;

    #[test]
    fn indexes_match_the_order_of_all() {
        let all = Counter::all();
        assert_eq!(all.len(), 32);
        for (i, counter) in all.iter().enumerate() {
            assert_eq!(counter.index(), i, "{counter:?}");
        }
    }

    #[test]
    fn names() {
        let names: Vec<String> = Counter::all().into_iter().map(Counter::name).collect();
        assert!(names.contains(&"tollgate.allowed.access_token".to_string()));
        assert!(names.contains(&"tollgate.denied.token_expired".to_string()));
        assert!(names.contains(&"tollgate.config.failed".to_string()));
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
    }

    #[test]
    fn outcomes_map_to_counters() {
        assert_eq!(
            Counter::for_outcome(&Outcome::Allowed(Identity::anonymous())),
            Counter::Allowed(CredentialKind::Anonymous)
        );
        let expired = Denial::InvalidCredentials(BadCredential::Token(
            crate::verify::token::TokenError::Expired,
        ));
        assert_eq!(
            Counter::for_outcome(&Outcome::Denied(expired)).name(),
            "tollgate.denied.token_expired"
        );
        assert_eq!(
            Counter::for_outcome(&Outcome::Redirected(Denial::MissingCredentials)),
            Counter::Redirected
        );
    }
}
