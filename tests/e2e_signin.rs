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

#[test]
fn long_urls_are_refused() {
    let (_envoy, signin) = plain_route();
    for size in [10_000, 200_000] {
        let target = format!("/login?redirect=/{}", "a".repeat(size));
        let r = within(signin.port, Request::get(target).to_bytes(), 10).unwrap();
        assert!([414, 431].contains(&r.status), "{size}: {}", r.status);
    }
}

#[test]
fn oversized_headers_are_refused() {
    let (_envoy, signin) = plain_route();
    let big = Request::get("/login").header("X-Padding", "p".repeat(20_000));
    let r = within(signin.port, big.to_bytes(), 10).unwrap();
    assert_eq!(r.status, 431);
    let mut many = Request::get("/login");
    for i in 0..100 {
        many = many.header(&format!("X-Header-{i}"), "1");
    }
    let r = within(signin.port, many.to_bytes(), 10).unwrap();
    assert_eq!(r.status, 431);
}

#[test]
fn a_form_post_without_the_pages_token_is_refused() {
    let (envoy, signin) = plain_route();
    // No Origin, no Sec-Fetch-Site (as a non-browser client, or an old browser, sends it).
    let form = Request::new("POST", "/login")
        .host(&format!("127.0.0.1:{}", envoy.port))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body_text("username=demo&password=demo-password&redirect=%2F");
    for port in [signin.port, envoy.port] {
        let r = within(port, form.to_bytes(), 5).unwrap();
        assert_eq!(r.status, 403, "{}", r.text());
        assert!(set_cookies(&r)
            .iter()
            .all(|c| !c.starts_with("access_token=")));
        assert!(r.text().contains("id=\"error\""), "{}", r.text());
    }
}

