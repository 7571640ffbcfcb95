//! The proxy-wasm adapter: reads the configuration once, hands each request's headers to the
//! decision and applies what it returns, counts it and records it for the access log. It
//! holds no decision logic of its own.
//!
//! Per request it makes one call to read every header, one per header change, one per
//! access-log field and one to answer a refused request. Counters are kept in the VM and
//! handed to Envoy once a second (on the root context's tick), not per request.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use log::{debug, error, info};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action as HostAction, ContextType, MetricType};

use crate::config::Config;
use crate::decision::{decide_stream, Action, Decision, HeaderEdit};
use crate::metrics::Counter;

#[allow(unsafe_code)]
mod entry {
    proxy_wasm::main! {{
        proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Trace);
        proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
            Box::new(super::Root::default())
        });
    }}
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

/// One per VM: owns the parsed configuration and the counters.
#[derive(Default)]
struct Root {
    config: Option<Rc<Config>>,
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
                    crate::VERSION,
                    config.summary()
                );
                self.config = Some(Rc::new(config));
                self.metrics.count(Counter::ConfigLoaded);
                true
            }
            Err(e) => {
                error!("tollgate {}: configuration refused: {e}", crate::VERSION);
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
            if let Some(config) = &self.config {
                config.verifier.sweep_cache(self.unix_now());
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream {
            config: self.config.clone(),
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
    metrics: Rc<Metrics>,
}

impl Context for Stream {}

impl Stream {
    fn unix_now(&self) -> u64 {
        self.get_current_time()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn apply(&self, edit: &HeaderEdit<'_>) {
        match edit {
            HeaderEdit::Remove(name) => self.remove_http_request_header(name),
            HeaderEdit::Set(name, value) => {
                self.set_http_request_header_bytes(name, Some(value.as_bytes()))
            }
            HeaderEdit::Add(name, value) => {
                self.add_http_request_header_bytes(name, value.as_bytes())
            }
            HeaderEdit::SetPath(path) => self.set_http_request_header_bytes(":path", Some(path)),
        }
    }

    /// Counts the decision and records it for the access log.
    fn report(&self, decision: &Decision<'_>) {
        self.metrics.count(Counter::for_outcome(&decision.outcome));
        match decision.cache_hit {
            Some(true) => self.metrics.count(Counter::CacheHit),
            Some(false) => self.metrics.count(Counter::CacheMiss),
            None => {}
        }
        for (field, value) in decision.log_fields() {
            self.set_property(vec![field.property()], Some(value.as_bytes()));
        }
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
        let headers = self.get_http_request_headers_bytes();
        let decision = decide_stream(&config, &headers, end_of_stream, self.unix_now());
        self.report(&decision);
        if log::log_enabled!(log::Level::Debug) {
            debug!("tollgate: {}", decision.describe(&headers));
        }
        match &decision.action {
            Action::Forward(edits) => {
                for edit in edits {
                    self.apply(edit);
                }
                #[cfg(feature = "test-trap")]
                trap_if_marked(&headers);
                HostAction::Continue
            }
            Action::Respond(response, edits) => {
                for edit in edits {
                    self.apply(edit);
                }
                let headers: Vec<(&str, &str)> = response
                    .headers
                    .iter()
                    .map(|(name, value)| (*name, value.as_str()))
                    .collect();
                self.send_http_response(response.status, headers, Some(response.body.as_bytes()));
                HostAction::Pause
            }
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

/// Test builds only (`--features test-trap`, never in a release): a request carrying
/// `x-tollgate-test-trap` traps the VM at the worst moment, after the identity headers are
/// set and before the request goes on, so that a test can prove Envoy fails closed.
#[cfg(feature = "test-trap")]
#[allow(clippy::panic)]
fn trap_if_marked(headers: &[(String, Vec<u8>)]) {
    if headers
        .iter()
        .any(|(name, _)| name == "x-tollgate-test-trap")
    {
        panic!("test trap");
    }
}
