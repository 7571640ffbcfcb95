//! What the service refuses or closes through Envoy: long URLs, big heads, a form without its token, idle and half-sent connections, framing.

use super::*;

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
