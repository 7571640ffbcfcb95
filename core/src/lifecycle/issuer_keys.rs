//! Fetching the issuers' keys (`jwks_uri`) through the host, once per process, and the
//! requests held while they are fetched.
//!
//! Every worker's root context runs this on its tick. The shared record of each key source
//! ([`FetchRecord`], in the host's shared data) says whether a fetch is due; the worker whose
//! compare-and-swap takes the lease fetches ([`RootHost::http_get`]) and, when the keys differ
//! from those installed, stores the body and bumps the version; every worker installs the
//! keys of a newer version and decides again the requests it held for them. When to fetch
//! is [`crate::fetch`]'s, when a held request is decided [`crate::held`]'s.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use super::calls::{
    self, add, answer_body, count, define, gauge, read_record, take_lease, update_record,
};
use super::root_host::{Level, MetricKind, RootHost};
use crate::config::Config;
use crate::decision::KeyWait;
use crate::fetch::{FetchReason, FetchRecord, MAX_WAIT_MS};
use crate::held::Waiting;
use crate::oidc::renewed::{OldCookies, Refresh};
use crate::verify::issuer::{KeysNeeded, RemoteKeys};
use crate::verify::jwks::{Algorithm, KeySet, MAX_JWKS_BYTES};
use crate::worker::WorkerState;

/// The most requests one worker holds at once; beyond, requests are decided at once.
pub const MAX_HELD: usize = 4096;

/// One issuer's fetched keys: where they come from and what is counted about them.
struct Source {
    issuer: usize,
    name: Rc<str>,
    remote: RemoteKeys,
    algorithms: Vec<Algorithm>,
    record_key: String,
    keys_key: String,
    /// When a request last waited for a `kid` the keys lack, on a worker that does not fetch
    /// ([`RootHost::fetches`]): the fetching root context fetches for it too.
    wanted_key: String,
    metrics: SourceMetrics,
    /// The newest stored version this worker tried to install (a stored body it cannot use,
    /// such as keys of algorithms this configuration does not allow, is tried once).
    seen_version: Cell<u64>,
}

/// Per-issuer counters (`tollgate.issuer_keys.<what>.<issuer name>`) and the keys gauge.
struct SourceMetrics {
    fetched: Option<u32>,
    failed: Option<u32>,
    unknown_kid: Option<u32>,
    skipped: Option<u32>,
    waited: Option<u32>,
    loaded: Option<u32>,
}

impl SourceMetrics {
    fn define(host: &impl RootHost, name: &str) -> SourceMetrics {
        let define =
            |kind, what: &str| define(host, kind, &format!("tollgate.issuer_keys.{what}.{name}"));
        SourceMetrics {
            fetched: define(MetricKind::Counter, "fetched"),
            failed: define(MetricKind::Counter, "fetch_failed"),
            unknown_kid: define(MetricKind::Counter, "unknown_kid_fetches"),
            skipped: define(MetricKind::Counter, "skipped"),
            waited: define(MetricKind::Counter, "requests_held"),
            loaded: define(MetricKind::Gauge, "loaded"),
        }
    }
}

/// A request held for keys.
pub struct Held {
    pub context_id: u32,
    pub issuer: usize,
    /// What it waits for, since when, until when (unix milliseconds).
    pub waiting: Waiting,
    pub stream_ends: bool,
    /// Shared with the request's context: while set, its body and trailers are held too.
    pub held: Rc<Cell<bool>>,
    /// Shared with the request's context: what deciding it again handed back.
    pub handed: Rc<RefCell<Handed>>,
    /// Set for a request held for another request's refresh of its session: the session's
    /// cookies.
    pub refresh: Option<OldCookies>,
}

/// What a held request, decided again, hands back to its context: a renewed session's
/// cookies for the upstream's response, or the call to the provider it now waits for.
#[derive(Default)]
pub struct Handed {
    pub cookies: Vec<String>,
    pub pending: Option<crate::oidc::flow::Pending>,
}

/// What a held request shares with its context: whether it is held, and what it is handed.
pub type HeldWith = (Rc<Cell<bool>>, Rc<RefCell<Handed>>);

/// The key sources of one configuration, the fetches in flight and the held requests.
#[derive(Default)]
pub struct KeyFetcher {
    sources: Vec<Source>,
    /// Fetches in flight: the call's token, the source's position and when it started.
    in_flight: HashMap<u32, (usize, u64)>,
    pub held: Vec<Held>,
}

