//! What a worker's root context does between requests, written against its host calls
//! ([`RootHost`]) so that it runs natively in tests: the configuration's loading, the
//! counters handed over on the tick, the sweep of the token cache, the issuers' key fetches
//! ([`issuer_keys`]), the revocation feed's polls ([`revocation_feed`]), the sign-in
//! provider's discovery ([`Discoverer`]), and the requests
//! held for keys, decided again when they come ([`Filter::on_call_answer`],
//! [`Filter::tick`]). Each request's callbacks are a [`RequestFlow`].
//!
//! The proxy-wasm adapter implements [`RootHost`] and [`crate::host::Host`] and forwards its
//! callbacks here; it holds no logic.

mod calls;
mod counters;
mod discovery;
pub mod issuer_keys;
pub mod revocation_feed;
mod root_host;
mod stream;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

pub use counters::Counters;
pub use discovery::Discoverer;
pub use issuer_keys::{Held, KeyFetcher, MAX_HELD};
pub use revocation_feed::FeedPoller;
pub use root_host::{HeldRequest, Level, MetricKind, RootHost};
pub use stream::{RequestFlow, ResponseHeader, Step};

use crate::config::Config;
use crate::held::Waiting;
use crate::host::{self, Verdict};
use crate::metrics::Counter;
use crate::worker::WorkerState;

/// How often counters are handed to the host.
pub const TICK: Duration = Duration::from_secs(1);
/// The tick when issuers' keys or the revocation feed are fetched: how soon a held request
/// sees keys another worker fetched, and a worker the list another worker polled.
pub const FETCH_TICK: Duration = Duration::from_millis(100);
/// The most held requests decided in one callback (answered or let on): deciding thousands
/// at once nests as many calls of the host into the filter (in proxy-wasm, V8 ran out of
/// stack at a few hundred).
pub const MAX_DECIDED_PER_CALL: usize = 64;
/// How often expired tokens are dropped from the cache, in seconds.
const SWEEP_SECONDS: u64 = 10;

/// One per worker (one per VM in proxy-wasm): the parsed configuration, the counters, the
/// worker's state lent to each request, the fetching of issuers' keys and the feed's polls.
#[derive(Default)]
pub struct Filter {
    config: Option<Rc<Config>>,
    worker: Rc<RefCell<WorkerState>>,
    counters: Rc<Counters>,
    fetcher: Rc<RefCell<KeyFetcher>>,
    /// The revocation feed's poller, when the configuration has one.
    feed: Option<FeedPoller>,
    /// The sign-in provider's discovery, when the configuration asks for it.
    discovery: Option<Discoverer>,
    last_sweep: u64,
}

impl Filter {
    /// Loads the configuration `json` (`env` reads the VM's environment): the tick period
    /// the host is to set, or `None` when it is refused (the previous one keeps serving).
    /// Requests held under the old configuration are decided under it first.
    pub fn configure(
        &mut self,
        host: &impl RootHost,
        json: &[u8],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Duration> {
        if !self.counters.defined() {
            self.counters = Rc::new(Counters::define(host));
        }
        let loaded = match Config::parse(json, env) {
            Ok(config) => {
                host.log(
                    Level::Info,
                    &format!(
                        "tollgate {} configured: {}",
                        crate::VERSION,
                        config.summary()
                    ),
                );
                for warning in config.warnings() {
                    host.log(Level::Warn, &format!("tollgate: {warning}"));
                }
                let held = std::mem::take(&mut self.fetcher.borrow_mut().held);
                self.decide_held(host, held, false);
                let fetcher = KeyFetcher::new(host, &config);
                // What the worker remembered belongs to the old configuration; the
                // revocation list is the process's (shared), with its age.
                let mut worker = WorkerState::default();
                let skew = config.issuers.clock_skew;
                let now = host.now_ms();
                self.feed = config
                    .revocation
                    .as_ref()
                    .map(|feed| FeedPoller::new(host, feed, skew, &mut worker, now));
                let config = Rc::new(config);
                self.discovery = Discoverer::new(host, &config, &mut worker);
                // Requests held for a session's refresh are woken on the tick too.
                let fetches = fetcher.fetches_keys()
                    || self.feed.is_some()
                    || self.discovery.is_some()
                    || config.oidc.is_some();
                self.fetcher = Rc::new(RefCell::new(fetcher));
                self.config = Some(config);
                self.worker = Rc::new(RefCell::new(worker));
                self.counters.count(Counter::ConfigLoaded);
                Some(if fetches { FETCH_TICK } else { TICK })
            }
            Err(e) => {
                host.log(
                    Level::Error,
                    &format!("tollgate {}: configuration refused: {e}", crate::VERSION),
                );
                self.counters.count(Counter::ConfigFailed);
                None
            }
        };
        // Configuration counts are flushed now: a refused configuration may get no tick.
        self.counters.flush(host);
        loaded
    }

    /// The tick: hands the counts over, sweeps the token cache, polls the feed, fetches keys
    /// and decides the held requests that are ready.
    pub fn tick(&mut self, host: &impl RootHost) {
        self.counters.flush(host);
        let now = host.now_ms();
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
            let (dropped, line) = worker.dropped_roles.take();
            self.counters.add(Counter::RoleDropped, dropped);
            if let Some(line) = line {
                host.log(Level::Warn, &line);
            }
            if let Some(feed) = &mut self.feed {
                feed.tick(host, &mut worker, now);
            }
            if let Some(discovery) = &mut self.discovery {
                discovery.tick(host, &mut worker, now);
            }
            fetcher.tick(host, &mut worker, now)
        };
        self.decide_held(host, held, true);
    }

