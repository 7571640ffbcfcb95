//! The filter's counters ([`Counter`]): summed in the worker and handed to the host on the
//! tick, so that a request costs no host call for them.

use std::cell::Cell;

use super::calls::define;
use super::root_host::{MetricKind, RootHost};
use crate::metrics::Counter;

/// The host's ids of the counters, and the counts not yet handed over.
#[derive(Debug, Default)]
pub struct Counters {
    ids: Vec<Option<u32>>,
    pending: Vec<Cell<u64>>,
}

impl Counters {
    /// Defines every counter with the host.
    pub fn define(host: &impl RootHost) -> Counters {
        let all = Counter::all();
        Counters {
            pending: all.iter().map(|_| Cell::new(0)).collect(),
            ids: all
                .into_iter()
                .map(|c| define(host, MetricKind::Counter, &c.name()))
                .collect(),
        }
    }

    /// Whether the counters were defined.
    pub fn defined(&self) -> bool {
        !self.ids.is_empty()
    }

    pub fn count(&self, counter: Counter) {
        self.add(counter, 1);
    }

    /// Counts `counter` `n` times.
    pub fn add(&self, counter: Counter, n: u64) {
        if let Some(cell) = self.pending.get(counter.index()) {
            cell.set(cell.get().saturating_add(n));
        }
    }

    /// Hands the pending counts to the host.
    pub fn flush(&self, host: &impl RootHost) {
        for (id, pending) in self.ids.iter().zip(&self.pending) {
            let count = pending.take();
            if let (Some(id), true) = (id, count > 0) {
                let _ = host.increment_metric(*id, i64::try_from(count).unwrap_or(i64::MAX));
            }
        }
    }
}
