//! Sessions this worker is refreshing or refreshed moments ago, by the refresh cookie they
//! were refreshed with: a browser's other requests that carry the same cookies (sent before
//! the new ones came back) wait for that refresh and take its renewal instead of a refresh of
//! their own. A provider that rotates refresh tokens refuses the old one a second time, and
//! one that detects the reuse revokes the whole grant: without this, parallel page loads end
//! the session.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;

use rustc_hash::FxBuildHasher;

/// How long a renewal is handed to requests with the old refresh cookie, in seconds: about
/// the time for a browser's requests in flight to come back with the new cookies.
pub const RENEWED_SECONDS: u64 = 30;

/// The most refreshes kept; the set is emptied when it is full.
pub const MAX_RENEWED: usize = 256;

/// How many leading bytes of a sealed value are hashed (its key id and random nonce).
const HASHED: usize = 48;

/// A renewal: the new access token and the session's new `Set-Cookie` lines.
#[derive(Debug, Clone)]
pub struct Renewal {
    pub token: Rc<str>,
    pub cookies: Rc<[String]>,
}

/// Where a session's refresh is.
#[derive(Debug, Clone)]
pub enum Refresh {
    /// Sent to the provider; not answered yet.
    InFlight,
    /// Renewed.
    Renewed(Renewal),
    /// Refused (or not answered): the session ended.
    Ended,
}

#[derive(Debug)]
struct Kept {
    /// The old refresh cookie's sealed value, whole.
    sealed: Box<[u8]>,
    refresh: Refresh,
    until: u64,
}

/// The sessions this worker is refreshing, or refreshed in the last [`RENEWED_SECONDS`].
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

    /// The refresh of the session whose refresh cookie is `sealed`, at unix time `now`: in
    /// flight, or answered within [`RENEWED_SECONDS`].
    pub fn get(&self, sealed: &[u8], now: u64) -> Option<Refresh> {
        let kept = self.renewed.get(&Self::key(sealed))?;
        (*kept.sealed == *sealed && now < kept.until).then(|| kept.refresh.clone())
    }

    /// The renewal of the session whose refresh cookie is `sealed`, when it came within
    /// [`RENEWED_SECONDS`] of unix time `now`.
    pub fn renewal(&self, sealed: &[u8], now: u64) -> Option<Renewal> {
        match self.get(sealed, now)? {
            Refresh::Renewed(renewal) => Some(renewal),
            Refresh::InFlight | Refresh::Ended => None,
        }
    }

    /// Notes that the refresh of `sealed` was sent at unix time `now`, for the `seconds` the
    /// provider may take to answer.
    pub fn begin(&mut self, sealed: &[u8], now: u64, seconds: u64) {
        self.set(
            sealed,
            Refresh::InFlight,
            (now, now.saturating_add(seconds)),
        );
    }

    /// Keeps `renewal` of the session whose refresh cookie was `sealed`, from unix time `now`.
    pub fn keep(&mut self, sealed: &[u8], renewal: Renewal, now: u64) {
        let until = now.saturating_add(RENEWED_SECONDS);
        self.set(sealed, Refresh::Renewed(renewal), (now, until));
    }

    /// Notes that the refresh of `sealed` was refused at unix time `now`, unless another
    /// request's refresh of it renewed the session.
    pub fn end(&mut self, sealed: &[u8], now: u64) {
        if self.renewal(sealed, now).is_none() {
            let until = now.saturating_add(RENEWED_SECONDS);
            self.set(sealed, Refresh::Ended, (now, until));
        }
    }

    fn set(&mut self, sealed: &[u8], refresh: Refresh, (now, until): (u64, u64)) {
        if self.renewed.len() >= MAX_RENEWED {
            self.renewed.retain(|_, kept| now < kept.until);
            if self.renewed.len() >= MAX_RENEWED {
                self.renewed.clear();
            }
        }
        let kept = Kept {
            sealed: sealed.into(),
            refresh,
            until,
        };
        self.renewed.insert(Self::key(sealed), kept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_is_handed_to_the_same_old_cookie_for_a_while_and_stays_bounded() {
        let mut renewed = RenewedSessions::default();
        let renewal = Renewal {
            token: Rc::from("new-token"),
            cookies: Rc::from(vec!["a=1".to_owned()]),
        };
        let old = |n: usize| format!("k1.{n:04}{}", "B".repeat(60)).into_bytes();
        let twin = format!("k1.0001{}C", "B".repeat(59)).into_bytes();
        renewed.keep(&old(1), renewal.clone(), 1000);
        let token = renewed.renewal(&old(1), 1029).unwrap().token;
        assert_eq!(token.as_ref(), "new-token");
        assert!(renewed.get(&old(1), 1030).is_none(), "expired");
        let other = renewed.get(&twin, 1000);
        assert!(other.is_none(), "another cookie, the same first bytes");
        assert!(renewed.get(&old(2), 1000).is_none());
        assert!(renewed.get(&old(1)[..50], 1000).is_none());
        // In flight until the answer's deadline; refused: ended; a refusal after a renewal
        // leaves the renewal.
        renewed.begin(&old(3), 1000, 6);
        assert!(matches!(
            renewed.get(&old(3), 1005),
            Some(Refresh::InFlight)
        ));
        assert!(renewed.get(&old(3), 1006).is_none(), "no answer in time");
        renewed.end(&old(3), 1001);
        assert!(matches!(renewed.get(&old(3), 1002), Some(Refresh::Ended)));
        renewed.end(&old(1), 1001);
        assert!(renewed.renewal(&old(1), 1002).is_some());
        for n in 0..MAX_RENEWED * 2 {
            renewed.keep(&old(n), renewal.clone(), 2000);
            assert!(renewed.renewed.len() <= MAX_RENEWED);
        }
    }
}