    /// Hands over now, rather than on the next tick, what requests left to report: the roles
    /// a provider's token named that no header could carry (counted, and one line), and the
    /// counts. A host without a tick per worker does it when a request ends.
    pub fn report(&self, host: &impl RootHost) {
        if let Ok(mut worker) = self.worker.try_borrow_mut() {
            let (dropped, line) = worker.dropped_roles.take();
            self.counters.add(Counter::RoleDropped, dropped);
            if let Some(line) = line {
                host.log(Level::Warn, &line);
            }
        }
        self.counters.flush(host);
    }

    /// The answer to call `token` (its headers and body size): a key fetch's or a feed poll's.
    pub fn on_call_answer(
        &mut self,
        host: &impl RootHost,
        token: u32,
        headers: usize,
        body_size: usize,
    ) {
        let status = calls::answer_status(host, headers);
        let answered = {
            let (Ok(mut fetcher), Ok(mut worker)) =
                (self.fetcher.try_borrow_mut(), self.worker.try_borrow_mut())
            else {
                return;
            };
            if let Some(feed) = &mut self.feed {
                let now = host.now_ms();
                if feed.on_response(host, token, status.as_deref(), body_size, &mut worker, now) {
                    return;
                }
            }
            if let Some(discovery) = &mut self.discovery {
                let now = host.now_ms();
                let answer = (status.as_deref(), body_size);
                if discovery.on_response(host, token, answer, &mut worker, now) {
                    return;
                }
            }
            let now = host.now_ms();
            fetcher
                .on_response(host, token, status, body_size, &mut worker, now)
                .map(|(issuer, _)| fetcher.take_ready(host, Some(issuer), &worker, now))
        };
        if let Some(held) = answered {
            self.decide_held(host, held, true);
        }
    }

    /// The callbacks of request `context_id`, with what it shares with this worker.
    pub fn request(&self, context_id: u32) -> RequestFlow {
        RequestFlow::new(
            context_id,
            self.config.clone(),
            Rc::clone(&self.worker),
            Rc::clone(&self.counters),
            Rc::clone(&self.fetcher),
        )
    }

    /// Decides the held requests again, with the keys there are, and lets them on or answers
    /// them; one whose keys came but lack its `kid` is held again (till its own deadline)
    /// when a fetch could bring it and `may_hold`. A request whose client left is skipped.
    fn decide_held(&self, host: &impl RootHost, mut held: Vec<Held>, may_hold: bool) {
        let Some(config) = &self.config else {
            return;
        };
        // Each answer or resumption re-enters the host for that request (Envoy runs the
        // request's filters, and in proxy-wasm calls the VM again, nested): at most
        // MAX_DECIDED_PER_CALL per callback, the rest on the next tick, in the order they came.
        // (Under the old configuration, on a reload, all at once: its fetcher goes.)
        if may_hold && held.len() > MAX_DECIDED_PER_CALL {
            let later = held.split_off(MAX_DECIDED_PER_CALL);
            if let Ok(mut fetcher) = self.fetcher.try_borrow_mut() {
                let waiting = std::mem::replace(&mut fetcher.held, later);
                fetcher.held.extend(waiting);
            }
        }
        for request in held {
            // A request its body got refused has been answered already.
            if !request.held.replace(false) {
                continue;
            }
            let Some(current) = host.held_request(request.context_id) else {
                continue;
            };
            let (Ok(mut worker), Ok(mut fetcher)) =
                (self.worker.try_borrow_mut(), self.fetcher.try_borrow_mut())
            else {
                continue;
            };
            let count = |c| self.counters.count(c);
            let decide = |worker: &mut WorkerState, may_wait| {
                host::on_request_headers(
                    &current,
                    config,
                    worker,
                    request.stream_ends,
                    may_wait,
                    count,
                )
            };
            let mut after = decide(&mut worker, may_hold);
            if let Verdict::Wait(wait) = after.verdict {
                let waiting = Waiting {
                    why: wait.why,
                    seen: worker.issuer_keys.version(wait.issuer),
                    ..request.waiting
                };
                let now = host.now_ms();
                if fetcher.worth_holding(host, wait.issuer, &waiting, &worker, now) {
                    let (id, ends) = (request.context_id, request.stream_ends);
                    let with = (request.held, request.handed);
                    fetcher.hold(host, id, wait.issuer, waiting, ends, with);
                    continue;
                }
                after = decide(&mut worker, false);
            }
            if after.verdict == Verdict::WaitRefresh {
                // Its wait is over: decided as it is.
                after = decide(&mut worker, false);
            }
            if let Ok(mut handed) = request.handed.try_borrow_mut() {
                handed.cookies = std::mem::take(&mut after.cookies);
                handed.pending = after.pending.take();
            }
            if after.verdict == Verdict::Continue {
                let _ = current.resume();
            }
        }
    }
}
