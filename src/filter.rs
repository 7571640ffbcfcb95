//! The proxy-wasm adapter: reads the configuration once, hands each request's headers to the
//! decision and applies what it returns, counts it and records it for the access log. It
//! holds no decision logic of its own.

use std::rc::Rc;
use std::time::UNIX_EPOCH;

use log::{debug, error, info};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action as HostAction, ContextType, MetricType};

use crate::config::Config;
use crate::decision::{decide, Action, Decision, HeaderEdit};
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

/// The host's ids of the filter's counters, indexed by [`Counter::index`].
#[derive(Default)]
struct Metrics {
    ids: Vec<Option<u32>>,
}

impl Metrics {
    fn define() -> Metrics {
        Metrics {
            ids: Counter::all()
                .into_iter()
                .map(|c| hostcalls::define_metric(MetricType::Counter, &c.name()).ok())
                .collect(),
        }
    }

    fn increment(&self, counter: Counter) {
        if let Some(Some(id)) = self.ids.get(counter.index()) {
            let _ = hostcalls::increment_metric(*id, 1);
        }
    }
}

/// One per VM: owns the parsed configuration and the counters.
#[derive(Default)]
struct Root {
    config: Option<Rc<Config>>,
    metrics: Rc<Metrics>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        if let Ok(level) = hostcalls::get_log_level() {
            proxy_wasm::set_log_level(level);
        }
        if self.metrics.ids.is_empty() {
            self.metrics = Rc::new(Metrics::define());
        }
        let json = self.get_plugin_configuration().unwrap_or_default();
        match Config::parse(&json, &|name| std::env::var(name).ok()) {
            Ok(config) => {
                info!(
                    "tollgate {} configured: {}",
                    crate::VERSION,
                    config.summary()
                );
                self.config = Some(Rc::new(config));
                self.metrics.increment(Counter::ConfigLoaded);
                true
            }
            Err(e) => {
                error!("tollgate {}: configuration refused: {e}", crate::VERSION);
                self.metrics.increment(Counter::ConfigFailed);
                false
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

    fn apply(&self, edit: HeaderEdit) {
        match edit {
            HeaderEdit::Remove(name) => self.remove_http_request_header(&name),
            HeaderEdit::Add(name, value) => self.add_http_request_header_bytes(&name, &value),
            HeaderEdit::SetPath(path) => self.set_http_request_header_bytes(":path", Some(&path)),
        }
    }

    /// Counts the decision and records it for the access log.
    fn report(&self, decision: &Decision) {
        self.metrics
            .increment(Counter::for_outcome(&decision.outcome));
        for (field, value) in decision.log_fields() {
            self.set_property(vec![&format!("tollgate.{field}")], Some(value.as_bytes()));
        }
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> HostAction {
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
        let decision = decide(&config, &headers, self.unix_now());
        self.report(&decision);
        if log::log_enabled!(log::Level::Debug) {
            debug!("tollgate: {}", decision.describe(&headers));
        }
        match decision.action {
            Action::Forward(edits) => {
                for edit in edits {
                    self.apply(edit);
                }
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
