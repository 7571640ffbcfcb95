//! tollgate's proxy-wasm filter: the thin adapter between Envoy and the decision core
//! ([`tollgate_core`], which does not depend on proxy-wasm).
//!
//! It implements the core's host traits with proxy-wasm calls: [`Host`] for the request of
//! the current context ([`CurrentRequest`]) and [`RootHost`] for the worker's root context
//! ([`Envoy`]), and forwards Envoy's callbacks to the core's [`Filter`] (configuration, tick,
//! key fetches, the revocation feed, held requests) and [`RequestFlow`] (one request). It
//! holds no logic.

use std::time::{Duration, UNIX_EPOCH};

use log::{debug, error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{
    Action as HostAction, BufferType, ContextType, MapType, MetricType, Status,
};

use tollgate_core::host::{Host, HostError};
use tollgate_core::lifecycle::{
    Filter, HeldRequest, Level, MetricKind, RequestFlow, ResponseHeader, RootHost, Step,
};

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

/// Takes Envoy's current log level for the filter's (`POST /logging?wasm=debug` on the admin
/// endpoint): read on configure and on every tick, so a change holds within a tick, at no
/// host call per request.
fn follow_log_level() {
    if let Ok(level) = hostcalls::get_log_level() {
        proxy_wasm::set_log_level(level);
    }
}

/// A proxy-wasm status as the core's [`HostError`]. (proxy-wasm 0.2's calls that change a
/// request panic on a status they do not expect rather than return it: the VM then traps,
/// and Envoy fails the request closed.)
fn refused(status: Status) -> HostError {
    HostError(match status {
        Status::Ok => "Ok",
        Status::NotFound => "NotFound",
        Status::BadArgument => "BadArgument",
        Status::SerializationFailure => "SerializationFailure",
        Status::ParseFailure => "ParseFailure",
        Status::Empty => "Empty",
        Status::CasMismatch => "CasMismatch",
        Status::InternalFailure => "InternalFailure",
        _ => "an unknown status",
    })
}

/// The worker's root context calls, through proxy-wasm.
struct Envoy;

impl RootHost for Envoy {
    type Request = CurrentRequest;

    fn http_get(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        timeout_ms: u64,
    ) -> Result<u32, HostError> {
        let timeout = Duration::from_millis(timeout_ms);
        hostcalls::dispatch_http_call(cluster, headers.to_vec(), None, vec![], timeout)
            .map_err(refused)
    }

    fn answer_header(&self, name: &str) -> Option<Vec<u8>> {
        // As bytes: the SDK's string getter panics on a value that is not UTF-8.
        hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, name)
            .ok()
            .flatten()
    }

    fn answer_body(&self, max: usize) -> Option<Vec<u8>> {
        hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, max)
            .ok()
            .flatten()
    }

    fn shared_get(&self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), HostError> {
        hostcalls::get_shared_data(key).map_err(refused)
    }

    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), HostError> {
        hostcalls::set_shared_data(key, Some(value), cas).map_err(refused)
    }

    fn define_metric(&self, kind: MetricKind, name: &str) -> Result<u32, HostError> {
        let kind = match kind {
            MetricKind::Counter => MetricType::Counter,
            MetricKind::Gauge => MetricType::Gauge,
        };
        hostcalls::define_metric(kind, name).map_err(refused)
    }

    fn increment_metric(&self, id: u32, by: i64) -> Result<(), HostError> {
        hostcalls::increment_metric(id, by).map_err(refused)
    }

    fn record_metric(&self, id: u32, value: u64) -> Result<(), HostError> {
        hostcalls::record_metric(id, value).map_err(refused)
    }

    fn held_request(&self, context_id: u32) -> Option<CurrentRequest> {
        hostcalls::set_effective_context(context_id)
            .ok()
            .map(|()| CurrentRequest { held: true })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(unix_time().as_millis()).unwrap_or(u64::MAX)
    }

    fn log(&self, level: Level, line: &str) {
        match level {
            Level::Info => info!("{line}"),
            Level::Warn => warn!("{line}"),
            Level::Error => error!("{line}"),
        }
    }
}

