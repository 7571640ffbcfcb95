//! One filter configuration (one `DynamicModuleFilter` in Envoy's configuration): its JSON,
//! the ids of its metrics, and Envoy's handle to it. Shared by every worker; the main thread
//! owns its fetching [`tollgate_core::lifecycle::Filter`] ([`crate::main_thread`]), each
//! worker its own ([`crate::worker`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tollgate_core::host::HostError;

use crate::abi::ConfigEnvoy;
use crate::metrics;

/// The counter of panics caught in this configuration's hooks.
pub const PANICKED: &str = "tollgate.panicked";

pub struct NativeConfig {
    /// Distinguishes configurations (a reload makes a new one).
    pub id: u64,
    /// Envoy's configuration (an address: Envoy keeps it alive while any of its streams is).
    envoy: usize,
    /// The filter configuration's JSON.
    pub json: Vec<u8>,
    /// The id of every metric defined when the configuration was created, by name.
    pub metrics: HashMap<String, u32>,
    /// Set when Envoy destroys the configuration: workers then drop their filter for it.
    pub destroyed: AtomicBool,
    /// Counts the workers added since the main thread last handed them to Envoy, by
    /// counter id: a request costs an atomic add, not a call into Envoy's stats.
    pending: Box<[AtomicU64]>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl NativeConfig {
    pub fn new(envoy: ConfigEnvoy, json: Vec<u8>, metrics: HashMap<String, u32>) -> Self {
        let slots = metrics.values().max().map_or(0, |max| *max as usize + 1);
        NativeConfig {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            envoy: envoy as usize,
            json,
            metrics,
            destroyed: AtomicBool::new(false),
            pending: (0..slots).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Adds `by` to counter `id`, handed to Envoy on the main thread's next tick.
    pub fn count(&self, id: u32, by: u64) -> Result<(), HostError> {
        let slot = self
            .pending
            .get(id as usize)
            .ok_or(HostError("counter not defined"))?;
        slot.fetch_add(by, Ordering::Relaxed);
        Ok(())
    }

    /// Hands the counts added since the last time to Envoy (on the main thread).
    pub fn publish_counts(&self) {
        for (id, slot) in self.pending.iter().enumerate() {
            let by = slot.swap(0, Ordering::Relaxed);
            if by > 0 {
                let _ = metrics::increment(self.envoy(), id as u32, by);
            }
        }
    }

    pub fn envoy(&self) -> ConfigEnvoy {
        self.envoy as ConfigEnvoy
    }

    pub fn is_destroyed(&self) -> bool {
        self.destroyed.load(Ordering::Acquire)
    }

    /// Counts a panic caught in a hook of one of this configuration's streams.
    pub fn count_panic(&self) {
        if let Some(id) = self.metrics.get(PANICKED) {
            let _ = self.count(*id, 1);
        }
    }
}