#[test]
fn idle_connections_do_not_each_hold_a_thread() {
    let (_envoy, signin) = plain_route();
    let threads = || {
        let status = std::fs::read_to_string(format!("/proc/{}/status", signin.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .unwrap()
            .trim()
            .parse::<u32>()
            .unwrap()
    };
    let idle: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(("127.0.0.1", signin.port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let r = within(signin.port, json_login(DEMO).to_bytes(), 5).unwrap();
    assert_eq!(r.status, 200);
    assert!(
        threads() < 50,
        "{} threads for {} idle connections",
        threads(),
        idle.len()
    );
}

#[test]
fn idle_and_half_sent_connections_are_closed_in_ten_seconds() {
    let (_envoy, signin) = plain_route();
    let connections = [
        // Connected, silent.
        (TcpStream::connect(("127.0.0.1", signin.port)).unwrap(), ""),
        // Half a request head.
        (
            stall(signin.port, b"GET /login HTTP/1.1\r\nHost: h\r\n"),
            "",
        ),
        // Answered, then kept alive and silent.
        (
            stall(signin.port, b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"),
            "HTTP/1.1 200 OK",
        ),
    ];
    let started = Instant::now();
    for (mut c, answer) in connections {
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        let got = String::from_utf8_lossy(&got);
        assert!(
            got.starts_with(answer) && got.matches("HTTP/1.1").count() <= 1,
            "{got:?}"
        );
    }
    let waited = started.elapsed();
    assert!(
        waited > Duration::from_secs(8) && waited < Duration::from_secs(15),
        "{waited:?}"
    );
}

#[test]
fn pages_cannot_be_framed_or_sniffed() {
    let (_envoy, signin) = plain_route();
    for target in ["/login", "/nowhere"] {
        let r = within(signin.port, Request::get(target).to_bytes(), 5).unwrap();
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{target}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{target}: {csp}");
    }
}

/// Runs the service binary with `args` and the master key `secret`; its exit code and stderr.
fn run_signin(args: &[&str], secret: Option<&str>, stdin: &str) -> (Option<i32>, String, String) {
    let binary = std::env::var("TOLLGATE_SIGNIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| support::manifest_dir().join("target/debug/tollgate-signin"));
    let mut command = Command::new(binary);
    command
        .args(args)
        .current_dir(support::manifest_dir())
        .env_remove("TOLLGATE_SECRET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(secret) = secret {
        command.env("TOLLGATE_SECRET", secret);
    }
    let mut child = command.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    // A service that starts would run forever: give it a moment, then stop it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_weak_master_key_is_refused_at_start_without_being_quoted() {
    let args = ["--listen", "127.0.0.1:0"];
    for (key, problem) in [
        ("hunter2hunter2", "at least 32"),
        ("", "is empty"),
        ("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", "repetitive"),
        (" leading-space-0123456789abcdefghijklmnop", "whitespace"),
    ] {
        let (code, stdout, stderr) = run_signin(&args, Some(key), "");
        assert_eq!(code, Some(2), "{key:?} was accepted: {stdout}{stderr}");
        assert!(
            stderr.contains("TOLLGATE_SECRET") && stderr.contains(problem),
            "{stderr}"
        );
        assert!(
            key.trim().is_empty() || !stderr.contains(key.trim()),
            "{stderr}"
        );
    }
}

#[test]
fn the_secure_flag_comes_from_the_configuration_not_a_client_header() {
    let (_envoy, signin) = plain_route();
    let page = within(signin.port, Request::get("/login").to_bytes(), 5).unwrap();
    let cookie = set_cookies(&page)
        .first()
        .map(|c| c.split(';').next().unwrap().to_owned())
        .unwrap_or_default();
    let text = page.text();
    let token = text
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .unwrap_or_default();
    let r = within(
        signin.port,
        Request::new("POST", "/login")
            .header("X-Forwarded-Proto", "https")
            .header("Cookie", &cookie)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body_text(&format!(
                "username=demo&password=demo-password&redirect=%2F&csrf_token={token}"
            ))
            .to_bytes(),
        5,
    )
    .unwrap();
    assert_eq!(r.status, 302, "{}", r.text());
    let cookies = set_cookies(&r);
    assert!(cookies.iter().any(|c| c.starts_with("access_token=ey")));
    assert!(cookies.iter().all(|c| !c.contains("Secure")), "{cookies:?}");
}

#[test]
fn passwords_are_stored_as_argon2id_hashes() {
    let shipped =
        std::fs::read_to_string(support::manifest_dir().join("demo/signin/signin.json")).unwrap();
    assert!(!shipped.contains("demo-password"), "{shipped}");
    let config: Value = serde_json::from_str(&shipped).unwrap();
    assert!(config["users"][0].get("password").is_none());

    // hash-password makes a hash that signs the user in.
    let (code, hash, stderr) = run_signin(&["hash-password"], None, "correct horse battery\n");
    assert_eq!(code, Some(0), "{stderr}");
    let hash = hash.trim();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let dir = support::scratch_dir("signin-config");
    let mut config = config;
    config["users"][0]["password_hash"] = json!(hash);
    let path = dir.join("signin.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let mut service = Command::new(
        std::env::var("TOLLGATE_SIGNIN")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| support::manifest_dir().join("target/debug/tollgate-signin")),
    )
    .args([
        "--config",
        path.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--database",
        dir.join("signin.db").to_str().unwrap(),
    ])
    .env("TOLLGATE_SECRET", SECRET)
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut line = String::new();
    {
        use std::io::BufRead;
        std::io::BufReader::new(service.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
    }
    let port: u16 = line.trim().rsplit(':').next().unwrap().parse().unwrap();
    let body = r#"{"username":"demo","password":"correct horse battery"}"#;
    let r = within(port, json_login(body).to_bytes(), 5).unwrap();
    let _ = service.kill();
    let _ = service.wait();
    assert_eq!(r.status, 200, "{}", r.text());

    // A password in plain text is refused, with what to do instead.
    config["users"][0]["password"] = json!("plain-text-password");
    std::fs::write(&path, config.to_string()).unwrap();
    let (code, _, stderr) = run_signin(&["--config", path.to_str().unwrap()], Some(SECRET), "");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("hash-password"), "{stderr}");
    assert!(!stderr.contains("plain-text-password"), "{stderr}");
}

#[test]
fn shutdown_finishes_requests_in_flight() {
    let (_envoy, signin) = plain_route();
    let pid = signin.pid();
    // A request whose body is still on its way when the service is told to stop.
    let head = format!(
        "POST /login HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        DEMO.len()
    );
    let mut s = stall(signin.port, head.as_bytes());
    std::thread::sleep(Duration::from_millis(200));
    assert!(Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    support::wait_until(
        "the service to begin its shutdown",
        Duration::from_secs(10),
        || signin.log().contains("shutting down"),
    );
    s.write_all(DEMO.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    // And then it stops, having said so.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < deadline, "still running");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(signin.log().contains("shutting down"), "{}", signin.log());
}

#[test]
fn the_shipped_envoy_configuration_caps_the_sign_in_routes() {
    let (envoy, signin) = shipped();
    let big = format!("username=demo&password={}", "x".repeat(100_000));
    for path in ["/login", "/auth/refresh", "/logout"] {
        let r = envoy.send(
            &Request::new("POST", path)
                .host(HOST)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body_text(&big),
        );
        assert_eq!(r.status, 413, "{path}: {}", r.text());
    }
    assert!(
        !signin.log().contains("sign-in failed"),
        "the service saw it"
    );
    // The README's sign-in still works through it.
    let r = envoy.send(&json_login(DEMO));
    assert_eq!(r.status, 200, "{}", r.text());
    // A body that stalls is cut off by Envoy, not left to the service.
    let mut s = stall(
        envoy.port,
        format!(
            "POST /login HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n\
             Content-Length: 100\r\n\r\n{{"
        )
        .as_bytes(),
    );
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut answer = vec![0u8; 64];
    let n = s.read(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
}

/// A JSON login through `port` from the loopback address `from` (curl binds it), with extra
/// request headers; the status and the `Retry-After` header.
fn login_from(port: u16, from: &str, username: &str, headers: &[&str]) -> (u16, bool) {
    let body = json!({"username": username, "password": "wrong-or-right"}).to_string();
    let body = if username == "demo-right" {
        DEMO.to_owned()
    } else {
        body
    };
    let mut command = Command::new("curl");
    command.args([
        "-s",
        "-o",
        "/dev/null",
        "-D",
        "-",
        "--interface",
        from,
        "-H",
        "Content-Type: application/json",
        "-H",
        &format!("Host: {HOST}"),
        "--data",
        &body,
    ]);
    for h in headers {
        command.args(["-H", h]);
    }
    let out = command
        .arg(format!("http://127.0.0.1:{port}/login"))
        .output()
        .expect("curl is needed");
    let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.contains("retry-after:"))
}

#[test]
fn one_clients_guesses_do_not_lock_out_others_through_the_shipped_envoy() {
    let (envoy, signin) = shipped();
    // 20 accounts guessed from one address, a forged X-Forwarded-For on some of them.
    for i in 0..20 {
        let forged = format!("X-Forwarded-For: 10.9.9.{i}");
        let headers: &[&str] = if i % 2 == 0 { &[&forged] } else { &[] };
        let (status, _) = login_from(envoy.port, "127.0.0.2", &format!("user{i}"), headers);
        assert_eq!(status, 401, "guess {i}");
    }
    // That address now waits, even with the right password and another forged address...
    let (status, retry_after) = login_from(
        envoy.port,
        "127.0.0.2",
        "demo-right",
        &["X-Forwarded-For: 10.1.2.3"],
    );
    assert_eq!((status, retry_after), (429, true));
    // ...while a user elsewhere signs in.
    let (status, _) = login_from(envoy.port, "127.0.0.3", "demo-right", &[]);
    assert_eq!(status, 200, "{}", signin.log());
    let log = signin.log();
    assert!(
        log.contains("failed for account \"user0\" from 127.0.0.2"),
        "{log}"
    );
    assert!(
        log.contains("signed in account \"demo\" from 127.0.0.3"),
        "{log}"
    );
}

#[test]
fn guesses_from_one_address_do_not_lock_the_owner_out_elsewhere_through_the_shipped_envoy() {
    let (envoy, signin) = shipped();
    for i in 0..5 {
        let (status, _) = login_from(envoy.port, "127.0.0.4", "demo", &[]);
        assert_eq!(status, 401, "guess {i}");
    }
    let (status, retry_after) = login_from(envoy.port, "127.0.0.4", "demo-right", &[]);
    assert_eq!(
        (status, retry_after),
        (429, true),
        "the guessing address waits"
    );
    let (status, _) = login_from(envoy.port, "127.0.0.5", "demo-right", &[]);
    assert_eq!(status, 200, "the owner elsewhere: {}", signin.log());
}

/// The resident memory of process `pid`, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn failed_sign_ins_do_not_grow_the_service() {
    let signin = SignIn::start(SECRET, HOST);
    let pid = signin.pid();
    let before = resident_kib(pid);
    // 240 failed sign-ins, 16 at a time, each for another account and client.
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..16 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= 240 {
                    break;
                }
                let body = json!({"username": format!("user{i}"), "password": "nope"});
                let r = json_login(&body.to_string()).header(
                    "X-Forwarded-For",
                    format!("10.7.{}.{}", i / 200, i % 200 + 1),
                );
                let r = within(signin.port, r.to_bytes(), 60).unwrap();
                assert_eq!(r.status, 401, "{}", r.text());
            });
        }
    });
    let after = resident_kib(pid);
    // Argon2 needs 19 MiB per check, four at most at once: about 80 MiB however many fail.
    assert!(
        after < before + 120 * 1024,
        "{before} KiB before, {after} KiB after 240 failed sign-ins"
    );
}

#[test]
fn two_instances_on_one_database_allow_no_more_guesses_than_one() {
    let dir = support::scratch_dir("shared-limits");
    let database = dir.join("signin.db");
    let a = SignIn::start_on(SECRET, HOST, 0, &database);
    let b = SignIn::start_on(SECRET, HOST, 0, &database);
    let wrong = r#"{"username":"demo","password":"guess"}"#;
    for (i, port) in [a.port, b.port, a.port, b.port, a.port]
        .into_iter()
        .enumerate()
    {
        let r = within(port, json_login(wrong).to_bytes(), 30).unwrap();
        assert_eq!(r.status, 401, "guess {i}");
    }
    for port in [a.port, b.port] {
        let r = within(port, json_login(wrong).to_bytes(), 30).unwrap();
        assert_eq!(r.status, 429, "{}", r.text());
    }
}

/// Holds 16 idle connections to `port` from each of `addresses` loopback addresses
/// (127.0.0.10 on), in a Python process, until dropped.
struct IdleClients(std::process::Child);

impl IdleClients {
    fn open(port: u16, addresses: u8) -> IdleClients {
        let script = format!(
            "import socket, sys\n\
             held = []\n\
             for a in range(10, 10 + {addresses}):\n\
             \x20   for _ in range(16):\n\
             \x20       s = socket.socket()\n\
             \x20       s.bind(('127.0.0.%d' % a, 0))\n\
             \x20       s.connect(('127.0.0.1', {port}))\n\
             \x20       held.append(s)\n\
             print('held', len(held), flush=True)\n\
             sys.stdin.read()\n"
        );
        let mut child = Command::new("python3")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 is needed");
        let mut line = String::new();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert!(line.starts_with("held"), "{line}");
        IdleClients(child)
    }
}

impl Drop for IdleClients {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The status `GET target` gets from `port` within 3 s from the loopback address `from`
/// (0: no answer in time, or the connection closed).
fn get_from(port: u16, from: &str, target: &str) -> u16 {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "3",
        ])
        .args(["--interface", from])
        .arg(format!("http://127.0.0.1:{port}{target}"))
        .output()
        .expect("curl is needed");
    String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0)
}

#[test]
fn health_checks_answer_while_idle_clients_hold_every_connection() {
    let signin = SignIn::start(SECRET, HOST);
    // 66 addresses, 16 idle connections each: more than the 1,024 connections served.
    let _idle = IdleClients::open(signin.port, 66);
    assert_eq!(get_from(signin.port, "127.0.0.200", "/healthz"), 200);
    assert_eq!(get_from(signin.port, "127.0.0.201", "/login"), 503);
}
