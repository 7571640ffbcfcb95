//! Sessions: the refresh-token families and what is revoked, behind one small type that a
//! database can replace.
//!
//! A sign-in starts a family. Each refresh token (by its `jti`) may be used once: using it
//! issues the next token of its family. A token used a second time means it was stolen (or
//! the client was), and the whole family is revoked (OAuth 2.0 Security BCP, refresh token
//! rotation). Access tokens are remembered by `jti` too, so that signing out with only an
//! access token ends its session.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// The most sessions kept; beyond it, expired ones are dropped, then new ones are refused.
const MAX_FAMILIES: usize = 100_000;
/// The most token ids kept; beyond it, expired ones (and those of ended sessions) are dropped.
const MAX_TOKENS: usize = 1_000_000;

/// Why a refresh token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not issued here, expired, or its session ended.
    Unknown,
    /// Used before: its whole session is now revoked.
    Reused,
}

/// The sessions of one service instance (in memory).
#[derive(Debug, Default)]
pub struct Store {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// By family id.
    families: HashMap<String, Family>,
    /// Token `jti` to its family.
    tokens: HashMap<String, Token>,
}

#[derive(Debug)]
struct Family {
    subject: String,
    expires: u64,
}

#[derive(Debug)]
struct Token {
    family: String,
    refresh: bool,
    used: bool,
    expires: u64,
}

impl Store {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts session `family` for `subject`; false when the store is full.
    pub fn begin(&self, family: &str, subject: &str, expires: u64, now: u64) -> bool {
        let mut inner = self.lock();
        if inner.families.len() >= MAX_FAMILIES {
            inner.prune(now);
            if inner.families.len() >= MAX_FAMILIES {
                return false;
            }
        }
        inner.families.insert(
            family.to_owned(),
            Family {
                subject: subject.to_owned(),
                expires,
            },
        );
        true
    }

    /// Records a token of `family` (refresh or access) by its `jti`.
    pub fn add_token(&self, family: &str, jti: &str, refresh: bool, expires: u64, now: u64) {
        let mut inner = self.lock();
        if inner.tokens.len() >= MAX_TOKENS {
            inner.prune(now);
        }
        if let Some(f) = inner.families.get_mut(family) {
            f.expires = f.expires.max(expires);
            let token = Token {
                family: family.to_owned(),
                refresh,
                used: false,
                expires,
            };
            inner.tokens.insert(jti.to_owned(), token);
        }
    }

    /// Uses refresh token `jti`: its family and subject when it is live and unused. A second
    /// use revokes the family.
    pub fn use_refresh(&self, jti: &str, now: u64) -> Result<(String, String), Refused> {
        let mut inner = self.lock();
        let Some(token) = inner.tokens.get_mut(jti) else {
            return Err(Refused::Unknown);
        };
        if !token.refresh || token.expires < now {
            return Err(Refused::Unknown);
        }
        let family = token.family.clone();
        if token.used {
            inner.revoke(&family);
            return Err(Refused::Reused);
        }
        token.used = true;
        match inner.families.get(&family) {
            Some(f) if f.expires >= now => Ok((family, f.subject.clone())),
            _ => Err(Refused::Unknown),
        }
    }

    /// Ends the session token `jti` belongs to; whether there was one.
    pub fn revoke_session_of(&self, jti: &str) -> bool {
        let mut inner = self.lock();
        match inner.tokens.get(jti).map(|t| t.family.clone()) {
            Some(family) => inner.revoke(&family),
            None => false,
        }
    }

    /// Whether session `family` is live.
    #[cfg(test)]
    pub fn is_live(&self, family: &str, now: u64) -> bool {
        self.lock()
            .families
            .get(family)
            .is_some_and(|f| f.expires >= now)
    }
}

impl Inner {
    fn revoke(&mut self, family: &str) -> bool {
        let existed = self.families.remove(family).is_some();
        self.tokens.retain(|_, t| t.family != family);
        existed
    }

    fn prune(&mut self, now: u64) {
        self.families.retain(|_, f| f.expires >= now);
        let families = &self.families;
        self.tokens
            .retain(|_, t| t.expires >= now && families.contains_key(&t.family));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn session(store: &Store) {
        assert!(store.begin("f1", "lUpa", NOW + 100, NOW));
        store.add_token("f1", "r1", true, NOW + 100, NOW);
        store.add_token("f1", "a1", false, NOW + 10, NOW);
    }

    #[test]
    fn a_refresh_token_works_once_and_its_reuse_revokes_the_family() {
        let store = Store::default();
        session(&store);
        assert_eq!(
            store.use_refresh("r1", NOW),
            Ok(("f1".into(), "lUpa".into()))
        );
        store.add_token("f1", "r2", true, NOW + 100, NOW);
        assert_eq!(store.use_refresh("r1", NOW), Err(Refused::Reused));
        assert!(!store.is_live("f1", NOW));
        assert_eq!(store.use_refresh("r2", NOW), Err(Refused::Unknown));
    }

    #[test]
    fn access_tokens_and_unknown_ids_are_not_refresh_tokens() {
        let store = Store::default();
        session(&store);
        assert_eq!(store.use_refresh("a1", NOW), Err(Refused::Unknown));
        assert_eq!(store.use_refresh("nope", NOW), Err(Refused::Unknown));
        assert_eq!(store.use_refresh("r1", NOW + 101), Err(Refused::Unknown));
    }

    #[test]
    fn signing_out_with_an_access_token_ends_the_session() {
        let store = Store::default();
        session(&store);
        assert!(store.revoke_session_of("a1"));
        assert_eq!(store.use_refresh("r1", NOW), Err(Refused::Unknown));
        assert!(!store.revoke_session_of("a1"));
    }
}
