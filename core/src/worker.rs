//! What one Envoy worker keeps between requests. The filter's root context (one per worker
//! VM) owns it and lends it to each request's decision; a new configuration starts it empty.

use std::rc::Rc;

use crate::config::Config;
use crate::identity::RoleDrop;
use crate::verify::cache::TokenCache;
use crate::verify::jwks::KeySet;
use crate::verify::revocation::RevocationList;

/// A worker's state.
#[derive(Debug, Default)]
pub struct WorkerState {
    /// Access tokens verified before.
    pub tokens: TokenCache,
    /// The fetched keys of the issuers whose keys are fetched (`jwks_uri`).
    pub issuer_keys: IssuerKeys,
    /// The revoked tokens, as the revocation feed last said.
    pub revocations: Revocations,
    /// Browser sign-in's session cookies opened before, with their access tokens.
    pub sessions: crate::oidc::opened::OpenedSessions,
    /// Sessions refreshed moments ago, by their old refresh cookie.
    pub renewed: crate::oidc::renewed::RenewedSessions,
    /// With `oidc.discovery`: the provider's endpoints from its discovery document (the
    /// configuration's winning), once installed.
    pub discovered: Option<Rc<crate::oidc::config::Endpoints>>,
    /// Tokens whose roles claim held a value the role header cannot carry, not yet counted.
    pub dropped_roles: DroppedRoles,
}

/// Tokens verified in full whose roles claim held a value that cannot be carried: counted on
/// the tick (`tollgate.role_dropped`), and the first logged once per configuration (the
/// issuer and the reason, never the value).
#[derive(Debug, Default)]
pub struct DroppedRoles {
    /// Not yet counted.
    pub pending: u64,
    /// The first one's issuer and reason, until logged.
    pub first: Option<(Rc<str>, RoleDrop)>,
    /// Whether the first one was logged under this configuration.
    pub logged: bool,
}

impl DroppedRoles {
    /// Notes a token of issuer `issuer` with a value left out for `why`.
    pub fn note(&mut self, issuer: &Rc<str>, why: RoleDrop) {
        self.pending += 1;
        if !self.logged && self.first.is_none() {
            self.first = Some((Rc::clone(issuer), why));
        }
    }

    /// The count not yet handed over, and the line to log when it is this configuration's
    /// first.
    pub fn take(&mut self) -> (u64, Option<String>) {
        let line = self.first.take().map(|(issuer, why)| {
            self.logged = true;
            format!(
                "tollgate: a token of issuer \"{issuer}\" names {} in its roles claim: it is left out (the role header cannot carry it); later ones are counted in tollgate.role_dropped without logging",
                why.as_str()
            )
        });
        (std::mem::take(&mut self.pending), line)
    }
}

/// The revocation list a worker holds, and how fresh it is.
#[derive(Debug, Clone, Default)]
pub struct Revocations {
    pub list: Rc<RevocationList>,
    /// Unix time of the last good poll (or of the configuration, before the first).
    pub fresh_at: u64,
    /// The version of the shared list it holds.
    pub version: u64,
    /// The feed's list holds more than the filter can: tokens are refused (503) until it
    /// shrinks, rather than checked against an incomplete list.
    pub overflowed: bool,
}

impl WorkerState {
    /// Drops what expired by unix time `now` under `config`.
    pub fn sweep(&mut self, config: &Config, now: u64) {
        config.verifier.sweep(&mut self.tokens, now);
    }
}

/// Fetched key sets by issuer index, each with the version the filter's shared store gave it.
#[derive(Debug, Default)]
pub struct IssuerKeys {
    sets: Vec<Option<(Rc<KeySet>, u64)>>,
}

impl IssuerKeys {
    /// The keys of issuer `index`, once fetched.
    pub fn get(&self, index: usize) -> Option<&KeySet> {
        self.sets.get(index)?.as_ref().map(|(set, _)| &**set)
    }

    /// The version of issuer `index`'s keys; 0 before the first fetch.
    pub fn version(&self, index: usize) -> u64 {
        self.sets
            .get(index)
            .and_then(|s| s.as_ref())
            .map_or(0, |(_, version)| *version)
    }

    /// Installs issuer `index`'s keys at `version`.
    pub fn install(&mut self, index: usize, set: KeySet, version: u64) {
        if self.sets.len() <= index {
            self.sets.resize(index + 1, None);
        }
        if let Some(slot) = self.sets.get_mut(index) {
            *slot = Some((Rc::new(set), version));
        }
    }
}
