//! Sessions this worker refreshed moments ago, by the refresh cookie they were refreshed
//! with: a browser's other requests that still carry the old cookies (sent before the new
//! ones came back) take the same renewal instead of a refresh of their own. A provider
//! that rotates refresh tokens refuses the old one a second time, and one that detects the
//! reuse revokes the whole grant: without this, parallel page loads end the session.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;

use rustc_hash::FxBuildHasher;

/// How long a renewal is handed to requests with the old refresh cookie, in seconds: about
/// the time for a browser's requests in flight to come back with the new cookies.
pub const RENEWED_SECONDS: u64 = 30;

/// The most renewals kept; the set is emptied when it is full.
pub const MAX_RENEWED: usize = 256;

/// How many leading bytes of a sealed value are hashed (its key id and random nonce).
const HASHED: usize = 48;

/// A renewal: the new access token and the session's new `Set-Cookie` lines.
#[derive(Debug, Clone)]
pub struct Renewal {
    pub token: Rc<str>,
    pub cookies: Rc<[String]>,
}

#[derive(Debug)]
struct Kept {
    /// The old refresh cookie's sealed value, whole.
    sealed: Box<[u8]>,
    renewal: Renewal,
    until: u64,
}

/// The sessions this worker refreshed in the last [`RENEWED_SECONDS`].
#[derive(Debug, Default)]
pub struct RenewedSessions {
    /// By the hash of the old refresh cookie's first bytes, compared whole on lookup (FxHash
    /// is safe: only values the filter sealed, each with a random nonce, enter).
    renewed: HashMap<u64, Kept, FxBuildHasher>,
}

impl RenewedSessions {
    fn key(sealed: &[u8]) -> u64 {
        let mut state = FxBuildHasher.build_hasher();
        state.write_usize(sealed.len());
        state.write(sealed.get(..HASHED).unwrap_or(sealed));
        state.finish()
    }

    /// The renewal of the session whose refresh cookie was `sealed`, when it came within
    /// [`RENEWED_SECONDS`] of unix time `now`.
    pub fn get(&self, sealed: &[u8], now: u64) -> Option<Renewal> {
        let kept = self.renewed.get(&Self::key(sealed))?;
        (*kept.sealed == *sealed && now < kept.until).then(|| kept.renewal.clone())
    }

    /// Keeps `renewal` of the session whose refresh cookie was `sealed`, from unix time `now`.
    pub fn keep(&mut self, sealed: &[u8], renewal: Renewal, now: u64) {
        if self.renewed.len() >= MAX_RENEWED {
            self.renewed.retain(|_, kept| now < kept.until);
            if self.renewed.len() >= MAX_RENEWED {
                self.renewed.clear();
            }
        }
        let kept = Kept {
            sealed: sealed.into(),
            renewal,
            until: now.saturating_add(RENEWED_SECONDS),
        };
        self.renewed.insert(Self::key(sealed), kept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renewal_is_handed_to_the_same_old_cookie_for_a_while_and_stays_bounded() {
        let mut renewed = RenewedSessions::default();
        let renewal = Renewal {
            token: Rc::from("new-token"),
            cookies: Rc::from(vec!["a=1".to_owned()]),
        };
        let old = |n: usize| format!("k1.{}{n}", "B".repeat(60)).into_bytes();
        renewed.keep(&old(1), renewal.clone(), 1000);
        assert_eq!(
            renewed.get(&old(1), 1029).unwrap().token.as_ref(),
            "new-token"
        );
        assert!(renewed.get(&old(1), 1030).is_none(), "expired");
        assert!(
            renewed.get(&old(2), 1000).is_none(),
            "another cookie, the same first bytes"
        );
        assert!(renewed.get(&old(1)[..50], 1000).is_none());
        for n in 0..MAX_RENEWED * 2 {
            renewed.keep(&old(n), renewal.clone(), 2000);
            assert!(renewed.renewed.len() <= MAX_RENEWED);
        }
    }
}
