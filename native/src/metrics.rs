//! Counters and gauges in Envoy's stats, through the filter configuration (thread-safe):
//! defined while Envoy creates the configuration (it refuses new stats afterwards), then
//! counted from any worker. Names are the `.wasm`'s; with `metrics_namespace: wasmcustom` in
//! the module's configuration the stats read the same as the `.wasm`'s.
#![allow(unsafe_code)]

use tollgate_core::host::HostError;
use tollgate_core::lifecycle::MetricKind;

use crate::abi::{self, ConfigEnvoy, ModuleBuffer};

/// Defines a metric of `config`; its id.
pub fn define(config: ConfigEnvoy, kind: MetricKind, name: &str) -> Result<u32, HostError> {
    let mut id = 0usize;
    let name = ModuleBuffer::of(name.as_bytes());
    // SAFETY: `config` is Envoy's live configuration (this runs in its creation hook); no
    // labels; `id` outlives the call.
    let result = unsafe {
        match kind {
            MetricKind::Counter => {
                abi::envoy_dynamic_module_callback_http_filter_config_define_counter(
                    config,
                    name,
                    std::ptr::null_mut(),
                    0,
                    &mut id,
                )
            }
            MetricKind::Gauge => {
                abi::envoy_dynamic_module_callback_http_filter_config_define_gauge(
                    config,
                    name,
                    std::ptr::null_mut(),
                    0,
                    &mut id,
                )
            }
        }
    };
    if result != abi::METRICS_SUCCESS {
        return Err(HostError("metric refused"));
    }
    u32::try_from(id).map_err(|_| HostError("metric id out of range"))
}

/// Adds `by` to counter `id`.
pub fn increment(config: ConfigEnvoy, id: u32, by: u64) -> Result<(), HostError> {
    // SAFETY: called from a hook of a stream or of the configuration, while Envoy keeps the
    // configuration alive.
    let result = unsafe {
        abi::envoy_dynamic_module_callback_http_filter_config_increment_counter(
            config,
            id as usize,
            std::ptr::null_mut(),
            0,
            by,
        )
    };
    (result == abi::METRICS_SUCCESS)
        .then_some(())
        .ok_or(HostError("counter refused"))
}

/// Sets gauge `id` to `value`.
pub fn set_gauge(config: ConfigEnvoy, id: u32, value: u64) -> Result<(), HostError> {
    // SAFETY: as for `increment`.
    let result = unsafe {
        abi::envoy_dynamic_module_callback_http_filter_config_set_gauge(
            config,
            id as usize,
            std::ptr::null_mut(),
            0,
            value,
        )
    };
    (result == abi::METRICS_SUCCESS)
        .then_some(())
        .ok_or(HostError("gauge refused"))
}
