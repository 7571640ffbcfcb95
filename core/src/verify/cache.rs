//! Access tokens verified before, per VM (one per Envoy worker), so a token seen again costs a
//! lookup instead of base64, JSON and HMAC.
//!
//! Keyed by the whole token text: a different token never hits. Only verified tokens enter.
//! Expiry is checked on every hit. The cache belongs to one configuration: a new
//! configuration (a secret removed, say) starts empty.
//!
//! Bounded twice: by count ([`CAPACITY`]) and by the bytes its entries hold ([`MAX_BYTES`]:
//! token text, identity, claim headers, revocation marks, and the entry itself), so that long
//! tokens cannot grow a worker beyond it. When full, the tokens hit since the last eviction
//! stay (the hot ones) and the others go.

use std::cell::Cell;
use std::collections::HashMap;
use std::mem::size_of;

use rustc_hash::FxBuildHasher;

use std::rc::Rc;

use crate::identity::Identity;
use crate::verify::claim_values::TokenClaims;
use crate::verify::jwks::KeyDigest;
use crate::verify::revocation::TokenMarks;

/// How many tokens one VM remembers.
pub const CAPACITY: usize = 10_000;
/// How many bytes the remembered tokens may hold in one VM (per Envoy worker).
pub const MAX_BYTES: usize = 16 * 1024 * 1024;

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
    /// The claims the configuration's conditions read, when any rule has some.
    pub claims: Option<Rc<TokenClaims>>,
}

impl CachedToken {
    /// The bytes an entry for `token` holds: the texts it owns (counted whole even when
    /// shared), and the entry and its slot in the map.
    pub fn cost(&self, token: &str) -> usize {
        let text = |t: &Option<std::rc::Rc<str>>| t.as_deref().map_or(0, str::len);
        let identity = &self.identity;
        let claims = identity.claims.as_deref().map_or(0, |headers| {
            headers
                .iter()
                .map(|(name, value)| name.len() + value.len() + size_of::<[usize; 4]>())
                .sum()
        });
        let marks = &self.marks;
        token.len()
            + identity.role.len()
            + text(&identity.user)
            + text(&identity.name)
            + claims
            + text(&marks.issuer)
            + marks.subject.len()
            + text(&marks.jti)
            + self.claims.as_deref().map_or(0, TokenClaims::cost)
            + ENTRY_BYTES
    }
}

/// What one entry costs beyond its texts: key, value, flags, the map's slot and control byte,
/// and the allocations' headers.
const ENTRY_BYTES: usize = size_of::<(Box<str>, Entry)>() + 1 + size_of::<[usize; 8]>();

/// A remembered token, what it costs, and whether it was hit since the last eviction.
#[derive(Debug, Clone)]
struct Entry {
    token: CachedToken,
    cost: usize,
    hot: Cell<bool>,
}

/// Verified tokens by their text.
#[derive(Clone)]
pub struct TokenCache {
    /// FxHash is safe here: only verified tokens enter, so without a secret nobody can fill
    /// the map with keys chosen to collide.
    entries: HashMap<Box<str>, Entry, FxBuildHasher>,
    capacity: usize,
    max_bytes: usize,
    /// The sum of the entries' costs.
    bytes: usize,
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
        TokenCache::bounded(CAPACITY, MAX_BYTES)
    }
}

impl TokenCache {
    /// An empty cache holding at most `capacity` tokens and [`MAX_BYTES`].
    pub fn with_capacity(capacity: usize) -> Self {
        TokenCache::bounded(capacity, MAX_BYTES)
    }

    /// An empty cache holding at most `capacity` tokens and `max_bytes`.
    pub fn bounded(capacity: usize, max_bytes: usize) -> Self {
        TokenCache {
            entries: HashMap::default(),
            capacity,
            max_bytes,
            bytes: 0,
        }
    }

    /// What `token` proved if it was verified before and `exp` plus `skew` has not passed at
    /// `now`.
    pub fn get(&self, token: &str, now: u64, skew: u64) -> Option<&CachedToken> {
        let entry = self.entries.get(token)?;
        entry.hot.set(true);
        (now <= entry.token.expires_at.saturating_add(skew)).then_some(&entry.token)
    }

