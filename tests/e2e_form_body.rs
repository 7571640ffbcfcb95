//! Form bodies through a real Envoy, over HTTP/1.1 and HTTP/2 (h2c, sent with curl): on a
//! checked path a form body that names a credential (RFC 6750 section 2.2 `access_token`) is
//! refused with 400 and no byte of it reaches the upstream (a recording upstream that never
//! answers: whatever it is sent is kept); a `none` path, a JSON body and a form without
//! credentials reach the upstream unchanged; a form's `_method` cannot pass a rule limited to
//! another method.

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::io::Read;
use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{token_for, Envoy, Request, Setup, K};

const URLENCODED: &str = "application/x-www-form-urlencoded";
const MULTIPART: &str = "multipart/form-data; boundary=XyZ";

/// An upstream that keeps every byte it is sent and never answers.
fn recorder() -> (u16, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let bytes = Arc::new(Mutex::new(Vec::new()));
    let shared = Arc::clone(&bytes);
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n @ 1..) = stream.read(&mut buf) {
                    shared.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
    });
    (port, bytes)
}

/// `/api` (optional), `/public` (none) and `/items` (required for `DELETE` only) reach the
/// echo upstream; `/rec` (optional) and `/rec/admin` (required) the recorder.
fn envoy(recorder_port: u16) -> Envoy {
    let setup = Setup::new(json!({
        "secrets": [{"key": K}],
        "default_mode": "none",
        "rules": [
            {"prefix": "/api", "mode": "optional"},
            {"prefix": "/rec", "mode": "optional"},
            {"prefix": "/rec/admin", "mode": "required"},
            {"prefix": "/items", "mode": "required", "methods": ["DELETE"]}
        ]
    }));
    Envoy::start(setup.route(json!({"prefix": "/rec"}), recorder_port))
}

fn holds(recorded: &Mutex<Vec<u8>>, text: &str) -> bool {
    let recorded = recorded.lock().unwrap();
    recorded.windows(text.len()).any(|w| w == text.as_bytes())
}

/// Status and, when the upstream answered, its JSON echo.
fn http1(envoy: &Envoy, target: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
    let mut request = Request::new("POST", target).header("X-Echo-Format", "json");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.body = body.to_vec();
    let request = request.header("Content-Length", body.len().to_string());
    let response = envoy.send(&request);
    (response.status, response.json().unwrap_or(Value::Null))
}

/// How many HTTP/2 requests were sent again (each one the filter may have refused and counted).
static RETRIED: AtomicU64 = AtomicU64::new(0);

/// Over h2c with curl. Envoy may answer before it reads the body and reset the stream; under
/// load curl may see the reset first and report no status (000): that is retried.
fn http2(envoy: &Envoy, target: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
    let dir = support::scratch_dir("form-h2");
    let (body_file, out_file) = (dir.join("body"), dir.join("out"));
    std::fs::write(&body_file, body).unwrap();
    for attempt in 0..30 {
        if attempt > 0 {
            RETRIED.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(20 * attempt));
        }
        let mut curl = Command::new("curl");
        curl.args([
            "-s",
            "--http2-prior-knowledge",
            "--max-time",
            "20",
            "-X",
            "POST",
        ])
        .args(["--data-binary", &format!("@{}", body_file.display())])
        .args(["-o", out_file.to_str().unwrap(), "-w", "%{http_code}"])
        .args(["-H", "X-Echo-Format: json"]);
        for (name, value) in headers {
            curl.args(["-H", &format!("{name}: {value}")]);
        }
        let url = format!("http://127.0.0.1:{}{target}", envoy.port);
        let out = curl.arg(url).output().expect("curl is installed");
        let status = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        if status != 0 {
            let json = serde_json::from_slice(&std::fs::read(&out_file).unwrap_or_default());
            return (status, json.unwrap_or(Value::Null));
        }
    }
    (0, Value::Null)
}

