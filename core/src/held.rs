//! Requests held for an issuer's keys: when each is decided, and whether one waits for a
//! fetch of a `kid` the keys lack. The adapter holds the requests and fetches; this says
//! when, from the shared [`FetchRecord`] and the version of the keys the worker installed.
//!
//! A request waiting on an unknown `kid` is answered only by keys whose fetch started after
//! it came (a fetch that started before may predate the key's publication): a first or
//! periodic fetch in flight does not decide it, and does not spend the unknown-`kid` fetch.

use crate::fetch::FetchRecord;
use crate::verify::issuer::KeysNeeded;

/// What a held request waits for. Times are unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    pub why: KeysNeeded,
    /// When the request came.
    pub since: u64,
    /// When it is decided with the keys there are, whatever happens.
    pub deadline: u64,
    /// The version of the keys it was last decided with (0: none).
    pub seen: u64,
}

impl Waiting {
    /// Whether the request is decided (again) now, with the worker's keys at version
    /// `installed`: its time is up, or other keys than it was decided with are installed
    /// (decided again, it may wait again), or for an unknown `kid`, keys fetched since it
    /// came are there or no fetch can bring them soon.
    pub fn ready(&self, record: &FetchRecord, installed: u64, now: u64) -> bool {
        if now >= self.deadline {
            return true;
        }
        if installed < record.version {
            // Newer keys are stored: the worker installs them first.
            return false;
        }
        if installed > self.seen {
            return true;
        }
        self.why == KeysNeeded::UnknownKid
            && (record.answers(self.since)
                || (!record.fetching(now) && !record.unknown_kid_allowed(now)))
    }

    /// Whether the request needs a fetch for an unknown `kid` (one not running yet).
    pub fn wants_kid_fetch(&self, record: &FetchRecord, installed: u64, now: u64) -> bool {
        self.why == KeysNeeded::UnknownKid && !self.ready(record, installed, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::{FetchReason, UNKNOWN_KID_INTERVAL_MS};

    fn kid(since: u64) -> Waiting {
        Waiting {
            why: KeysNeeded::UnknownKid,
            since,
            deadline: since + 2_000,
            seen: 1,
        }
    }

    #[test]
    fn a_fetch_that_started_before_the_request_does_not_answer_it() {
        let first = FetchRecord::default()
            .leased(1_000, FetchReason::First)
            .succeeded(1_100);
        // A periodic fetch started before the request came, ends after.
        let periodic = first.leased(5_000, FetchReason::Refresh);
        let waiting = kid(5_010);
        assert!(!waiting.ready(&periodic, 1, 5_020), "wait for it");
        // The same keys: nothing new to decide with.
        let done = periodic.fetched(5_050, 5_000, false);
        assert!(!waiting.ready(&done, 1, 5_060));
        assert!(waiting.wants_kid_fetch(&done, 1, 5_060));
        assert!(done.unknown_kid_allowed(5_060), "the budget is untouched");
        let kid_fetch = done.leased(5_100, FetchReason::UnknownKid);
        assert!(!waiting.ready(&kid_fetch, 1, 5_150));
        let answered = kid_fetch.fetched(5_200, 5_100, true);
        assert!(!waiting.ready(&answered, 1, 5_210), "installed first");
        assert!(waiting.ready(&answered, 2, 5_210));
        // Decided again with version 2 and still lacking its kid: waits no more.
        let again = Waiting { seen: 2, ..waiting };
        assert!(again.ready(&answered, 2, 5_210));
    }

    #[test]
    fn new_keys_from_an_older_fetch_decide_it_again() {
        let record = FetchRecord::default()
            .leased(1_000, FetchReason::First)
            .succeeded(1_100)
            .leased(5_000, FetchReason::Refresh)
            .fetched(5_050, 5_000, true);
        // Came after the fetch started: its keys are new to it, so it is decided again
        // (its kid may be among them) before any unknown-kid fetch.
        assert!(kid(5_010).ready(&record, 2, 5_060));
    }

    #[test]
    fn with_the_budget_spent_and_nothing_running_it_is_decided() {
        let record = FetchRecord::default()
            .leased(1_000, FetchReason::First)
            .succeeded(1_100)
            .leased(2_000, FetchReason::UnknownKid)
            .succeeded(2_100);
        let late = Waiting {
            seen: 2,
            ..kid(3_000)
        };
        assert!(late.ready(&record, 2, 3_000));
        let after = Waiting {
            seen: 2,
            ..kid(2_000 + UNKNOWN_KID_INTERVAL_MS)
        };
        assert!(!after.ready(&record, 2, after.since));
        assert!(kid(10).ready(&record, 2, 2_010), "its time is up");
    }

    #[test]
    fn never_fetched_waits_for_any_keys() {
        let waiting = Waiting {
            why: KeysNeeded::NeverFetched,
            since: 0,
            deadline: 2_000,
            seen: 0,
        };
        let fresh = FetchRecord::default();
        assert!(!waiting.ready(&fresh, 0, 10));
        let got = fresh.leased(10, FetchReason::First).succeeded(20);
        assert!(!waiting.ready(&got, 0, 30));
        assert!(waiting.ready(&got, 1, 30));
        assert!(waiting.ready(&fresh, 0, 2_000));
    }
}
