//! A raw HTTP/1.1 client that can send any bytes, in one piece or in parts, and reads the response whole.

use super::*;

/// A response as the client saw it.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The JSON `code` of an error from the filter.
    pub fn code(&self) -> Option<String> {
        self.json()?["code"].as_str().map(str::to_owned)
    }

    /// The path the upstream received (this response came from `echo-upstream`).
    pub fn upstream_path(&self) -> String {
        let json = self
            .json()
            .unwrap_or_else(|| panic!("not an upstream answer: {self:?}"));
        json["path"].as_str().unwrap().to_owned()
    }

    /// Every value of `name` the upstream received.
    pub fn upstream_headers(&self, name: &str) -> Vec<String> {
        let json = self
            .json()
            .unwrap_or_else(|| panic!("not an upstream answer: {self:?}"));
        json["headers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|pair| pair[0].as_str().unwrap().eq_ignore_ascii_case(name))
            .map(|pair| pair[1].as_str().unwrap().to_owned())
            .collect()
    }

    /// The single value of `name` the upstream received, if any; panics on duplicates.
    pub fn upstream_header(&self, name: &str) -> Option<String> {
        let mut values = self.upstream_headers(name);
        assert!(values.len() <= 1, "upstream got {name} {values:?}");
        values.pop()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A GET of `target` on `port`; `None` when the connection fails or is closed unanswered.
pub fn try_get(port: u16, target: &str) -> Option<Response> {
    try_send(port, &Request::get(target).to_bytes(), false).ok()
}

pub fn send_raw(port: u16, bytes: &[u8]) -> Response {
    try_send_raw(port, bytes).unwrap_or_else(|e| panic!("request to port {port} failed: {e}"))
}

pub(super) fn try_send_raw(port: u16, bytes: &[u8]) -> std::io::Result<Response> {
    try_send(port, bytes, false)
}

pub(super) fn try_send(port: u16, bytes: &[u8], head_only: bool) -> std::io::Result<Response> {
    try_send_parts(port, &[bytes], &|| {}, head_only)
}

/// Sends a request in `parts`, one write each, calling `between` after each write but the
/// last (to wait until Envoy has read it), and reads the response.
pub fn send_in_parts(port: u16, parts: &[&[u8]], between: &dyn Fn()) -> Response {
    try_send_parts(port, parts, between, false)
        .unwrap_or_else(|e| panic!("request to port {port} failed: {e}"))
}

fn try_send_parts(
    port: u16,
    parts: &[&[u8]],
    between: &dyn Fn(),
    head_only: bool,
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            between();
        }
        stream.write_all(part)?;
        stream.flush()?;
    }
    // Read until the response is complete rather than until Envoy closes the connection,
    // which it delays after a local reply (delayed_close_timeout).
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if response_complete(&raw, head_only) {
            break;
        }
    }
    parse_response(&raw).ok_or_else(|| {
        std::io::Error::other(format!(
            "unparsable response: {:?}",
            String::from_utf8_lossy(&raw)
        ))
    })
}

/// Whether `raw` holds a whole response (by content-length, or the last chunk).
fn response_complete(raw: &[u8], head_only: bool) -> bool {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    if head_only {
        return true;
    }
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let body = &raw[end + 4..];
    if head.contains("transfer-encoding: chunked") {
        return body.ends_with(b"0\r\n\r\n");
    }
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    match length {
        Some(length) => body.len() >= length,
        None => head.starts_with("http/1.1 204") || head.starts_with("http/1.1 304"),
    }
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            Some((n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        })
        .collect();
    let mut response = Response {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    };
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    // A response to HEAD announces a body it does not send.
    if chunked && !response.body.is_empty() {
        response.body = dechunk(&response.body)?;
    }
    Some(response)
}

fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&raw[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}