/// A target, its headers and its body.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, String);

type Send = fn(&Envoy, &str, &[(&str, &str)], &[u8]) -> (u16, Value);
const PROTOCOLS: [(&str, Send); 2] = [("HTTP/1.1", http1), ("HTTP/2", http2)];

fn multipart(name: &str) -> String {
    format!(
        "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n\
         --XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\nt0k3n\r\n--XyZ--\r\n"
    )
}

#[test]
fn a_form_that_names_a_credential_is_refused_before_the_upstream() {
    let (port, recorded) = recorder();
    let envoy = envoy(port);
    let bearer = format!("Bearer {}", token_for("alice"));
    let form = ("Content-Type", URLENCODED);
    let cases: Vec<Case> = vec![
        ("/rec/x", vec![form], "a=1&access_token=t0k3n".into()),
        ("/rec/x", vec![form], "ACCESS_TOKEN=t0k3n".into()),
        ("/rec/x", vec![form], "a=1;access%255Ftoken=t0k3n".into()),
        (
            "/rec/x",
            vec![form],
            "client_id=c&client_secret=t0k3n".into(),
        ),
        (
            "/rec/admin/x",
            vec![form, ("Authorization", &bearer)],
            "access_token=t0k3n".into(),
        ),
        (
            "/rec/x",
            vec![("Content-Type", MULTIPART)],
            multipart("access_token"),
        ),
        (
            "/rec/admin/x",
            vec![("Content-Type", MULTIPART), ("Authorization", &bearer)],
            multipart("access_token[]"),
        ),
        ("/rec/x", vec![], "access_token=t0k3n".into()),
        (
            "/rec/x",
            vec![("Content-Type", "multipart/form-data")],
            "t0k3n".into(),
        ),
        (
            "/rec/x",
            vec![form, ("Content-Encoding", "gzip")],
            "t0k3n".into(),
        ),
    ];
    let denied = || {
        let stats = envoy.stats("wasmcustom.tollgate.denied.invalid_request");
        stats.values().sum::<u64>()
    };
    let denied_before = denied();
    for (protocol, send) in PROTOCOLS {
        for (target, headers, body) in &cases {
            let (status, echo) = send(&envoy, target, headers, body.as_bytes());
            assert_eq!(
                status, 400,
                "{protocol} {target} {headers:?} {body}: {echo}"
            );
            assert_eq!(echo["code"], "INVALID_REQUEST", "{protocol} {body}");
        }
    }
    // (The identity headers say `access_token`: that is the type of credential.)
    for never in [
        "t0k3n",
        "access_token=",
        "ACCESS",
        "client_id=",
        "name=",
        "--XyZ",
    ] {
        assert!(!holds(&recorded, never), "the upstream got {never:?}");
    }
    // Counters are handed to Envoy on the filter's tick. A request curl sent again (it saw
    // the reset before the answer) may have been refused and counted twice.
    let expected = denied_before + 2 * cases.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    while denied() < expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let retried = RETRIED.load(Ordering::SeqCst);
    let counted = denied();
    assert!(
        (expected..=expected + retried).contains(&counted),
        "{counted} refusals counted, {expected} expected ({retried} requests sent again)"
    );
    assert!(!envoy.access_log().contains("t0k3n"));
}

