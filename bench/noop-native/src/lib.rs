//! The do-nothing native module of `make bench`: the hooks Envoy 1.40 requires of an HTTP
//! filter module (ABI v0.2.0), each letting the stream on without a call into Envoy. What
//! Envoy spends on it is the floor of any dynamic module: its per-stream filter object and
//! the hooks' calls. It imports no callback.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_void};

type Ptr = *const c_void;

/// Envoy's buffer (`envoy_dynamic_module_type_envoy_buffer`), by value.
#[repr(C)]
pub struct Buffer {
    ptr: Ptr,
    length: usize,
}

/// A non-null object for Envoy to hand back (never read).
static OBJECT: u8 = 0;

fn object() -> Ptr {
    std::ptr::addr_of!(OBJECT).cast()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const c_char {
    c"v0.2.0".as_ptr()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    _envoy: Ptr,
    _name: Buffer,
    _config: Buffer,
) -> Ptr {
    object()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_new(_config: Ptr, _envoy: Ptr) -> Ptr {
    object()
}

/// Hooks that return a status: 0 is Continue for headers, body and trailers alike.
macro_rules! continue_hooks {
    ($($name:ident($($arg:ident: $ty:ty),*)),* $(,)?) => {$(
        #[no_mangle]
        pub extern "C" fn $name($($arg: $ty),*) -> u32 {
            0
        }
    )*};
}

continue_hooks!(
    envoy_dynamic_module_on_http_filter_request_headers(_e: Ptr, _m: Ptr, _end: bool),
    envoy_dynamic_module_on_http_filter_request_body(_e: Ptr, _m: Ptr, _end: bool),
    envoy_dynamic_module_on_http_filter_request_trailers(_e: Ptr, _m: Ptr),
    envoy_dynamic_module_on_http_filter_response_headers(_e: Ptr, _m: Ptr, _end: bool),
    envoy_dynamic_module_on_http_filter_response_body(_e: Ptr, _m: Ptr, _end: bool),
    envoy_dynamic_module_on_http_filter_response_trailers(_e: Ptr, _m: Ptr),
);

/// Hooks with nothing to return.
macro_rules! empty_hooks {
    ($($name:ident($($arg:ident: $ty:ty),*)),* $(,)?) => {$(
        #[no_mangle]
        pub extern "C" fn $name($($arg: $ty),*) {}
    )*};
}

empty_hooks!(
    envoy_dynamic_module_on_http_filter_config_destroy(_m: Ptr),
    envoy_dynamic_module_on_http_filter_config_scheduled(_e: Ptr, _m: Ptr, _ev: u64),
    envoy_dynamic_module_on_http_filter_config_http_callout_done(
        _e: Ptr, _m: Ptr, _id: u64, _r: u32, _h: Ptr, _hs: usize, _c: Ptr, _cs: usize
    ),
    envoy_dynamic_module_on_http_filter_scheduled(_e: Ptr, _m: Ptr, _ev: u64),
    envoy_dynamic_module_on_http_filter_stream_complete(_e: Ptr, _m: Ptr),
    envoy_dynamic_module_on_http_filter_destroy(_m: Ptr),
    envoy_dynamic_module_on_http_filter_http_callout_done(
        _e: Ptr, _m: Ptr, _id: u64, _r: u32, _h: Ptr, _hs: usize, _c: Ptr, _cs: usize
    ),
    envoy_dynamic_module_on_http_filter_http_stream_headers(
        _e: Ptr, _m: Ptr, _id: u64, _h: Ptr, _hs: usize, _end: bool
    ),
    envoy_dynamic_module_on_http_filter_http_stream_data(
        _e: Ptr, _m: Ptr, _id: u64, _c: Ptr, _cs: usize, _end: bool
    ),
    envoy_dynamic_module_on_http_filter_http_stream_trailers(
        _e: Ptr, _m: Ptr, _id: u64, _h: Ptr, _hs: usize
    ),
    envoy_dynamic_module_on_http_filter_http_stream_complete(_e: Ptr, _m: Ptr, _id: u64),
    envoy_dynamic_module_on_http_filter_http_stream_reset(_e: Ptr, _m: Ptr, _id: u64, _r: u32),
    envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
        _e: Ptr, _m: Ptr
    ),
    envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
        _e: Ptr, _m: Ptr
    ),
);
