//! Fetching the sign-in provider's discovery document (`oidc.discovery`) through the host,
//! once per process, like the issuers' keys ([`super::issuer_keys`]): the worker whose
//! compare-and-swap takes the shared record's lease fetches; a good document that differs
//! from the stored one is stored and bumps the version; every worker installs the endpoints
//! of a newer version. Fetched again every hour; retried with a growing pause while it fails
//! (the endpoints installed keep serving). Until a worker has endpoints, a browser that is to
//! sign in, and a callback, get a 503 page.

use std::cell::Cell;
use std::rc::Rc;

use super::calls::{self, answer_body, count, define, read_record, take_lease, update_record};
use super::root_host::{Level, MetricKind, RootHost};
use crate::config::Config;
use crate::fetch::FetchRecord;
use crate::oidc::config::{ClusterEndpoint, Endpoints, Oidc};
use crate::oidc::discovery::{self, MAX_DOCUMENT_BYTES, REFRESH_MS};
use crate::worker::WorkerState;

/// The discovery of one configuration.
pub struct Discoverer {
    /// The configuration, whose `oidc` has a discovery.
    config: Rc<Config>,
    document: ClusterEndpoint,
    record_key: String,
    body_key: String,
    /// The fetch in flight: its call and when it started.
    in_flight: Option<(u32, u64)>,
    /// The newest stored version this worker tried to install (a stored document it cannot
    /// use is tried once).
    seen_version: Cell<u64>,
    /// The installed version.
    installed: Cell<u64>,
    fetched: Option<u32>,
    failed: Option<u32>,
}

impl Discoverer {
    /// The discovery of `config`'s sign-in, when it has one; `worker` installs what the
    /// process fetched.
    pub fn new(
        host: &impl RootHost,
        config: &Rc<Config>,
        worker: &mut WorkerState,
    ) -> Option<Discoverer> {
        let oidc = config.oidc.as_ref()?;
        let document = oidc.discovery.clone()?;
        // The issuer is part of the key: a configuration of another issuer (a trailing `/`,
        // another scheme) never takes a document stored for this one.
        let base = format!(
            "tollgate.discovery|{}|{}|{}|{}|{}",
            oidc.cluster, document.https, document.authority, document.path, oidc.issuer_id
        );
        let discoverer = Discoverer {
            config: Rc::clone(config),
            record_key: format!("{base}|record"),
            body_key: format!("{base}|document"),
            document,
            in_flight: None,
            seen_version: Cell::new(0),
            installed: Cell::new(0),
            fetched: define(host, MetricKind::Counter, "tollgate.oidc.discovery_fetched"),
            failed: define(host, MetricKind::Counter, "tollgate.oidc.discovery_failed"),
        };
        calls::create_record(host, &discoverer.record_key);
        discoverer.install_newer(host, worker);
        Some(discoverer)
    }

    fn oidc(&self) -> Option<&Oidc> {
        self.config.oidc.as_ref()
    }

    /// The tick (`now` in unix milliseconds): installs a newer document, and starts the
    /// fetch when it is due and this worker takes the lease.
    pub fn tick(&mut self, host: &impl RootHost, worker: &mut WorkerState, now: u64) {
        self.install_newer(host, worker);
        if !host.fetches() || self.in_flight.is_some() {
            return;
        }
        let leased = take_lease(host, &self.record_key, &|record| {
            record
                .due(now, REFRESH_MS, false)
                .map(|reason| record.leased(now, reason))
        });
        if !leased {
            return;
        }
        let (Some(oidc), document) = (self.oidc(), &self.document) else {
            return;
        };
        let call = calls::get(
            host,
            &oidc.cluster,
            &document.authority,
            &document.path,
            document.https,
        );
        match call {
            Ok(token) => self.in_flight = Some((token, now)),
            Err(status) => self.failed(
                host,
                &format!(
                    "could not start through cluster \"{}\" ({status}); is the cluster defined?",
                    oidc.cluster.escape_default()
                ),
            ),
        }
    }

    /// A fetch's answer; `false` when the call is not this discoverer's.
    pub fn on_response(
        &mut self,
        host: &impl RootHost,
        token: u32,
        (status, body_size): (Option<&str>, usize),
        worker: &mut WorkerState,
        now: u64,
    ) -> bool {
        let Some((_, started)) = self.in_flight.filter(|(call, _)| *call == token) else {
            return false;
        };
        self.in_flight = None;
        let Some(oidc) = self.config.oidc.as_ref() else {
            return true;
        };
        let fetched = answer_body(host, status, body_size, MAX_DOCUMENT_BYTES).and_then(|body| {
            discovery::endpoints(oidc, &body)
                .map(|endpoints| (body, endpoints))
                .map_err(|why| format!("was refused: the document {why}"))
        });
        let (body, endpoints) = match fetched {
            Ok(fetched) => fetched,
            Err(why) => {
                self.failed(host, &why);
                return true;
            }
        };
        count(host, self.fetched);
        let (record, _) = read_record(host, &self.record_key);
        let stored = host
            .shared_get(&self.body_key)
            .ok()
            .and_then(|(body, _)| body);
        let changed = record.version == 0 || stored.as_deref() != Some(body.as_slice());
        if changed {
            let _ = host.shared_set(&self.body_key, &body, None);
        }
        let written = update_record(host, &self.record_key, &|record| {
            record.fetched(now, started, changed)
        });
        if let Some(record) = written {
            // Installed when newer than this worker's (the same document again is not).
            self.seen_version.set(record.version);
            self.install(host, worker, Rc::new(endpoints), record.version);
        }
        true
    }

    /// Installs the document another worker stored, when it is newer than this worker's.
    fn install_newer(&self, host: &impl RootHost, worker: &mut WorkerState) {
        let (record, _) = read_record(host, &self.record_key);
        if record.version <= self.installed.get() || record.version <= self.seen_version.get() {
            return;
        }
        self.seen_version.set(record.version);
        let Ok((Some(body), _)) = host.shared_get(&self.body_key) else {
            return;
        };
        let Some(oidc) = self.oidc() else {
            return;
        };
        if let Ok(endpoints) = discovery::endpoints(oidc, &body) {
            self.install(host, worker, Rc::new(endpoints), record.version);
        }
    }

    fn install(
        &self,
        host: &impl RootHost,
        worker: &mut WorkerState,
        endpoints: Rc<Endpoints>,
        version: u64,
    ) {
        if version <= self.installed.get() {
            return;
        }
        self.installed.set(version);
        host.log(
            Level::Info,
            &format!("tollgate: sign-in: the provider's endpoints discovered (version {version})"),
        );
        worker.discovered = Some(endpoints);
    }

    /// Ends the lease of a fetch that failed for `why`, counted; logged the first time, then
    /// less and less often while it keeps failing.
    fn failed(&mut self, host: &impl RootHost, why: &str) {
        self.in_flight = None;
        count(host, self.failed);
        let record = update_record(host, &self.record_key, &FetchRecord::failed);
        let failures = record.map_or(1, |r| r.failures);
        if failures.is_power_of_two() {
            let serving = if self.installed.get() == 0 {
                "browsers cannot sign in yet (503)"
            } else {
                "the endpoints discovered before keep serving"
            };
            host.log(
                Level::Warn,
                &format!(
                    "tollgate: sign-in: the discovery document {why} ({failures} failures in a row); {serving}"
                ),
            );
        }
    }
}
