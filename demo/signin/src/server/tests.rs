//! The server's limits, met by real connections.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;
use crate::settings::Settings;
use std::io;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Some bytes; 0 at the end.
async fn read(stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        stream.readable().await?;
        match stream.try_read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            read => return read,
        }
    }
}

const SECRET: &str = "demo-secret-for-unit-tests-5WXvYpho4fE6FTgvtEDxvVsnu5eU";
const HEALTHZ: &str = "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n";

/// A server on a free port with `limits`, trusting `proxies`.
async fn start(limits: Limits, proxies: Vec<IpAddr>) -> SocketAddr {
    start_on("127.0.0.1:0", limits, proxies).await
}

/// [`start`] listening on `bind`.
async fn start_on(bind: &str, limits: Limits, proxies: Vec<IpAddr>) -> SocketAddr {
    let mut settings = Settings::parse(include_str!("../../signin.json")).unwrap();
    settings.trusted_proxies = proxies;
    settings.database = ":memory:".into();
    let service = Service::new(settings, SECRET).unwrap();
    let listener = TcpListener::bind(bind).await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(run(listener, service, limits, std::future::pending()));
    address
}

/// A connection to `server` from the local address `from`.
async fn connect_from(from: [u8; 4], server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    socket.connect(server).await.unwrap()
}

/// The status line answering `request`; `None` when the connection is closed instead.
async fn status(stream: &TcpStream, request: &str) -> Option<String> {
    write_all(stream, request.as_bytes()).await.ok()?;
    let mut got = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), read(stream, &mut got));
    let n = read.await.expect("no answer, no close").ok()?;
    let text = String::from_utf8_lossy(got.get(..n)?).into_owned();
    text.lines()
        .next()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
}

