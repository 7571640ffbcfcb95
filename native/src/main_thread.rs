//! What Envoy's main thread does for each configuration: the configuration is loaded there
//! first (which defines its metrics, and refuses a bad one before any worker sees it), and a
//! [`Filter`] there fetches the issuers' keys and polls the revocation feed for the whole
//! process, on a tick ([`crate::ticker`]) and through the configuration's calls out of Envoy.
//! The workers install what it stores in the shared data ([`crate::shared`]).
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tollgate_core::host::HostError;
use tollgate_core::lifecycle::{Filter, Level, MetricKind, RootHost};

use crate::abi::{self, ConfigEnvoy, EnvoyBuffer, EnvoyHeader, ModuleBuffer};
use crate::config::PANICKED;
use crate::stream::EnvoyRequest;
use crate::{log, metrics, shared};

/// The answer of a call out of Envoy: its headers and body.
#[derive(Default)]
struct Answer {
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
}

/// A call's answer waiting for its filter: the configuration's id and Envoy's handle, the
/// call's token, whether Envoy got an answer, and the answer.
struct Waiting {
    id: u64,
    config: ConfigEnvoy,
    token: u32,
    ok: bool,
    answer: Answer,
}

thread_local! {
    /// The main thread's filter of each configuration, by id.
    static FILTERS: RefCell<HashMap<u64, Filter>> = RefCell::new(HashMap::new());
    /// The answer being handled.
    static ANSWER: RefCell<Answer> = RefCell::new(Answer::default());
    /// Answers that came while a filter was busy (Envoy may answer a call inside the call):
    /// handled when it is free.
    static LATER: RefCell<VecDeque<Waiting>> = const { RefCell::new(VecDeque::new()) };
}

/// The main thread's host calls for one configuration.
struct MainEnvoy<'a> {
    config: ConfigEnvoy,
    /// While the configuration is created: the metrics defined, by name.
    defined: Option<&'a RefCell<HashMap<String, u32>>>,
}

impl RootHost for MainEnvoy<'_> {
    type Request = EnvoyRequest;

    fn http_get(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        timeout_ms: u64,
    ) -> Result<u32, HostError> {
        let mut headers = abi::module_headers(headers);
        let mut id = 0u64;
        // SAFETY: on the main thread, in a hook of the live configuration; every buffer
        // outlives the call.
        let result = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_http_callout(
                self.config,
                &mut id,
                ModuleBuffer::of(cluster.as_bytes()),
                headers.as_mut_ptr(),
                headers.len(),
                ModuleBuffer::EMPTY,
                timeout_ms,
            )
        };
        abi::callout_started(result, id)
    }

    fn answer_header(&self, name: &str) -> Option<Vec<u8>> {
        ANSWER.with_borrow(|answer| {
            answer
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
                .map(|(_, value)| value.clone())
        })
    }

    fn answer_body(&self, max: usize) -> Option<Vec<u8>> {
        ANSWER.with_borrow(|answer| Some(answer.body.iter().take(max).copied().collect()))
    }

    fn shared_get(&self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), HostError> {
        Ok(shared::get(key))
    }

    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), HostError> {
        shared::set(key, value, cas)
    }

    fn define_metric(&self, kind: MetricKind, name: &str) -> Result<u32, HostError> {
        let id = metrics::define(self.config, kind, name)?;
        if let Some(defined) = self.defined {
            defined.borrow_mut().insert(name.to_owned(), id);
        }
        Ok(id)
    }

    fn increment_metric(&self, id: u32, by: i64) -> Result<(), HostError> {
        metrics::increment(self.config, id, u64::try_from(by).unwrap_or(0))
    }

    fn record_metric(&self, id: u32, value: u64) -> Result<(), HostError> {
        metrics::set_gauge(self.config, id, value)
    }

    fn held_request(&self, _context_id: u32) -> Option<EnvoyRequest> {
        None
    }

    fn now_ms(&self) -> u64 {
        crate::now_ms()
    }

    fn log(&self, level: Level, line: &str) {
        log::at(level, line);
    }
}

/// Loads `json` for Envoy's configuration `config` (in its creation hook): the main
/// thread's filter, the ids of the metrics it defined, and its tick; `None` when the
/// configuration is refused (logged, naming the key).
pub fn configure(
    config: ConfigEnvoy,
    json: &[u8],
) -> Option<(Filter, HashMap<String, u32>, Duration)> {
    let defined = RefCell::new(HashMap::new());
    let host = MainEnvoy {
        config,
        defined: Some(&defined),
    };
    let _ = host.define_metric(MetricKind::Counter, PANICKED);
    let mut filter = Filter::default();
    let env = |name: &str| std::env::var(name).ok();
    let tick = filter.configure(&host, json, &env)?;
    Some((filter, defined.into_inner(), tick))
}

/// Keeps the main thread's filter of configuration `id`.
pub fn adopt(id: u64, filter: Filter) {
    FILTERS.with_borrow_mut(|filters| filters.insert(id, filter));
}

/// Drops it, when Envoy destroys the configuration.
pub fn forget(id: u64) {
    FILTERS.with_borrow_mut(|filters| filters.remove(&id));
}

/// The tick of configuration `id`.
pub fn tick(id: u64, config: ConfigEnvoy) {
    let host = MainEnvoy {
        config,
        defined: None,
    };
    let ticked = FILTERS.with(|filters| {
        let Ok(mut filters) = filters.try_borrow_mut() else {
            return false;
        };
        if let Some(filter) = filters.get_mut(&id) {
            filter.tick(&host);
        }
        true
    });
    if ticked {
        handle_later();
    }
}

/// The answer to call `callout_id` of configuration `id` (`ok`: Envoy got an answer).
///
/// # Safety
/// The headers and chunks must be Envoy's valid arrays of the given lengths (or null).
pub unsafe fn answered(
    id: u64,
    config: ConfigEnvoy,
    callout_id: u64,
    ok: bool,
    headers: (*const EnvoyHeader, usize),
    chunks: (*const EnvoyBuffer, usize),
) {
    let mut answer = Answer::default();
    if ok {
        // SAFETY: the caller's promise.
        unsafe {
            answer.headers = crate::stream::copy_headers(headers.0, headers.1);
            for chunk in crate::stream::slice(chunks.0, chunks.1) {
                answer.body.extend(abi::copy(chunk.ptr, chunk.length));
            }
        }
    }
    let Ok(token) = u32::try_from(callout_id) else {
        return;
    };
    LATER.with_borrow_mut(|later| {
        later.push_back(Waiting {
            id,
            config,
            token,
            ok,
            answer,
        })
    });
    handle_later();
}

/// Hands the answers that came to their filters, unless the filters are busy (then the
/// hook that made them busy hands them over when it ends).
fn handle_later() {
    FILTERS.with(|filters| {
        let Ok(mut filters) = filters.try_borrow_mut() else {
            return;
        };
        while let Some(Waiting {
            id,
            config,
            token,
            ok,
            answer,
        }) = LATER.with_borrow_mut(|l| l.pop_front())
        {
            let Some(filter) = filters.get_mut(&id) else {
                continue;
            };
            let headers = if ok { answer.headers.len() } else { 0 };
            let size = answer.body.len();
            ANSWER.set(answer);
            let host = MainEnvoy {
                config,
                defined: None,
            };
            filter.on_call_answer(&host, token, headers, size);
            ANSWER.set(Answer::default());
        }
    });
}
