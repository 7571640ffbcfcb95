//! The part of Envoy's dynamic-module ABI that tollgate uses, declared by hand (no SDK).
//!
//! Envoy 1.40.0 speaks ABI `v0.2.0`. Every declaration below was written from
//! `source/extensions/dynamic_modules/abi/abi.h` of Envoy's v1.39.0 release (commit
//! 8eea3285d6bdb89f8ea34632cfe7ce1608a8f374, ABI v0.1.0, which v0.2.x keeps compatible) and is
//! the same in the 1.40 development header (commit 359861cdad48ead4b4ee1d08680ed509020d2a4e).
//! `make native-abi` checks that the pinned Envoy exports every callback the module imports
//! and that the module exports every hook Envoy requires; the end-to-end suite reads back
//! what each callback did.
//!
//! Buffers Envoy returns are valid until the current hook returns or a setter is called:
//! they are copied at once. Enumerations are C `int`s.
#![allow(unsafe_code)]

use std::ffi::c_void;

/// The ABI version this module is built for: Envoy logs "matched" when it is its own.
pub const ABI_VERSION: &std::ffi::CStr = c"v0.2.0";

/// Envoy's filter configuration (`http_filter_config_envoy_ptr`).
pub type ConfigEnvoy = *mut c_void;
/// The module's filter configuration (`http_filter_config_module_ptr`).
pub type ConfigModule = *const c_void;
/// Envoy's filter of one stream (`http_filter_envoy_ptr`), valid until the filter's destroy.
pub type FilterEnvoy = *mut c_void;
/// The module's filter of one stream (`http_filter_module_ptr`).
pub type FilterModule = *const c_void;
/// A stream's scheduler (`http_filter_scheduler_module_ptr`).
pub type StreamScheduler = *mut c_void;
/// A configuration's scheduler (`http_filter_config_scheduler_module_ptr`).
pub type ConfigScheduler = *mut c_void;

/// Bytes Envoy owns.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyBuffer {
    pub ptr: *const u8,
    pub length: usize,
}

/// Bytes the module owns, read by Envoy during the call only.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ModuleBuffer {
    pub ptr: *const u8,
    pub length: usize,
}

impl ModuleBuffer {
    pub fn of(bytes: &[u8]) -> ModuleBuffer {
        ModuleBuffer {
            ptr: bytes.as_ptr(),
            length: bytes.len(),
        }
    }

    pub const EMPTY: ModuleBuffer = ModuleBuffer {
        ptr: std::ptr::null(),
        length: 0,
    };
}

/// A header the module owns (`module_http_header`).
#[repr(C)]
pub struct ModuleHeader {
    pub key_ptr: *const u8,
    pub key_length: usize,
    pub value_ptr: *const u8,
    pub value_length: usize,
}

impl ModuleHeader {
    pub fn of(name: &str, value: &[u8]) -> ModuleHeader {
        ModuleHeader {
            key_ptr: name.as_ptr(),
            key_length: name.len(),
            value_ptr: value.as_ptr(),
            value_length: value.len(),
        }
    }
}

/// A header Envoy owns (`envoy_http_header`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyHeader {
    pub key_ptr: *const u8,
    pub key_length: usize,
    pub value_ptr: *const u8,
    pub value_length: usize,
}

impl EnvoyHeader {
    pub const EMPTY: EnvoyHeader = EnvoyHeader {
        key_ptr: std::ptr::null(),
        key_length: 0,
        value_ptr: std::ptr::null(),
        value_length: 0,
    };
}

/// `http_header_type`.
pub const REQUEST_HEADER: u32 = 0;
pub const REQUEST_TRAILER: u32 = 1;
pub const RESPONSE_HEADER: u32 = 2;
/// `http_body_type`.
pub const RECEIVED_REQUEST_BODY: u32 = 0;
pub const BUFFERED_REQUEST_BODY: u32 = 1;
/// `log_level`.
pub const LOG_DEBUG: u32 = 1;
pub const LOG_INFO: u32 = 2;
pub const LOG_WARN: u32 = 3;
pub const LOG_ERROR: u32 = 4;
pub const LOG_CRITICAL: u32 = 5;
/// `on_http_filter_request_headers_status` (and the trailers' and responses' `Continue`).
pub const HEADERS_CONTINUE: u32 = 0;
pub const HEADERS_STOP_ITERATION: u32 = 1;
/// `on_http_filter_request_body_status`.
pub const BODY_CONTINUE: u32 = 0;
pub const BODY_STOP_ITERATION_AND_WATERMARK: u32 = 2;
/// `on_http_filter_request_trailers_status`.
pub const TRAILERS_CONTINUE: u32 = 0;
pub const TRAILERS_STOP_ITERATION: u32 = 1;
/// `http_callout_init_result` and `http_callout_result`: success.
pub const CALLOUT_SUCCESS: u32 = 0;
/// `http_callout_init_result`: the cluster is not configured.
pub const CALLOUT_CLUSTER_NOT_FOUND: u32 = 2;

/// A call's headers as the ABI takes them (borrowing `headers`).
pub fn module_headers<'a>(headers: &[(&'a str, &'a str)]) -> Vec<ModuleHeader> {
    headers
        .iter()
        .map(|(name, value)| ModuleHeader::of(name, value.as_bytes()))
        .collect()
}

