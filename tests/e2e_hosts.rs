//! Rules limited to hosts, through a real Envoy over HTTP/1.1 and HTTP/2: the host the filter
//! reads is the one the upstream receives, and no spelling of a host (case, port, trailing
//! dots, userinfo, a repeated `Host`, `Host` beside a different `:authority`, an absolute-form
//! target) lets a request escape the host's rule into a looser one.

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::process::Command;

use serde_json::{json, Value};
use support::{send_raw, Envoy, Setup, K};

/// Everything open, but every path of `api.example.com` (and below it) needs a credential.
fn envoy() -> Envoy {
    Envoy::start(Setup::new(json!({
        "secrets": [{"key": K}],
        "default_mode": "none",
        "rules": [
            {"prefix": "/", "mode": "none"},
            {"prefix": "/", "mode": "required", "hosts": ["api.example.com", "*.api.example.com"]}
        ]
    })))
}

/// The status, and the `Host` the upstream received when it was reached (each value, joined
/// by `|`, when it received several).
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    upstream_host: Option<String>,
}

fn answer(status: u16, body: &[u8]) -> Answer {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    if let Some(code) = json.as_ref().and_then(|j| j["code"].as_str()) {
        eprintln!("the filter answered {status} {code}");
    }
    let upstream_host = json.filter(|j| j["path"].is_string()).map(|j| {
        let headers = j["headers"].as_array().unwrap();
        let hosts: Vec<&str> = headers
            .iter()
            .filter(|pair| {
                let name = pair[0].as_str().unwrap().to_ascii_lowercase();
                name == "host" || name == ":authority"
            })
            .map(|pair| pair[1].as_str().unwrap())
            .collect();
        hosts.join("|")
    });
    Answer {
        status,
        upstream_host,
    }
}

/// One HTTP/1.1 request, written as given: `head` is the request line and header lines.
fn http1(envoy: &Envoy, head: &str) -> Answer {
    let bytes = format!("{head}\r\nX-Echo-Format: json\r\nConnection: close\r\n\r\n");
    let response = send_raw(envoy.port, bytes.as_bytes());
    answer(response.status, &response.body)
}

fn http1_host(envoy: &Envoy, host: &str) -> Answer {
    http1(envoy, &format!("GET /orders HTTP/1.1\r\nHost: {host}"))
}

/// One HTTP/2 request (h2c) with these headers besides `:method`, `:path` and `:scheme`, sent
/// by Node's HTTP/2 client, which sends `:authority` and `host` as given.
fn http2(envoy: &Envoy, headers: &[(&str, &str)]) -> Answer {
    let mut all = serde_json::Map::new();
    for (name, value) in headers {
        all.insert((*name).to_owned(), json!(value));
    }
    let script = r#"
        const http2 = require('http2');
        const [url, headers] = [process.argv[1], JSON.parse(process.argv[2])];
        const client = http2.connect(url);
        client.on('error', e => { console.log(JSON.stringify({error: String(e)})); process.exit(0); });
        const req = client.request(Object.assign({':method': 'GET', ':path': '/orders', 'x-echo-format': 'json'}, headers));
        let status = 0; const chunks = [];
        req.on('response', h => { status = h[':status']; });
        req.on('data', c => chunks.push(c));
        req.on('error', e => { console.log(JSON.stringify({error: String(e)})); process.exit(0); });
        req.on('end', () => { console.log(JSON.stringify({status, body: Buffer.concat(chunks).toString()})); client.close(); });
        req.end();
    "#;
    let url = format!("http://127.0.0.1:{}", envoy.port);
    let out = Command::new("node")
        .args(["-e", script, &url, &Value::Object(all).to_string()])
        .output()
        .expect("node is installed");
    let result: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("node: {}", String::from_utf8_lossy(&out.stderr)));
    match result["status"].as_u64() {
        Some(status) => answer(
            u16::try_from(status).unwrap(),
            result["body"].as_str().unwrap().as_bytes(),
        ),
        // The stream or connection refused by Envoy: no status, the upstream not reached.
        None => Answer {
            status: 0,
            upstream_host: None,
        },
    }
}

