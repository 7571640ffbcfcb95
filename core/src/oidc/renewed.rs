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

/// How long a renewal is handed to requests with the old cookies, in seconds: the time for a
/// browser's requests sent before the new cookies came back to arrive. Kept short: the old
/// cookies, stolen, get the new session within it without the provider seeing them.
pub const RENEWED_SECONDS: u64 = 10;

/// The most refreshes kept: when it is full of unexpired ones, a new one is not kept (its
/// requests refresh on their own, as without it) rather than another one dropped.
pub const MAX_RENEWED: usize = 1024;

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

/// A session's cookies as a request carries them (sealed values): a refresh is known by
/// both, and handed only to requests that carry both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jar<'a> {
    pub refresh: &'a [u8],
    pub session: &'a [u8],
}

/// A [`Jar`] kept by a request that waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldCookies {
    pub refresh: Vec<u8>,
    pub session: Vec<u8>,
}

impl OldCookies {
    pub fn of(jar: Jar<'_>) -> OldCookies {
        OldCookies {
            refresh: jar.refresh.to_vec(),
            session: jar.session.to_vec(),
        }
    }

    pub fn jar(&self) -> Jar<'_> {
        Jar {
            refresh: &self.refresh,
            session: &self.session,
        }
    }
}

#[derive(Debug)]
struct Kept {
    /// The old cookies' sealed values, whole.
    refresh_cookie: Box<[u8]>,
    session_cookie: Box<[u8]>,
    refresh: Refresh,
    until: u64,
}

/// The sessions this worker is refreshing, or refreshed in the last [`RENEWED_SECONDS`].
#[derive(Debug, Default)]
pub struct RenewedSessions {
    /// By the hash of the old cookies' first bytes, compared whole on lookup (FxHash is safe:
    /// only values the filter sealed, each with a random nonce, enter).
    renewed: HashMap<u64, Kept, FxBuildHasher>,
}

impl RenewedSessions {
    fn key(jar: Jar<'_>) -> u64 {
        let mut state = FxBuildHasher.build_hasher();
        for sealed in [jar.refresh, jar.session] {
            state.write_usize(sealed.len());
            state.write(sealed.get(..HASHED).unwrap_or(sealed));
        }
        state.finish()
    }

    /// The refresh of the session whose refresh cookie is `jar`, at unix time `now`: in
    /// flight, or answered within [`RENEWED_SECONDS`].
    pub fn get(&self, jar: Jar<'_>, now: u64) -> Option<Refresh> {
        let kept = self.renewed.get(&Self::key(jar))?;
        let same = *kept.refresh_cookie == *jar.refresh && *kept.session_cookie == *jar.session;
        (same && now < kept.until).then(|| kept.refresh.clone())
    }

    /// The renewal of the session whose refresh cookie is `jar`, when it came within
    /// [`RENEWED_SECONDS`] of unix time `now`.
    pub fn renewal(&self, jar: Jar<'_>, now: u64) -> Option<Renewal> {
        match self.get(jar, now)? {
            Refresh::Renewed(renewal) => Some(renewal),
            Refresh::InFlight | Refresh::Ended => None,
        }
    }

    /// Notes that the refresh of `jar` was sent at unix time `now`, for the `seconds` the
    /// provider may take to answer.
    pub fn begin(&mut self, jar: Jar<'_>, now: u64, seconds: u64) {
        self.set(jar, Refresh::InFlight, (now, now.saturating_add(seconds)));
    }

    /// Forgets the refresh in flight of `jar` (its request went away: its answer never comes).
    pub fn forget(&mut self, jar: Jar<'_>) {
        if matches!(self.get(jar, 0), Some(Refresh::InFlight)) {
            self.renewed.remove(&Self::key(jar));
        }
    }

    /// Keeps `renewal` of the session whose refresh cookie was `jar`, from unix time `now`.
    pub fn keep(&mut self, jar: Jar<'_>, renewal: Renewal, now: u64) {
        let until = now.saturating_add(RENEWED_SECONDS);
        self.set(jar, Refresh::Renewed(renewal), (now, until));
    }