/// What a call's `http_callout_init_result` and the `id` Envoy gave it mean.
pub fn callout_started(result: u32, id: u64) -> Result<u32, tollgate_core::host::HostError> {
    use tollgate_core::host::HostError;
    match result {
        CALLOUT_SUCCESS => u32::try_from(id).map_err(|_| HostError("call id out of range")),
        CALLOUT_CLUSTER_NOT_FOUND => Err(HostError("ClusterNotFound")),
        _ => Err(HostError("the call could not start")),
    }
}
/// `metrics_result`: success.
pub const METRICS_SUCCESS: u32 = 0;

extern "C" {
    // Logging (abi.h l.484, l.496).
    pub fn envoy_dynamic_module_callback_log(level: u32, message: ModuleBuffer);
    pub fn envoy_dynamic_module_callback_log_enabled(level: u32) -> bool;

    // Request headers and trailers (l.1713, l.1736, l.1784, l.1760).
    pub fn envoy_dynamic_module_callback_http_get_headers_size(
        filter: FilterEnvoy,
        header_type: u32,
    ) -> usize;
    pub fn envoy_dynamic_module_callback_http_get_headers(
        filter: FilterEnvoy,
        header_type: u32,
        result_headers: *mut EnvoyHeader,
    ) -> bool;
    /// Replaces every value of `key`; an empty value removes it.
    pub fn envoy_dynamic_module_callback_http_set_header(
        filter: FilterEnvoy,
        header_type: u32,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
    /// Appends a value (false for an empty one).
    pub fn envoy_dynamic_module_callback_http_add_header(
        filter: FilterEnvoy,
        header_type: u32,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;

    // The request body (l.1926, l.1909, l.1976).
    pub fn envoy_dynamic_module_callback_http_get_body_chunks_size(
        filter: FilterEnvoy,
        body_type: u32,
    ) -> usize;
    pub fn envoy_dynamic_module_callback_http_get_body_chunks(
        filter: FilterEnvoy,
        body_type: u32,
        result_buffer_vector: *mut EnvoyBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_received_buffered_request_body(
        filter: FilterEnvoy,
    ) -> bool;

    // A local reply (l.1807), the stream's resumption (l.2920).
    pub fn envoy_dynamic_module_callback_http_send_response(
        filter: FilterEnvoy,
        status_code: u32,
        headers_vector: *mut ModuleHeader,
        headers_vector_size: usize,
        body: ModuleBuffer,
        details: ModuleBuffer,
    );
    pub fn envoy_dynamic_module_callback_http_filter_continue_decoding(filter: FilterEnvoy);

    // Filter state, read by the access log (l.2366).
    pub fn envoy_dynamic_module_callback_http_set_filter_state_bytes(
        filter: FilterEnvoy,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;

    // Schedulers: a stream's (l.2533-2565) and a configuration's, on the main thread
    // (l.2583-2611). `commit` is the only call safe from any thread.
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_new(
        filter: FilterEnvoy,
    ) -> StreamScheduler;
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_commit(
        scheduler: StreamScheduler,
        event_id: u64,
    );
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_delete(scheduler: StreamScheduler);
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_new(
        config: ConfigEnvoy,
    ) -> ConfigScheduler;
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
        scheduler: ConfigScheduler,
        event_id: u64,
    );
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_delete(
        scheduler: ConfigScheduler,
    );

    // A call through a cluster for one request (l.2697); its answer comes to the stream's
    // `on_http_filter_http_callout_done`.
    pub fn envoy_dynamic_module_callback_http_filter_http_callout(
        filter_envoy_ptr: FilterEnvoy,
        callout_id_out: *mut u64,
        cluster_name: ModuleBuffer,
        headers: *mut ModuleHeader,
        headers_size: usize,
        body: ModuleBuffer,
        timeout_milliseconds: u64,
    ) -> u32;

    // A call through a cluster from the main thread (l.2814).
    pub fn envoy_dynamic_module_callback_http_filter_config_http_callout(
        config: ConfigEnvoy,
        callout_id_out: *mut u64,
        cluster_name: ModuleBuffer,
        headers: *mut ModuleHeader,
        headers_size: usize,
        body: ModuleBuffer,
        timeout_milliseconds: u64,
    ) -> u32;

    // Metrics, defined in the configuration's hook (l.1359, l.1406, l.1536, l.1604).
    pub fn envoy_dynamic_module_callback_http_filter_config_define_counter(
        config: ConfigEnvoy,
        name: ModuleBuffer,
        label_names: *mut ModuleBuffer,
        label_names_length: usize,
        counter_id_ptr: *mut usize,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_define_gauge(
        config: ConfigEnvoy,
        name: ModuleBuffer,
        label_names: *mut ModuleBuffer,
        label_names_length: usize,
        gauge_id_ptr: *mut usize,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_increment_counter(
        config: ConfigEnvoy,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_set_gauge(
        config: ConfigEnvoy,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
}

/// The bytes of an Envoy buffer, copied; empty for a null one.
///
/// # Safety
/// `ptr` and `length` must describe memory Envoy keeps valid during the call.
pub unsafe fn copy(ptr: *const u8, length: usize) -> Vec<u8> {
    if ptr.is_null() || length == 0 {
        return Vec::new();
    }
    // SAFETY: Envoy hands a valid (ptr, length) for the duration of the hook.
    unsafe { std::slice::from_raw_parts(ptr, length) }.to_vec()
}
