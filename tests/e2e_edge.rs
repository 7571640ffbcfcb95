//! The shipped example is an edge Envoy, proved in Envoy: slow request heads are cut off,
//! client connections are capped, tokens are refused while the revocation feed is down, and
//! a request Envoy refuses before the filter runs keeps its token out of the access log.

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;
use support::feed::{Feed, FeedFault};
use support::{claims_for, now, wait_until, Envoy, Request, SigningKey};

const SECRET: &str = "edge-test-secret-Vq8Lm3Tz9Xw2Kc7Rn4Bp6Hd";
const ENV: &[(&str, &str)] = &[
    ("TOLLGATE_SECRET", SECRET),
    (
        "TOLLGATE_API_KEY",
        "sk_demo_edge_api_key_Pz4Wq8Rt2Lm6Xv9Kc3",
    ),
    (
        "TOLLGATE_PUBLISHABLE_KEY",
        "pk_demo_edge_publishable_Hn5Tb8Vc2Qw7",
    ),
    (
        "TOLLGATE_CLIENT_SECRET",
        "cs_demo_edge_client_secret_Jm3Rx9Kp6Ws2",
    ),
    (
        "TOLLGATE_OIDC_CLIENT_SECRET",
        "oc_demo_yZG9RwoJtm3fB5rEPU7DRpNh1lQp2ITm",
    ),
    (
        "TOLLGATE_COOKIE_KEYS",
        "demo:OtVfJ_8fwFcyQUjcZ-1bLT4nAoLH1H5jssTl8oVLjyk",
    ),
];
const HOST: &str = "127.0.0.1:10000";

/// The example configuration, its sign-in cluster pointed at `feed`, once the feed's first
/// page is in (before that, tokens get 503).
fn example_with_feed(file: &str, feed: &Feed) -> Envoy {
    support::example_envoy(file, feed.port, ENV)
        .unwrap_or_else(|r| panic!("example refused ({:?}):\n{}", r.exit_code, r.log))
}

fn token(sub: &str) -> String {
    SigningKey::new(Some("demo".into()), SECRET.as_bytes())
        .sign(claims_for(sub, "access", now(), 600))
        .unwrap()
}

/// Whether Envoy closed `stream` (read a FIN or a reset); what it sent before is drained.
fn closed_by_envoy(stream: &mut TcpStream) -> bool {
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    stream
}

#[test]
fn slow_request_heads_are_closed_within_the_header_timeout() {
    let feed = Feed::start();
    let envoy = example_with_feed("envoy.yaml", &feed);
    let started = Instant::now();
    let mut slow: Vec<TcpStream> = (0..40)
        .map(|i| {
            let mut s = connect(envoy.port);
            // Half a head: the blank line that ends it never comes.
            write!(
                s,
                "GET /api/slow-{i} HTTP/1.1\r\nHost: {HOST}\r\nX-Slow: 1\r\n"
            )
            .unwrap();
            s
        })
        .collect();
    // Others are served meanwhile.
    assert_eq!(
        envoy.send(&Request::get("/public/x").host(HOST)).status,
        200
    );
    let mut open = slow.len();
    wait_until(
        "Envoy to close the slow heads",
        Duration::from_secs(40),
        || {
            slow.retain_mut(|s| !closed_by_envoy(s));
            open = slow.len();
            open == 0
        },
    );
    // request_headers_timeout is 10 s: not closed by some other, shorter timer either.
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
    let timeouts = envoy.stats("http.ingress.downstream_rq_header_timeout");
    assert!(
        timeouts.values().sum::<u64>() >= 40,
        "{timeouts:?}: closed by something else than the header timeout"
    );
}

#[test]
fn client_connections_are_capped() {
    // The example's cap, lowered so that a test can reach it.
    let yaml = std::fs::read_to_string(support::manifest_dir().join("envoy/envoy.yaml")).unwrap();
    let cap = "max_active_downstream_connections: 50000";
    assert!(yaml.contains(cap), "envoy/envoy.yaml caps no connections");
    let path = support::scratch_dir("edge-cap").join("envoy.yaml");
    std::fs::write(
        &path,
        yaml.replace(cap, "max_active_downstream_connections: 12"),
    )
    .unwrap();
    let envoy = support::example_envoy_from(&path, 1, 1, ENV)
        .unwrap_or_else(|r| panic!("refused ({:?}):\n{}", r.exit_code, r.log));

    let mut held: Vec<TcpStream> = (0..12).map(|_| connect(envoy.port)).collect();
    // Accepted: each of them can still make a request.
    for s in &mut held[..2] {
        write!(s, "GET /public/x HTTP/1.1\r\nHost: {HOST}\r\n\r\n").unwrap();
    }
    // Over the cap: closed as soon as accepted.
    let mut over: Vec<TcpStream> = (0..6).map(|_| connect(envoy.port)).collect();
    wait_until(
        "Envoy to close the connections over the cap",
        Duration::from_secs(15),
        || {
            over.retain_mut(|s| !closed_by_envoy(s));
            over.is_empty()
        },
    );
    wait_until("the overflow counter", Duration::from_secs(15), || {
        envoy
            .stats("listener.")
            .iter()
            .filter(|(name, _)| name.ends_with("downstream_global_cx_overflow"))
            .map(|(_, v)| v)
            .sum::<u64>()
            >= 6
    });
    // The held ones stayed open; once they go, new clients are served again.
    for s in &mut held {
        assert!(!closed_by_envoy(s), "a connection under the cap was closed");
    }
    drop(held);
    wait_until(
        "a connection under the cap again",
        Duration::from_secs(15),
        || support::try_get(envoy.port, "/public/x").is_some_and(|r| r.status == 200),
    );
}

