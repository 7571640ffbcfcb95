//! The tick. Envoy gives an HTTP filter module no timer, so a thread of the module wakes
//! every [`FETCH_TICK`] and posts an event through Envoy's schedulers: to each
//! configuration's, which runs the main thread's tick (key fetches, feed polls), and to the
//! stream of each held request, which runs its worker's tick there (the held requests whose
//! keys came, or whose time is up, are decided). A scheduler's `commit` is the one call
//! that is safe from any thread; a scheduler is deleted under the registry's lock, so never
//! while it is being committed to.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, Once};

use tollgate_core::lifecycle::FETCH_TICK;

use crate::abi::{self, ConfigScheduler, StreamScheduler};
use crate::log;

#[derive(Default)]
struct Registry {
    /// Each configuration's scheduler, by configuration id.
    configs: HashMap<u64, usize>,
    /// The scheduler of each held request's stream, by stream key.
    streams: HashMap<u64, usize>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);
static START: Once = Once::new();

fn registry() -> MutexGuard<'static, Option<Registry>> {
    REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Starts the thread (once per process).
fn start() {
    START.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("tollgate-tick".into())
            .spawn(run);
        if spawned.is_err() {
            log::line(
                abi::LOG_ERROR,
                "tollgate: the tick thread could not start: issuers' keys and the revocation feed are not fetched",
            );
        }
    });
}

fn run() {
    loop {
        std::thread::sleep(FETCH_TICK);
        let guard = registry();
        let Some(registry) = guard.as_ref() else {
            continue;
        };
        for scheduler in registry.configs.values() {
            // SAFETY: registered schedulers are alive (deleted only under this lock).
            unsafe {
                abi::envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
                    *scheduler as ConfigScheduler,
                    0,
                );
            }
        }
        for scheduler in registry.streams.values() {
            // SAFETY: as above; a commit to a destroyed stream is a no-op.
            unsafe {
                abi::envoy_dynamic_module_callback_http_filter_scheduler_commit(
                    *scheduler as StreamScheduler,
                    0,
                );
            }
        }
    }
}

/// Ticks configuration `id` through `scheduler` from now on.
pub fn add_config(id: u64, scheduler: ConfigScheduler) {
    start();
    registry()
        .get_or_insert_with(Registry::default)
        .configs
        .insert(id, scheduler as usize);
}

/// Stops ticking configuration `id` and deletes its scheduler (on the main thread).
pub fn remove_config(id: u64) {
    let mut guard = registry();
    if let Some(scheduler) = guard.as_mut().and_then(|r| r.configs.remove(&id)) {
        // SAFETY: made by `config_scheduler_new`, deleted once, under the lock.
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_scheduler_delete(
                scheduler as ConfigScheduler,
            );
        }
    }
}

/// Ticks the stream `key` (a held request's) through `scheduler` from now on.
pub fn add_stream(key: u64, scheduler: StreamScheduler) {
    start();
    registry()
        .get_or_insert_with(Registry::default)
        .streams
        .insert(key, scheduler as usize);
}

/// Stops ticking stream `key` and deletes its scheduler (on its worker).
pub fn remove_stream(key: u64) {
    let mut guard = registry();
    if let Some(scheduler) = guard.as_mut().and_then(|r| r.streams.remove(&key)) {
        // SAFETY: made by `scheduler_new`, deleted once, under the lock.
        unsafe {
            abi::envoy_dynamic_module_callback_http_filter_scheduler_delete(
                scheduler as StreamScheduler,
            );
        }
    }
}
