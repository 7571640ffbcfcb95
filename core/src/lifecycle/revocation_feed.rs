//! Polling the revocation feed through the host, once per process, and sharing the list with
//! every worker: [`crate::feed_poll`] holds the logic; here the host's shared data behind
//! [`SharedFeed`], the call through the cluster, counters and logs.

use super::calls::{self, answer_body, count, define, gauge, read_record};
use super::root_host::{Level, MetricKind, RootHost};
use crate::config::RevocationFeed;
use crate::feed_poll::{FeedPoller as Poller, Outcome, SharedFeed};
use crate::fetch::FetchRecord;
use crate::verify::revocation::MAX_FEED_BYTES;
use crate::worker::WorkerState;

/// The feed of one configuration and its poll in flight.
pub struct FeedPoller {
    feed: RevocationFeed,
    poller: Poller,
    keys: FeedKeys,
    /// The call of the poll in flight.
    in_flight: Option<u32>,
    metrics: FeedMetrics,
}

/// The keys of the feed's shared data.
struct FeedKeys {
    record: String,
    list: String,
    /// "1" while the feed's list holds more than the filter can.
    overflow: String,
}

/// The feed's shared data, through the host.
struct HostShared<'a, H> {
    host: &'a H,
    keys: &'a FeedKeys,
}

impl<H: RootHost> SharedFeed for HostShared<'_, H> {
    fn record(&self) -> (FetchRecord, Option<u32>) {
        read_record(self.host, &self.keys.record)
    }

    fn write_record(&mut self, record: &FetchRecord, cas: Option<u32>) -> bool {
        let bytes = record.encode();
        self.host
            .shared_set(&self.keys.record, bytes.as_bytes(), cas)
            .is_ok()
    }

    fn list(&self) -> Option<Vec<u8>> {
        self.host.shared_get(&self.keys.list).ok()?.0
    }

    fn write_list(&mut self, list: &[u8]) {
        let _ = self.host.shared_set(&self.keys.list, list, None);
    }

    fn overflowed(&self) -> bool {
        matches!(
            self.host.shared_get(&self.keys.overflow),
            Ok((Some(flag), _)) if flag == b"1"
        )
    }

    fn set_overflowed(&mut self, overflowed: bool) {
        let flag: &[u8] = if overflowed { b"1" } else { b"0" };
        let _ = self.host.shared_set(&self.keys.overflow, flag, None);
    }
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
    pub fn new(
        host: &impl RootHost,
        feed: &RevocationFeed,
        skew: u64,
        worker: &mut WorkerState,
        now: u64,
    ) -> FeedPoller {
        let base = format!("tollgate.revocation|{}|{}", feed.cluster, feed.path);
        let keys = FeedKeys {
            record: format!("{base}|record"),
            list: format!("{base}|list"),
            overflow: format!("{base}|overflow"),
        };
        calls::create_record(host, &keys.record);
        let poller = FeedPoller {
            feed: feed.clone(),
            poller: Poller::new(feed, skew),
            keys,
            in_flight: None,
            metrics: FeedMetrics {
                polled: define(host, MetricKind::Counter, "tollgate.revocation.polls_ok"),
                failed: define(
                    host,
                    MetricKind::Counter,
                    "tollgate.revocation.polls_failed",
                ),
                entries: define(host, MetricKind::Gauge, "tollgate.revocation.entries"),
                age: define(host, MetricKind::Gauge, "tollgate.revocation.age_seconds"),
            },
        };
        let shared = HostShared {
            host,
            keys: &poller.keys,
        };
        let synced = poller.poller.sync(&shared, &mut worker.revocations, now);
        poller.report_sync(host, synced.installed, synced.unreadable);
        poller
    }

    /// The tick (`now` in unix milliseconds): installs a newer list, refreshes the list's
    /// age, and sends the poll when it is due.
    pub fn tick(&mut self, host: &impl RootHost, worker: &mut WorkerState, now: u64) {
        let mut shared = HostShared {
            host,
            keys: &self.keys,
        };
        // A worker that does not fetch installs what the fetching root context polled.
        let tick = if host.fetches() {
            self.poller.tick(&mut shared, &mut worker.revocations, now)
        } else {
            self.poller.sync(&shared, &mut worker.revocations, now)
        };
        self.report_sync(host, tick.installed, tick.unreadable);
        let age = (now / 1000).saturating_sub(worker.revocations.fresh_at);
        gauge(host, self.metrics.age, age);
        let Some(path) = tick.poll else {
            return;
        };
        match calls::get(host, &self.feed.cluster, &self.feed.authority, &path, false) {
            Ok(token) => self.in_flight = Some(token),
            Err(status) => {
                host.log(
                    Level::Warn,
                    &format!(
                        "tollgate: the revocation feed could not be polled through cluster \"{}\" ({status}); the last list keeps serving",
                        self.feed.cluster.escape_default()
                    ),
                );
                let mut shared = HostShared {
                    host,
                    keys: &self.keys,
                };
                let outcome = self.poller.not_sent(&mut shared, &mut worker.revocations);
                self.report(host, outcome);
            }
        }
    }

    /// A poll's answer; `false` when the call is not this poller's.
    pub fn on_response(
        &mut self,
        host: &impl RootHost,
        token: u32,
        status: Option<&str>,
        body_size: usize,
        worker: &mut WorkerState,
        now: u64,
    ) -> bool {
        if self.in_flight != Some(token) {
            return false;
        }
        self.in_flight = None;
        let body = answer_body(host, status, body_size, MAX_FEED_BYTES);
        let mut shared = HostShared {
            host,
            keys: &self.keys,
        };
        let outcome = self.poller.answered(
            &mut shared,
            &mut worker.revocations,
            body.as_deref().map_err(Clone::clone),
            now,
        );
        let more = matches!(outcome, Outcome::Applied { more: true, .. });
        self.report(host, outcome);
        if more {
            // The run's next page goes out now, not at the next tick.
            self.tick(host, worker, now);
        }
        true
    }

    fn report_sync(&self, host: &impl RootHost, installed: Option<usize>, unreadable: bool) {
        if let Some(entries) = installed {
            gauge(host, self.metrics.entries, entries as u64);
        }
        if unreadable {
            host.log(
                Level::Warn,
                "tollgate: the shared revocation list could not be read; this worker's list is not fresh",
            );
        }
    }

    /// Counts and logs what a poll did.
    fn report(&self, host: &impl RootHost, outcome: Outcome) {
        match outcome {
            Outcome::Applied {
                entries, changed, ..
            } => {
                count(host, self.metrics.polled);
                if changed {
                    host.log(
                        Level::Info,
                        &format!("tollgate: revocation list: {entries} entries"),
                    );
                    gauge(host, self.metrics.entries, entries as u64);
                }
            }
            Outcome::Failed { why, failures } => {
                count(host, self.metrics.failed);
                if failures.is_power_of_two() {
                    host.log(
                        Level::Warn,
                        &format!(
                            "tollgate: the revocation feed {why} ({failures} failures in a row); the last list keeps serving"
                        ),
                    );
                }
            }
            Outcome::Overflowed { why } => {
                count(host, self.metrics.failed);
                host.log(
                    Level::Error,
                    &format!(
                        "tollgate: the revocation feed {why}: tokens are refused (503) until it holds fewer"
                    ),
                );
            }
            Outcome::Stale => {}
        }
    }
}