impl KeyFetcher {
    /// The sources of `config`'s fetched issuers; their counters are defined here.
    pub fn new(host: &impl RootHost, config: &Config) -> KeyFetcher {
        let sources: Vec<Source> = config
            .issuers
            .list
            .iter()
            .enumerate()
            .filter_map(|(index, issuer)| {
                let remote = issuer.remote()?.clone();
                let base = format!("tollgate.jwks|{}|{}", remote.cluster, remote.uri);
                Some(Source {
                    issuer: index,
                    name: Rc::clone(&issuer.name),
                    algorithms: issuer.algorithms.clone(),
                    record_key: format!("{base}|record"),
                    keys_key: format!("{base}|keys"),
                    wanted_key: format!("{base}|kid_wanted"),
                    metrics: SourceMetrics::define(host, &issuer.name),
                    seen_version: Cell::new(0),
                    remote,
                })
            })
            .collect();
        for source in &sources {
            calls::create_record(host, &source.record_key);
        }
        KeyFetcher {
            sources,
            ..KeyFetcher::default()
        }
    }

    /// Whether any key is fetched (the tick then runs often enough to wake held requests).
    pub fn fetches_keys(&self) -> bool {
        !self.sources.is_empty()
    }

    fn source_of(&self, issuer: usize) -> Option<&Source> {
        self.sources.iter().find(|s| s.issuer == issuer)
    }

    /// What a request that came at `now` and `wait`s, decided with `worker`'s keys, would
    /// wait for.
    pub fn waiting(wait: KeyWait, worker: &WorkerState, now: u64) -> Waiting {
        Waiting {
            why: wait.why,
            since: now,
            deadline: now.saturating_add(MAX_WAIT_MS),
            seen: worker.issuer_keys.version(wait.issuer),
        }
    }

    /// Whether a request of `issuer` that waits as `waiting` should be held at `now` rather
    /// than decided at once ([`Waiting::ready`] says when it is decided).
    pub fn worth_holding(
        &self,
        host: &impl RootHost,
        issuer: usize,
        waiting: &Waiting,
        worker: &WorkerState,
        now: u64,
    ) -> bool {
        if self.held.len() >= MAX_HELD {
            return false;
        }
        let Some(source) = self.source_of(issuer) else {
            return false;
        };
        let (record, _) = read_record(host, &source.record_key);
        !waiting.ready(&record, worker.issuer_keys.version(issuer), now)
    }

    /// Holds a request of `issuer` until [`Waiting::ready`]; `held` is shared with the
    /// request's context (set while held).
    pub fn hold(
        &mut self,
        host: &impl RootHost,
        context_id: u32,
        issuer: usize,
        waiting: Waiting,
        stream_ends: bool,
        (held, handed): HeldWith,
    ) {
        if let Some(source) = self.source_of(issuer) {
            count(host, source.metrics.waited);
        }
        held.set(true);
        self.held.push(Held {
            context_id,
            issuer,
            waiting,
            stream_ends,
            held,
            handed,
            refresh: None,
        });
    }

    /// Holds a request (`context_id`, no body) until another request's refresh of its
    /// session (`old`: its cookies) is answered, or until `deadline` (unix milliseconds) at
    /// the latest.
    pub fn hold_for_refresh(
        &mut self,
        context_id: u32,
        old: OldCookies,
        (now, deadline): (u64, u64),
        (held, handed): HeldWith,
    ) -> bool {
        if self.held.len() >= MAX_HELD {
            return false;
        }
        held.set(true);
        self.held.push(Held {
            context_id,
            issuer: usize::MAX,
            waiting: Waiting {
                why: KeysNeeded::NeverFetched,
                since: now,
                deadline,
                seen: 0,
            },
            stream_ends: true,
            held,
            handed,
            refresh: Some(old),
        });
        true
    }

