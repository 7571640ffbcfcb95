//! Session cookies this worker opened before: a browser sends the same sealed session cookie
//! with every request, and opening it (base64url, AES-GCM) costs more than checking the
//! token it holds. A worker keeps each sealed value it opened with the access token inside,
//! until the seal expires; the configuration's keys do not change under it (a new
//! configuration starts new workers).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;

use rustc_hash::FxBuildHasher;

/// The most sealed values kept; the set is emptied when it is full (about 1.6 KB each).
pub const MAX_OPENED: usize = 1024;

/// How many leading bytes of a sealed value are hashed (the key id and the random nonce):
/// hashing kilobytes on every request would cost what the set saves.
const HASHED: usize = 48;

/// One opened value: the sealed value whole (compared on every lookup), its access token and
/// when its seal expires.
#[derive(Debug)]
struct Opened {
    sealed: Box<[u8]>,
    token: Rc<str>,
    until: u64,
}

/// The sealed session cookies opened on this worker, with their access tokens.
#[derive(Debug, Default)]
pub struct OpenedSessions {
    /// By the hash of the sealed value's first bytes: two values with one hash keep the later
    /// one, and a lookup compares the value whole. FxHash is safe here: only values this
    /// filter sealed (each with a random nonce) enter, so nobody can choose colliding keys.
    opened: HashMap<u64, Opened, FxBuildHasher>,
}

impl OpenedSessions {
    /// The hash of `sealed`'s length and first bytes.
    fn key(&self, sealed: &[u8]) -> u64 {
        let mut state = FxBuildHasher.build_hasher();
        state.write_usize(sealed.len());
        state.write(sealed.get(..HASHED).unwrap_or(sealed));
        state.finish()
    }

    /// The access token of `sealed`, when it was opened here and its seal has not expired
    /// at unix time `now` (looked up without copying `sealed`).
    pub fn get(&self, sealed: &[u8], now: u64) -> Option<Rc<str>> {
        let opened = self.opened.get(&self.key(sealed))?;
        (*opened.sealed == *sealed && now < opened.until).then(|| Rc::clone(&opened.token))
    }

    /// Keeps `token`, opened from `sealed`, until unix time `until`.
    pub fn keep(&mut self, sealed: &[u8], token: Rc<str>, until: u64) {
        if self.opened.len() >= MAX_OPENED {
            self.opened.clear();
        }
        let opened = Opened {
            sealed: sealed.into(),
            token,
            until,
        };
        self.opened.insert(self.key(sealed), opened);
    }

    /// How many are kept.
    pub fn len(&self) -> usize {
        self.opened.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.opened.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_each_value_until_its_seal_expires_and_stays_bounded() {
        let mut opened = OpenedSessions::default();
        let value = |n: usize| format!("k1.{}", "A".repeat(60) + &n.to_string()).into_bytes();
        opened.keep(&value(1), Rc::from("token-1"), 100);
        assert_eq!(opened.get(&value(1), 99).as_deref(), Some("token-1"));
        assert_eq!(opened.get(&value(1), 100), None, "expired");
        // The same first bytes, another value: compared whole.
        assert_eq!(opened.get(&value(2), 50), None);
        assert_eq!(opened.get(&value(1)[..40], 50), None);
        for n in 0..MAX_OPENED + 10 {
            opened.keep(&value(n), Rc::from("t"), 100);
            assert!(opened.len() <= MAX_OPENED);
        }
        assert!(!opened.is_empty());
    }
}
