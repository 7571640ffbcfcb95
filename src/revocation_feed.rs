//! Polling the revocation feed through Envoy, once per process, and sharing the list with
//! every worker: the adapter of [`tollgate_core::feed_poll`], which holds the logic. Here:
//! the shared data (proxy-wasm), the call through the cluster, counters and logs.

use log::{info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

use crate::fetching::{self, answer_body, count, gauge, read_record};
use tollgate_core::config::RevocationFeed;
use tollgate_core::feed_poll::{FeedPoller as Poller, Outcome, SharedFeed};
use tollgate_core::fetch::FetchRecord;
use tollgate_core::verify::revocation::MAX_FEED_BYTES;
use tollgate_core::worker::WorkerState;

/// The feed of one configuration and its poll in flight.
pub struct FeedPoller {
    feed: RevocationFeed,
    poller: Poller,
    shared: HostShared,
    /// The call of the poll in flight.
    in_flight: Option<u32>,
    metrics: FeedMetrics,
}

/// The feed's shared data, by key.
struct HostShared {
    record_key: String,
    list_key: String,
    /// "1" while the feed's list holds more than the filter can.
    overflow_key: String,
}

impl SharedFeed for HostShared {
    fn record(&self) -> (FetchRecord, Option<u32>) {
        read_record(&self.record_key)
    }

    fn write_record(&mut self, record: &FetchRecord, cas: Option<u32>) -> bool {
        let bytes = record.encode();
        hostcalls::set_shared_data(&self.record_key, Some(bytes.as_bytes()), cas).is_ok()
    }

    fn list(&self) -> Option<Vec<u8>> {
        hostcalls::get_shared_data(&self.list_key).ok()?.0
    }

    fn write_list(&mut self, list: &[u8]) {
        let _ = hostcalls::set_shared_data(&self.list_key, Some(list), None);
    }

    fn overflowed(&self) -> bool {
        matches!(
            hostcalls::get_shared_data(&self.overflow_key),
            Ok((Some(flag), _)) if flag == b"1"
        )
    }

    fn set_overflowed(&mut self, overflowed: bool) {
        let flag: &[u8] = if overflowed { b"1" } else { b"0" };
        let _ = hostcalls::set_shared_data(&self.overflow_key, Some(flag), None);
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
    pub fn new(feed: &RevocationFeed, skew: u64, worker: &mut WorkerState, now: u64) -> FeedPoller {
        let define = |kind, name: &str| hostcalls::define_metric(kind, name).ok();
        let base = format!("tollgate.revocation|{}|{}", feed.cluster, feed.path);
        let shared = HostShared {
            record_key: format!("{base}|record"),
            list_key: format!("{base}|list"),
            overflow_key: format!("{base}|overflow"),
        };
        fetching::create_record(&shared.record_key);
        let poller = FeedPoller {
            feed: feed.clone(),
            poller: Poller::new(feed, skew),
            shared,
            in_flight: None,
            metrics: FeedMetrics {
                polled: define(MetricType::Counter, "tollgate.revocation.polls_ok"),
                failed: define(MetricType::Counter, "tollgate.revocation.polls_failed"),
                entries: define(MetricType::Gauge, "tollgate.revocation.entries"),
                age: define(MetricType::Gauge, "tollgate.revocation.age_seconds"),
            },
        };
        let synced = poller
            .poller
            .sync(&poller.shared, &mut worker.revocations, now);
        poller.report_sync(synced.installed, synced.unreadable);
        poller
    }

    /// The tick (`now` in unix milliseconds): installs a newer list, refreshes the list's
    /// age, and sends the poll when it is due.
    pub fn tick(&mut self, worker: &mut WorkerState, now: u64) {
        let tick = self
            .poller
            .tick(&mut self.shared, &mut worker.revocations, now);
        self.report_sync(tick.installed, tick.unreadable);
        let age = (now / 1000).saturating_sub(worker.revocations.fresh_at);
        gauge(self.metrics.age, age);
        let Some(path) = tick.poll else {
            return;
        };
        match fetching::get(&self.feed.cluster, &self.feed.authority, &path, false) {
            Ok(token) => self.in_flight = Some(token),
            Err(status) => {
                warn!(
                    "tollgate: the revocation feed could not be polled through cluster \"{}\" ({status:?}); the last list keeps serving",
                    self.feed.cluster.escape_default()
                );
                let outcome = self
                    .poller
                    .not_sent(&mut self.shared, &mut worker.revocations);
                self.report(outcome);
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
        let body = answer_body(status.as_deref(), body_size, MAX_FEED_BYTES);
        let outcome = self.poller.answered(
            &mut self.shared,
            &mut worker.revocations,
            body.as_deref().map_err(Clone::clone),
            now,
        );
        let more = matches!(outcome, Outcome::Applied { more: true, .. });
        self.report(outcome);
        if more {
            // The run's next page goes out now, not at the next tick.
            self.tick(worker, now);
        }
        true
    }

    fn report_sync(&self, installed: Option<usize>, unreadable: bool) {
        if let Some(entries) = installed {
            gauge(self.metrics.entries, entries as u64);
        }
        if unreadable {
            warn!("tollgate: the shared revocation list could not be read; this worker's list is not fresh");
        }
    }

    /// Counts and logs what a poll did.
    fn report(&self, outcome: Outcome) {
        match outcome {
            Outcome::Applied {
                entries, changed, ..
            } => {
                count(self.metrics.polled);
                if changed {
                    info!("tollgate: revocation list: {entries} entries");
                    gauge(self.metrics.entries, entries as u64);
                }
            }
            Outcome::Failed { why, failures } => {
                count(self.metrics.failed);
                if failures.is_power_of_two() {
                    warn!(
                        "tollgate: the revocation feed {why} ({failures} failures in a row); the last list keeps serving"
                    );
                }
            }
            Outcome::Overflowed { why } => {
                count(self.metrics.failed);
                log::error!(
                    "tollgate: the revocation feed {why}: tokens are refused (503) until it holds fewer"
                );
            }
            Outcome::Stale => {}
        }
    }
}
