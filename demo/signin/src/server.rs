//! The HTTP server: hyper (HTTP/1.1) on tokio. Each connection is a task, not a thread; the
//! limits below are checked before the service sees a request.
//!
//! - Head: at most [`Limits::max_head`] bytes and 64 headers (hyper answers 431), read
//!   within [`Limits::head_timeout`]; that timeout also closes idle keep-alive connections.
//! - Target: at most [`Limits::max_target`] bytes (414).
//! - Body: a `Content-Length` over [`Limits::max_body`] is refused before anything is read
//!   (413, so `Expect: 100-continue` gets no `100`); a chunked body is cut off at the same
//!   size (413), and must arrive within [`Limits::body_timeout`] (408). These answers close
//!   the connection, so the rest of the body is never read as another request.
//! - Whole request: [`Limits::request_timeout`] (503).
//! - At most [`Limits::max_connections`] connections at once (more wait in the backlog), and
//!   [`Limits::max_handlers`] requests handled at once (each may compute an Argon2 hash).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
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

use crate::reply::Reply;
use crate::service::{Incoming, Service};

/// Sizes, times and counts the server enforces.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_head: usize,
    pub max_target: usize,
    pub max_body: usize,
    pub head_timeout: Duration,
    pub body_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
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
            max_connections: 1024,
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
}

/// Serves `listener` until `shutdown` completes, then lets requests in flight finish.
pub async fn run(
    listener: TcpListener,
    service: Service,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let drain_timeout = limits.drain_timeout;
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.head_timeout)
        .max_buf_size(limits.max_head.max(8192))
        .max_headers(64);
    let shared = Arc::new(Shared {
        handlers: Arc::new(Semaphore::new(limits.max_handlers)),
        service,
        limits,
    });
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
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
        let shared = Arc::clone(&shared);
        let service = service_fn(move |request| respond(Arc::clone(&shared), peer, request));
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = connection.await;
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

/// Answers one request: the limits, then the service (on a blocking thread).
async fn respond(
    shared: Arc<Shared>,
    peer: SocketAddr,
    request: Request<Body>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let limit = shared.limits.request_timeout;
    let answered = tokio::time::timeout(limit, answer(Arc::clone(&shared), peer, request)).await;
    let (reply, close) = match answered {
        Ok(answer) => answer,
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
    let Ok(permit) = Arc::clone(&shared.handlers).acquire_owned().await else {
        return refuse(503, "shutting down");
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
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
