//! Requests with a form body, decided through the filter's own steps (`host`): the headers,
//! then the body in chunks as Envoy hands them over, read for credential fields.

use tollgate_core::config::Config;
use tollgate_core::host::{on_request_body, on_request_headers, Host, HostError, Verdict};
use tollgate_core::worker::WorkerState;

use super::{Headers, NOW};

/// The size of each body chunk handed to the body step.
const CHUNK: usize = 16 * 1024;

/// Ways a form body is made bigger, `<layout>:<unit>`: the layout is `url` (urlencoded),
/// `mp` (multipart, boundary `XyZ`) or `mpa` (multipart, a boundary of 29 `a` and a `b`, which
/// `delims` nearly matches at every unit); the unit is repeated.
pub const BODY_GROWTHS: &[&str] = &[
    "url:pct",
    "url:pairs",
    "url:delims",
    "url:parts",
    "mp:pct",
    "mp:pairs",
    "mp:delims",
    "mp:parts",
    "mpa:pct",
    "mpa:pairs",
    "mpa:delims",
    "mpa:parts",
];

const LONG_BOUNDARY: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaab";

/// The hostile unit a body growth repeats.
fn unit(name: &str) -> &'static [u8] {
    match name {
        "pct" => b"%25%20",
        "pairs" => b"a=1&",
        "delims" => b"\r\n--aaaaaaaaaaaa",
        _ => b"--XyZ\r\nA: b\r\n\r\n",
    }
}

/// The form body of a request of `kind` (`form-post`: 1 KiB of `field=value&` pairs); empty
/// for the kinds without one.
pub fn of_kind(kind: &str) -> Vec<u8> {
    match kind {
        "form-post" => "field=value&".repeat(1024 / 12).into_bytes(),
        _ => Vec::new(),
    }
}

/// A body of at most `bytes` bytes (whole units) grown as `growth` says; `headers` get its
/// `Content-Type` and `Content-Length`.
pub fn grow(headers: &mut Headers, growth: &str, bytes: usize) -> Vec<u8> {
    let (layout, unit_name) = growth.split_once(':').unwrap_or((growth, ""));
    let content_type = match layout {
        "url" => "application/x-www-form-urlencoded".to_owned(),
        "mp" => "multipart/form-data; boundary=XyZ".to_owned(),
        _ => format!("multipart/form-data; boundary={LONG_BOUNDARY}"),
    };
    let unit = unit(unit_name);
    let body = unit.repeat(bytes / unit.len());
    set_body_headers(headers, &content_type, body.len());
    body
}

/// `headers` as a `POST` of a body of `length` bytes of `content_type`.
pub fn set_body_headers(headers: &mut Headers, content_type: &str, length: usize) {
    headers.retain(|(name, _)| name != "content-type" && name != "content-length");
    for (name, value) in headers.iter_mut() {
        if name == ":method" {
            *value = b"POST".to_vec();
        }
    }
    headers.push(("content-type".into(), content_type.as_bytes().to_vec()));
    headers.push(("content-length".into(), length.to_string().into_bytes()));
}

/// Whether the request is let on, headers and body, through the filter's steps.
pub fn through_filter(
    config: &Config,
    worker: &mut WorkerState,
    headers: &Headers,
    body: &[u8],
) -> bool {
    let host = QuietHost { headers };
    let after = on_request_headers(&host, config, worker, false, false, |_| {});
    if after.verdict != Verdict::Continue {
        return false;
    }
    let Some(mut scan) = after.body else {
        return true;
    };
    if body.is_empty() {
        return !on_request_body(&host, config, &mut scan, &[], true, |_| {});
    }
    let mut chunks = body.chunks(CHUNK).peekable();
    while let Some(chunk) = chunks.next() {
        let ends = chunks.peek().is_none();
        if on_request_body(&host, config, &mut scan, chunk, ends, |_| {}) {
            return false;
        }
    }
    true
}

/// A host that hands over the headers and does nothing else.
struct QuietHost<'h> {
    headers: &'h Headers,
}

impl Host for QuietHost<'_> {
    fn request_headers(&self) -> Vec<(String, Vec<u8>)> {
        self.headers.clone()
    }
    fn now(&self) -> u64 {
        NOW
    }
    fn remove_header(&self, _: &str) -> Result<(), HostError> {
        Ok(())
    }
    fn set_header(&self, _: &str, _: &[u8]) -> Result<(), HostError> {
        Ok(())
    }
    fn add_header(&self, _: &str, _: &[u8]) -> Result<(), HostError> {
        Ok(())
    }
    fn set_property(&self, _: &str, _: &[u8]) -> Result<(), HostError> {
        Ok(())
    }
    fn respond(&self, _: u32, _: &[(&str, &str)], _: &[u8]) -> Result<(), HostError> {
        Ok(())
    }
    fn debug_enabled(&self) -> bool {
        false
    }
    fn debug(&self, _: &str) {}
    fn warn(&self, _: &str) {}
}
