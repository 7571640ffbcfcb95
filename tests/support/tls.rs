//! A TLS listener for tests that need HTTP/2 the way browsers speak it (over TLS, by ALPN): a
//! self-signed certificate made at run time with `openssl`, Envoy's `DownstreamTlsContext`
//! offering `h2` and `http/1.1`, and a client (curl) that must negotiate `h2`.

use super::*;

/// A self-signed certificate for `127.0.0.1` and its private key, in a scratch directory.
#[derive(Clone, Debug)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The protocols the listener offers by ALPN, in order.
    pub alpn: Vec<String>,
}

impl Tls {
    /// A fresh P-256 key and a certificate for `127.0.0.1` and `localhost`, valid for a day;
    /// the listener offers `h2`, then `http/1.1`.
    pub fn self_signed() -> Tls {
        let dir = scratch_dir("tls");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec"])
            .args([
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "1",
            ])
            .args(["-subj", "/CN=127.0.0.1"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl makes the test certificate");
        assert!(
            out.status.success(),
            "openssl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tls {
            cert,
            key,
            alpn: vec!["h2".into(), "http/1.1".into()],
        }
    }

    /// The listener's `transport_socket`.
    pub(super) fn transport_socket(&self) -> Value {
        json!({
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                "common_tls_context": {
                    "alpn_protocols": self.alpn,
                    "tls_certificates": [{
                        "certificate_chain": {"filename": self.cert.display().to_string()},
                        "private_key": {"filename": self.key.display().to_string()}
                    }]
                }
            }
        })
    }
}

impl Setup {
    /// Serves the listener over TLS with `tls` (HTTP/2 or HTTP/1.1, as ALPN settles).
    pub fn tls(mut self, tls: &Tls) -> Self {
        self.tls = Some(tls.clone());
        self
    }
}

/// Sends `request` to `port` over TLS with curl, which must negotiate HTTP/2 (it panics
/// otherwise). Its `Host` is the URL's authority (`:authority`), the connection goes to
/// `127.0.0.1:port` whatever it names; the certificate is not checked.
pub fn send_h2(port: u16, request: &Request) -> Response {
    let host = request
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("host"))
        .map_or_else(
            || format!("127.0.0.1:{port}"),
            |(_, value)| String::from_utf8_lossy(value).into_owned(),
        );
    let target = String::from_utf8_lossy(&request.target).into_owned();
    let mut curl = Command::new("curl");
    curl.args(["-s", "-k", "--http2", "-i", "--max-time", "10"])
        .args(["--connect-to", &format!("::127.0.0.1:{port}")])
        .args(["-X", &request.method]);
    for (name, value) in &request.headers {
        if !name.eq_ignore_ascii_case("host") {
            curl.args(["-H", &format!("{name}: {}", String::from_utf8_lossy(value))]);
        }
    }
    if !request.body.is_empty() {
        curl.arg("--data-binary")
            .arg(String::from_utf8_lossy(&request.body).as_ref());
    }
    let out = curl
        .arg(format!("https://{host}{target}"))
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl {target}: exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = out.stdout;
    let end = text
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head: {}", String::from_utf8_lossy(&text)));
    let head = String::from_utf8_lossy(&text[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/2 ")
        .unwrap_or_else(|| panic!("not HTTP/2: {status_line:?} ({target})"));
    Response {
        status: status.trim().parse().unwrap(),
        headers: lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
            .collect(),
        body: text[end + 4..].to_vec(),
    }
}
