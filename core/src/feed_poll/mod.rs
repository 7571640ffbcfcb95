//! Polling the revocation feed, once per Envoy process, and sharing the list with every
//! worker: the poller's logic, with the host's shared data behind [`SharedFeed`] (the
//! lifecycle's `revocation_feed` is the adapter; `tests/revocation_model.rs` drives this one
//! against a fake feed).
//!
//! Like the issuers' keys ([`crate::fetch`]): a shared record says when a poll is due; the
//! worker whose compare-and-swap takes the lease polls with the cursor of the shared list,
//! applies the page to it ([`RevocationList::apply`]), stores the whole list and bumps the
//! version; every worker installs the list of a newer version. An answer that comes after
//! its lease ran out (another worker polled since) is dropped. The list is fresh at the last
//! good poll that ended a chain of pages.
//!
//! A run (the pages followed at once because each says `more`) stays with the worker that
//! started it: it renews its lease at every page and asks the next one itself. It shares the
//! list when the run ends, fails, or at most once every [`SHARE_EVERY_MS`] in between, so a
//! list taken in over many pages is serialised a bounded number of times, not once a page. A
//! cursor the run asked already, or more than [`MAX_PAGES_PER_RUN`] pages, fails the poll.

use crate::config::RevocationFeed;
use crate::fetch::{FetchReason, FetchRecord};
use crate::verify::revocation::{FeedError, FeedPage, Retention, RevocationList, MAX_ENTRIES};
use crate::worker::Revocations;
use std::collections::HashSet;
use std::rc::Rc;

/// Tries at a compare-and-swap write before giving up (another worker keeps writing).
const CAS_TRIES: usize = 8;
/// The most pages one run follows: the page that would go past it is refused.
pub const MAX_PAGES_PER_RUN: usize = 10_000;
/// The least time between two shares of the list within a run.
pub const SHARE_EVERY_MS: u64 = 1_000;

/// The process's shared data of one feed.
pub trait SharedFeed {
    /// The record and its compare-and-swap value (a fresh record when there is none).
    fn record(&self) -> (FetchRecord, Option<u32>);
    /// Writes the record unless another write came since `cas`; whether it was written.
    fn write_record(&mut self, record: &FetchRecord, cas: Option<u32>) -> bool;
    /// The list as [`RevocationList::to_shared_bytes`] wrote it.
    fn list(&self) -> Option<Vec<u8>>;
    fn write_list(&mut self, list: &[u8]);
    /// Whether the feed's list holds more than the filter can.
    fn overflowed(&self) -> bool;
    fn set_overflowed(&mut self, overflowed: bool);
}

/// A poll sent and not answered yet.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Poll {
    /// The cursor asked with (empty: none).
    cursor: String,
    /// When its lease was taken (the record's `last_attempt` while the lease is its own).
    leased_at: u64,
    /// The record's version when the lease was taken.
    version: u64,
}

/// The run of pages the worker follows.
#[derive(Debug, Default)]
struct Run {
    /// The cursors asked in this run.
    asked: HashSet<String>,
    /// Pages applied in this run.
    pages: usize,
    /// When the list was last shared (or the run started).
    shared_at: u64,
    /// The worker's list holds pages not shared yet.
    unshared: bool,
}

/// How a tick went.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tick {
    /// A newer shared list was installed: its entries.
    pub installed: Option<usize>,
    /// The shared list of a newer version could not be read.
    pub unreadable: bool,
    /// The `:path` of the poll to send now.
    pub poll: Option<String>,
}

/// What an answer did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A good page: the list's entries, whether it changed, whether more pages follow.
    Applied {
        entries: usize,
        changed: bool,
        more: bool,
    },
    /// A failed or refused poll (why, for the log) and the failures in a row.
    Failed { why: String, failures: u32 },
    /// The list would hold more than the filter can: tokens are refused.
    Overflowed { why: String },
    /// The answer came after another worker took over the poll (or none was asked): dropped.
    Stale,
}

/// One worker's poller of one feed.
#[derive(Debug)]
pub struct FeedPoller {
    path: String,
    poll_ms: u64,
    retention: Retention,
    in_flight: Option<Poll>,
    /// The run's next page, its lease already taken.
    next: Option<Poll>,
    run: Run,
}

