//! When an issuer's keys are fetched, and by whom: the record every worker of an Envoy
//! process shares (proxy-wasm shared data) for one `jwks_uri`.
//!
//! A worker that finds a fetch due takes a lease on the record (a compare-and-swap write), so
//! one fetch runs per process however many workers see it due; the fetching worker stores the
//! keys and bumps the record's version, and every worker installs the keys of a newer version.
//! Times are unix milliseconds.

/// How long a lease holds: the fetch's timeout and a margin. A worker that died mid-fetch
/// leaves a lease that simply runs out.
pub const LEASE_MS: u64 = FETCH_TIMEOUT_MS + 1_000;
/// The timeout of one fetch.
pub const FETCH_TIMEOUT_MS: u64 = 5_000;
/// The least time between two fetches for a `kid` the keys lack (per issuer).
pub const UNKNOWN_KID_INTERVAL_MS: u64 = 30_000;
/// How long a request may wait for keys before it is decided with what there is.
pub const MAX_WAIT_MS: u64 = 2_000;
/// The longest pause between attempts while an issuer's keys have never been fetched.
const FIRST_RETRY_MAX_MS: u64 = 2_000;
/// The longest pause between attempts after a failed refresh (the last keys keep serving).
const RETRY_MAX_MS: u64 = 60_000;

/// Why a fetch runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchReason {
    /// No keys were ever fetched (or every attempt so far failed).
    First,
    /// `refresh_seconds` passed since the last good fetch.
    Refresh,
    /// A token named a `kid` the keys lack.
    UnknownKid,
    /// The last attempt failed; keys from before still serve.
    Retry,
}

/// The shared record of one key source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchRecord {
    /// Bumped by every good fetch; 0 before the first.
    pub version: u64,
    /// A fetch runs until then.
    pub lease_until: u64,
    pub last_attempt: u64,
    pub last_ok: u64,
    /// The last fetch for an unknown `kid`.
    pub last_unknown_kid: u64,
    /// Failed attempts since the last good fetch.
    pub failures: u32,
    /// When the last good fetch started: its keys hold every key published before then.
    pub ok_since: u64,
}

impl FetchRecord {
    /// The record as stored: numbers separated by spaces.
    pub fn encode(&self) -> String {
        format!(
            "2 {} {} {} {} {} {} {}",
            self.version,
            self.lease_until,
            self.last_attempt,
            self.last_ok,
            self.last_unknown_kid,
            self.failures,
            self.ok_since
        )
    }

