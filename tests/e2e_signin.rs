//! The demo sign-in service under attack, directly and through Envoy: the crash, the stall,
//! request smuggling, login CSRF in Chromium, brute force, refresh-token replay, logout, and
//! the smaller findings of its security review (issue 14). Each test fails on the service it
//! replaced (tiny_http 0.12, one request at a time).

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{send_raw, Envoy, Request, Response, Setup, SignIn};

const SECRET: &str = "signin-e2e-secret-Rk7Tq2Wm9Xc4Vb8Nz3Lp6H";
const HOST: &str = "127.0.0.1:10000";
const DEMO: &str = r#"{"username":"demo","password":"demo-password"}"#;

/// The variables `scripts/run.sh` gives the example configuration.
const ENV: &[(&str, &str)] = &[
    ("TOLLGATE_SECRET", SECRET),
    (
        "TOLLGATE_API_KEY",
        "sk_demo_signin_api_key_Fq8Zr3Lw7Tk2Vm9Xc4Hd",
    ),
    (
        "TOLLGATE_PUBLISHABLE_KEY",
        "pk_demo_signin_publishable_Jt5Wq9Rm2Xv7Kc3N",
    ),
    (
        "TOLLGATE_CLIENT_SECRET",
        "cs_demo_signin_client_secret_Pz4Hn8Tw3Qk7Rv2M",
    ),
    (
        "TOLLGATE_OIDC_CLIENT_SECRET",
        "oc_demo_dkKG0QGiCzn6EzxOmBTPWd1j6xC9ocap",
    ),
    (
        "TOLLGATE_COOKIE_KEYS",
        "demo:ttI-Mjg4fA2S8rrbxLP-NbKw8pUE0zz0Nkk_7I2qBP8",
    ),
];

/// The service behind the shipped `envoy/envoy.yaml`.
fn shipped() -> (Envoy, SignIn) {
    let signin = SignIn::start(SECRET, HOST);
    let envoy = support::example_envoy("envoy.yaml", signin.port, ENV)
        .unwrap_or_else(|r| panic!("example refused ({:?}):\n{}", r.exit_code, r.log));
    (envoy, signin)
}

/// The service behind an Envoy that only routes to it (no size or time limits of its own),
/// so that what is tested is the service.
fn plain_route() -> (Envoy, SignIn) {
    let port = support::free_port();
    let signin = SignIn::start(SECRET, &format!("127.0.0.1:{port}"));
    let config = json!({
        "secrets": [{"kid": "demo", "key_env": "TOLLGATE_SECRET"}],
        "login_url": "/login",
        "rules": [
            {"path": "/login", "mode": "none"},
            {"path": "/logout", "mode": "none"},
            {"prefix": "/auth", "mode": "none"}
        ]
    });
    let envoy = Envoy::start(
        Setup::new(config)
            .vm_env("TOLLGATE_SECRET", SECRET)
            .route(json!({"path": "/login"}), signin.port)
            .route(json!({"path": "/logout"}), signin.port)
            .route(json!({"prefix": "/auth/"}), signin.port)
            .listen_on(port),
    );
    (envoy, signin)
}

/// `bytes` sent to `port`, the answer read within `seconds` (or why not).
fn within(port: u16, bytes: Vec<u8>, seconds: u64) -> Result<Response, String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(send_raw(port, &bytes));
    });
    rx.recv_timeout(Duration::from_secs(seconds))
        .map_err(|e| format!("no answer from port {port} within {seconds} s: {e}"))
}

fn json_login(body: &str) -> Request {
    Request::new("POST", "/login")
        .host(HOST)
        .header("Content-Type", "application/json")
        .body_text(body)
}

fn json_post(path: &str, body: &str) -> Request {
    Request::new("POST", path)
        .host(HOST)
        .header("Content-Type", "application/json")
        .body_text(body)
}