    /// The tick: installs newer keys, starts the fetches that are due, and returns the held
    /// requests to decide now (their keys came, no fetch can help them, or their time is up).
    pub fn tick(&mut self, host: &impl RootHost, worker: &mut WorkerState, now: u64) -> Vec<Held> {
        let mut started: Vec<(u32, (usize, u64))> = Vec::new();
        for (position, source) in self.sources.iter().enumerate() {
            let issuer = source.issuer;
            let (record, _) = read_record(host, &source.record_key);
            let seen = &source.seen_version;
            if record.version > worker.issuer_keys.version(issuer) && record.version > seen.get() {
                seen.set(record.version);
                source.install_shared(host, worker, record.version);
            }
            let installed = worker.issuer_keys.version(issuer);
            let kid_wanted = self
                .held
                .iter()
                .any(|h| h.issuer == issuer && h.waiting.wants_kid_fetch(&record, installed, now));
            if !host.fetches() {
                if kid_wanted {
                    let _ = host.shared_set(&source.wanted_key, now.to_string().as_bytes(), None);
                }
                continue;
            }
            let kid_wanted = kid_wanted || source.wanted_elsewhere(host, now);
            if let Some(reason) = record.due(now, source.refresh_ms(), kid_wanted) {
                if let Some(token) = source.start_fetch(host, reason, worker, now) {
                    started.push((token, (position, now)));
                }
            }
        }
        self.in_flight.extend(started);
        self.take_ready(host, None, worker, now)
    }

    /// Takes the held requests (of `issuer`, or all) that are decided now.
    pub fn take_ready(
        &mut self,
        host: &impl RootHost,
        issuer: Option<usize>,
        worker: &WorkerState,
        now: u64,
    ) -> Vec<Held> {
        let records: Vec<(usize, FetchRecord)> = self
            .sources
            .iter()
            .filter(|s| issuer.is_none_or(|i| i == s.issuer))
            .map(|s| (s.issuer, read_record(host, &s.record_key).0))
            .collect();
        let ready = |h: &Held| match &h.refresh {
            // Until the other request's refresh is answered (or its time is up).
            Some(old) => {
                let refresh = worker.renewed.get(old.jar(), now / 1000);
                now >= h.waiting.deadline || !matches!(refresh, Some(Refresh::InFlight))
            }
            None => records.iter().any(|(i, record)| {
                *i == h.issuer && h.waiting.ready(record, worker.issuer_keys.version(*i), now)
            }),
        };
        let (done, waiting): (Vec<Held>, Vec<Held>) =
            std::mem::take(&mut self.held).into_iter().partition(ready);
        self.held = waiting;
        done
    }

    /// A fetch's answer: `status` (none when the call failed or timed out) and the body's
    /// size, read only when it is a 200 within [`MAX_JWKS_BYTES`]. Returns the issuer and
    /// whether new keys were installed; `None` when the call is not one of this fetcher's.
    pub fn on_response(
        &mut self,
        host: &impl RootHost,
        token: u32,
        status: Option<String>,
        body_size: usize,
        worker: &mut WorkerState,
        now: u64,
    ) -> Option<(usize, bool)> {
        let (position, started) = self.in_flight.remove(&token)?;
        let source = self.sources.get(position)?;
        let fetched = answer_body(host, status.as_deref(), body_size, MAX_JWKS_BYTES);
        let parsed = fetched.and_then(|body| {
            KeySet::parse(&body, &source.algorithms)
                .map(|set| (body, set))
                .map_err(|e| format!("was refused: {e}"))
        });
        match parsed {
            Ok((body, set)) => {
                add(host, source.metrics.skipped, set.skipped);
                let fetched = Fetched {
                    body: &body,
                    set: &set,
                    started,
                };
                if let Some(record) = source.finish(host, Some(fetched), worker, now) {
                    source.seen_version.set(record.version);
                    source.install(host, worker, set, record.version);
                }
                Some((source.issuer, true))
            }
            Err(why) => {
                let record = source.finish(host, None, worker, now);
                let failures = record.map_or(1, |r| r.failures);
                // The first failure, then fewer and fewer lines while the source stays down.
                if failures.is_power_of_two() {
                    let serving = if record.map_or(0, |r| r.version) == 0 {
                        "no keys loaded yet: requests get 503 KEYS_UNAVAILABLE"
                    } else {
                        "the last keys keep serving"
                    };
                    host.log(
                        Level::Warn,
                        &format!(
                            "tollgate: issuer {}: the key fetch {why} ({failures} failures in a row); {serving}",
                            source.name
                        ),
                    );
                }
                Some((source.issuer, false))
            }
        }
    }
}

/// A good fetch's answer: the body stored for the other workers, its keys, and when the
/// fetch started.
struct Fetched<'a> {
    body: &'a [u8],
    set: &'a KeySet,
    started: u64,
}

