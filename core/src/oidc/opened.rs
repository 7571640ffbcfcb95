//! Session cookies this worker opened before: a browser sends the same sealed session cookie
//! with every request, and opening it (base64url, AES-GCM) costs more than checking the
//! token it holds. A worker keeps each sealed value it opened with the access token inside,
//! until the seal expires; the configuration's keys do not change under it (a new
//! configuration starts new workers).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

/// The most sealed values kept; the set is emptied when it is full (about 1.6 KB each).
pub const MAX_OPENED: usize = 1024;

/// A sealed value, hashed by its first bytes (the key id and the random nonce) and compared
/// whole: hashing kilobytes on every request would cost what the set saves.
#[derive(Debug, PartialEq, Eq)]
struct Sealed(Box<[u8]>);

/// How many leading bytes of a sealed value are hashed.
const HASHED: usize = 48;

impl Hash for Sealed {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_prefix(&self.0, state);
    }
}

fn hash_prefix<H: Hasher>(value: &[u8], state: &mut H) {
    state.write_usize(value.len());
    state.write(value.get(..HASHED).unwrap_or(value));
}

/// The sealed session cookies opened on this worker, with their access tokens.
#[derive(Debug, Default)]
pub struct OpenedSessions {
    opened: HashMap<Sealed, (Rc<str>, u64)>,
}

impl OpenedSessions {
    /// The access token of `sealed`, when it was opened here and its seal has not expired
    /// at unix time `now`.
    pub fn get(&self, sealed: &[u8], now: u64) -> Option<Rc<str>> {
        // Looked up without copying the value: a boxed slice hashes and compares as `sealed`.
        let key = Sealed(sealed.into());
        let (token, until) = self.opened.get(&key)?;
        (now < *until).then(|| Rc::clone(token))
    }

    /// Keeps `token`, opened from `sealed`, until unix time `until`.
    pub fn keep(&mut self, sealed: &[u8], token: Rc<str>, until: u64) {
        if self.opened.len() >= MAX_OPENED {
            self.opened.clear();
        }
        self.opened.insert(Sealed(sealed.into()), (token, until));
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