#[test]
fn tokens_are_refused_while_the_revocation_feed_is_down() {
    let feed = Feed::start();
    let envoy = example_with_feed("envoy.yaml", &feed);
    let good = token("lUpa");
    let r = envoy.send(&Request::get("/api/x").host(HOST).bearer(&good));
    assert_eq!(r.status, 200, "{}", r.text());

    // The feed goes down, and the token is revoked where the filter cannot see it.
    feed.fault(FeedFault::Status500);
    let down = Instant::now();
    feed.revoke(json!({"subject": "lUpa", "before": now() + 5, "expires_at": now() + 3600}));
    let mut last = None;
    wait_until(
        "tokens refused with the feed down",
        Duration::from_secs(30),
        || {
            let r = envoy.send(&Request::get("/api/x").host(HOST).bearer(&good));
            last = Some((r.status, r.code()));
            r.status == 503
        },
    );
    assert_eq!(last, Some((503, Some("REVOCATION_UNAVAILABLE".to_owned()))));
    // fail_closed_after_seconds is 10 (the last good poll may be 2 s older than the fault).
    assert!(
        down.elapsed() >= Duration::from_secs(7),
        "{:?}",
        down.elapsed()
    );
    // API keys are configuration, not tokens: still served.
    let r = envoy.send(&Request::get("/admin/x").host(HOST).bearer(ENV[1].1));
    assert_eq!(r.status, 200, "{}", r.text());

    // The feed is back: the revocation is seen.
    feed.fault(FeedFault::Ok);
    wait_until(
        "the revocation once the feed is back",
        Duration::from_secs(20),
        || {
            envoy
                .send(&Request::get("/api/x").host(HOST).bearer(&good))
                .code()
                .as_deref()
                == Some("TOKEN_REVOKED")
        },
    );
}

#[test]
fn a_path_envoy_refuses_keeps_its_token_out_of_the_access_log() {
    let feed = Feed::start();
    let envoy = example_with_feed("envoy.yaml", &feed);
    let good = token("lUpa");
    // Refused by Envoy's path normalisation (400) and by its escaped-slash redirect, both
    // before the filter runs: the credential stays in the query Envoy logs.
    let nul = envoy.send(&Request::get(format!("/api/x%00?access_token={good}&n=1")).host(HOST));
    assert_eq!(nul.status, 400, "{}", nul.text());
    let slash = envoy.send(&Request::get(format!("/ops%2fx?access_token={good}&s=1")).host(HOST));
    assert!(
        (300..400).contains(&slash.status),
        "{} {}",
        slash.status,
        slash.text()
    );
    wait_until("two access log lines", Duration::from_secs(15), || {
        envoy.access_log().lines().count() >= 2
    });
    let log = envoy.access_log();
    assert!(
        log.contains("\"status\":\"400\"") || log.contains("\"status\":400"),
        "{log}"
    );
    assert!(
        !log.contains(&good),
        "a token reached the access log:\n{log}"
    );
    assert!(!log.contains("access_token"), "{log}");
}

#[test]
fn the_istio_edge_patch_closes_slow_heads_too() {
    // The connection manager patch of envoy/istio/edge.yaml, on a plain Envoy.
    let filter = support::yaml_file("envoy/istio/edge.yaml");
    assert_eq!(filter["kind"], "EnvoyFilter");
    let patches = filter["spec"]["configPatches"].as_array().unwrap();
    let hcm = patches
        .iter()
        .find(|p| p["patch"]["operation"] == "MERGE" && p["applyTo"] == "NETWORK_FILTER")
        .unwrap();
    let mut settings = hcm["patch"]["value"]["typed_config"].clone();
    settings.as_object_mut().unwrap().remove("@type");
    assert_eq!(settings["request_headers_timeout"], "10s", "{settings}");
    let mut setup = support::Setup::new(json!({"secrets": [{"key": support::K}]}));
    setup.hcm = settings;
    let envoy = Envoy::start(setup);
    assert_eq!(envoy.get("/api/x").status, 401);
    // Refused by Envoy: headers with underscores.
    let r = envoy.send(&Request::get("/api/x").header("X_Auth_User", "admin"));
    assert_eq!(r.status, 400, "{}", r.text());
    let mut slow = connect(envoy.port);
    write!(slow, "GET /api/x HTTP/1.1\r\nHost: h\r\n").unwrap();
    wait_until(
        "Envoy to close the slow head",
        Duration::from_secs(40),
        || closed_by_envoy(&mut slow),
    );
}