    /// Notes that the refresh of `jar` was refused at unix time `now`, unless another
    /// request's refresh of it renewed the session.
    pub fn end(&mut self, jar: Jar<'_>, now: u64) {
        if self.renewal(jar, now).is_none() {
            let until = now.saturating_add(RENEWED_SECONDS);
            self.set(jar, Refresh::Ended, (now, until));
        }
    }

    fn set(&mut self, jar: Jar<'_>, refresh: Refresh, (now, until): (u64, u64)) {
        let key = Self::key(jar);
        if self.renewed.len() >= MAX_RENEWED && !self.renewed.contains_key(&key) {
            self.renewed.retain(|_, kept| now < kept.until);
            if self.renewed.len() >= MAX_RENEWED {
                return;
            }
        }
        let kept = Kept {
            refresh_cookie: jar.refresh.into(),
            session_cookie: jar.session.into(),
            refresh,
            until,
        };
        self.renewed.insert(key, kept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_is_handed_to_the_same_old_cookies_for_a_while_and_stays_bounded() {
        let mut renewed = RenewedSessions::default();
        let renewal = Renewal {
            token: Rc::from("new-token"),
            cookies: Rc::from(vec!["a=1".to_owned()]),
        };
        let value = |n: usize| format!("k1.{n:04}{}", "B".repeat(60)).into_bytes();
        let (r1, s1) = (value(1), value(10_001));
        let jar = |refresh: &'static [u8], session: &'static [u8]| Jar { refresh, session };
        let (r1, s1): (&'static [u8], &'static [u8]) = (r1.leak(), s1.leak());
        renewed.keep(jar(r1, s1), renewal.clone(), 1000);
        let token = renewed.renewal(jar(r1, s1), 1009).unwrap().token;
        assert_eq!(token.as_ref(), "new-token");
        assert!(renewed.get(jar(r1, s1), 1010).is_none(), "expired");
        // The refresh cookie with another session cookie (a thief's own) gets nothing.
        let other: &'static [u8] = value(10_002).leak();
        assert!(renewed.get(jar(r1, other), 1001).is_none());
        let twin: &'static [u8] = format!("k1.0001{}C", "B".repeat(59)).into_bytes().leak();
        assert!(
            renewed.get(jar(twin, s1), 1001).is_none(),
            "the same first bytes"
        );
        // In flight until the answer's deadline; refused: ended; a refusal after a renewal
        // leaves the renewal; a request gone away: forgotten.
        let r3: &'static [u8] = value(3).leak();
        renewed.begin(jar(r3, s1), 1000, 6);
        assert!(matches!(
            renewed.get(jar(r3, s1), 1005),
            Some(Refresh::InFlight)
        ));
        assert!(
            renewed.get(jar(r3, s1), 1006).is_none(),
            "no answer in time"
        );
        renewed.end(jar(r3, s1), 1001);
        assert!(matches!(
            renewed.get(jar(r3, s1), 1002),
            Some(Refresh::Ended)
        ));
        renewed.end(jar(r1, s1), 1001);
        assert!(renewed.renewal(jar(r1, s1), 1002).is_some());
        let r4: &'static [u8] = value(4).leak();
        renewed.begin(jar(r4, s1), 1000, 6);
        renewed.forget(jar(r4, s1));
        assert!(renewed.get(jar(r4, s1), 1001).is_none());
        // Full of unexpired refreshes: a new one is not kept, none is dropped.
        for n in 0..MAX_RENEWED * 2 {
            let r: &'static [u8] = value(100 + n).leak();
            renewed.keep(jar(r, s1), renewal.clone(), 1001);
            assert!(renewed.renewed.len() <= MAX_RENEWED);
        }
        assert!(renewed.renewal(jar(r1, s1), 1002).is_some(), "not flushed");
        let later: &'static [u8] = value(99_999).leak();
        renewed.keep(jar(later, s1), renewal, 1020);
        assert!(
            renewed.renewal(jar(later, s1), 1021).is_some(),
            "expired ones make room"
        );
    }
}