    /// A stored record; `None` when it is not one (a fresh record is then written).
    pub fn decode(bytes: &[u8]) -> Option<FetchRecord> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut fields = text.split(' ');
        if fields.next()? != "2" {
            return None;
        }
        let mut next = || fields.next()?.parse::<u64>().ok();
        let record = FetchRecord {
            version: next()?,
            lease_until: next()?,
            last_attempt: next()?,
            last_ok: next()?,
            last_unknown_kid: next()?,
            failures: u32::try_from(next()?).ok()?,
            ok_since: next()?,
        };
        fields.next().is_none().then_some(record)
    }

    /// Whether a fetch runs now (a lease is held).
    pub fn fetching(&self, now: u64) -> bool {
        self.lease_until > now
    }

    /// Whether a fetch for an unknown `kid` may start at `now`.
    pub fn unknown_kid_allowed(&self, now: u64) -> bool {
        self.last_unknown_kid == 0
            || now
                >= self
                    .last_unknown_kid
                    .saturating_add(UNKNOWN_KID_INTERVAL_MS)
    }

    /// The fetch due at `now`, if any, for keys refreshed every `refresh_ms`, with
    /// `unknown_kid` when a request waits on a `kid` the keys lack.
    pub fn due(&self, now: u64, refresh_ms: u64, unknown_kid: bool) -> Option<FetchReason> {
        if self.fetching(now) {
            return None;
        }
        if self.version == 0 {
            let pause = backoff(self.failures, 250, FIRST_RETRY_MAX_MS);
            return (self.last_attempt == 0 || now >= self.last_attempt.saturating_add(pause))
                .then_some(FetchReason::First);
        }
        if unknown_kid && self.unknown_kid_allowed(now) {
            return Some(FetchReason::UnknownKid);
        }
        if self.failures > 0 {
            let pause = backoff(self.failures, 5_000, RETRY_MAX_MS.min(refresh_ms));
            if now >= self.last_attempt.saturating_add(pause) {
                return Some(FetchReason::Retry);
            }
            return None;
        }
        (now >= self.last_ok.saturating_add(refresh_ms)).then_some(FetchReason::Refresh)
    }

    /// Whether a poll of a feed polled every `poll_ms` is due at `now` (failed or not, the
    /// next poll comes a period after the last attempt).
    pub fn poll_due(&self, now: u64, poll_ms: u64) -> bool {
        !self.fetching(now)
            && (self.last_attempt == 0 || now >= self.last_attempt.saturating_add(poll_ms))
    }

    /// The record after a good poll that changed nothing (the version stays).
    pub fn polled(self, now: u64) -> FetchRecord {
        FetchRecord {
            lease_until: 0,
            last_ok: now,
            failures: 0,
            ..self
        }
    }

    /// The record after a good poll whose answer said more follows (`changed`: it changed
    /// the list): the next poll is due at once, and the last good poll stays the one before
    /// (the list is not fresh until its last page).
    pub fn paged(self, changed: bool) -> FetchRecord {
        FetchRecord {
            version: if changed {
                self.version.saturating_add(1)
            } else {
                self.version
            },
            lease_until: 0,
            last_attempt: 0,
            failures: 0,
            ..self
        }
    }

    /// The record once a worker takes the lease at `now` for `reason`.
    pub fn leased(self, now: u64, reason: FetchReason) -> FetchRecord {
        FetchRecord {
            lease_until: now.saturating_add(LEASE_MS),
            last_attempt: now,
            last_unknown_kid: if reason == FetchReason::UnknownKid {
                now
            } else {
                self.last_unknown_kid
            },
            ..self
        }
    }

    /// The record after a good fetch at `now` (it started at the last attempt).
    pub fn succeeded(self, now: u64) -> FetchRecord {
        self.fetched(now, self.last_attempt, true)
    }

    /// The record after a good fetch that started at `started` and ended at `now`; the
    /// version moves only when the answer `changed` what is installed (the first answer
    /// always does): the same keys fetched again change nothing.
    pub fn fetched(self, now: u64, started: u64, changed: bool) -> FetchRecord {
        let changed = changed || self.version == 0;
        FetchRecord {
            version: self.version.saturating_add(u64::from(changed)),
            lease_until: 0,
            last_ok: now,
            failures: 0,
            ok_since: self.ok_since.max(started),
            ..self
        }
    }

    /// Whether the keys of this record answer a request that waits since `since` for a
    /// `kid` they lacked: the last good fetch started at or after it (an older fetch may
    /// predate the key's publication).
    pub fn answers(&self, since: u64) -> bool {
        self.version > 0 && self.ok_since >= since
    }

    /// The record after a failed fetch.
    pub fn failed(self) -> FetchRecord {
        FetchRecord {
            lease_until: 0,
            failures: self.failures.saturating_add(1),
            ..self
        }
    }
}

