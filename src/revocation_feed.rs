//! Polling the revocation feed through Envoy, once per process, and sharing the list with
//! every worker.
//!
//! Like the issuers' keys ([`crate::issuer_keys`]): a shared record ([`FetchRecord`]) says
//! when a poll is due; the worker whose compare-and-swap takes the lease polls with the
//! cursor of the list it holds, merges the page into that list, stores the whole list and
//! bumps the version; every worker installs the list of a newer version. The list's age is
//! the time since the last good poll, a gauge, and what `fail_closed_after_seconds` reads.

use std::rc::Rc;

use log::{info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

use crate::fetching::{self, answer_body, count, gauge, read_record, take_lease, update_record};
use tollgate_core::config::RevocationFeed;
use tollgate_core::fetch::{FetchReason, FetchRecord};
use tollgate_core::verify::revocation::{FeedError, FeedPage, RevocationList, MAX_FEED_BYTES};
use tollgate_core::worker::WorkerState;

/// The feed of one configuration and its poll in flight.
pub struct FeedPoller {
    feed: RevocationFeed,
    /// The filter's clock skew: an entry stays that long past its expiry.
    skew: u64,
    record_key: String,
    list_key: String,
    /// "1" while the feed's list holds more than the filter can.
    overflow_key: String,
    in_flight: Option<u32>,
    metrics: FeedMetrics,
}

/// `tollgate.revocation.*`.
struct FeedMetrics {
    polled: Option<u32>,
    failed: Option<u32>,
    entries: Option<u32>,
    age: Option<u32>,
}

impl FeedPoller {
    /// The poller of `feed`; `worker` starts from what the process knows already: the shared
    /// list and its age (a new configuration or worker does not start from an empty list, or
    /// from a list it takes for fresh).
    pub fn new(feed: &RevocationFeed, skew: u64, worker: &mut WorkerState) -> FeedPoller {
        let define = |kind, name: &str| hostcalls::define_metric(kind, name).ok();
        let base = format!("tollgate.revocation|{}|{}", feed.cluster, feed.path);
        let record_key = format!("{base}|record");
        fetching::create_record(&record_key);
        let poller = FeedPoller {
            feed: feed.clone(),
            skew,
            list_key: format!("{base}|list"),
            overflow_key: format!("{base}|overflow"),
            record_key,
            in_flight: None,
            metrics: FeedMetrics {
                polled: define(MetricType::Counter, "tollgate.revocation.polls_ok"),
                failed: define(MetricType::Counter, "tollgate.revocation.polls_failed"),
                entries: define(MetricType::Gauge, "tollgate.revocation.entries"),
                age: define(MetricType::Gauge, "tollgate.revocation.age_seconds"),
            },
        };
        let (record, _) = read_record(&poller.record_key);
        poller.sync(worker, &record);
        poller
    }

    /// The tick (`now` in unix milliseconds): installs a newer list, refreshes the list's
    /// age, and starts the poll when it is due.
    pub fn tick(&mut self, worker: &mut WorkerState, now: u64) {
        let (record, _) = read_record(&self.record_key);
        self.sync(worker, &record);
        let age = (now / 1000).saturating_sub(worker.revocations.fresh_at);
        gauge(self.metrics.age, age);
        if self.in_flight.is_none()
            && record.poll_due(now, self.feed.poll_seconds.saturating_mul(1000))
        {
            self.in_flight = self.start_poll(worker, now);
        }
    }

    /// Installs the shared list when it is newer than the worker's; the last good poll's time
    /// is the list's freshness only once the worker holds that list.
    fn sync(&self, worker: &mut WorkerState, record: &FetchRecord) {
        worker.revocations.overflowed = matches!(
            hostcalls::get_shared_data(&self.overflow_key),
            Ok((Some(flag), _)) if flag == b"1"
        );
        if record.version > worker.revocations.version {
            let mut list = RevocationList::default();
            let installed = match hostcalls::get_shared_data(&self.list_key) {
                Ok((Some(bytes), _)) => FeedPage::parse_shared(&bytes)
                    .and_then(|page| list.apply(page, record.last_ok / 1000, self.skew))
                    .is_ok(),
                _ => false,
            };
            if !installed {
                warn!("tollgate: the shared revocation list could not be read; this worker's list is not fresh");
                return;
            }
            gauge(self.metrics.entries, list.len() as u64);
            worker.revocations.list = Rc::new(list);
            worker.revocations.version = record.version;
        }
        if record.version == worker.revocations.version && record.last_ok > 0 {
            worker.revocations.fresh_at = worker.revocations.fresh_at.max(record.last_ok / 1000);
        }
    }

    /// Takes the lease, then sends the poll with the cursor of the worker's list.
    fn start_poll(&self, worker: &WorkerState, now: u64) -> Option<u32> {
        let poll_ms = self.feed.poll_seconds.saturating_mul(1000);
        let leased = take_lease(&self.record_key, |record| {
            record
                .poll_due(now, poll_ms)
                .then(|| record.leased(now, FetchReason::Refresh))
        });
        if !leased {
            return None;
        }
        let cursor = &worker.revocations.list.cursor;
        let path = if cursor.is_empty() {
            self.feed.path.clone()
        } else {
            // The cursor holds only unreserved characters (checked when the page was read).
            format!("{}?cursor={cursor}", self.feed.path)
        };
        match fetching::get(&self.feed.cluster, &self.feed.authority, &path, false) {
            Ok(token) => Some(token),
            Err(status) => {
                self.finish(Polled::Failed, now);
                warn!(
                    "tollgate: the revocation feed could not be polled through cluster \"{}\" ({status:?}); the last list keeps serving",
                    self.feed.cluster.escape_default()
                );
                None
            }
        }
    }

    /// A poll's answer; `false` when the call is not this poller's.
    pub fn on_response(
        &mut self,
        token: u32,
        status: Option<String>,
        body_size: usize,
        worker: &mut WorkerState,
        now: u64,
    ) -> bool {
        if self.in_flight != Some(token) {
            return false;
        }
        self.in_flight = None;
        let page = answer_body(status.as_deref(), body_size, MAX_FEED_BYTES)
            .map_err(|why| (FeedError::Malformed, why))
            .and_then(|body| FeedPage::parse(&body).map_err(|e| (e, format!("was refused: {e}"))));
        let merged = page.and_then(|page| {
            let changes = page.reset || !page.revoked.is_empty();
            let more = page.more;
            let mut list = (*worker.revocations.list).clone();
            list.apply(page, now / 1000, self.skew)
                .map(|()| (list, changes, more))
                .map_err(|e| (e, format!("was refused: {e}")))
        });
        match merged {
            Ok((list, changes, more)) => {
                let stored = changes.then(|| list.to_shared_bytes());
                self.set_overflow(worker, false);
                let polled = Polled::Good {
                    list: stored.as_deref(),
                    more,
                };
                if let Some(record) = self.finish(polled, now) {
                    if !more {
                        worker.revocations.fresh_at = now / 1000;
                    }
                    if changes {
                        info!("tollgate: revocation list: {} entries", list.len());
                        gauge(self.metrics.entries, list.len() as u64);
                        worker.revocations.list = Rc::new(list);
                        worker.revocations.version = record.version;
                    }
                }
            }
            Err((FeedError::TooManyEntries, why)) => {
                // An incomplete list would let newer revocations pass: tokens are refused.
                self.set_overflow(worker, true);
                self.finish(Polled::Failed, now);
                log::error!(
                    "tollgate: the revocation feed {why}: tokens are refused (503) until it holds fewer"
                );
            }
            Err((_, why)) => {
                let failures = self.finish(Polled::Failed, now).map_or(1, |r| r.failures);
                if failures.is_power_of_two() {
                    warn!(
                        "tollgate: the revocation feed {why} ({failures} failures in a row); the last list keeps serving"
                    );
                }
            }
        }
        true
    }

    /// Marks, for every worker, whether the feed's list holds more than the filter can.
    fn set_overflow(&self, worker: &mut WorkerState, overflowed: bool) {
        if worker.revocations.overflowed != overflowed || overflowed {
            let flag: &[u8] = if overflowed { b"1" } else { b"0" };
            let _ = hostcalls::set_shared_data(&self.overflow_key, Some(flag), None);
        }
        worker.revocations.overflowed = overflowed;
    }

    /// Ends the lease: stores the list a good poll changed (the version is bumped), counts the
    /// poll, and writes the record.
    fn finish(&self, polled: Polled<'_>, now: u64) -> Option<FetchRecord> {
        if let Polled::Good {
            list: Some(list), ..
        } = polled
        {
            let _ = hostcalls::set_shared_data(&self.list_key, Some(list), None);
        }
        count(match polled {
            Polled::Good { .. } => self.metrics.polled,
            Polled::Failed => self.metrics.failed,
        });
        update_record(&self.record_key, |record| match polled {
            Polled::Good { list, more: true } => record.paged(list.is_some()),
            Polled::Good { list: Some(_), .. } => record.succeeded(now),
            Polled::Good { list: None, .. } => record.polled(now),
            Polled::Failed => record.failed(),
        })
    }
}

/// How a poll ended.
#[derive(Clone, Copy)]
enum Polled<'l> {
    /// A good answer: the list to store when it changed, and whether more pages follow.
    Good {
        list: Option<&'l [u8]>,
        more: bool,
    },
    Failed,
}
