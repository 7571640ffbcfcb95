//! What each Envoy worker thread keeps: its [`Filter`] for each configuration (configured on
//! the worker's first request of it, as each `.wasm` VM is), its held requests' streams, and
//! its host calls ([`WorkerEnvoy`]). A worker does not fetch: it installs what the main
//! thread fetched ([`crate::main_thread`]) and ticks when a request comes or a held
//! request's stream is woken ([`crate::ticker`]).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use tollgate_core::host::HostError;
use tollgate_core::lifecycle::{Filter, Level, MetricKind, RootHost};

use crate::abi::FilterEnvoy;
use crate::config::NativeConfig;
use crate::stream::EnvoyRequest;
use crate::{log, metrics, shared};

/// A worker's filter of one configuration.
pub struct WorkerFilter {
    pub config: Arc<NativeConfig>,
    pub filter: RefCell<Filter>,
    /// When it last ticked, and how often it ticks (unix milliseconds).
    last_tick: Cell<u64>,
    period_ms: u64,
}

thread_local! {
    static FILTERS: RefCell<Vec<Rc<WorkerFilter>>> = const { RefCell::new(Vec::new()) };
    /// The streams of the held requests, by context id.
    static HELD: RefCell<HashMap<u32, usize>> = RefCell::new(HashMap::new());
    static NEXT_CONTEXT: Cell<u32> = const { Cell::new(1) };
}

/// A context id for a new stream of this worker.
pub fn next_context_id() -> u32 {
    NEXT_CONTEXT.with(|next| {
        let id = next.get();
        next.set(id.wrapping_add(1).max(1));
        id
    })
}

/// This worker's filter of `config`, configured on first use; drops those of destroyed
/// configurations. `None` when the configuration is refused here (it was accepted on the
/// main thread: only an environment that changed since could do it).
pub fn filter_for(config: &Arc<NativeConfig>) -> Option<Rc<WorkerFilter>> {
    FILTERS.with_borrow_mut(|filters| {
        filters.retain(|f| !f.config.is_destroyed());
        if let Some(found) = filters.iter().find(|f| f.config.id == config.id) {
            return Some(Rc::clone(found));
        }
        let host = WorkerEnvoy { config };
        let mut filter = Filter::default();
        let env = |name: &str| std::env::var(name).ok();
        let tick = filter.configure(&host, &config.json, &env)?;
        let made = Rc::new(WorkerFilter {
            config: Arc::clone(config),
            filter: RefCell::new(filter),
            // Due at once: the first request installs the keys and revocation list the
            // process has before it is decided (else it would wait a tick for them).
            last_tick: Cell::new(0),
            period_ms: u64::try_from(tick.as_millis()).unwrap_or(1_000),
        });
        filters.push(Rc::clone(&made));
        Some(made)
    })
}

impl WorkerFilter {
    /// Ticks when its period passed (`woken`: a held request's stream was woken for it).
    pub fn tick_if_due(&self, woken: bool) {
        let now = crate::now_ms();
        // A woken stream ticks a little early: the wakes come every period, with jitter.
        let period = if woken {
            self.period_ms.saturating_sub(10)
        } else {
            self.period_ms
        };
        if now < self.last_tick.get().saturating_add(period) {
            return;
        }
        let Ok(mut filter) = self.filter.try_borrow_mut() else {
            return;
        };
        self.last_tick.set(now);
        let host = WorkerEnvoy {
            config: &self.config,
        };
        filter.tick(&host);
        // What the tick decided (held requests answered or let on) is counted now: a worker
        // may see no other request for long.
        filter.report(&host);
    }

    /// Hands over what the request left to report (it ended): counts, dropped roles.
    pub fn report(&self) {
        if let Ok(filter) = self.filter.try_borrow() {
            filter.report(&WorkerEnvoy {
                config: &self.config,
            });
        }
    }

    pub fn host(&self) -> WorkerEnvoy<'_> {
        WorkerEnvoy {
            config: &self.config,
        }
    }
}

/// Remembers the stream of held request `context_id`.
pub fn hold(context_id: u32, envoy: FilterEnvoy) {
    HELD.with_borrow_mut(|held| held.insert(context_id, envoy as usize));
}

/// Forgets it (its stream is destroyed).
pub fn release(context_id: u32) {
    HELD.with_borrow_mut(|held| held.remove(&context_id));
}

/// A worker's host calls for one configuration.
pub struct WorkerEnvoy<'a> {
    config: &'a NativeConfig,
}

impl RootHost for WorkerEnvoy<'_> {
    type Request = EnvoyRequest;

    fn http_get(&self, _: &str, _: &[(&str, &str)], _: u64) -> Result<u32, HostError> {
        Err(HostError("a worker does not call out"))
    }

    fn answer_header(&self, _name: &str) -> Option<Vec<u8>> {
        None
    }

    fn answer_body(&self, _max: usize) -> Option<Vec<u8>> {
        None
    }

    fn shared_get(&self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), HostError> {
        Ok(shared::get(key))
    }

    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), HostError> {
        shared::set(key, value, cas)
    }

    /// The metrics were defined on the main thread: their ids, by name.
    fn define_metric(&self, _kind: MetricKind, name: &str) -> Result<u32, HostError> {
        self.config
            .metrics
            .get(name)
            .copied()
            .ok_or(HostError("metric not defined"))
    }

    /// Added to the configuration's pending counts: the main thread hands them to Envoy.
    fn increment_metric(&self, id: u32, by: i64) -> Result<(), HostError> {
        self.config.count(id, u64::try_from(by).unwrap_or(0))
    }

    fn record_metric(&self, id: u32, value: u64) -> Result<(), HostError> {
        metrics::set_gauge(self.config.envoy(), id, value)
    }

    fn held_request(&self, context_id: u32) -> Option<EnvoyRequest> {
        HELD.with_borrow(|held| held.get(&context_id).copied())
            .map(|envoy| EnvoyRequest::new(envoy as FilterEnvoy))
    }

    fn fetches(&self) -> bool {
        false
    }

    fn now_ms(&self) -> u64 {
        crate::now_ms()
    }

    fn log(&self, level: Level, line: &str) {
        log::at(level, line);
    }
}