/// `base` doubled per failure after the first, at most `max`.
fn backoff(failures: u32, base: u64, max: u64) -> u64 {
    let doublings = failures.saturating_sub(1).min(16);
    base.saturating_mul(1 << doublings).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFRESH: u64 = 600_000;

    #[test]
    fn round_trips_and_refuses_what_it_did_not_write() {
        let record = FetchRecord {
            version: 3,
            lease_until: 10,
            last_attempt: 9,
            last_ok: 8,
            last_unknown_kid: 7,
            failures: 2,
            ok_since: 6,
        };
        assert_eq!(
            FetchRecord::decode(record.encode().as_bytes()),
            Some(record)
        );
        for bad in [
            "",
            "1 0 0 0 0 0 0",
            "2 0 0",
            "2 a 0 0 0 0 0 0",
            "2 0 0 0 0 0 99999999999 0",
            "2 0 0 0 0 0 0 0 0",
        ] {
            assert_eq!(FetchRecord::decode(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn the_first_fetch_is_due_at_once_and_retried_quickly() {
        let fresh = FetchRecord::default();
        assert_eq!(fresh.due(1_000, REFRESH, false), Some(FetchReason::First));
        let leased = fresh.leased(1_000, FetchReason::First);
        assert_eq!(
            leased.due(1_001, REFRESH, true),
            None,
            "one fetch at a time"
        );
        let failed = leased.failed();
        assert_eq!(failed.due(1_100, REFRESH, false), None);
        assert_eq!(failed.due(1_250, REFRESH, false), Some(FetchReason::First));
        let many = FetchRecord {
            failures: 30,
            last_attempt: 1_000,
            ..fresh
        };
        assert_eq!(many.due(3_000, REFRESH, false), Some(FetchReason::First));
    }

    #[test]
    fn a_lease_that_runs_out_frees_the_record() {
        let leased = FetchRecord::default().leased(1_000, FetchReason::First);
        assert!(leased.fetching(1_000 + LEASE_MS - 1));
        assert_eq!(
            leased.due(1_000 + LEASE_MS, REFRESH, false),
            Some(FetchReason::First)
        );
    }

    #[test]
    fn refresh_and_unknown_kid_fetches_are_spaced() {
        let ok = FetchRecord::default()
            .leased(1_000, FetchReason::First)
            .succeeded(1_200);
        assert_eq!(ok.version, 1);
        assert_eq!(ok.due(2_000, REFRESH, false), None);
        assert_eq!(
            ok.due(1_200 + REFRESH, REFRESH, false),
            Some(FetchReason::Refresh)
        );
        assert_eq!(ok.due(2_000, REFRESH, true), Some(FetchReason::UnknownKid));
        let after = ok.leased(2_000, FetchReason::UnknownKid).succeeded(2_100);
        assert_eq!(
            after.due(2_200, REFRESH, true),
            None,
            "at most one per 30 s"
        );
        assert_eq!(
            after.due(2_000 + UNKNOWN_KID_INTERVAL_MS, REFRESH, true),
            Some(FetchReason::UnknownKid)
        );
    }

    #[test]
    fn a_feed_is_polled_each_period_after_the_last_attempt() {
        let fresh = FetchRecord::default();
        assert!(fresh.poll_due(1_000, 5_000));
        let leased = fresh.leased(1_000, FetchReason::Refresh);
        assert!(!leased.poll_due(2_000, 5_000));
        let done = leased.polled(1_100);
        assert_eq!((done.version, done.last_ok), (0, 1_100));
        assert!(!done.poll_due(5_999, 5_000));
        assert!(done.poll_due(6_000, 5_000));
        assert!(leased.failed().poll_due(6_000, 5_000));
    }

    #[test]
    fn a_paged_answer_makes_the_next_poll_due_at_once_and_keeps_the_age() {
        let polled = FetchRecord::default()
            .leased(1_000, FetchReason::Refresh)
            .polled(1_000);
        let paged = polled.leased(2_000, FetchReason::Refresh).paged(true);
        assert_eq!(paged.version, 1);
        assert_eq!(paged.last_ok, 1_000, "not fresh until the last page");
        assert!(paged.poll_due(2_001, 5_000));
    }

    #[test]
    fn a_failed_refresh_keeps_the_version_and_backs_off() {
        let ok = FetchRecord::default()
            .leased(1_000, FetchReason::First)
            .succeeded(1_000);
        let failed = ok.leased(700_000, FetchReason::Refresh).failed();
        assert_eq!(failed.version, 1, "the last keys keep serving");
        assert_eq!(failed.due(704_000, REFRESH, false), None);
        assert_eq!(
            failed.due(705_000, REFRESH, false),
            Some(FetchReason::Retry)
        );
        let often = FetchRecord {
            failures: 40,
            ..failed
        };
        assert_eq!(often.due(700_000 + 59_999, REFRESH, false), None);
        assert_eq!(often.due(760_000, REFRESH, false), Some(FetchReason::Retry));
    }
}
