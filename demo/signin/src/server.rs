//! The HTTP server: hyper (HTTP/1.1) on tokio. Each connection is a task, not a thread; the
//! limits below are checked before the service sees a request.
//!
//! - Head: at most [`Limits::max_head`] bytes and [`MAX_HEADERS`] headers (431), read
//!   within [`Limits::head_timeout`]; that timeout also closes idle keep-alive connections.
//!   The service checks both, so that its 431 carries the security headers of every reply;
//!   hyper answers a bare 431 only beyond twice as many (it must parse a head to pass it on),
//!   and a bare 400 to what is not HTTP.
//! - Target: at most [`Limits::max_target`] bytes (414).
//! - Body: a `Content-Length` over [`Limits::max_body`] is refused before anything is read
//!   (413, so `Expect: 100-continue` gets no `100`); a chunked body is cut off at the same
//!   size (413), and must arrive within [`Limits::body_timeout`] (408). These answers close
//!   the connection, so the rest of the body is never read as another request.
//! - Whole request: [`Limits::request_timeout`] (503).
//! - Reply: once the server starts writing, everything it has must be written within
//!   [`Limits::write_timeout`], or the connection is closed (a client that pipelines
//!   requests and never reads the replies would otherwise hold its connection for ever).
//! - At most [`Limits::max_connections`] connections at once, and [`Limits::reserve`] more
//!   kept for health checks: once the others are taken, a connection from an address that
//!   holds no other gets one of these, on
//!   which only `/healthz` is answered (others 503) within [`RESERVE_HEAD_TIMEOUT`], and it
//!   is closed after its reply; beyond, connections are closed as soon as they are accepted.
//!   [`Limits::max_handlers`] requests are handled at once (each may compute an Argon2 hash);
//!   `/healthz` is answered without waiting for a handler, and the revocation feed
//!   (`/auth/revocations`, polled by every Envoy) waits for one of its own
//!   ([`FEED_HANDLERS`]), not behind sign-ins.
//! - At most [`Limits::max_per_address`] connections from one client address (an IPv6
//!   client by its /64); more are closed as soon as they are accepted. Trusted proxies are
//!   not counted: Envoy carries every user's requests.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming as Body;
use hyper::header::{HeaderName, HeaderValue, CONTENT_LENGTH};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::ratelimit::{canonical, client_block};
use crate::reply::Reply;
use crate::service::{Incoming, Service};

mod watched;
use watched::{missed, Watched};

/// How many revocation feed reads run at once (apart from the other requests).
pub const FEED_HANDLERS: usize = 2;

/// How long a reserve connection may take to send its request head.
pub const RESERVE_HEAD_TIMEOUT: Duration = Duration::from_secs(2);

/// The most header fields a request may have.
pub const MAX_HEADERS: usize = 64;

/// Sizes, times and counts the server enforces.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_head: usize,
    pub max_target: usize,
    pub max_body: usize,
    pub head_timeout: Duration,
    pub body_timeout: Duration,
    pub request_timeout: Duration,
    /// How long writing what the server has to send may take (longer than `head_timeout`).
    pub write_timeout: Duration,
    pub max_connections: usize,
    /// Connections beyond `max_connections`, for health checks only.
    pub reserve: usize,
    pub max_per_address: usize,
    pub max_handlers: usize,
    /// How long shutdown waits for requests in flight.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head: 16 * 1024,
            max_target: 4 * 1024,
            max_body: 64 * 1024,
            head_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(15),
            max_connections: 1024,
            reserve: 32,
            max_per_address: 16,
            max_handlers: 4,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// Shared by every connection.
struct Shared {
    service: Service,
    limits: Limits,
    handlers: Arc<Semaphore>,
    /// For the revocation feed.
    feed_handlers: Arc<Semaphore>,
}

