//! The host calls of a worker's root context: what the lifecycle ([`super::Filter`]) asks of
//! its host, so that key fetching, the revocation feed's polls and held requests run natively
//! in tests against a fake host. The proxy-wasm adapter implements [`RootHost`]; a native
//! Envoy adapter implements the same trait.

use crate::host::{Host, HostError};

/// What a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
}

/// The level of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// A request held by the filter, made current again by [`RootHost::held_request`]: decided
/// through its [`Host`], then let on.
pub trait HeldRequest: Host {
    /// Lets the request on.
    fn resume(&self) -> Result<(), HostError>;
}

/// The calls a worker's root context makes.
pub trait RootHost {
    /// A held request, made current.
    type Request: HeldRequest;

    /// Sends `GET` with `headers` through `cluster`, answered within `timeout_ms`; the call's
    /// id, which its answer ([`super::Filter::on_call_answer`]) carries.
    fn http_get(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        timeout_ms: u64,
    ) -> Result<u32, HostError>;
    /// A header of the call answer being handled, as bytes.
    fn answer_header(&self, name: &str) -> Option<Vec<u8>>;
    /// At most `max` bytes of the body of the call answer being handled.
    fn answer_body(&self, max: usize) -> Option<Vec<u8>>;

    /// The process's shared value of `key` and its compare-and-swap token.
    fn shared_get(&self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), HostError>;
    /// Writes `key`, unless another write came since `cas` (when given).
    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), HostError>;

    /// Defines a metric; its id.
    fn define_metric(&self, kind: MetricKind, name: &str) -> Result<u32, HostError>;
    fn increment_metric(&self, id: u32, by: i64) -> Result<(), HostError>;
    fn record_metric(&self, id: u32, value: u64) -> Result<(), HostError>;

    /// The held request of `context_id`, made the current one; `None` when it is gone (its
    /// client left).
    fn held_request(&self, context_id: u32) -> Option<Self::Request>;

    /// Whether this root context fetches issuers' keys and polls the revocation feed. In
    /// proxy-wasm every worker may (one takes the shared lease); a native Envoy's workers
    /// only install what its main thread fetched, and mark the `kid`s their held requests
    /// wait for.
    fn fetches(&self) -> bool {
        true
    }

    /// The host's clock, in unix milliseconds.
    fn now_ms(&self) -> u64;
    fn log(&self, level: Level, line: &str);
}