/// Bodies Django or Werkzeug read a credential field from, however the scanner once read
/// them: a delimiter in mid-line, a second boundary in the parameters, a lone LF in a part
/// header, a name in UTF-16, a type PHP cuts at a space.
#[test]
fn multipart_bodies_other_servers_read_otherwise_are_refused_before_the_upstream() {
    let (port, recorded) = recorder();
    let envoy = envoy(port);
    let secret = "Content-Disposition: form-data; name=\"access_token\"\r\n\r\nSECRET\r\n";
    let xx = "multipart/form-data; boundary=XX";
    let cases = [
        (xx, format!("junk--XX\r\n{secret}--XX--\r\n")),
        (
            xx,
            format!("--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nfoo--XX\r\n{secret}--XX--\r\n"),
        ),
        (
            "multipart/form-data; boundary=BBB; boundary*=utf-8''AAA",
            format!("--AAA\r\n{secret}--AAA--\r\n"),
        ),
        (
            "multipart/form-data; boundary=BBB; x=1, boundary=AAA",
            format!("--AAA\r\n{secret}--AAA--\r\n"),
        ),
        (
            xx,
            "--XX\r\nContent-Disposition: form-data; name=\"x\"\n; name=\"access_token\"\r\n\r\nSECRET\r\n--XX--\r\n".into(),
        ),
        (
            xx,
            "--XX\r\nContent-Disposition: form-data; name*=utf-16le''a%00c%00c%00e%00s%00s%00_%00t%00o%00k%00e%00n%00\r\n\r\nSECRET\r\n--XX--\r\n".into(),
        ),
        ("application/x-www-form-urlencoded foo", "access_token=SECRET".into()),
    ];
    for (content_type, body) in &cases {
        let (status, echo) = http1(
            &envoy,
            "/rec/x",
            &[("Content-Type", content_type)],
            body.as_bytes(),
        );
        assert_eq!(status, 400, "{content_type} {body:?}: {echo}");
        assert_eq!(echo["code"], "INVALID_REQUEST", "{content_type} {body:?}");
    }
    for never in ["SECRET", "name=", "Content-Disposition", "junk"] {
        assert!(!holds(&recorded, never), "the upstream got {never:?}");
    }
}

#[test]
fn a_name_split_across_chunks_is_found() {
    let (port, recorded) = recorder();
    let envoy = envoy(port);
    let received = || {
        let stats = envoy.stats("http.ingress.downstream_cx_rx_bytes_total");
        stats.values().sum::<u64>()
    };
    let head = b"POST /rec/x HTTP/1.1\r\nHost: a\r\n\
Content-Type: application/x-www-form-urlencoded\r\n\
Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let parts: [&[u8]; 4] = [
        head,
        b"7\r\na=1&acc\r\n",
        b"4\r\ness_\r\n",
        b"8\r\ntoken=t0\r\n0\r\n\r\n",
    ];
    let start = received();
    let written = std::cell::Cell::new(0);
    // Each part is written once Envoy has read the ones before.
    let wait_read = || {
        let upto = written.get() + 1;
        written.set(upto);
        let sent: usize = parts[..upto].iter().map(|p| p.len()).sum();
        let deadline = Instant::now() + Duration::from_secs(10);
        while received() < start + sent as u64 && Instant::now() < deadline {
            std::thread::yield_now();
        }
    };
    let response = support::send_in_parts(envoy.port, &parts, &wait_read);
    assert_eq!(response.status, 400, "{}", response.text());
    assert_eq!(response.code().as_deref(), Some("INVALID_REQUEST"));
    assert!(!holds(&recorded, "a=1"), "the upstream got the body");
}

#[test]
fn other_bodies_and_unchecked_paths_reach_the_upstream_unchanged() {
    let envoy = envoy(recorder().0);
    let large = format!("{}&last=1", "field=value&".repeat(20_000));
    let cases: Vec<Case> = vec![
        (
            "/public/x",
            vec![("Content-Type", URLENCODED)],
            "access_token=t0k3n".into(),
        ),
        (
            "/public/x",
            vec![("Content-Type", MULTIPART)],
            multipart("access_token"),
        ),
        (
            "/api/x",
            vec![("Content-Type", "application/json")],
            "{\"access_token\":\"x\"}".into(),
        ),
        (
            "/api/x",
            vec![("Content-Type", URLENCODED)],
            "a=1&q=access_token".into(),
        ),
        (
            "/api/x",
            vec![("Content-Type", MULTIPART)],
            multipart("file"),
        ),
        ("/api/x", vec![("Content-Type", URLENCODED)], large),
    ];
    for (protocol, send) in PROTOCOLS {
        for (target, headers, body) in &cases {
            let (status, echo) = send(&envoy, target, headers, body.as_bytes());
            assert_eq!(status, 200, "{protocol} {target} {headers:?}: {echo}");
            assert_eq!(
                echo["body_length"],
                body.len(),
                "{protocol} {target} {headers:?}"
            );
        }
    }
}

