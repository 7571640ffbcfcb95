//! What the key fetcher ([`super::issuer_keys`]) and the revocation feed's poller
//! ([`super::revocation_feed`]) share: the shared record of a source (written by
//! compare-and-swap), the GET through a cluster, the reading of its answer, and metrics.

use super::root_host::{MetricKind, RootHost};
use crate::fetch::{FetchRecord, FETCH_TIMEOUT_MS};

/// Tries at a compare-and-swap write before giving up (another worker keeps writing).
const CAS_TRIES: usize = 8;

/// The shared record and its compare-and-swap value; a fresh record when there is none.
pub fn read_record(host: &impl RootHost, key: &str) -> (FetchRecord, Option<u32>) {
    match host.shared_get(key) {
        Ok((Some(bytes), cas)) => (FetchRecord::decode(&bytes).unwrap_or_default(), cas),
        Ok((None, cas)) => (FetchRecord::default(), cas),
        Err(_) => (FetchRecord::default(), None),
    }
}

/// Creates the record when there is none. The main thread configures before the workers
/// start: the record then exists when they race for its first lease.
pub fn create_record(host: &impl RootHost, key: &str) {
    if let Ok((None, _)) = host.shared_get(key) {
        let fresh = FetchRecord::default().encode();
        let _ = host.shared_set(key, fresh.as_bytes(), None);
    }
}

/// Writes `next(record)` over the current record, by compare-and-swap; the record written,
/// or `None` when other workers kept writing. (`dyn`: one body for every caller.)
pub fn update_record(
    host: &impl RootHost,
    key: &str,
    next: &dyn Fn(FetchRecord) -> FetchRecord,
) -> Option<FetchRecord> {
    for _ in 0..CAS_TRIES {
        let (record, cas) = read_record(host, key);
        let written = next(record);
        if host
            .shared_set(key, written.encode().as_bytes(), cas)
            .is_ok()
        {
            return Some(written);
        }
    }
    None
}

/// Takes the lease when `due(record)`: one compare-and-swap, which fails when another worker
/// took it first; whether this worker holds it.
pub fn take_lease(
    host: &impl RootHost,
    key: &str,
    due: &dyn Fn(&FetchRecord) -> Option<FetchRecord>,
) -> bool {
    let (record, cas) = read_record(host, key);
    let Some(leased) = due(&record) else {
        return false;
    };
    host.shared_set(key, leased.encode().as_bytes(), cas)
        .is_ok()
}

/// Sends `GET path` through `cluster`; the call's id, or the host's refusal.
pub fn get(
    host: &impl RootHost,
    cluster: &str,
    authority: &str,
    path: &str,
    https: bool,
) -> Result<u32, &'static str> {
    let headers = [
        (":method", "GET"),
        (":path", path),
        (":authority", authority),
        (":scheme", if https { "https" } else { "http" }),
        ("accept", "application/json"),
        ("user-agent", "tollgate"),
    ];
    host.http_get(cluster, &headers, FETCH_TIMEOUT_MS)
        .map_err(|e| e.0)
}

/// The `:status` of the call answer being handled: none when the call failed or timed out
/// (no headers), or when it is not text (read as bytes: a status that is not UTF-8 must not
/// take the worker down).
pub fn answer_status(host: &impl RootHost, headers: usize) -> Option<String> {
    if headers == 0 {
        return None;
    }
    host.answer_header(":status")
        .and_then(|status| String::from_utf8(status).ok())
}

/// The body of a call's answer with `status` (none when the call failed or timed out) and
/// a body of `body_size` bytes: read only when it is a 200 of at most `max` bytes; else why
/// not, for the log.
pub fn answer_body(
    host: &impl RootHost,
    status: Option<&str>,
    body_size: usize,
    max: usize,
) -> Result<Vec<u8>, String> {
    match status {
        Some("200") if body_size <= max => Ok(host.answer_body(body_size).unwrap_or_default()),
        Some("200") => Err(format!("answered {body_size} bytes, more than {max}")),
        Some(status) if !from_upstream(host) => Err(format!(
            "got no answer (Envoy's own {}: {})",
            status.escape_default(),
            envoy_reason(host, body_size)
        )),
        Some(status) => Err(format!("answered status {}", status.escape_default())),
        None => Err(format!(
            "got no answer within {FETCH_TIMEOUT_MS} ms, or the connection failed"
        )),
    }
}

/// Whether the answer came from the source: Envoy's router marks every upstream answer with
/// `x-envoy-upstream-service-time`; its own replies (no host, connection failure, timeout)
/// lack it.
fn from_upstream(host: &impl RootHost) -> bool {
    host.answer_header("x-envoy-upstream-service-time")
        .is_some()
}

/// The first line of Envoy's own reply ("upstream connect error … reset reason: connection
/// failure", "no healthy upstream"), visible ASCII only, at most 160 bytes.
fn envoy_reason(host: &impl RootHost, body_size: usize) -> String {
    let body = host.answer_body(body_size.min(160)).unwrap_or_default();
    let line: String = body
        .iter()
        .take_while(|b| **b != b'\n')
        .map(|b| {
            if b.is_ascii_graphic() || *b == b' ' {
                char::from(*b)
            } else {
                '?'
            }
        })
        .collect();
    if line.is_empty() {
        "no reason given".into()
    } else {
        line
    }
}

/// Defines a metric; `None` when the host refused it (it is then not counted).
pub fn define(host: &impl RootHost, kind: MetricKind, name: &str) -> Option<u32> {
    host.define_metric(kind, name).ok()
}

/// Adds `by` to a counter.
pub fn add(host: &impl RootHost, metric: Option<u32>, by: usize) {
    if let (Some(id), Ok(by)) = (metric, i64::try_from(by)) {
        if by > 0 {
            let _ = host.increment_metric(id, by);
        }
    }
}

/// Adds one to a counter.
pub fn count(host: &impl RootHost, metric: Option<u32>) {
    add(host, metric, 1);
}

/// Sets a gauge.
pub fn gauge(host: &impl RootHost, metric: Option<u32>, value: u64) {
    if let Some(id) = metric {
        let _ = host.record_metric(id, value);
    }
}
