//! One request's stream: the core's [`RequestFlow`] with its worker's filter, and the
//! request's host calls ([`EnvoyRequest`], the core's [`Host`]) over the ABI.
#![allow(unsafe_code)]

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use tollgate_core::host::{Host, HostError};
use tollgate_core::lifecycle::{HeldRequest, RequestFlow, ResponseHeader, Step};

use crate::abi::{self, EnvoyBuffer, EnvoyHeader, FilterEnvoy, ModuleBuffer, ModuleHeader};
use crate::worker::{self, WorkerFilter};
use crate::{log, ticker};

/// The details Envoy records for the filter's local replies (`%RESPONSE_CODE_DETAILS%`).
const DETAILS: &[u8] = b"tollgate";

static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// The module's object for one stream.
pub struct Stream {
    pub worker: Rc<WorkerFilter>,
    pub flow: RefCell<RequestFlow>,
    pub context_id: u32,
    /// Set while the ticker wakes this stream (its request is held): the registry's key.
    woken_by: Cell<Option<u64>>,
}

impl Stream {
    pub fn new(worker: Rc<WorkerFilter>) -> Stream {
        let context_id = worker::next_context_id();
        let flow = worker.filter.borrow().request(context_id);
        Stream {
            worker,
            flow: RefCell::new(flow),
            context_id,
            woken_by: Cell::new(None),
        }
    }

    /// After a callback: a request now held is remembered, and woken by the ticker.
    pub fn after(&self, envoy: FilterEnvoy, step: Step) {
        let held = step == Step::Pause && self.flow.try_borrow().is_ok_and(|f| f.is_held());
        if !held || self.woken_by.get().is_some() {
            return;
        }
        worker::hold(self.context_id, envoy);
        // SAFETY: in a hook of this stream, on its worker.
        let scheduler =
            unsafe { abi::envoy_dynamic_module_callback_http_filter_scheduler_new(envoy) };
        if !scheduler.is_null() {
            let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
            ticker::add_stream(key, scheduler);
            self.woken_by.set(Some(key));
        }
    }

    /// The ticker woke the stream: the worker ticks; a request no longer held stops being
    /// woken.
    pub fn woken(&self) {
        self.worker.tick_if_due(true);
        if !self.flow.try_borrow().is_ok_and(|f| f.is_held()) {
            self.stop_waking();
        }
    }

    pub fn stop_waking(&self) {
        if let Some(key) = self.woken_by.take() {
            ticker::remove_stream(key);
        }
    }

    /// The stream is destroyed.
    pub fn end(&self) {
        self.stop_waking();
        worker::release(self.context_id);
    }
}

/// The request of one stream, through Envoy's callbacks for it.
pub struct EnvoyRequest {
    envoy: FilterEnvoy,
}

impl EnvoyRequest {
    pub fn new(envoy: FilterEnvoy) -> EnvoyRequest {
        EnvoyRequest { envoy }
    }

    /// The names and values of the request's headers (`abi::REQUEST_HEADER`) or trailers.
    pub fn headers(&self, which: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        // SAFETY: in a hook of this stream (or of another on its worker, for a held
        // request); the array holds as many entries as Envoy said.
        unsafe {
            let count = abi::envoy_dynamic_module_callback_http_get_headers_size(self.envoy, which);
            let mut headers = vec![EnvoyHeader::EMPTY; count];
            if count == 0
                || !abi::envoy_dynamic_module_callback_http_get_headers(
                    self.envoy,
                    which,
                    headers.as_mut_ptr(),
                )
            {
                return Vec::new();
            }
            copy_headers(headers.as_ptr(), count)
        }
    }

    /// The request body Envoy holds for the filter (what earlier callbacks buffered, then
    /// this callback's chunk), as Envoy's buffers: valid until the hook returns or a header
    /// is changed.
    pub fn body_buffers(&self) -> Vec<EnvoyBuffer> {
        let mut buffers = self.buffers(abi::BUFFERED_REQUEST_BODY);
        // SAFETY: in this stream's body hook.
        if !unsafe {
            abi::envoy_dynamic_module_callback_http_received_buffered_request_body(self.envoy)
        } {
            buffers.extend(self.buffers(abi::RECEIVED_REQUEST_BODY));
        }
        buffers
    }

    fn buffers(&self, which: u32) -> Vec<EnvoyBuffer> {
        // SAFETY: in this stream's body hook; the array holds as many entries as Envoy said.
        unsafe {
            let count =
                abi::envoy_dynamic_module_callback_http_get_body_chunks_size(self.envoy, which);
            let mut buffers = vec![
                EnvoyBuffer {
                    ptr: std::ptr::null(),
                    length: 0
                };
                count
            ];
            if count == 0
                || !abi::envoy_dynamic_module_callback_http_get_body_chunks(
                    self.envoy,
                    which,
                    buffers.as_mut_ptr(),
                )
            {
                return Vec::new();
            }
            buffers
        }
    }

