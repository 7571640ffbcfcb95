//! tollgate's proxy-wasm filter: the thin adapter between Envoy and the decision core
//! ([`tollgate_core`], which does not depend on proxy-wasm).
//!
//! It reads the configuration once, owns the counters, the tick and the worker's state
//! ([`WorkerState`]: the verified-token cache), and implements [`Host`] for each request's
//! context; what a request does is [`tollgate_core::host::on_request_headers`], which runs
//! natively in tests. It holds no decision logic.

mod fetching;
mod form_body;
mod issuer_keys;
mod revocation_feed;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use log::{debug, error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action as HostAction, ContextType, MapType, MetricType, Status};

use form_body::FormBody;
use issuer_keys::{Held, KeyFetcher};
use revocation_feed::FeedPoller;
use tollgate_core::config::Config;
use tollgate_core::held::Waiting;
use tollgate_core::host::{self, Host, HostError, Verdict};
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

/// Takes Envoy's current log level for the filter's (`POST /logging?wasm=debug` on the admin
/// endpoint): read on configure and on every tick, so a change holds within a tick, at no
/// host call per request.
fn follow_log_level() {
    if let Ok(level) = hostcalls::get_log_level() {
        proxy_wasm::set_log_level(level);
    }
}

/// How often counters are handed to Envoy.
const TICK: Duration = Duration::from_secs(1);
/// The tick when issuers' keys or the revocation feed are fetched: how soon a held request
/// sees keys another worker fetched, and a worker the list another worker polled.
const FETCH_TICK: Duration = Duration::from_millis(100);
/// How often expired tokens are dropped from the cache, in seconds.
const SWEEP_SECONDS: u64 = 10;

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

/// One per VM (one per Envoy worker): owns the parsed configuration, the counters, the
/// worker's state lent to each request, and the fetching of issuers' keys.
#[derive(Default)]
struct Root {
    config: Option<Rc<Config>>,
    worker: Rc<RefCell<WorkerState>>,
    metrics: Rc<Metrics>,
    fetcher: Rc<RefCell<KeyFetcher>>,
    /// The revocation feed's poller, when the configuration has one.
    feed: Option<FeedPoller>,
    last_sweep: u64,
}

