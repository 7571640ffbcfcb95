//! What the key fetcher ([`crate::issuer_keys`]) and the revocation feed's poller
//! ([`crate::revocation_feed`]) share: the shared record of a source (proxy-wasm shared data,
//! written by compare-and-swap), the GET through a cluster, and the reading of its answer.

use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, Status};

use tollgate_core::fetch::{FetchRecord, FETCH_TIMEOUT_MS};

/// Tries at a compare-and-swap write before giving up (another worker keeps writing).
const CAS_TRIES: usize = 8;

/// The shared record and its compare-and-swap value; a fresh record when there is none.
pub fn read_record(key: &str) -> (FetchRecord, Option<u32>) {
    match hostcalls::get_shared_data(key) {
        Ok((Some(bytes), cas)) => (FetchRecord::decode(&bytes).unwrap_or_default(), cas),
        Ok((None, cas)) => (FetchRecord::default(), cas),
        Err(_) => (FetchRecord::default(), None),
    }
}

/// Creates the record when there is none. The main thread configures before the workers
/// start: the record then exists when they race for its first lease.
pub fn create_record(key: &str) {
    if let Ok((None, _)) = hostcalls::get_shared_data(key) {
        let fresh = FetchRecord::default().encode();
        let _ = hostcalls::set_shared_data(key, Some(fresh.as_bytes()), None);
    }
}

/// Writes `next(record)` over the current record, by compare-and-swap; the record written,
/// or `None` when other workers kept writing.
pub fn update_record(key: &str, next: impl Fn(FetchRecord) -> FetchRecord) -> Option<FetchRecord> {
    for _ in 0..CAS_TRIES {
        let (record, cas) = read_record(key);
        let written = next(record);
        if hostcalls::set_shared_data(key, Some(written.encode().as_bytes()), cas).is_ok() {
            return Some(written);
        }
    }
    None
}

/// Takes the lease when `due(record)`: one compare-and-swap, which fails when another worker
/// took it first; whether this worker holds it.
pub fn take_lease(key: &str, due: impl Fn(&FetchRecord) -> Option<FetchRecord>) -> bool {
    let (record, cas) = read_record(key);
    let Some(leased) = due(&record) else {
        return false;
    };
    hostcalls::set_shared_data(key, Some(leased.encode().as_bytes()), cas).is_ok()
}

/// Sends `GET path` through `cluster`; the call's token.
pub fn get(cluster: &str, authority: &str, path: &str, https: bool) -> Result<u32, Status> {
    let headers = vec![
        (":method", "GET"),
        (":path", path),
        (":authority", authority),
        (":scheme", if https { "https" } else { "http" }),
        ("accept", "application/json"),
        ("user-agent", "tollgate"),
    ];
    hostcalls::dispatch_http_call(
        cluster,
        headers,
        None,
        vec![],
        Duration::from_millis(FETCH_TIMEOUT_MS),
    )
}

/// The body of a call's answer with `status` (none when the call failed or timed out) and
/// a body of `body_size` bytes: read only when it is a 200 of at most `max` bytes; else why
/// not, for the log.
pub fn answer_body(status: Option<&str>, body_size: usize, max: usize) -> Result<Vec<u8>, String> {
    match status {
        Some("200") if body_size <= max => {
            Ok(
                hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
            )
        }
        Some("200") => Err(format!("answered {body_size} bytes, more than {max}")),
        Some(status) if !from_upstream() => Err(format!(
            "got no answer (Envoy's own {}: {})",
            status.escape_default(),
            envoy_reason(body_size)
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
fn from_upstream() -> bool {
    matches!(
        hostcalls::get_map_value_bytes(
            MapType::HttpCallResponseHeaders,
            "x-envoy-upstream-service-time"
        ),
        Ok(Some(_))
    )
}

/// The first line of Envoy's own reply ("upstream connect error … reset reason: connection
/// failure", "no healthy upstream"), visible ASCII only, at most 160 bytes.
fn envoy_reason(body_size: usize) -> String {
    let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size.min(160))
        .ok()
        .flatten()
        .unwrap_or_default();
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

/// Adds one to a counter.
pub fn count(metric: Option<u32>) {
    if let Some(id) = metric {
        let _ = hostcalls::increment_metric(id, 1);
    }
}

/// Sets a gauge.
pub fn gauge(metric: Option<u32>, value: u64) {
    if let Some(id) = metric {
        let _ = hostcalls::record_metric(id, value);
    }
}