const OK: Option<&str> = Some("HTTP/1.1 200 OK");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_every_connection() {
    let server = start(Limits::default(), vec![]).await;
    let mut held = Vec::new();
    for _ in 0..16 {
        let c = connect_from([127, 0, 0, 3], server).await;
        assert_eq!(status(&c, HEALTHZ).await.as_deref(), OK);
        held.push(c);
    }
    let extra = connect_from([127, 0, 0, 3], server).await;
    assert_eq!(status(&extra, HEALTHZ).await, None, "the 17th is closed");
    let other = connect_from([127, 0, 0, 4], server).await;
    assert_eq!(status(&other, HEALTHZ).await.as_deref(), OK);
    // A connection that ends gives its slot back.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = connect_from([127, 0, 0, 3], server).await;
    assert_eq!(status(&again, HEALTHZ).await.as_deref(), OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_are_answered_when_idle_clients_hold_every_connection() {
    let limits = Limits {
        max_connections: 8,
        reserve: 2,
        max_per_address: 5,
        ..Limits::default()
    };
    let server = start(limits, vec![]).await;
    let mut held = Vec::new();
    for from in [[127, 0, 0, 11], [127, 0, 0, 12]] {
        for _ in 0..4 {
            let c = connect_from(from, server).await;
            assert_eq!(status(&c, HEALTHZ).await.as_deref(), OK);
            held.push(c);
        }
    }
    // Every connection is held (idle, kept alive): a health check still answers...
    let check = connect_from([127, 0, 0, 13], server).await;
    assert_eq!(status(&check, HEALTHZ).await.as_deref(), OK);
    // ...on a connection closed after its reply, and other requests are refused there.
    let login = connect_from([127, 0, 0, 14], server).await;
    let busy = status(&login, "GET /login HTTP/1.1\r\nHost: h\r\n\r\n").await;
    assert_eq!(busy.as_deref(), Some("HTTP/1.1 503 Service Unavailable"));
    // Not for an address that holds the others.
    let filler = connect_from([127, 0, 0, 12], server).await;
    assert_eq!(status(&filler, HEALTHZ).await, None);
    // A held connection that ends gives its slot back.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = connect_from([127, 0, 0, 13], server).await;
    let page = status(&again, "GET /login HTTP/1.1\r\nHost: h\r\n\r\n").await;
    assert_eq!(page.as_deref(), OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_is_not_capped() {
    let limits = Limits {
        max_per_address: 3,
        ..Limits::default()
    };
    let server = start(limits, vec![IpAddr::from([127, 0, 0, 5])]).await;
    let mut held = Vec::new();
    for _ in 0..6 {
        let c = connect_from([127, 0, 0, 5], server).await;
        assert_eq!(status(&c, HEALTHZ).await.as_deref(), OK);
        held.push(c);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_dual_stack_listener_ipv4_clients_are_told_apart_and_the_proxy_is_trusted() {
    let limits = Limits {
        max_per_address: 3,
        ..Limits::default()
    };
    let server = start_on("[::]:0", limits, vec![IpAddr::from([127, 0, 0, 5])]).await;
    let server = SocketAddr::from(([127, 0, 0, 1], server.port()));
    let mut held = Vec::new();
    for _ in 0..6 {
        let c = connect_from([127, 0, 0, 5], server).await;
        assert_eq!(status(&c, HEALTHZ).await.as_deref(), OK, "the proxy");
        held.push(c);
    }
    for _ in 0..3 {
        let c = connect_from([127, 0, 0, 6], server).await;
        assert_eq!(status(&c, HEALTHZ).await.as_deref(), OK);
        held.push(c);
    }
    let extra = connect_from([127, 0, 0, 6], server).await;
    assert_eq!(status(&extra, HEALTHZ).await, None, "the 4th is closed");
    // Another IPv4 client is not in the same /64.
    let other = connect_from([127, 0, 0, 7], server).await;
    assert_eq!(status(&other, HEALTHZ).await.as_deref(), OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_its_replies_is_disconnected() {
    let limits = Limits {
        write_timeout: Duration::from_secs(2),
        ..Limits::default()
    };
    let server = start(limits, vec![]).await;
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = Arc::new(socket.connect(server).await.unwrap());
    let writer = Arc::clone(&stream);
    // Each reply is about 20 KB: far more than the socket buffers hold.
    let request = format!(
        "GET /login?redirect={} HTTP/1.1\r\nHost: h\r\n\r\n",
        "'".repeat(3500)
    );
    let sent = 600;
    tokio::spawn(async move {
        for _ in 0..sent {
            if write_all(&writer, request.as_bytes()).await.is_err() {
                break;
            }
        }
        std::future::pending::<()>().await;
    });
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut got = Vec::new();
    let read_all = async {
        let mut buf = vec![0; 65536];
        while let Ok(n @ 1..) = read(&stream, &mut buf).await {
            got.extend_from_slice(&buf[..n]);
        }
    };
    let ended = tokio::time::timeout(Duration::from_secs(10), read_all)
        .await
        .is_ok();
    let replies = String::from_utf8_lossy(&got)
        .matches("HTTP/1.1 200")
        .count();
    assert!(ended, "still open after {replies} replies");
    assert!(replies < sent, "every reply was written: {replies}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_too_large_are_refused_with_the_security_headers() {
    let server = start(Limits::default(), vec![]).await;
    let big = format!(
        "GET /login HTTP/1.1\r\nHost: h\r\nX-P: {}\r\n\r\n",
        "p".repeat(20_000)
    );
    let many = (0..100).fold(
        String::from("GET /login HTTP/1.1\r\nHost: h\r\n"),
        |r, i| r + &format!("X-Header-{i}: 1\r\n"),
    ) + "\r\n";
    for request in [big, many] {
        let stream = connect_from([127, 0, 0, 1], server).await;
        write_all(&stream, request.as_bytes()).await.unwrap();
        let mut got = vec![0; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), read(&stream, &mut got));
        let n = n.await.unwrap().unwrap();
        let text = String::from_utf8_lossy(&got[..n]).to_ascii_lowercase();
        assert!(text.starts_with("http/1.1 431"), "{text}");
        assert!(text.contains("x-frame-options: deny"), "{text}");
        assert!(text.contains("content-security-policy:"), "{text}");
        assert!(text.contains("connection: close"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_the_feed_do_not_wait_for_sign_ins() {
    let limits = Limits {
        max_handlers: 0,
        request_timeout: Duration::from_secs(3),
        ..Limits::default()
    };
    let server = start(limits, vec![IpAddr::from([127, 0, 0, 1])]).await;
    let c = connect_from([127, 0, 0, 1], server).await;
    let started = Instant::now();
    assert_eq!(status(&c, HEALTHZ).await.as_deref(), OK);
    assert!(started.elapsed() < Duration::from_secs(1));
    // Nor does the revocation feed.
    let feed = "GET /auth/revocations HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_eq!(status(&c, feed).await.as_deref(), OK);
    assert!(started.elapsed() < Duration::from_secs(1));
}
