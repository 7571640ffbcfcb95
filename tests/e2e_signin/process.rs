//! The service as a process: its command line, its master key, its cookies' flags, its password hashes, its shutdown, and the sign-in routes' caps in the shipped Envoy configuration.

use super::*;

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