impl FeedPoller {
    /// The poller of `feed` for a filter whose clock skew is `skew` seconds.
    pub fn new(feed: &RevocationFeed, skew: u64) -> FeedPoller {
        FeedPoller {
            path: feed.path.clone(),
            poll_ms: feed.poll_seconds.saturating_mul(1000),
            retention: Retention {
                skew,
                max_lifetime: feed.max_lifetime,
            },
            in_flight: None,
            next: None,
            run: Run::default(),
        }
    }

    /// Whether a poll is in flight.
    pub fn polling(&self) -> bool {
        self.in_flight.is_some()
    }

    /// The tick at unix milliseconds `now`: installs a newer shared list, and takes the lease
    /// when a poll is due (the adapter sends it, or calls [`FeedPoller::not_sent`]).
    pub fn tick(
        &mut self,
        shared: &mut impl SharedFeed,
        worker: &mut Revocations,
        now: u64,
    ) -> Tick {
        let mut tick = self.sync(shared, worker, now);
        let (record, cas) = shared.record();
        if self.in_flight.is_some() {
            return tick;
        }
        if let Some(next) = self.next.take() {
            // The run's next page, unless its lease ran out (another worker took over).
            if holds_lease(&record, &next) {
                tick.poll = Some(self.poll_path(&next.cursor));
                self.in_flight = Some(next);
                return tick;
            }
        }
        // A worker that could not install the shared list polls after its own (its cursor
        // is its list's): the list it stores replaces the one no worker could read.
        let due = record.poll_due(now, self.poll_ms);
        if due && shared.write_record(&record.leased(now, FetchReason::Refresh), cas) {
            let cursor = worker.list.cursor.clone();
            tick.poll = Some(self.poll_path(&cursor));
            self.run = Run {
                asked: HashSet::from([cursor.clone()]),
                shared_at: now,
                ..Run::default()
            };
            self.in_flight = Some(Poll {
                cursor,
                leased_at: now,
                version: record.version,
            });
        }
        tick
    }

    /// The `:path` of a poll with `cursor`.
    fn poll_path(&self, cursor: &str) -> String {
        if cursor.is_empty() {
            self.path.clone()
        } else {
            // The cursor holds only unreserved characters (checked when its page was read).
            format!("{}?cursor={cursor}", self.path)
        }
    }

    /// Installs the shared list when it is newer than the worker's; the last good poll's time
    /// is the list's freshness only once the worker holds that list.
    pub fn sync(&self, shared: &impl SharedFeed, worker: &mut Revocations, now: u64) -> Tick {
        let mut tick = Tick::default();
        worker.overflowed = shared.overflowed();
        let (record, _) = shared.record();
        if record.version > worker.version {
            let list = shared.list().ok_or(FeedError::Malformed).and_then(|bytes| {
                RevocationList::from_shared_bytes(&bytes, now / 1000, self.retention)
            });
            let Ok(list) = list else {
                tick.unreadable = true;
                return tick;
            };
            tick.installed = Some(list.len());
            worker.list = std::rc::Rc::new(list);
            worker.version = record.version;
        }
        if record.version == worker.version && record.last_ok > 0 {
            worker.fresh_at = worker.fresh_at.max(record.last_ok / 1000);
        }
        tick
    }

    /// The poll could not be sent: a failed poll.
    pub fn not_sent(&mut self, shared: &mut impl SharedFeed, worker: &mut Revocations) -> Outcome {
        match self.in_flight.take() {
            Some(poll) => self.failed(shared, worker, &poll, "could not be polled".into()),
            None => Outcome::Stale,
        }
    }

