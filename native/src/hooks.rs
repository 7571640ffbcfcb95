//! The hooks Envoy calls (every one it requires of an HTTP filter module, and the
//! configuration's scheduler and call answers). Each runs inside [`guarded`]: a panic fails
//! the request closed (503 `FILTER_UNAVAILABLE`, counted, logged once) and never reaches Envoy.
#![allow(unsafe_code)]
// The hooks' signatures are Envoy's; their pointers are checked for null before use.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use std::ffi::c_char;
use std::mem::ManuallyDrop;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tollgate_core::lifecycle::Step;

use crate::abi::{
    self, ConfigEnvoy, ConfigModule, EnvoyBuffer, EnvoyHeader, FilterEnvoy, FilterModule,
};
use crate::config::NativeConfig;
use crate::guard::{self, guarded};
use crate::stream::{self, EnvoyRequest, Stream};
use crate::{main_thread, ticker, worker};

/// The module's stream object behind Envoy's pointer.
fn stream<'a>(module: FilterModule) -> Option<&'a Stream> {
    // SAFETY: Envoy hands back the pointer `on_http_filter_new` made, until its destroy.
    unsafe { module.cast::<Stream>().as_ref() }
}

/// The configuration behind Envoy's pointer (not taken: Envoy still holds it).
fn config(module: ConfigModule) -> Option<ManuallyDrop<Arc<NativeConfig>>> {
    let ptr = module.cast::<NativeConfig>();
    // SAFETY: made by `Arc::into_raw` in the configuration's hook, alive until its destroy.
    (!ptr.is_null()).then(|| ManuallyDrop::new(unsafe { Arc::from_raw(ptr) }))
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const c_char {
    guard::install_panic_hook();
    abi::ABI_VERSION.as_ptr()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    envoy: ConfigEnvoy,
    _name: EnvoyBuffer,
    config: EnvoyBuffer,
) -> ConfigModule {
    guarded(
        || {
            // SAFETY: Envoy's buffer, valid during this hook.
            let json = unsafe { abi::copy(config.ptr, config.length) };
            let Some((filter, metrics, _tick)) = main_thread::configure(envoy, &json) else {
                return std::ptr::null();
            };
            let config = Arc::new(NativeConfig::new(envoy, json, metrics));
            main_thread::adopt(config.id, filter);
            // SAFETY: Envoy's live configuration, on the main thread.
            let scheduler = unsafe {
                abi::envoy_dynamic_module_callback_http_filter_config_scheduler_new(envoy)
            };
            if !scheduler.is_null() {
                ticker::add_config(config.id, scheduler);
            }
            Arc::into_raw(config).cast()
        },
        std::ptr::null,
    )
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(module: ConfigModule) {
    guarded(
        || {
            if let Some(config) = config(module) {
                let config = ManuallyDrop::into_inner(config);
                config.destroyed.store(true, Ordering::Release);
                ticker::remove_config(config.id);
                main_thread::forget(config.id);
            }
        },
        || (),
    );
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_scheduled(
    envoy: ConfigEnvoy,
    module: ConfigModule,
    _event: u64,
) {
    guarded(
        || {
            if let Some(config) = config(module) {
                main_thread::tick(config.id, envoy);
                config.publish_counts();
            }
        },
        || (),
    );
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_callout_done(
    envoy: ConfigEnvoy,
    module: ConfigModule,
    callout_id: u64,
    result: u32,
    headers: *const EnvoyHeader,
    headers_size: usize,
    chunks: *const EnvoyBuffer,
    chunks_size: usize,
) {
    guarded(
        || {
            if let Some(config) = config(module) {
                let ok = result == abi::CALLOUT_SUCCESS;
                // SAFETY: Envoy's arrays of these lengths, valid during this hook.
                unsafe {
                    main_thread::answered(
                        config.id,
                        envoy,
                        callout_id,
                        ok,
                        (headers, headers_size),
                        (chunks, chunks_size),
                    );
                }
            }
        },
        || (),
    );
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_new(
    module: ConfigModule,
    _envoy: FilterEnvoy,
) -> FilterModule {
    guarded(
        || {
            let Some(config) = config(module) else {
                return std::ptr::null();
            };
            let Some(worker) = worker::filter_for(&config) else {
                return std::ptr::null();
            };
            Box::into_raw(Box::new(Stream::new(worker))).cast()
        },
        std::ptr::null,
    )
}

/// Runs a request callback of `module`'s stream; a panic fails the request closed.
fn request_callback(
    envoy: FilterEnvoy,
    module: FilterModule,
    stop: u32,
    callback: impl FnOnce(&Stream, &EnvoyRequest) -> Step,
    status: impl FnOnce(Step) -> u32,
) -> u32 {
    let Some(stream) = stream(module) else {
        return stop;
    };
    let request = EnvoyRequest::new(envoy);
    guarded(
        || {
            let step = callback(stream, &request);
            stream.after(envoy, step);
            status(step)
        },
        || {
            stream.worker.config.count_panic();
            request.fail();
            stop
        },
    )
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    envoy: FilterEnvoy,
    module: FilterModule,
    end_of_stream: bool,
) -> u32 {
    let stop = abi::HEADERS_STOP_ITERATION;
    request_callback(
        envoy,
        module,
        stop,
        |stream, request| {
            stream.worker.tick_if_due(false);
            let Ok(mut flow) = stream.flow.try_borrow_mut() else {
                request.fail();
                return Step::Pause;
            };
            let step = flow.on_headers(request, &stream.worker.host(), end_of_stream);
            #[cfg(feature = "test-trap")]
            if step == Step::Continue {
                trap_if_marked(request);
            }
            step
        },
        |step| match step {
            Step::Continue => abi::HEADERS_CONTINUE,
            Step::Pause => stop,
        },
    )
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    envoy: FilterEnvoy,
    module: FilterModule,
    end_of_stream: bool,
) -> u32 {
    // Held or read, the body waits in Envoy's buffer; past the buffer's limit Envoy stops
    // reading from the client (as for the .wasm) rather than answering 413.
    let stop = abi::BODY_STOP_ITERATION_AND_WATERMARK;
    request_callback(
        envoy,
        module,
        stop,
        |stream, request| {
            let buffers = request.body_buffers();
            let size = buffers.iter().map(|b| b.length).sum();
            // SAFETY: Envoy's buffers of this hook, read before any change.
            let read = |start, len| unsafe { stream::read_range(&buffers, start, len) };
            match stream.flow.try_borrow_mut() {
                Ok(mut flow) => flow.on_body(request, size, end_of_stream, read),
                Err(_) => Step::Pause,
            }
        },
        |step| match step {
            Step::Continue => abi::BODY_CONTINUE,
            Step::Pause => stop,
        },
    )
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(
    envoy: FilterEnvoy,
    module: FilterModule,
) -> u32 {
    let stop = abi::TRAILERS_STOP_ITERATION;
    request_callback(
        envoy,
        module,
        stop,
        |stream, request| {
            let names: Vec<String> = request
                .headers(abi::REQUEST_TRAILER)
                .into_iter()
                .map(|(name, _)| stream::name_text(name))
                .collect();
            let remove = |name: &str| request.remove_trailer(name);
            match stream.flow.try_borrow_mut() {
                Ok(mut flow) => flow.on_trailers(request, &names, remove),
                Err(_) => Step::Pause,
            }
        },
        |step| match step {
            Step::Continue => abi::TRAILERS_CONTINUE,
            Step::Pause => stop,
        },
    )
}

/// The upstream's response: a session refreshed while the request waited gets its new
/// cookies.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    envoy: FilterEnvoy,
    module: FilterModule,
    _end_of_stream: bool,
) -> u32 {
    if let Some(stream) = stream(module) {
        let request = EnvoyRequest::new(envoy);
        guarded(
            || {
                if let Ok(mut flow) = stream.flow.try_borrow_mut() {
                    for header in flow.take_response_headers() {
                        request.change_response(&header);
                    }
                }
            },
            || stream.worker.config.count_panic(),
        );
    }
    abi::HEADERS_CONTINUE
}

/// The answer to the call a request made to the OpenID provider (`result` 0: Envoy got an
/// answer): the request is answered.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_callout_done(
    envoy: FilterEnvoy,
    module: FilterModule,
    _callout_id: u64,
    result: u32,
    headers: *const EnvoyHeader,
    headers_size: usize,
    chunks: *const EnvoyBuffer,
    chunks_size: usize,
) {
    let Some(stream) = stream(module) else {
        return;
    };
    let request = EnvoyRequest::new(envoy);
    guarded(
        || {
            let ok = result == abi::CALLOUT_SUCCESS;
            // SAFETY: Envoy's arrays of these lengths, valid during this hook.
            let (status, body) = unsafe {
                stream::callout_answer(ok, (headers, headers_size), (chunks, chunks_size))
            };
            if let Ok(mut flow) = stream.flow.try_borrow_mut() {
                flow.on_call_answer(&request, status.as_deref(), &body);
            }
        },
        || {
            stream.worker.config.count_panic();
            request.fail();
        },
    );
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
    _envoy: FilterEnvoy,
    module: FilterModule,
    _event: u64,
) {
    if let Some(stream) = stream(module) {
        guarded(|| stream.woken(), || stream.worker.config.count_panic());
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
    _envoy: FilterEnvoy,
    module: FilterModule,
) {
    if let Some(stream) = stream(module) {
        guarded(|| stream.worker.report(), || ());
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_destroy(module: FilterModule) {
    if module.is_null() {
        return;
    }
    guarded(
        || {
            // SAFETY: made by `Box::into_raw` in `on_http_filter_new`; Envoy destroys once.
            let stream = unsafe { Box::from_raw(module.cast::<Stream>().cast_mut()) };
            stream.end();
        },
        || (),
    );
}

/// Test builds only (`--features test-trap`, never in a release): a request let on that
/// carries `x-tollgate-test-trap` panics after its identity headers are set, so that a test
/// proves the request fails closed and Envoy stays up.
#[cfg(feature = "test-trap")]
#[allow(clippy::panic)]
fn trap_if_marked(request: &EnvoyRequest) {
    if request
        .headers(abi::REQUEST_HEADER)
        .iter()
        .any(|(name, _)| name == b"x-tollgate-test-trap")
    {
        panic!("test trap");
    }
}