/// The host's clock since the unix epoch.
fn unix_time() -> Duration {
    hostcalls::get_current_time()
        .unwrap_or(UNIX_EPOCH)
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// One per VM (one per Envoy worker): the core's [`Filter`].
#[derive(Default)]
struct Root {
    filter: Filter,
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body_size: usize, _: usize) {
        self.filter
            .on_call_answer(&Envoy, token, headers, body_size);
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        follow_log_level();
        let json = self.get_plugin_configuration().unwrap_or_default();
        let env = |name: &str| std::env::var(name).ok();
        match self.filter.configure(&Envoy, &json, &env) {
            Some(tick) => {
                self.set_tick_period(tick);
                true
            }
            None => false,
        }
    }

    fn on_tick(&mut self) {
        follow_log_level();
        self.filter.tick(&Envoy);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream {
            flow: self.filter.request(context_id),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One per request: the core's [`RequestFlow`].
struct Stream {
    flow: RequestFlow,
}

impl Context for Stream {
    /// The answer to the call this request made to the OpenID provider (sent from this
    /// context, so the SDK routes its answer here).
    fn on_http_call_response(&mut self, _token: u32, headers: usize, body_size: usize, _: usize) {
        let status = (headers > 0)
            .then(|| Envoy.answer_header(":status"))
            .flatten()
            .and_then(|status| String::from_utf8(status).ok());
        let max = body_size.min(tollgate_core::oidc::provider_call::MAX_ANSWER + 1);
        let body = Envoy.answer_body(max).unwrap_or_default();
        self.flow.on_call_answer(&STREAM, status.as_deref(), &body);
    }
}

/// The request of the host's current (effective) context: the stream's own callbacks, and a
/// held request that the root context decides again.
///
/// A held request sends no call to the OpenID provider (`held`): sent from the root
/// context's callback, the SDK would route its answer to the root context, and the request
/// would wait for it in vain. It is decided without (an expired session is not refreshed).
struct CurrentRequest {
    held: bool,
}

/// The request of the stream's own callback.
const STREAM: CurrentRequest = CurrentRequest { held: false };

impl Host for CurrentRequest {
    fn request_headers(&self) -> Vec<(String, Vec<u8>)> {
        hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default()
    }

    fn now(&self) -> u64 {
        unix_time().as_secs()
    }

    fn remove_header(&self, name: &str) -> Result<(), HostError> {
        hostcalls::remove_map_value(MapType::HttpRequestHeaders, name).map_err(refused)
    }

    fn set_header(&self, name: &str, value: &[u8]) -> Result<(), HostError> {
        hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, name, Some(value))
            .map_err(refused)
    }

    fn add_header(&self, name: &str, value: &[u8]) -> Result<(), HostError> {
        hostcalls::add_map_value_bytes(MapType::HttpRequestHeaders, name, value).map_err(refused)
    }

    fn set_property(&self, name: &str, value: &[u8]) -> Result<(), HostError> {
        hostcalls::set_property(vec![name], Some(value)).map_err(refused)
    }

    /// When the answer cannot be sent, the request's stream is reset: the request is
    /// paused and ended, never let on.
    fn respond(&self, status: u32, headers: &[(&str, &str)], body: &[u8]) -> Result<(), HostError> {
        hostcalls::send_http_response(status, headers.to_vec(), Some(body)).map_err(|status| {
            let _ = hostcalls::reset_http_request();
            refused(status)
        })
    }

    fn debug_enabled(&self) -> bool {
        log::log_enabled!(log::Level::Debug)
    }

    fn debug(&self, line: &str) {
        debug!("{line}");
    }

    fn warn(&self, line: &str) {
        warn!("{line}");
    }

    fn http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<u32, HostError> {
        if self.held {
            return Err(HostError("a held request sends no call"));
        }
        let timeout = Duration::from_millis(timeout_ms);
        hostcalls::dispatch_http_call(cluster, headers.to_vec(), Some(body), vec![], timeout)
            .map_err(refused)
    }

    fn continue_request(&self) -> Result<(), HostError> {
        hostcalls::resume_http_request().map_err(refused)
    }
}

impl HeldRequest for CurrentRequest {
    fn resume(&self) -> Result<(), HostError> {
        hostcalls::resume_http_request().map_err(refused)
    }
}

fn action(step: Step) -> HostAction {
    match step {
        Step::Continue => HostAction::Continue,
        Step::Pause => HostAction::Pause,
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> HostAction {
        let step = self.flow.on_headers(&STREAM, &Envoy, end_of_stream);
        #[cfg(feature = "test-trap")]
        if step == Step::Continue {
            trap_if_marked(self);
        }
        action(step)
    }

    fn on_http_request_body(&mut self, size: usize, end_of_stream: bool) -> HostAction {
        let read = |start, len| {
            hostcalls::get_buffer(BufferType::HttpRequestBody, start, len)
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        action(self.flow.on_body(&STREAM, size, end_of_stream, read))
    }

    fn on_http_request_trailers(&mut self, _trailers: usize) -> HostAction {
        let names: Vec<String> = self
            .get_http_request_trailers_bytes()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        let remove = |name: &str| {
            hostcalls::remove_map_value(MapType::HttpRequestTrailers, name).map_err(refused)
        };
        action(self.flow.on_trailers(&STREAM, &names, remove))
    }

    /// A session refreshed while the request waited: its new cookies go to the browser on
    /// the upstream's response.
    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> HostAction {
        for header in self.flow.take_response_headers() {
            let _ = match header {
                ResponseHeader::Add(name, value) => hostcalls::add_map_value_bytes(
                    MapType::HttpResponseHeaders,
                    name,
                    value.as_bytes(),
                ),
                ResponseHeader::Set(name, value) => hostcalls::set_map_value_bytes(
                    MapType::HttpResponseHeaders,
                    name,
                    Some(value.as_bytes()),
                ),
            };
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
