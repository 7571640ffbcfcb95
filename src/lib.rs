//! tollgate's proxy-wasm filter: the thin adapter between Envoy and the decision core
//! ([`tollgate_core`], which does not depend on proxy-wasm).
//!
//! It reads the configuration once, owns the counters, the tick and the worker's state
//! ([`WorkerState`]: the verified-token cache), and implements [`Host`] for each request's
//! context; what a request does is [`tollgate_core::host::on_request_headers`], which runs
//! natively in tests. It holds no decision logic.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use log::{debug, error, info};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action as HostAction, ContextType, MetricType};

use tollgate_core::config::Config;
use tollgate_core::host::{self, Host, Verdict};
use tollgate_core::metrics::Counter;
use tollgate_core::worker::WorkerState;

#[allow(unsafe_code)]
mod entry {
    proxy_wasm::main! {{
        proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Trace);
        super::log_panics();
        proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
            Box::new(super::Root::default())
        });
    }}
}

/// Logs a panic at critical level before the VM traps (Envoy then fails the request closed
/// and the plugin's log line says where). The message names the code location only: no
/// request data reaches a panic message on the request path.
fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let _ = hostcalls::log(
            proxy_wasm::types::LogLevel::Critical,
            &format!("tollgate {}: panic at {location}", tollgate_core::VERSION),
        );
    }));
}

/// How often counters are handed to Envoy.
const TICK: Duration = Duration::from_secs(1);
/// Every how many ticks expired tokens are dropped from the cache.
const SWEEP_TICKS: u32 = 10;

/// The filter's counters: the host's ids, and the counts not yet handed over.
#[derive(Default)]
struct Metrics {
    ids: Vec<Option<u32>>,
    pending: Vec<Cell<u64>>,
}

impl Metrics {
    fn define() -> Metrics {
        let all = Counter::all();
        Metrics {
            pending: all.iter().map(|_| Cell::new(0)).collect(),
            ids: all
                .into_iter()
                .map(|c| hostcalls::define_metric(MetricType::Counter, &c.name()).ok())
                .collect(),
        }
    }

    fn count(&self, counter: Counter) {
        if let Some(cell) = self.pending.get(counter.index()) {
            cell.set(cell.get() + 1);
        }
    }

    /// Hands the pending counts to Envoy.
    fn flush(&self) {
        for (id, pending) in self.ids.iter().zip(&self.pending) {
            let count = pending.take();
            if let (Some(id), true) = (id, count > 0) {
                let _ = hostcalls::increment_metric(*id, i64::try_from(count).unwrap_or(i64::MAX));
            }
        }
    }
}

/// One per VM (one per Envoy worker): owns the parsed configuration, the counters and the
/// worker's state, lent to each request.
#[derive(Default)]
struct Root {
    config: Option<Rc<Config>>,
    worker: Rc<RefCell<WorkerState>>,
    metrics: Rc<Metrics>,
    ticks: u32,
}

impl Root {
    fn unix_now(&self) -> u64 {
        self.get_current_time()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        if let Ok(level) = hostcalls::get_log_level() {
            proxy_wasm::set_log_level(level);
        }
        if self.metrics.ids.is_empty() {
            self.metrics = Rc::new(Metrics::define());
            self.set_tick_period(TICK);
        }
        let json = self.get_plugin_configuration().unwrap_or_default();
        let loaded = match Config::parse(&json, &|name| std::env::var(name).ok()) {
            Ok(config) => {
                info!(
                    "tollgate {} configured: {}",
                    tollgate_core::VERSION,
                    config.summary()
                );
                self.config = Some(Rc::new(config));
                // What the worker remembered belongs to the old configuration.
                self.worker = Rc::default();
                self.metrics.count(Counter::ConfigLoaded);
                true
            }
            Err(e) => {
                error!(
                    "tollgate {}: configuration refused: {e}",
                    tollgate_core::VERSION
                );
                self.metrics.count(Counter::ConfigFailed);
                false
            }
        };
        // Configuration counts are flushed now: a refused configuration may get no tick.
        self.metrics.flush();
        loaded
    }

    fn on_tick(&mut self) {
        self.metrics.flush();
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks.is_multiple_of(SWEEP_TICKS) {
            if let (Some(config), Ok(mut worker)) = (&self.config, self.worker.try_borrow_mut()) {
                worker.sweep(config, self.unix_now());
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream {
            config: self.config.clone(),
            worker: Rc::clone(&self.worker),
            metrics: Rc::clone(&self.metrics),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One per request.
struct Stream {
    config: Option<Rc<Config>>,
    worker: Rc<RefCell<WorkerState>>,
    metrics: Rc<Metrics>,
}

impl Context for Stream {}

impl Host for Stream {
    fn request_headers(&self) -> Vec<(String, Vec<u8>)> {
        self.get_http_request_headers_bytes()
    }

    fn now(&self) -> u64 {
        self.get_current_time()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn remove_header(&self, name: &str) {
        self.remove_http_request_header(name);
    }

    fn set_header(&self, name: &str, value: &[u8]) {
        self.set_http_request_header_bytes(name, Some(value));
    }

    fn add_header(&self, name: &str, value: &[u8]) {
        self.add_http_request_header_bytes(name, value);
    }

    fn set_property(&self, name: &str, value: &[u8]) {
        Context::set_property(self, vec![name], Some(value));
    }

    fn respond(&self, status: u32, headers: &[(&str, &str)], body: &[u8]) {
        self.send_http_response(status, headers.to_vec(), Some(body));
    }

    fn debug_enabled(&self) -> bool {
        log::log_enabled!(log::Level::Debug)
    }

    fn debug(&self, line: &str) {
        debug!("{line}");
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> HostAction {
        let Some(config) = self.config.clone() else {
            // Unreachable once configured; fail closed rather than let the request on.
            self.send_http_response(
                503,
                vec![("content-type", "text/plain")],
                Some(b"not configured\n"),
            );
            return HostAction::Pause;
        };
        let metrics = Rc::clone(&self.metrics);
        let worker = Rc::clone(&self.worker);
        // The VM runs one request callback at a time: the state is never borrowed here.
        let Ok(mut worker) = worker.try_borrow_mut() else {
            self.send_http_response(503, vec![("content-type", "text/plain")], Some(b"busy\n"));
            return HostAction::Pause;
        };
        let count = |c| metrics.count(c);
        match host::on_request_headers(self, &config, &mut worker, end_of_stream, count) {
            Verdict::Continue => {
                #[cfg(feature = "test-trap")]
                trap_if_marked(self);
                HostAction::Continue
            }
            Verdict::Answered => HostAction::Pause,
        }
    }

    fn on_http_request_trailers(&mut self, _trailers: usize) -> HostAction {
        if let Some(config) = &self.config {
            for (name, _) in self.get_http_request_trailers_bytes() {
                if config.identity_headers.is_spoof(&name) {
                    self.remove_http_request_trailer(&name);
                }
            }
        }
        HostAction::Continue
    }
}

/// Test builds only (`--features test-trap`, never in a release): a request let on that
/// carries `x-tollgate-test-trap` traps the VM at the worst moment, after the identity
/// headers are set and before the request goes on, so that a test can prove Envoy fails
/// closed.
#[cfg(feature = "test-trap")]
#[allow(clippy::panic)]
fn trap_if_marked(stream: &Stream) {
    if stream
        .get_http_request_header_bytes("x-tollgate-test-trap")
        .is_some()
    {
        panic!("test trap");
    }
}