/// The host's clock since the unix epoch.
fn unix_time() -> Duration {
    hostcalls::get_current_time()
        .unwrap_or(UNIX_EPOCH)
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn unix_millis() -> u64 {
    u64::try_from(unix_time().as_millis()).unwrap_or(u64::MAX)
}

impl Root {
    /// Decides the held requests again, with the keys there are, and lets them on or answers
    /// them; one whose keys came but lack its `kid` is held again (till its own deadline)
    /// when a fetch could bring it and `may_hold`. A request whose client left is skipped.
    fn decide_held(&self, held: Vec<Held>, may_hold: bool) {
        let Some(config) = &self.config else {
            return;
        };
        for request in held {
            // A request its body got refused has been answered already.
            if !request.held.replace(false) {
                continue;
            }
            if hostcalls::set_effective_context(request.context_id).is_err() {
                continue;
            }
            let (Ok(mut worker), Ok(mut fetcher)) =
                (self.worker.try_borrow_mut(), self.fetcher.try_borrow_mut())
            else {
                continue;
            };
            let count = |c| self.metrics.count(c);
            let decide = |worker: &mut WorkerState, may_wait| {
                host::on_request_headers(
                    &CurrentRequest,
                    config,
                    worker,
                    request.stream_ends,
                    may_wait,
                    count,
                )
                .verdict
            };
            let mut verdict = decide(&mut worker, may_hold);
            if let Verdict::Wait(wait) = verdict {
                let waiting = Waiting {
                    why: wait.why,
                    seen: worker.issuer_keys.version(wait.issuer),
                    ..request.waiting
                };
                let now = unix_millis();
                if fetcher.worth_holding(wait.issuer, &waiting, &worker, now) {
                    let (id, ends) = (request.context_id, request.stream_ends);
                    fetcher.hold(id, wait.issuer, waiting, ends, request.held);
                    continue;
                }
                verdict = decide(&mut worker, false);
            }
            if verdict == Verdict::Continue {
                let _ = hostcalls::resume_http_request();
            }
        }
    }
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body_size: usize, _: usize) {
        let status = if headers == 0 {
            None
        } else {
            // As bytes: the SDK's string getter panics on a value that is not UTF-8, and a
            // panic here would take the VM down.
            hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status")
                .ok()
                .flatten()
                .and_then(|status| String::from_utf8(status).ok())
        };
        let answered = {
            let (Ok(mut fetcher), Ok(mut worker)) =
                (self.fetcher.try_borrow_mut(), self.worker.try_borrow_mut())
            else {
                return;
            };
            if let Some(feed) = &mut self.feed {
                if feed.on_response(token, status.clone(), body_size, &mut worker, unix_millis()) {
                    return;
                }
            }
            let now = unix_millis();
            fetcher
                .on_response(token, status, body_size, &mut worker, now)
                .map(|(issuer, _)| fetcher.take_ready(Some(issuer), &worker, now))
        };
        if let Some(held) = answered {
            self.decide_held(held, true);
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        follow_log_level();
        if self.metrics.ids.is_empty() {
            self.metrics = Rc::new(Metrics::define());
        }
        let json = self.get_plugin_configuration().unwrap_or_default();
        let loaded = match Config::parse(&json, &|name| std::env::var(name).ok()) {
            Ok(config) => {
                info!(
                    "tollgate {} configured: {}",
                    tollgate_core::VERSION,
                    config.summary()
                );
                for warning in config.warnings() {
                    warn!("tollgate: {warning}");
                }
                // Requests held under the old configuration are decided under it, now.
                let held = std::mem::take(&mut self.fetcher.borrow_mut().held);
                self.decide_held(held, false);
                let fetcher = KeyFetcher::new(&config);
                // What the worker remembered belongs to the old configuration; the
                // revocation list is the process's (shared), with its age.
                let mut worker = WorkerState::default();
                let skew = config.issuers.clock_skew;
                self.feed = config
                    .revocation
                    .as_ref()
                    .map(|feed| FeedPoller::new(feed, skew, &mut worker, unix_millis()));
                let fetches = fetcher.fetches_keys() || self.feed.is_some();
                self.set_tick_period(if fetches { FETCH_TICK } else { TICK });
                self.fetcher = Rc::new(RefCell::new(fetcher));
                self.config = Some(Rc::new(config));
                self.worker = Rc::new(RefCell::new(worker));
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
        follow_log_level();
        self.metrics.flush();
        let now = unix_millis();
        let held = {
            let (Ok(mut fetcher), Ok(mut worker)) =
                (self.fetcher.try_borrow_mut(), self.worker.try_borrow_mut())
            else {
                return;
            };
            if let Some(config) = &self.config {
                if now / 1000 >= self.last_sweep + SWEEP_SECONDS {
                    self.last_sweep = now / 1000;
                    worker.sweep(config, now / 1000);
                }
            }
            if let Some(feed) = &mut self.feed {
                feed.tick(&mut worker, now);
            }
            fetcher.tick(&mut worker, now)
        };
        self.decide_held(held, true);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream {
            context_id,
            config: self.config.clone(),
            worker: Rc::clone(&self.worker),
            metrics: Rc::clone(&self.metrics),
            fetcher: Rc::clone(&self.fetcher),
            held: None,
            form: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One per request.
struct Stream {
    context_id: u32,
    config: Option<Rc<Config>>,
    worker: Rc<RefCell<WorkerState>>,
    metrics: Rc<Metrics>,
    fetcher: Rc<RefCell<KeyFetcher>>,
    /// Set while the request is held for an issuer's keys: its body and trailers wait too
    /// (letting them on would let the request on).
    held: Option<Rc<Cell<bool>>>,
    /// A form body being read for credential fields (see [`Stream::read_form`]).
    form: Option<FormBody>,
}

impl Stream {
    fn is_held(&self) -> bool {
        self.held.as_ref().is_some_and(|h| h.get())
    }
}

impl Context for Stream {}

/// The request of the host's current (effective) context: the stream's own callbacks, and a
/// held request that the root context decides again.
struct CurrentRequest;

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
}

/// A proxy-wasm status as the core's [`HostError`]. (proxy-wasm 0.2's calls that change a
/// request panic on a status they do not expect rather than return it: the VM then traps,
/// and Envoy fails the request closed.)
fn refused(status: Status) -> HostError {
    HostError(format!("{status:?}"))
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
        let after = host::on_request_headers(
            &CurrentRequest,
            &config,
            &mut worker,
            end_of_stream,
            true,
            count,
        );
        // A form body follows: it is read before any of it goes on. (The headers cannot wait
        // for it: a paused header callback gets no body callbacks until it is resumed.)
        self.form = after.body.filter(|_| !end_of_stream).map(|scan| FormBody {
            scan,
            read: 0,
            streaming: false,
        });
        match after.verdict {
            Verdict::Continue => {
                #[cfg(feature = "test-trap")]
                trap_if_marked(self);
                HostAction::Continue
            }
            Verdict::Answered => HostAction::Pause,
            Verdict::Wait(wait) => {
                let Ok(mut fetcher) = self.fetcher.try_borrow_mut() else {
                    return HostAction::Pause;
                };
                let now = unix_millis();
                let waiting = KeyFetcher::waiting(wait, &worker, now);
                if fetcher.worth_holding(wait.issuer, &waiting, &worker, now) {
                    let held = Rc::new(Cell::new(true));
                    fetcher.hold(
                        self.context_id,
                        wait.issuer,
                        waiting,
                        end_of_stream,
                        Rc::clone(&held),
                    );
                    self.held = Some(held);
                    return HostAction::Pause;
                }
                // No fetch can bring the keys soon: decided now with the keys there are.
                let count = |c| metrics.count(c);
                match host::on_request_headers(
                    &CurrentRequest,
                    &config,
                    &mut worker,
                    end_of_stream,
                    false,
                    count,
                )
                .verdict
                {
                    Verdict::Continue => HostAction::Continue,
                    Verdict::Answered | Verdict::Wait(_) => HostAction::Pause,
                }
            }
        }
    }

    fn on_http_request_body(&mut self, size: usize, end_of_stream: bool) -> HostAction {
        if let Some(action) = self.read_form(size, end_of_stream) {
            return action;
        }
        if self.is_held() {
            HostAction::Pause
        } else {
            HostAction::Continue
        }
    }

    fn on_http_request_trailers(&mut self, _trailers: usize) -> HostAction {
        if let Some(config) = &self.config {
            for (name, _) in self.get_http_request_trailers_bytes() {
                if tollgate_core::decision::trailer_is_removed(config, &name) {
                    self.remove_http_request_trailer(&name);
                }
            }
        }
        // Trailers end a body whose last chunk did not say so.
        if self.read_form(0, true) == Some(HostAction::Pause) {
            return HostAction::Pause;
        }
        if self.is_held() {
            HostAction::Pause
        } else {
            HostAction::Continue
        }
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