    /// Sets (`add`: appends) or, with an empty value, removes header `name` of `which`.
    fn change(&self, which: u32, name: &str, value: &[u8], add: bool) -> Result<(), HostError> {
        let (key, value) = (ModuleBuffer::of(name.as_bytes()), ModuleBuffer::of(value));
        // SAFETY: in a hook of this stream; the buffers outlive the call.
        let done = unsafe {
            if add {
                abi::envoy_dynamic_module_callback_http_add_header(self.envoy, which, key, value)
            } else {
                abi::envoy_dynamic_module_callback_http_set_header(self.envoy, which, key, value)
            }
        };
        done.then_some(())
            .ok_or(HostError("the header change was refused"))
    }

    /// Changes the upstream's response headers (in their hook).
    pub fn change_response(&self, header: &ResponseHeader) {
        let _ = match header {
            ResponseHeader::Add(name, value) => {
                self.change(abi::RESPONSE_HEADER, name, value.as_bytes(), true)
            }
            ResponseHeader::Set(name, value) => {
                self.change(abi::RESPONSE_HEADER, name, value.as_bytes(), false)
            }
        };
    }

    pub fn remove_trailer(&self, name: &str) -> Result<(), HostError> {
        self.change(abi::REQUEST_TRAILER, name, b"", false)
    }

    /// Fails the request closed when the filter itself failed (a panic caught): the core's
    /// 503 `FILTER_UNAVAILABLE`, as when Envoy refuses a header change.
    pub fn fail(&self) {
        let answer = tollgate_core::response::unavailable();
        let headers: Vec<(&str, &str)> = answer
            .headers
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        let _ = self.respond(answer.status, &headers, answer.body.as_bytes());
    }
}

impl Host for EnvoyRequest {
    fn request_headers(&self) -> Vec<(String, Vec<u8>)> {
        self.headers(abi::REQUEST_HEADER)
            .into_iter()
            .map(|(name, value)| (name_text(name), value))
            .collect()
    }

    /// The headers copied into one buffer (not borrowed from Envoy: the decision's edits
    /// change Envoy's header map while the headers are read).
    fn with_request_headers<R>(&self, read: impl FnOnce(&[(&str, &[u8])]) -> R) -> R {
        // SAFETY: in a hook of this stream (or of another on its worker, for a held
        // request); the array holds as many entries as Envoy said.
        let copied = unsafe {
            let count = abi::envoy_dynamic_module_callback_http_get_headers_size(
                self.envoy,
                abi::REQUEST_HEADER,
            );
            let mut headers = vec![EnvoyHeader::EMPTY; count];
            let got = count > 0
                && abi::envoy_dynamic_module_callback_http_get_headers(
                    self.envoy,
                    abi::REQUEST_HEADER,
                    headers.as_mut_ptr(),
                );
            if got {
                HeaderCopy::of(&headers)
            } else {
                HeaderCopy::default()
            }
        };
        read(&copied.views())
    }

    fn now(&self) -> u64 {
        crate::now_ms() / 1000
    }

    fn remove_header(&self, name: &str) -> Result<(), HostError> {
        self.change(abi::REQUEST_HEADER, name, b"", false)
    }

    fn set_header(&self, name: &str, value: &[u8]) -> Result<(), HostError> {
        self.change(abi::REQUEST_HEADER, name, value, false)
    }

    fn add_header(&self, name: &str, value: &[u8]) -> Result<(), HostError> {
        self.change(abi::REQUEST_HEADER, name, value, true)
    }

    /// Filter state under the `.wasm`'s names (`wasm.tollgate.outcome`...), so that one
    /// access-log format serves both builds.
    fn set_property(&self, name: &str, value: &[u8]) -> Result<(), HostError> {
        let key = filter_state_key(name);
        // SAFETY: in a hook of this stream; the buffers outlive the call.
        let done = unsafe {
            abi::envoy_dynamic_module_callback_http_set_filter_state_bytes(
                self.envoy,
                ModuleBuffer::of(key.as_bytes()),
                ModuleBuffer::of(value),
            )
        };
        done.then_some(())
            .ok_or(HostError("the filter state was refused"))
    }