/// The connections open per client address.
#[derive(Default)]
struct PerAddress {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection counted against its address, until dropped.
struct AddressSlot {
    table: Arc<PerAddress>,
    key: IpAddr,
    /// Whether it is the address's only connection.
    first: bool,
}

impl PerAddress {
    /// A slot for a connection from `address`; `None` when it already has `cap`.
    fn take(table: &Arc<PerAddress>, address: IpAddr, cap: usize) -> Option<AddressSlot> {
        let key = client_block(address);
        let mut open = table.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            table: Arc::clone(table),
            key,
            first: *count == 1,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self
            .table
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Serves `listener` until `shutdown` completes, then lets requests in flight finish.
pub async fn run(
    listener: TcpListener,
    service: Service,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let reserve = Arc::new(Semaphore::new(limits.reserve));
    let per_address = Arc::new(PerAddress::default());
    let (max_per_address, write_timeout) = (limits.max_per_address, limits.write_timeout);
    let drain_timeout = limits.drain_timeout;
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.head_timeout)
        .max_buf_size(limits.max_head.saturating_mul(2).max(8192))
        .max_headers(MAX_HEADERS * 2);
    let mut reserve_builder = builder.clone();
    reserve_builder
        .header_read_timeout(RESERVE_HEAD_TIMEOUT.min(limits.head_timeout))
        .keep_alive(false);
    let shared = Arc::new(Shared {
        handlers: Arc::new(Semaphore::new(limits.max_handlers)),
        feed_handlers: Arc::new(Semaphore::new(FEED_HANDLERS)),
        service,
        limits,
    });
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, typically: wait rather than spin.
                    eprintln!("tollgate-signin: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let proxies = &shared.service.settings.trusted_proxies;
        let slot = if proxies.contains(&canonical(peer.ip())) {
            None
        } else {
            match PerAddress::take(&per_address, peer.ip(), max_per_address) {
                Some(slot) => Some(slot),
                // Closed at once: this address holds enough connections already.
                None => continue,
            }
        };
        // The reserve is for an address that holds no other connection (a health checker),
        // not for those that fill the others.
        let may_reserve = slot.as_ref().is_none_or(|slot| slot.first);
        let (permit, reserved) = match Arc::clone(&connections).try_acquire_owned() {
            Ok(permit) => (permit, false),
            Err(_) => match Arc::clone(&reserve).try_acquire_owned() {
                Ok(permit) if may_reserve => (permit, true),
                // Closed at once: every slot is taken (the reserve too, or not for it).
                _ => continue,
            },
        };
        let deadline = Arc::new(Mutex::new(None));
        let stream = Watched {
            stream,
            write_timeout,
            deadline: Arc::clone(&deadline),
        };
        let shared = Arc::clone(&shared);
        let service =
            service_fn(move |request| respond(Arc::clone(&shared), peer, reserved, request));
        let serving = if reserved { &reserve_builder } else { &builder };
        let connection = graceful.watch(serving.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            tokio::select! {
                _ = connection => {}
                () = missed(deadline, write_timeout) => {
                    eprintln!(
                        "tollgate-signin: closed a connection from {}: its reply was not \
                         read within {write_timeout:?}",
                        peer.ip()
                    );
                }
            }
            drop(slot);
            drop(permit);
        });
    }
    drop(listener);
    eprintln!("tollgate-signin: shutting down");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(drain_timeout) => {
            eprintln!("tollgate-signin: requests still running after {drain_timeout:?}; stopping");
        }
    }
}

/// Answers one request: the limits, then the service (on a blocking thread). On a
/// `reserved` connection, `/healthz` only.
async fn respond(
    shared: Arc<Shared>,
    peer: SocketAddr,
    reserved: bool,
    request: Request<Body>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if reserved && request.uri().path() != "/healthz" {
        let reply = Reply::error(503, "the service is busy").with("Retry-After", "1".into());
        let reply = reply.secured(&shared.service.settings.trusted_hosts);
        return Ok(to_response(reply, true));
    }
    let limit = shared.limits.request_timeout;
    let answered = tokio::time::timeout(limit, answer(Arc::clone(&shared), peer, request)).await;
    let (reply, close) = match answered {
        Ok((reply, close)) => (reply, close || reserved),
        Err(_) => (Reply::error(503, "the request took too long"), true),
    };
    let reply = reply.secured(&shared.service.settings.trusted_hosts);
    Ok(to_response(reply, close))
}

/// The reply, and whether the connection must close after it.
async fn answer(shared: Arc<Shared>, peer: SocketAddr, request: Request<Body>) -> (Reply, bool) {
    let limits = &shared.limits;
    let refuse = |status, message| (Reply::error(status, message), true);
    let target = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    if target.len() > limits.max_target {
        return refuse(414, "the URL is too long");
    }
    let headers = request.headers();
    let head = target.len()
        + headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 4)
            .sum::<usize>();
    if head > limits.max_head || headers.len() > MAX_HEADERS {
        return refuse(431, "the request headers are too large");
    }
    let announced = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > limits.max_body as u64) {
        return refuse(413, "the request body is too large");
    }
    let (head, body) = request.into_parts();
    let read = Limited::new(body, limits.max_body).collect();
    let body = match tokio::time::timeout(limits.body_timeout, read).await {
        Err(_) => return refuse(408, "the request body did not arrive in time"),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return refuse(413, "the request body is too large")
        }
        Ok(Err(_)) => return refuse(400, "unreadable request body"),
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let Ok(body) = String::from_utf8(body.to_vec()) else {
        return refuse(400, "the request body is not UTF-8");
    };
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let incoming = Incoming {
        method: head.method.as_str().to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers: head
            .headers
            .iter()
            .map(|(n, v)| {
                let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (n.as_str().to_ascii_lowercase(), value)
            })
            .collect(),
        body,
        peer: peer.ip(),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if incoming.path == "/healthz" {
        // No hash to compute: it does not wait behind sign-ins.
        return (shared.service.handle(&incoming, now), false);
    }
    let handlers = if incoming.path == "/auth/revocations" {
        &shared.feed_handlers
    } else {
        &shared.handlers
    };
    let Ok(permit) = Arc::clone(handlers).acquire_owned().await else {
        return refuse(503, "shutting down");
    };
    // The permit goes with the work: a request that times out still holds it until its
    // handler returns.
    let service = Arc::clone(&shared);
    let handle = move || {
        let reply = service.service.handle(&incoming, now);
        drop(permit);
        reply
    };
    match tokio::task::spawn_blocking(handle).await {
        Ok(reply) => (reply, false),
        Err(_) => refuse(500, "internal error"),
    }
}

fn to_response(reply: Reply, close: bool) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
    if close {
        headers.insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

#[cfg(test)]
mod tests {
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
        let mut settings = Settings::parse(include_str!("../signin.json")).unwrap();
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
}