    /// The answer to the poll in flight at unix milliseconds `now`: its body, or why there is
    /// none.
    pub fn answered(
        &mut self,
        shared: &mut impl SharedFeed,
        worker: &mut Revocations,
        answer: Result<&[u8], String>,
        now: u64,
    ) -> Outcome {
        let Some(poll) = self.in_flight.take() else {
            return Outcome::Stale;
        };
        if !holds_lease(&shared.record().0, &poll) {
            return Outcome::Stale;
        }
        let page = match answer.map(FeedPage::parse) {
            Err(why) => return self.failed(shared, worker, &poll, why),
            Ok(Err(FeedError::TooManyEntries)) => return self.overflowed(shared, worker, &poll),
            Ok(Err(e)) => return self.failed(shared, worker, &poll, format!("was refused: {e}")),
            Ok(Ok(page)) => page,
        };
        if page.more && (page.cursor == poll.cursor || self.run.asked.contains(&page.cursor)) {
            let why = "was refused: it says more follows and gives back a cursor this run of pages asked already";
            return self.failed(shared, worker, &poll, why.into());
        }
        if page.more && self.run.pages.saturating_add(1) >= MAX_PAGES_PER_RUN {
            let why = format!("was refused: it says more follows after {MAX_PAGES_PER_RUN} pages");
            return self.failed(shared, worker, &poll, why);
        }
        let changed = page.reset || !page.revoked.is_empty() || page.cursor != poll.cursor;
        let more = page.more;
        // In place when the page cannot overflow the list (no copy per page); else on a copy
        // that is dropped when it does.
        let fits = worker.list.len().saturating_add(page.revoked.len()) <= MAX_ENTRIES;
        if fits {
            let _ = Rc::make_mut(&mut worker.list).apply(page, now / 1000, self.retention);
        } else {
            let mut list = (*worker.list).clone();
            if list.apply(page, now / 1000, self.retention).is_err() {
                return self.overflowed(shared, worker, &poll);
            }
            worker.list = Rc::new(list);
        }
        if shared.overflowed() {
            shared.set_overflowed(false);
        }
        worker.overflowed = false;
        let unshared = self.run.unshared || changed;
        let share = unshared && (!more || now >= self.run.shared_at.saturating_add(SHARE_EVERY_MS));
        if share {
            shared.write_list(&worker.list.to_shared_bytes());
        }
        let written = update_record(shared, |record| {
            holds_lease(&record, &poll).then(|| match (more, share) {
                (true, _) => record.paged(share).leased(now, FetchReason::Refresh),
                (false, true) => record.succeeded(now),
                (false, false) => record.polled(now),
            })
        });
        let Some(record) = written else {
            return Outcome::Stale;
        };
        self.run.unshared = unshared && !share;
        if share {
            self.run.shared_at = now;
            worker.version = record.version;
        }
        if more {
            self.run.pages = self.run.pages.saturating_add(1);
            self.run.asked.insert(worker.list.cursor.clone());
            self.next = Some(Poll {
                cursor: worker.list.cursor.clone(),
                leased_at: now,
                version: record.version,
            });
        } else {
            worker.fresh_at = now / 1000;
        }
        let entries = worker.list.len();
        Outcome::Applied {
            entries,
            changed,
            more,
        }
    }

    /// Marks, for every worker, that the feed's list holds more than the filter can (an
    /// incomplete list would let newer revocations pass): a failed poll.
    fn overflowed(
        &mut self,
        shared: &mut impl SharedFeed,
        worker: &mut Revocations,
        poll: &Poll,
    ) -> Outcome {
        shared.set_overflowed(true);
        worker.overflowed = true;
        let why = format!("was refused: {}", FeedError::TooManyEntries);
        match self.failed(shared, worker, poll, why.clone()) {
            Outcome::Stale => Outcome::Stale,
            _ => Outcome::Overflowed { why },
        }
    }

    /// A failed poll: the run ends, and shares the pages it had not (the next poll, a
    /// period later, asks from the last cursor applied, whichever worker sends it).
    fn failed(
        &mut self,
        shared: &mut impl SharedFeed,
        worker: &mut Revocations,
        poll: &Poll,
        why: String,
    ) -> Outcome {
        let share = self.run.unshared;
        if share {
            shared.write_list(&worker.list.to_shared_bytes());
        }
        let written = update_record(shared, |record| {
            holds_lease(&record, poll).then(|| FetchRecord {
                version: record.version.saturating_add(u64::from(share)),
                ..record.failed()
            })
        });
        match written {
            Some(record) => {
                self.run.unshared = false;
                if share {
                    worker.version = record.version;
                }
                Outcome::Failed {
                    why,
                    failures: record.failures,
                }
            }
            None => Outcome::Stale,
        }
    }
}

/// Whether `poll`'s lease is still the record's: no other poll started since.
fn holds_lease(record: &FetchRecord, poll: &Poll) -> bool {
    record.last_attempt == poll.leased_at && record.version == poll.version
}

/// Writes `next(record)` over the current record by compare-and-swap; the record written, or
/// `None` when `next` declines or other workers kept writing.
fn update_record(
    shared: &mut impl SharedFeed,
    next: impl Fn(FetchRecord) -> Option<FetchRecord>,
) -> Option<FetchRecord> {
    for _ in 0..CAS_TRIES {
        let (record, cas) = shared.record();
        let written = next(record)?;
        if shared.write_record(&written, cas) {
            return Some(written);
        }
    }
    None
}

#[cfg(test)]
mod tests;