    fn respond(&self, status: u32, headers: &[(&str, &str)], body: &[u8]) -> Result<(), HostError> {
        let mut headers: Vec<ModuleHeader> = headers
            .iter()
            .map(|(name, value)| ModuleHeader::of(name, value.as_bytes()))
            .collect();
        // SAFETY: in a hook of this stream; the buffers outlive the call.
        unsafe {
            abi::envoy_dynamic_module_callback_http_send_response(
                self.envoy,
                status,
                headers.as_mut_ptr(),
                headers.len(),
                ModuleBuffer::of(body),
                ModuleBuffer::of(DETAILS),
            );
        }
        Ok(())
    }

    fn debug_enabled(&self) -> bool {
        log::debug_enabled()
    }

    fn debug(&self, line: &str) {
        log::line(abi::LOG_DEBUG, line);
    }

    fn warn(&self, line: &str) {
        log::line(abi::LOG_WARN, line);
    }

    fn continue_request(&self) -> Result<(), HostError> {
        // SAFETY: in the callout hook of this stream, on its worker.
        unsafe { abi::envoy_dynamic_module_callback_http_filter_continue_decoding(self.envoy) };
        Ok(())
    }

    fn http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<u32, HostError> {
        let mut headers = abi::module_headers(headers);
        let mut id = 0u64;
        // SAFETY: in a hook of this stream; every buffer outlives the call.
        let result = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_http_callout(
                self.envoy,
                &mut id,
                ModuleBuffer::of(cluster.as_bytes()),
                headers.as_mut_ptr(),
                headers.len(),
                ModuleBuffer::of(body),
                timeout_ms,
            )
        };
        abi::callout_started(result, id)
    }
}

impl HeldRequest for EnvoyRequest {
    fn resume(&self) -> Result<(), HostError> {
        // SAFETY: the held stream is alive (forgotten when destroyed), on this worker.
        unsafe { abi::envoy_dynamic_module_callback_http_filter_continue_decoding(self.envoy) };
        Ok(())
    }
}

/// The `:status` and body (at most the provider answer the core reads, and one byte more) of
/// a call's answer; no status when Envoy got none (`ok` false).
///
/// # Safety
/// Each pair must be Envoy's array and its length, valid (the callout hook).
pub unsafe fn callout_answer(
    ok: bool,
    headers: (*const EnvoyHeader, usize),
    chunks: (*const EnvoyBuffer, usize),
) -> (Option<String>, Vec<u8>) {
    if !ok {
        return (None, Vec::new());
    }
    // SAFETY: the caller's promise.
    let (headers, chunks) = unsafe {
        (
            copy_headers(headers.0, headers.1),
            slice(chunks.0, chunks.1),
        )
    };
    let status = headers
        .into_iter()
        .find(|(name, _)| name == b":status")
        .and_then(|(_, value)| String::from_utf8(value).ok());
    let max = tollgate_core::oidc::provider_call::MAX_ANSWER + 1;
    let total: usize = chunks.iter().map(|c| c.length).sum();
    // SAFETY: Envoy's buffers, valid during the hook.
    let body = unsafe { read_range(chunks, 0, total.min(max)) };
    (status, body)
}

/// `count` entries at `ptr` (none for null).
///
/// # Safety
/// `ptr` must point at `count` valid entries, or be null.
pub unsafe fn slice<'a, T>(ptr: *const T, count: usize) -> &'a [T] {
    if ptr.is_null() || count == 0 {
        return &[];
    }
    // SAFETY: the caller's promise.
    unsafe { std::slice::from_raw_parts(ptr, count) }
}

/// Copies Envoy's headers.
///
/// # Safety
/// As for [`slice`], and each entry's buffers valid.
pub unsafe fn copy_headers(ptr: *const EnvoyHeader, count: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    // SAFETY: the caller's promise.
    unsafe {
        slice(ptr, count)
            .iter()
            .map(|h| {
                (
                    abi::copy(h.key_ptr, h.key_length),
                    abi::copy(h.value_ptr, h.value_length),
                )
            })
            .collect()
    }
}

/// The filter-state key of property `name`: `wasm.<name>`, without an allocation for the
/// access-log fields.
fn filter_state_key(name: &str) -> Cow<'static, str> {
    const KEYS: [&str; 8] = [
        "wasm.tollgate.outcome",
        "wasm.tollgate.type",
        "wasm.tollgate.role",
        "wasm.tollgate.user",
        "wasm.tollgate.name",
        "wasm.tollgate.issuer",
        "wasm.tollgate.code",
        "wasm.tollgate.rule",
    ];
    match KEYS
        .iter()
        .find(|key| key.strip_prefix("wasm.") == Some(name))
    {
        Some(key) => Cow::Borrowed(key),
        None => Cow::Owned(format!("wasm.{name}")),
    }
}

