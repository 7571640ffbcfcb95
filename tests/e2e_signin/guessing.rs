//! Password guessing through the shipped Envoy (per client, per address, across two instances), the service's memory under failed sign-ins, and health checks while idle clients hold every connection.

use super::*;

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