    /// Remembers a verified token. When full (by count or bytes), the entries not hit since
    /// the last eviction go; if the hot ones still fill more than half, every other one goes
    /// too. Each eviction leaves at most half: amortised over the next inserts, a constant
    /// cost.
    pub fn insert(&mut self, token: &str, verified: CachedToken) {
        let cost = verified.cost(token);
        if self.capacity == 0 || cost > self.max_bytes / 2 {
            return;
        }
        if let Some(old) = self.entries.remove(token) {
            self.bytes = self.bytes.saturating_sub(old.cost);
        }
        if self.entries.len() >= self.capacity || self.bytes.saturating_add(cost) > self.max_bytes {
            self.evict();
        }
        self.bytes = self.bytes.saturating_add(cost);
        let entry = Entry {
            token: verified,
            cost,
            hot: Cell::new(false),
        };
        self.entries.insert(token.into(), entry);
    }

    /// Makes room until at most half of either bound is used: cold entries go first, the
    /// hot ones stay (and cool); if that is not enough, every other one goes.
    fn evict(&mut self) {
        let (mut len, mut bytes) = (self.entries.len(), self.bytes);
        let (half_len, half_bytes) = (self.capacity / 2, self.max_bytes / 2);
        self.entries.retain(|_, e| {
            let hot = e.hot.replace(false);
            if hot || (len <= half_len && bytes <= half_bytes) {
                return true;
            }
            len = len.saturating_sub(1);
            bytes = bytes.saturating_sub(e.cost);
            false
        });
        self.recount();
        while self.entries.len() > self.capacity / 2 || self.bytes > self.max_bytes / 2 {
            let mut keep = true;
            self.entries.retain(|_, _| {
                keep = !keep;
                keep
            });
            self.recount();
        }
    }

    fn recount(&mut self) {
        self.bytes = self.entries.values().map(|e| e.cost).sum();
    }

    /// Drops every token whose `exp` plus `skew` has passed.
    pub fn sweep(&mut self, now: u64, skew: u64) {
        self.entries
            .retain(|_, e| now <= e.token.expires_at.saturating_add(skew));
        self.recount();
    }

    /// The bytes the remembered tokens hold, as counted against [`MAX_BYTES`].
    pub fn bytes(&self) -> usize {
        self.bytes
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
            claims: None,
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
    fn long_tokens_are_bounded_by_bytes_and_hot_ones_stay() {
        let mut cache = TokenCache::default();
        let long = |i: usize| format!("{i:08}{}", "x".repeat(8192 - 8));
        let entry = user("someone@example.com", u64::MAX);
        let cost = entry.cost(&long(0));
        // The texts it holds, and at most a few hundred bytes of bookkeeping.
        assert!(cost >= 8192 + "someone@example.com".len() * 2 + "user".len());
        assert!(cost <= 8192 + 512, "{cost}");
        cache.insert("hot", user("hot", u64::MAX));
        for i in 0..10_000 {
            cache.insert(&long(i), entry.clone());
            assert!(
                cache.len() * 8192 <= 16 * 1024 * 1024,
                "{} tokens",
                cache.len()
            );
            assert!(cache.bytes() <= MAX_BYTES);
            if i % 100 == 0 {
                assert!(cache.get("hot", 0, 0).is_some(), "a hot token stays ({i})");
            }
        }
        assert!(
            cache.len() * (8192 + 512) >= MAX_BYTES / 2,
            "{}",
            cache.len()
        );
        let counted: usize = cache.entries.values().map(|e| e.cost).sum();
        assert_eq!(cache.bytes(), counted);
        // Replacing an entry counts it once; sweeping recounts.
        cache.insert("hot", user("hot", u64::MAX));
        assert_eq!(
            cache.bytes(),
            cache.entries.values().map(|e| e.cost).sum::<usize>()
        );
        cache.sweep(u64::MAX, 0);
        assert_eq!(
            cache.bytes(),
            cache.entries.values().map(|e| e.cost).sum::<usize>()
        );
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