/// Past the part held (64 KiB), the body goes on chunk by chunk; the chunk that ends a
/// credential's name does not, and the upstream request is reset before the body is whole.
#[test]
fn a_credential_past_the_held_part_never_reaches_the_upstream_whole() {
    let (port, recorded) = recorder();
    let envoy = envoy(port);
    let body = format!("{}access_token=t0k3n", "field=value&".repeat(20_000));
    let form = [("Content-Type", URLENCODED)];
    for (protocol, send) in PROTOCOLS {
        let (status, echo) = send(&envoy, "/rec/x", &form, body.as_bytes());
        assert_eq!(status, 400, "{protocol}: {echo}");
    }
    assert!(
        !holds(&recorded, "t0k3n"),
        "the upstream got the credential"
    );
    assert!(
        !holds(&recorded, "access_token="),
        "the upstream got the name whole"
    );
}

/// The one value of an identity header the echo upstream received.
fn upstream_header(echo: &Value, name: &str) -> Option<String> {
    let headers = echo["headers"].as_array()?;
    let mut values = headers.iter().filter(|pair| {
        pair[0]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
    });
    let value = values.next()?[1].as_str().map(str::to_owned);
    assert!(values.next().is_none(), "{name} more than once: {echo}");
    value
}

/// Rails (Rack::MethodOverride), Laravel and Symfony serve a `POST` whose form body carries
/// `_method=DELETE` as `DELETE`: the filter cannot know the body when it decides, so such a
/// `POST` gets the strictest mode of every method the rules name.
#[test]
fn a_form_method_override_does_not_pass_a_method_limited_rule() {
    let envoy = envoy(recorder().0);
    let bearer = format!("Bearer {}", token_for("alice"));
    let multipart_body = "--XyZ\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\n\
                          DELETE\r\n--XyZ--\r\n";
    let forms = [(URLENCODED, "_method=DELETE"), (MULTIPART, multipart_body)];
    for (protocol, send) in PROTOCOLS {
        for (content_type, body) in forms {
            let form = ("Content-Type", content_type);
            let (status, echo) = send(&envoy, "/items/7", &[form], body.as_bytes());
            assert_eq!(status, 401, "{protocol} {content_type}: {echo}");
            let signed = [form, ("Authorization", bearer.as_str())];
            let (status, echo) = send(&envoy, "/items/7", &signed, body.as_bytes());
            assert_eq!(status, 200, "{protocol} {content_type}: {echo}");
            assert_eq!(
                upstream_header(&echo, "x-auth-user").as_deref(),
                Some("alice"),
                "{protocol} {content_type}"
            );
            assert_eq!(echo["body_length"], body.len(), "{protocol} {content_type}");
        }
        // Laravel reads `_method` from a JSON body too: a JSON POST is decided as every
        // method; another body keeps the POST rule.
        let json = [("Content-Type", "application/json")];
        let (status, echo) = send(&envoy, "/items/7", &json, b"{\"_method\":\"DELETE\"}");
        assert_eq!(status, 401, "{protocol} JSON may carry a method: {echo}");
        let text = [("Content-Type", "text/plain")];
        let (status, echo) = send(&envoy, "/items/7", &text, b"_method=DELETE");
        assert_eq!(status, 200, "{protocol} text keeps the POST rule: {echo}");
        assert_eq!(upstream_header(&echo, "x-auth-user"), None, "{protocol}");
    }
}