impl Source {
    /// Whether a worker that does not fetch held a request for a `kid` the keys lack within
    /// the longest wait.
    fn wanted_elsewhere(&self, host: &impl RootHost, now: u64) -> bool {
        let Ok((Some(bytes), _)) = host.shared_get(&self.wanted_key) else {
            return false;
        };
        std::str::from_utf8(&bytes)
            .ok()
            .and_then(|t| t.parse::<u64>().ok())
            .is_some_and(|at| now < at.saturating_add(MAX_WAIT_MS))
    }

    fn refresh_ms(&self) -> u64 {
        self.remote.refresh_seconds.saturating_mul(1000)
    }

    /// Takes the lease on the record at `now`, then starts the fetch; the call's token.
    fn start_fetch(
        &self,
        host: &impl RootHost,
        reason: FetchReason,
        worker: &WorkerState,
        now: u64,
    ) -> Option<u32> {
        let unknown_kid = reason == FetchReason::UnknownKid;
        let leased = take_lease(host, &self.record_key, &|record| {
            record
                .due(now, self.refresh_ms(), unknown_kid)
                .map(|_| record.leased(now, reason))
        });
        if !leased {
            return None;
        }
        if unknown_kid {
            count(host, self.metrics.unknown_kid);
        }
        let https = self.remote.uri.starts_with("https://");
        let remote = &self.remote;
        match calls::get(
            host,
            &remote.cluster,
            &remote.authority,
            &remote.path,
            https,
        ) {
            Ok(token) => Some(token),
            Err(status) => {
                let failures = self
                    .finish(host, None, worker, now)
                    .map_or(1, |r| r.failures);
                if failures.is_power_of_two() {
                    host.log(
                        Level::Warn,
                        &format!(
                            "tollgate: issuer {}: the key fetch could not start through cluster \"{}\" ({status}, {failures} failures in a row); is the cluster defined?",
                            self.name,
                            remote.cluster.escape_default()
                        ),
                    );
                }
                None
            }
        }
    }

    /// Ends the lease and counts the fetch. A good fetch whose keys differ from those of
    /// the record's version (the worker's, when it holds that version) is stored and bumps
    /// the version; the same keys again change nothing but the time. Returns the record
    /// written, if it could be.
    fn finish(
        &self,
        host: &impl RootHost,
        fetched: Option<Fetched<'_>>,
        worker: &WorkerState,
        now: u64,
    ) -> Option<FetchRecord> {
        count(
            host,
            if fetched.is_some() {
                self.metrics.fetched
            } else {
                self.metrics.failed
            },
        );
        let Some(fetched) = fetched else {
            return update_record(host, &self.record_key, &FetchRecord::failed);
        };
        let installed = worker.issuer_keys.version(self.issuer);
        let same = |record: &FetchRecord| {
            record.version == installed
                && worker
                    .issuer_keys
                    .get(self.issuer)
                    .is_some_and(|keys| keys.same_keys(fetched.set))
        };
        let (record, _) = read_record(host, &self.record_key);
        if !same(&record) {
            let _ = host.shared_set(&self.keys_key, fetched.body, None);
        }
        update_record(host, &self.record_key, &|record| {
            record.fetched(now, fetched.started, !same(&record))
        })
    }

    /// Installs the keys another worker stored, at `version`.
    fn install_shared(&self, host: &impl RootHost, worker: &mut WorkerState, version: u64) {
        let Ok((Some(body), _)) = host.shared_get(&self.keys_key) else {
            return;
        };
        if let Ok(set) = KeySet::parse(&body, &self.algorithms) {
            self.install(host, worker, set, version);
        }
    }

    fn install(&self, host: &impl RootHost, worker: &mut WorkerState, set: KeySet, version: u64) {
        gauge(host, self.metrics.loaded, set.keys.len() as u64);
        if version > worker.issuer_keys.version(self.issuer) {
            let line = if set.keys.is_empty() {
                (
                    Level::Warn,
                    format!(
                        "tollgate: issuer {}: the provider's JWKS holds no usable key ({} skipped): its tokens are refused until it does",
                        self.name, set.skipped
                    ),
                )
            } else {
                (
                    Level::Info,
                    format!(
                        "tollgate: issuer {}: {} keys loaded ({} skipped), version {version}",
                        self.name,
                        set.keys.len(),
                        set.skipped
                    ),
                )
            };
            host.log(line.0, &line.1);
            worker.issuer_keys.install(self.issuer, set, version);
        }
    }
}