/// Headers copied into one buffer: names and values back to back, with their bounds.
#[derive(Default)]
struct HeaderCopy {
    bytes: Vec<u8>,
    /// Per header, where its name starts, where its name ends (its value starts) and where
    /// its value ends in `bytes`.
    bounds: Vec<[usize; 3]>,
}

impl HeaderCopy {
    /// # Safety
    /// Each entry's buffers must be valid (or null).
    unsafe fn of(headers: &[EnvoyHeader]) -> HeaderCopy {
        let size = headers
            .iter()
            .map(|h| h.key_length.saturating_add(h.value_length))
            .fold(0usize, usize::saturating_add);
        let mut copy = HeaderCopy {
            bytes: Vec::with_capacity(size),
            bounds: Vec::with_capacity(headers.len()),
        };
        for header in headers {
            let start = copy.bytes.len();
            // SAFETY: the caller's promise.
            let (name, value) = unsafe {
                (
                    slice(header.key_ptr, header.key_length),
                    slice(header.value_ptr, header.value_length),
                )
            };
            copy.bytes.extend_from_slice(name);
            copy.bytes.extend_from_slice(value);
            let name_end = start + name.len();
            copy.bounds.push([start, name_end, name_end + value.len()]);
        }
        copy
    }

    /// The headers as text names and byte values. A name that is not UTF-8 (Envoy's codecs
    /// refuse those) reads as U+FFFD, which matches no name the filter looks for.
    fn views(&self) -> Vec<(&str, &[u8])> {
        self.bounds
            .iter()
            .map(|&[start, name_end, value_end]| {
                let name = self.bytes.get(start..name_end).unwrap_or_default();
                let value = self.bytes.get(name_end..value_end).unwrap_or_default();
                (text(name), value)
            })
            .collect()
    }
}

/// A header name as text: U+FFFD when it is not UTF-8. ASCII (every name Envoy passes) is
/// taken as it is: `from_utf8` costs about a hundred instructions a name, more than the rest
/// of the copy.
fn text(name: &[u8]) -> &str {
    if name.is_ascii() {
        // SAFETY: ASCII is UTF-8.
        unsafe { std::str::from_utf8_unchecked(name) }
    } else {
        std::str::from_utf8(name).unwrap_or("\u{fffd}")
    }
}

/// `len` bytes from `start` of the body held in `buffers` (copied: only those).
///
/// # Safety
/// `buffers` must be Envoy's, still valid (the same hook, no change since).
pub unsafe fn read_range(buffers: &[EnvoyBuffer], start: usize, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut offset = 0usize;
    for buffer in buffers {
        let end = offset.saturating_add(buffer.length);
        if end > start && out.len() < len && !buffer.ptr.is_null() {
            let from = start.saturating_sub(offset);
            let take = (buffer.length - from).min(len - out.len());
            // SAFETY: the caller's promise; `from + take <= buffer.length`.
            out.extend_from_slice(unsafe {
                std::slice::from_raw_parts(buffer.ptr.add(from), take)
            });
        }
        offset = end;
    }
    out
}

/// A header name as text, without a second copy when it is UTF-8 (Envoy's always are).
pub fn name_text(name: Vec<u8>) -> String {
    String::from_utf8(name).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_core::decision::LogField;

    #[test]
    fn every_access_log_field_has_its_filter_state_key_without_an_allocation() {
        for field in LogField::ALL {
            let key = filter_state_key(field.property());
            assert!(matches!(key, Cow::Borrowed(_)), "{field:?}");
            assert_eq!(key, format!("wasm.{}", field.property()));
        }
        assert_eq!(filter_state_key("other"), "wasm.other");
    }

    #[test]
    fn copied_headers_read_back_as_sent_and_a_name_not_utf8_matches_nothing() {
        let sent: [(&[u8], &[u8]); 4] = [
            (b":path", b"/a?b"),
            (b"authorization", b"Bearer x"),
            (b"x-\xffname", b"\xff\x00"),
            (b"empty", b""),
        ];
        let headers: Vec<EnvoyHeader> = sent
            .iter()
            .map(|(name, value)| EnvoyHeader {
                key_ptr: name.as_ptr(),
                key_length: name.len(),
                value_ptr: value.as_ptr(),
                value_length: value.len(),
            })
            .collect();
        // SAFETY: the entries point into `sent`, alive here.
        let copy = unsafe { HeaderCopy::of(&headers) };
        let views = copy.views();
        assert_eq!(views.len(), 4);
        for ((name, value), (sent_name, sent_value)) in views.iter().zip(sent) {
            assert_eq!(value, &sent_value);
            if sent_name.is_ascii() {
                assert_eq!(name.as_bytes(), sent_name);
            } else {
                assert_eq!(*name, "\u{fffd}");
            }
        }
    }
}
