//! A test request: an HTTP/1.1 request with header values as bytes, sent to Envoy as written
//! ([`Request::to_bytes`]) or handed to the decision as Envoy would ([`Request::to_native`]).

/// An HTTP/1.1 request; header values are bytes.
#[derive(Clone)]
pub struct Request {
    pub method: String,
    pub target: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn new(method: &str, target: impl AsRef<[u8]>) -> Request {
        Request {
            method: method.into(),
            target: target.as_ref().to_vec(),
            headers: vec![("Host".into(), b"api.example.com".to_vec())],
            body: Vec::new(),
        }
    }

    /// Sets the body and its Content-Length (the caller sets Content-Type).
    pub fn body_text(mut self, body: &str) -> Request {
        self.body = body.as_bytes().to_vec();
        self.header("Content-Length", body.len().to_string())
    }

    pub fn get(target: impl AsRef<[u8]>) -> Request {
        Request::new("GET", target)
    }

    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Request {
        self.headers.push((name.into(), value.as_ref().to_vec()));
        self
    }

    pub fn bearer(self, credential: &str) -> Request {
        self.header("Authorization", format!("Bearer {credential}"))
    }

    pub fn host(mut self, host: &str) -> Request {
        self.headers.retain(|(n, _)| n != "Host");
        self.header("Host", host)
    }

    pub fn browser(self) -> Request {
        self.header(
            "Accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
    }

    /// The request as the filter's decision gets it from Envoy: `:method`, `:path` (none when
    /// the target is empty), `:authority` (the first `Host`) and `:scheme` http, then the other
    /// headers with lower-case names.
    pub fn to_native(&self) -> Vec<(String, Vec<u8>)> {
        let mut headers = vec![(":method".to_string(), self.method.as_bytes().to_vec())];
        if !self.target.is_empty() {
            headers.push((":path".into(), self.target.clone()));
        }
        let host = self
            .headers
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case("host"));
        let authority = host.map(|i| self.headers[i].1.clone()).unwrap_or_default();
        headers.push((":authority".into(), authority));
        headers.push((":scheme".into(), b"http".to_vec()));
        headers.extend(
            self.headers
                .iter()
                .enumerate()
                .filter(|(i, _)| Some(*i) != host)
                .map(|(_, (n, v))| (n.to_ascii_lowercase(), v.clone())),
        );
        headers
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(&self.target);
        out.extend_from_slice(b" HTTP/1.1\r\n");
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"Connection: close\r\n\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

impl crate::table::RequestText {
    /// A row's request, with `expand` turning the table's text into bytes. A row's first
    /// `Host` line replaces the default `Host: api.example.com`; any later one is added.
    pub fn build(&self, expand: impl Fn(&str) -> Vec<u8>) -> Request {
        let (target, headers) = self.expanded(expand);
        let mut host_given = false;
        headers.into_iter().fold(
            Request::new(&self.method, target),
            |mut request, (name, value)| {
                if name.eq_ignore_ascii_case("host") && !host_given {
                    host_given = true;
                    request.headers.retain(|(n, _)| n != "Host");
                }
                request.header(&name, value)
            },
        )
    }
}