fn tokens(r: &Response) -> (String, String) {
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json().unwrap();
    let token = &body["data"]["token"];
    (
        token["access_token"].as_str().unwrap().to_owned(),
        token["refresh_token"].as_str().unwrap().to_owned(),
    )
}

fn refresh_body(token: &str) -> String {
    format!(r#"{{"refresh_token":"{token}"}}"#)
}

/// Opens a connection, writes `bytes` and leaves it open (a stalled client).
fn stall(port: u16, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(bytes).unwrap();
    stream
}

fn set_cookies(r: &Response) -> Vec<&str> {
    r.headers
        .iter()
        .filter(|(n, _)| n == "set-cookie")
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn a_huge_content_length_is_refused_and_the_service_keeps_answering() {
    let (envoy, signin) = plain_route();
    let huge = "POST /login HTTP/1.1\r\nHost: 127.0.0.1:10000\r\n\
                Content-Type: application/x-www-form-urlencoded\r\n\
                Content-Length: 1000000000000\r\n\r\nusername=demo";
    // Directly: answered 413 at once, before any of the body is read.
    let r = within(signin.port, huge.as_bytes().to_vec(), 5).unwrap();
    assert_eq!(r.status, 413, "{}", r.text());
    // A client that asks first is told no, not to go ahead.
    let asking = huge.replace("\r\n\r\n", "\r\nExpect: 100-continue\r\n\r\n");
    let r = within(signin.port, asking.into_bytes(), 5).unwrap();
    assert_eq!(r.status, 413, "{}", r.text());
    // The same, and the client hangs up at once (the request that killed tiny_http).
    for port in [signin.port, envoy.port] {
        let s = stall(port, huge.as_bytes());
        s.shutdown(Shutdown::Both).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    let r = within(signin.port, Request::get("/login").to_bytes(), 5).unwrap();
    assert_eq!(r.status, 200);
    let r = envoy.send(&Request::get("/login"));
    assert_eq!(r.status, 200, "through Envoy: {}", r.text());
    let r = envoy.send(&json_post("/auth/refresh", "{}"));
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn stalled_clients_do_not_block_other_sign_ins() {
    let (envoy, signin) = plain_route();
    let stalled = [
        // A body that never finishes.
        "POST /login HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"username\"",
        // A chunked body that never finishes.
        "POST /login HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"username\":\"de",
        // Waiting for 100 Continue, never sending the body.
        "POST /login HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 40\r\n\r\n",
        // Half a request head.
        "POST /login HTTP/1.1\r\nHost: h\r\n",
    ];
    let mut held: Vec<TcpStream> = Vec::new();
    for port in [signin.port, envoy.port] {
        held.extend(stalled.iter().map(|s| stall(port, s.as_bytes())));
    }
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let r = within(signin.port, json_login(DEMO).to_bytes(), 3).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let r = within(envoy.port, json_login(DEMO).to_bytes(), 3).unwrap();
    assert_eq!(r.status, 200, "through Envoy: {}", r.text());
    assert!(started.elapsed() < Duration::from_secs(6));

    // The stalled body is answered 408 once its time is up, and the connection closed.
    let first = &mut held[0];
    first
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut answer = String::new();
    first.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
}

#[test]
fn a_client_that_pipelines_and_never_reads_is_disconnected() {
    let (_envoy, signin) = plain_route();
    let mut stream = TcpStream::connect(("127.0.0.1", signin.port)).unwrap();
    // Each reply is about 20 KB; the client's receive window (it never reads, so it does not
    // grow) and the service's send buffer fill long before the last.
    let request = format!(
        "GET /login?redirect={} HTTP/1.1\r\nHost: h\r\n\r\n",
        "'".repeat(3500)
    );
    let sent = 600;
    let mut writer = stream.try_clone().unwrap();
    std::thread::spawn(move || {
        for _ in 0..sent {
            if writer.write_all(request.as_bytes()).is_err() {
                break;
            }
        }
        // Kept open: a closed write side would end the connection anyway.
        std::thread::sleep(Duration::from_secs(60));
    });
    let started = Instant::now();
    // The service gives up on a reply nobody reads after 15 s.
    support::wait_until(
        "the unread reply to be given up on",
        Duration::from_secs(40),
        || signin.log().contains("its reply was not read within 15s"),
    );
    // Meanwhile others are served.
    let r = within(signin.port, json_login(DEMO).to_bytes(), 5).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0; 65536];
    let ended = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break false,
            Err(_) => break true,
        }
    };
    let replies = String::from_utf8_lossy(&got)
        .matches("HTTP/1.1 200")
        .count();
    assert!(
        ended,
        "still open after {replies} replies and {:?}",
        started.elapsed()
    );
    assert!(replies < sent, "every reply was written: {replies}");
    assert!(
        signin.log().contains("its reply was not read within 15s"),
        "{}",
        signin.log()
    );
}

/// A chunked login whose body holds, after `filler` bytes, a whole second request (a form
/// login of the demo user).
fn smuggling_login(filler: usize) -> Vec<u8> {
    let login = "username=demo&password=demo-password&redirect=%2F";
    let hidden = format!(
        "POST /login HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\n\r\n{login}",
        login.len()
    );
    let body = format!("username=x&password={}{hidden}", "x".repeat(filler - 20));
    format!(
        "POST /login HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    )
    .into_bytes()
}

#[test]
fn a_request_hidden_in_a_chunked_body_is_not_answered_to_the_next_client() {
    let (envoy, _signin) = plain_route();
    // The service replaced here read 64 KiB of a chunked body and took the rest for the next
    // request on Envoy's shared upstream connection (about one try in three).
    let mut attacker_statuses = Vec::new();
    for round in 0..20 {
        let filler = if round % 2 == 0 { 65536 } else { 100_000 };
        let attacker = within(envoy.port, smuggling_login(filler), 10).unwrap();
        attacker_statuses.push(attacker.status);
        // Another user, on a fresh connection to Envoy, gets their own answer.
        let r = envoy.send(&json_post("/auth/refresh", "{}"));
        assert!(
            set_cookies(&r).is_empty(),
            "round {round}: another user got the attacker's cookies: {:?}",
            r.headers
        );
        assert_eq!(
            r.status,
            400,
            "round {round}: another user got: {}",
            r.text()
        );
        assert!(
            r.text().contains("refresh_token is required"),
            "{}",
            r.text()
        );
    }
    // The attacker's body is over the limit: refused, and the connection closed.
    assert!(
        attacker_statuses.iter().all(|s| *s == 413),
        "{attacker_statuses:?}"
    );
}

#[test]
fn a_form_on_another_site_cannot_sign_a_visitor_in() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Chromium is needed (make test-tools)"
    );
    let dir = support::manifest_dir().join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is needed (make test-tools)"
    );
    let (envoy, signin) = plain_route();
    let site = format!("http://127.0.0.1:{}", envoy.port);
    let out = Command::new("node")
        .arg(dir.join("login-csrf.mjs"))
        .args([&site, "demo", "demo-password"])
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node is needed for the browser test");
    assert!(
        out.status.success(),
        "the browser run failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("{report}");
    assert_eq!(report["post_status"], 403, "{report}");
    let cookies: Vec<&str> = report["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(!cookies.contains(&"access_token"), "{report}");
    // The visitor is not signed in as the attacker: the app sends them to sign in.
    assert_eq!(report["app_title"], "Sign in", "{report}");
    assert_eq!(report["user"], Value::Null, "{report}");
    assert!(signin.log().contains("refused a cross-site POST /login"));
}

#[test]
fn guessing_passwords_is_stopped_with_429_and_logged_without_the_password() {
    let (envoy, signin) = shipped();
    let guesses = ["guess-one", "guess-two", "guess-3", "guess-4", "guess-5"];
    for guess in guesses {
        let body = json!({"username": "demo", "password": guess}).to_string();
        let r = envoy.send(&json_login(&body));
        assert_eq!(r.status, 401, "{}", r.text());
    }
    // Now even the right password waits.
    let r = envoy.send(&json_login(DEMO));
    assert_eq!(r.status, 429, "{}", r.text());
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
    assert!(
        r.text().contains("too many failed sign-ins"),
        "{}",
        r.text()
    );
    let log = signin.log();
    assert_eq!(
        log.matches("sign-in failed for account \"demo\"").count(),
        5,
        "{log}"
    );
    assert!(log.contains("too many failures"), "{log}");
    for guess in guesses.iter().chain(&["demo-password"]) {
        assert!(!log.contains(guess), "the log holds a password: {log}");
    }
}

#[test]
fn a_reused_refresh_token_ends_its_session() {
    let (envoy, _signin) = shipped();
    let (_, first) = tokens(&envoy.send(&json_login(DEMO)));
    let (access, second) = tokens(&envoy.send(&json_post("/auth/refresh", &refresh_body(&first))));
    let r = envoy.send(&Request::get("/api/me").host(HOST).bearer(&access));
    assert_eq!(r.upstream_header("x-auth-user").as_deref(), Some("lUpa"));
    // The first token again (a thief's copy): refused, and the whole session with it.
    let r = envoy.send(&json_post("/auth/refresh", &refresh_body(&first)));
    assert_eq!(r.status, 401, "{}", r.text());
    let r = envoy.send(&json_post("/auth/refresh", &refresh_body(&second)));
    assert_eq!(
        r.status, 401,
        "the rotated token outlived its revoked session"
    );
}

#[test]
fn tokens_are_unique_even_in_the_same_second() {
    let (envoy, _signin) = shipped();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let (access, refresh) = tokens(&envoy.send(&json_login(DEMO)));
        for token in [access, refresh] {
            let payload = token.split('.').nth(1).unwrap();
            let claims: Value =
                serde_json::from_slice(&support::base64url::decode(payload.as_bytes()).unwrap())
                    .unwrap();
            let jti = claims["jti"].as_str().expect("a jti").to_owned();
            assert!(!seen.contains(&jti));
            seen.push(jti);
            assert!(!seen.contains(&token));
            seen.push(token);
        }
    }
}

