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
mod tests;
