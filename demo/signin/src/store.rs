//! Sessions: the refresh-token families and what is revoked, behind one small type that a
//! database can replace.
//!
//! A sign-in starts a family. Each refresh token (by its `jti`) may be used once: using it
//! issues the next token of its family. A token used a second time means it was stolen (or
//! the client was), and the whole family is revoked (OAuth 2.0 Security BCP, refresh token
//! rotation). Access tokens are remembered by `jti` too, so that signing out with only an
//! access token ends its session.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

/// How much the store keeps. Every operation costs the same whatever the store holds.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// The most sessions kept; a sign-in beyond it ends the oldest session (of anyone).
    pub sessions: usize,
    /// The most sessions of one account; its sign-in beyond it ends its own oldest session,
    /// so that one account cannot fill the store.
    pub per_account: usize,
    /// The most token ids remembered per session (the newest); an older refresh token is
    /// then refused as unknown rather than detected as reused.
    pub per_session_tokens: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            sessions: 100_000,
            per_account: 20,
            per_session_tokens: 8,
        }
    }
}

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
    caps: Caps,
    /// Sessions started so far: the order of sessions.
    started: u64,
    /// By family id.
    families: HashMap<String, Family>,
    /// Family ids in the order they started.
    by_age: BTreeMap<u64, String>,
    /// Each subject's families, by when they started.
    by_subject: HashMap<String, BTreeMap<u64, String>>,
    /// Token `jti` to its family.
    tokens: HashMap<String, Token>,
}

#[derive(Debug)]
struct Family {
    subject: String,
    expires: u64,
    started: u64,
    /// The ids of its tokens still remembered, oldest first.
    tokens: VecDeque<String>,
}

#[derive(Debug)]
struct Token {
    family: String,
    refresh: bool,
    used: bool,
    expires: u64,
}

impl Store {
    /// A store keeping at most `caps` (the service keeps [`Caps::default`]).
    #[cfg(test)]
    pub fn new(caps: Caps) -> Store {
        Store {
            inner: Mutex::new(Inner {
                caps,
                ..Inner::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts session `family` for `subject`, ending the subject's oldest session when it has
    /// [`Caps::per_account`], and the oldest of all when the store holds [`Caps::sessions`].
    pub fn begin(&self, family: &str, subject: &str, expires: u64) {
        let mut inner = self.lock();
        let caps = inner.caps;
        let oldest_of_subject = inner
            .by_subject
            .get(subject)
            .filter(|f| f.len() >= caps.per_account.max(1))
            .and_then(|f| f.values().next().cloned());
        if let Some(oldest) = oldest_of_subject {
            inner.revoke(&oldest);
        }
        if inner.families.len() >= caps.sessions.max(1) {
            if let Some(oldest) = inner.by_age.values().next().cloned() {
                inner.revoke(&oldest);
            }
        }
        inner.revoke(family);
        inner.started += 1;
        let started = inner.started;
        inner.by_age.insert(started, family.to_owned());
        inner
            .by_subject
            .entry(subject.to_owned())
            .or_default()
            .insert(started, family.to_owned());
        inner.families.insert(
            family.to_owned(),
            Family {
                subject: subject.to_owned(),
                expires,
                started,
                tokens: VecDeque::new(),
            },
        );
    }

    /// Records a token of `family` (refresh or access) by its `jti`; the family's oldest
    /// token is forgotten beyond [`Caps::per_session_tokens`].
    pub fn add_token(&self, family: &str, jti: &str, refresh: bool, expires: u64) {
        let mut inner = self.lock();
        let cap = inner.caps.per_session_tokens.max(1);
        let Some(f) = inner.families.get_mut(family) else {
            return;
        };
        f.expires = f.expires.max(expires);
        f.tokens.push_back(jti.to_owned());
        let forgotten = if f.tokens.len() > cap {
            f.tokens.pop_front()
        } else {
            None
        };
        if let Some(old) = forgotten {
            inner.tokens.remove(&old);
        }
        let token = Token {
            family: family.to_owned(),
            refresh,
            used: false,
            expires,
        };
        inner.tokens.insert(jti.to_owned(), token);
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

    /// How many sessions and token ids are kept, and how many entries the indexes hold.
    #[cfg(test)]
    pub fn sizes(&self) -> (usize, usize, usize) {
        let inner = self.lock();
        let indexed =
            inner.by_age.len() + inner.by_subject.values().map(BTreeMap::len).sum::<usize>();
        (inner.families.len(), inner.tokens.len(), indexed)
    }
}

impl Inner {
    /// Ends session `family` and forgets its tokens (as many steps as it has tokens).
    fn revoke(&mut self, family: &str) -> bool {
        let Some(f) = self.families.remove(family) else {
            return false;
        };
        for jti in &f.tokens {
            self.tokens.remove(jti);
        }
        self.by_age.remove(&f.started);
        if let Some(mine) = self.by_subject.get_mut(&f.subject) {
            mine.remove(&f.started);
            if mine.is_empty() {
                self.by_subject.remove(&f.subject);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn session(store: &Store) {
        store.begin("f1", "lUpa", NOW + 100);
        store.add_token("f1", "r1", true, NOW + 100);
        store.add_token("f1", "a1", false, NOW + 10);
    }

    #[test]
    fn a_refresh_token_works_once_and_its_reuse_revokes_the_family() {
        let store = Store::default();
        session(&store);
        assert_eq!(
            store.use_refresh("r1", NOW),
            Ok(("f1".into(), "lUpa".into()))
        );
        store.add_token("f1", "r2", true, NOW + 100);
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

    #[test]
    fn one_account_cannot_fill_the_store_and_a_full_store_ends_the_oldest_session() {
        let store = Store::new(Caps {
            sessions: 10,
            per_account: 3,
            per_session_tokens: 8,
        });
        for i in 0..100 {
            store.begin(&format!("m{i}"), "mallory", NOW + 100);
        }
        assert_eq!(store.sizes().0, 3, "one account holds at most its cap");
        assert!(store.is_live("m99", NOW) && store.is_live("m97", NOW));
        assert!(!store.is_live("m96", NOW), "its oldest session ended");
        for i in 0..20 {
            store.begin(&format!("u{i}"), &format!("user{i}"), NOW + 100);
            assert!(store.is_live(&format!("u{i}"), NOW), "sign-in {i} refused");
        }
        assert_eq!(store.sizes().0, 10);
        assert!(!store.is_live("u9", NOW) && store.is_live("u10", NOW));
        assert_eq!(store.sizes().2, 20, "the indexes hold each session twice");
    }

    #[test]
    fn endless_refreshes_keep_a_bounded_index_and_recent_reuse_is_still_caught() {
        let store = Store::default();
        store.begin("f1", "lUpa", NOW + 100);
        store.add_token("f1", "r0", true, NOW + 100);
        for i in 1..=20_000 {
            assert!(
                store.use_refresh(&format!("r{}", i - 1), NOW).is_ok(),
                "{i}"
            );
            store.add_token("f1", &format!("a{i}"), false, NOW + 10);
            store.add_token("f1", &format!("r{i}"), true, NOW + 100);
        }
        let (_, tokens, _) = store.sizes();
        assert!(
            tokens <= Caps::default().per_session_tokens,
            "{tokens} token ids kept"
        );
        assert_eq!(store.use_refresh("r19999", NOW), Err(Refused::Reused));
        assert!(!store.is_live("f1", NOW));
        assert_eq!(store.sizes(), (0, 0, 0));
        assert_eq!(store.use_refresh("r20000", NOW), Err(Refused::Unknown));
    }
}