/// Whether `answer` kept the request from reaching the upstream unauthenticated.
fn refused(answer: &Answer) -> bool {
    answer.upstream_host.is_none() && answer.status != 200
}

#[test]
fn the_host_selects_the_rule_over_http1_and_http2() {
    let envoy = envoy();
    for host in [
        "api.example.com",
        "API.Example.COM",
        "api.example.com:8080",
        "api.example.com.",
        "api.example.com.:80",
        "eu.api.example.com",
    ] {
        let one = http1_host(&envoy, host);
        assert_eq!(one.status, 401, "HTTP/1.1 {host}: {one:?}");
        let two = http2(&envoy, &[(":authority", host)]);
        assert_eq!(two.status, 401, "HTTP/2 {host}: {two:?}");
    }
    for host in [
        "www.example.com",
        "example.com",
        "api.example.com.evil.example",
        "[::1]:8080",
    ] {
        let one = http1_host(&envoy, host);
        assert_eq!(one.status, 200, "HTTP/1.1 {host}: {one:?}");
        let two = http2(&envoy, &[(":authority", host)]);
        assert_eq!(two.status, 200, "HTTP/2 {host}: {two:?}");
    }
}

#[test]
fn hosts_that_are_not_plain_names_never_escape() {
    let envoy = envoy();
    for host in [
        "api.example.com..",
        "user@api.example.com",
        "api%2eexample.com",
        "api.example.com:",
        "xn--api-example.com\u{e4}",
    ] {
        eprintln!("HTTP/1.1 and HTTP/2 host {host:?}:");
        let one = http1_host(&envoy, host);
        assert!(refused(&one), "HTTP/1.1 {host}: {one:?}");
        let two = http2(&envoy, &[(":authority", host)]);
        assert!(refused(&two), "HTTP/2 {host}: {two:?}");
    }
}

#[test]
fn a_repeated_or_contradicted_host_never_escapes() {
    let envoy = envoy();
    for (first, second) in [
        ("www.example.com", "api.example.com"),
        ("api.example.com", "www.example.com"),
    ] {
        let twice = http1(
            &envoy,
            &format!("GET /orders HTTP/1.1\r\nHost: {first}\r\nHost: {second}"),
        );
        assert!(
            refused(&twice),
            "two Host headers {first}, {second}: {twice:?}"
        );
        eprintln!("two Host headers: {twice:?}");
        // HTTP/2: `:authority` and a `host` header that differs. Envoy 1.40 drops the `host`
        // header: the upstream receives `:authority` alone, and the request is decided on it.
        let both = http2(&envoy, &[(":authority", first), ("host", second)]);
        match first {
            "api.example.com" => assert!(refused(&both), "{both:?}"),
            _ => assert!(
                refused(&both) || both.upstream_host.as_deref() == Some(first),
                ":authority {first}, host {second}: {both:?}"
            ),
        }
    }
    let agreeing = http2(
        &envoy,
        &[
            (":authority", "www.example.com"),
            ("host", "www.example.com"),
        ],
    );
    assert_eq!(agreeing.status, 200, "{agreeing:?}");
}

#[test]
fn an_absolute_form_target_is_decided_on_the_host_the_upstream_receives() {
    let envoy = envoy();
    for (in_target, in_header) in [
        ("www.example.com", "api.example.com"),
        ("api.example.com", "www.example.com"),
    ] {
        let got = http1(
            &envoy,
            &format!("GET http://{in_target}/orders HTTP/1.1\r\nHost: {in_header}"),
        );
        match &got.upstream_host {
            // Reached the upstream without a credential: only for a host without the rule.
            Some(host) => assert_eq!(host, "www.example.com", "{got:?}"),
            None => assert_ne!(got.status, 200, "{got:?}"),
        }
        eprintln!("absolute-form {in_target} with Host {in_header}: {got:?}");
    }
}
