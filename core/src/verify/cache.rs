//! Access tokens verified before, per VM (one per Envoy worker), so a token seen again costs a
//! lookup instead of base64, JSON and HMAC.
//!
//! Keyed by the whole token text: a different token never hits. Only verified tokens enter.
//! Expiry is checked on every hit. The cache belongs to one configuration: a new
//! configuration (a secret removed, say) starts empty.

use std::collections::HashMap;

use rustc_hash::FxBuildHasher;

use crate::identity::Identity;
use crate::verify::jwks::KeyDigest;
use crate::verify::revocation::TokenMarks;

/// How many tokens one VM remembers.
pub const CAPACITY: usize = 10_000;

/// What a verified token proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedToken {
    pub identity: Identity,
    pub expires_at: u64,
    /// For an issuer's token: the issuer's index and the key that verified it (a hit is
    /// verified again once that key left the issuer's keys: a key the provider withdrew
    /// stops serving at once; keys fetched again unchanged change nothing).
    pub keys: Option<(usize, KeyDigest)>,
    /// What the revocation list knows the token by (checked on every hit).
    pub marks: TokenMarks,
}

/// Verified tokens by their text.
#[derive(Clone)]
pub struct TokenCache {
    /// FxHash is safe here: only verified tokens enter, so without a secret nobody can fill
    /// the map with keys chosen to collide.
    entries: HashMap<Box<str>, CachedToken, FxBuildHasher>,
    capacity: usize,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys: they are tokens.
        f.debug_struct("TokenCache")
            .field("len", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache::with_capacity(CAPACITY)
    }
}

impl TokenCache {
    /// An empty cache holding at most `capacity` tokens.
    pub fn with_capacity(capacity: usize) -> Self {
        TokenCache {
            entries: HashMap::default(),
            capacity,
        }
    }

    /// What `token` proved if it was verified before and `exp` plus `skew` has not passed at
    /// `now`.
    pub fn get(&self, token: &str, now: u64, skew: u64) -> Option<&CachedToken> {
        let entry = self.entries.get(token)?;
        (now <= entry.expires_at.saturating_add(skew)).then_some(entry)
    }

    /// Remembers a verified token. When full, half the entries (every other one, in the
    /// map's random order) make room: amortised over the next inserts, a constant cost.
    pub fn insert(&mut self, token: &str, verified: CachedToken) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(token) {
            let mut keep = true;
            self.entries.retain(|_, _| {
                keep = !keep;
                keep
            });
        }
        self.entries.insert(token.into(), verified);
    }

    /// Drops every token whose `exp` plus `skew` has passed.
    pub fn sweep(&mut self, now: u64, skew: u64) {
        self.entries
            .retain(|_, e| now <= e.expires_at.saturating_add(skew));
    }

    /// How many tokens are remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no token is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(sub: &str, expires_at: u64) -> CachedToken {
        CachedToken {
            identity: Identity::user(sub.into()),
            expires_at,
            keys: None,
            marks: TokenMarks {
                issuer: None,
                subject: sub.into(),
                jti: None,
                issued_at: None,
                digest: [0; 32],
            },
        }
    }

    #[test]
    fn hits_only_the_same_token_and_only_before_expiry() {
        let mut cache = TokenCache::with_capacity(10);
        cache.insert("a.b.c", user("alice", 1000));
        assert_eq!(cache.get("a.b.c", 1000, 0), Some(&user("alice", 1000)));
        assert_eq!(cache.get("a.b.c", 1060, 60), Some(&user("alice", 1000)));
        assert!(cache.get("a.b.c", 1061, 60).is_none());
        assert!(cache.get("a.b.d", 0, 0).is_none());
        assert!(cache.get("a.b.c ", 0, 0).is_none());
        assert!(cache.get("a.b", 0, 0).is_none());
    }

    #[test]
    fn stays_within_its_capacity() {
        let mut cache = TokenCache::with_capacity(100);
        for i in 0..10_000 {
            cache.insert(&format!("token-{i}"), user("u", u64::MAX));
            assert!(cache.len() <= 100);
        }
        assert!(cache.len() >= 50);
        // The newest is always kept.
        assert!(cache.get("token-9999", 0, 0).is_some());
        let mut none = TokenCache::with_capacity(0);
        none.insert("t", user("u", u64::MAX));
        assert!(none.is_empty());
    }

    #[test]
    fn sweeping_drops_expired_tokens() {
        let mut cache = TokenCache::with_capacity(10);
        cache.insert("old", user("u", 100));
        cache.insert("new", user("u", 1000));
        cache.sweep(500, 60);
        assert_eq!(cache.len(), 1);
        assert!(cache.get("new", 500, 60).is_some());
    }

    #[test]
    fn debug_never_shows_tokens() {
        let mut cache = TokenCache::with_capacity(10);
        cache.insert("secret.token.value", user("u", 1));
        assert!(!format!("{cache:?}").contains("secret"));
    }
}