#[test]
fn logout_ends_the_session_and_clears_its_cookies() {
    let (envoy, _signin) = shipped();
    let (access, refresh) = tokens(&envoy.send(&json_login(DEMO)));
    let r = envoy.send(&json_post("/logout", &refresh_body(&refresh)));
    assert_eq!(r.status, 200, "{}", r.text());
    let cleared = set_cookies(&r);
    assert!(
        cleared.iter().any(|c| c.starts_with("access_token=;")),
        "{cleared:?}"
    );
    assert!(
        cleared.iter().all(|c| c.contains("Max-Age=0")),
        "{cleared:?}"
    );
    let r = envoy.send(&json_post("/auth/refresh", &refresh_body(&refresh)));
    assert_eq!(r.status, 401, "{}", r.text());

    // A browser signs out with its cookies (a form post from the site's own page).
    let (access2, refresh2) = tokens(&envoy.send(&json_login(DEMO)));
    assert_ne!(access, access2);
    let r = envoy.send(
        &Request::new("POST", "/logout")
            .host(HOST)
            .header("Origin", format!("http://{HOST}"))
            .header("Cookie", format!("access_token={access2}"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body_text(""),
    );
    assert_eq!(r.status, 302, "{}", r.text());
    assert_eq!(r.header("location"), Some("/login"));
    let r = envoy.send(&json_post("/auth/refresh", &refresh_body(&refresh2)));
    assert_eq!(r.status, 401, "{}", r.text());
}

#[path = "e2e_signin/limits.rs"]
mod limits;

#[path = "e2e_signin/process.rs"]
mod process;

#[path = "e2e_signin/guessing.rs"]
mod guessing;
