//! The worker's lifecycle ([`Filter`]) against a fake root context: key fetches that fail in
//! each way a call can, held requests whose keys arrive, whose fetch fails or that time out,
//! two workers racing on the shared record, and the revocation feed's pages.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod fake_root;

use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use fake_root::{FakeRequest, FakeRoot, Process};
use jwt_simple::prelude::*;
use serde_json::{json, Value};
use tollgate_core::lifecycle::{Filter, Level, Step};
use tollgate_core::verify::jwks::MAX_JWKS_BYTES;

const ISS: &str = "https://idp.example.com";
const KEYS_PATH: &str = "/.well-known/jwks.json";

fn now_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(since.as_millis()).unwrap()
}

fn pair() -> Ed25519KeyPair {
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/issuer-keys/ed25519.pem"
    ))
    .unwrap();
    Ed25519KeyPair::from_pem(&pem).unwrap().with_key_id("k1")
}

/// The provider's JWKS, with the key of [`pair`].
fn jwks() -> Vec<u8> {
    jwks_with_kid("k1")
}

/// The provider's JWKS, with the key of [`pair`] known as `kid`.
fn jwks_with_kid(kid: &str) -> Vec<u8> {
    let mut jwk: Value = serde_json::from_str(&pair().public_key().to_jwk()).unwrap();
    jwk["kid"] = json!(kid);
    json!({"keys": [jwk]}).to_string().into_bytes()
}

fn token() -> String {
    let claims = Claims::create(Duration::from_mins(10))
        .with_issuer(ISS)
        .with_audience("orders")
        .with_subject("svc-orders");
    pair().sign(claims).unwrap()
}

fn config() -> Vec<u8> {
    json!({
        "issuers": [{"name": "idp", "issuer": ISS, "audiences": ["orders"],
                     "jwks_uri": format!("https://idp.example.com{KEYS_PATH}"), "cluster": "idp"}],
        "rules": [{"prefix": "/orders", "mode": "required"}]
    })
    .to_string()
    .into_bytes()
}

/// A worker of `process`, configured.
fn worker(process: &Rc<Process>) -> (Filter, FakeRoot) {
    let root = FakeRoot::new(process, now_ms());
    let mut filter = Filter::default();
    assert!(filter.configure(&root, &config(), &|_| None).is_some());
    (filter, root)
}

/// Request `id` with the provider's token, through its headers.
fn send(filter: &Filter, root: &FakeRoot, id: u32) -> (Step, FakeRequest) {
    let bearer = format!("Bearer {}", token());
    let headers = [
        (":method", "GET"),
        (":path", "/orders/1"),
        (":authority", "api.example.com"),
        (":scheme", "https"),
        ("authorization", bearer.as_str()),
    ];
    let request = root.request(id, &headers);
    let step = filter.request(id).on_headers(&request, root, true);
    (step, request)
}

/// Answers the last call sent with `status`, from the upstream or not, and `body`.
fn answer(
    filter: &mut Filter,
    root: &FakeRoot,
    status: Option<&[u8]>,
    upstream: bool,
    body: &[u8],
) {
    root.set_answer(status, upstream, body);
    let headers = usize::from(status.is_some()) + usize::from(upstream);
    let id = root.last_sent().id;
    filter.on_call_answer(root, id, headers, body.len());
}

#[test]
fn a_held_request_is_let_on_when_its_keys_arrive() {
    let (mut filter, root) = worker(&Rc::default());
    let (step, request) = send(&filter, &root, 7);
    assert_eq!(step, Step::Pause, "held for the first fetch");
    assert_eq!(root.metric("tollgate.issuer_keys.requests_held.idp"), 1);
    filter.tick(&root);
    let sent = root.last_sent();
    assert_eq!(
        (sent.cluster.as_str(), sent.path.as_str()),
        ("idp", KEYS_PATH)
    );
    root.advance(30);
    answer(&mut filter, &root, Some(b"200"), true, &jwks());
    assert!(request.state.resumed.get(), "let on");
    assert_eq!(
        request.header_set("x-auth-user").as_deref(),
        Some("svc-orders")
    );
    assert_eq!(request.answer(), None);
    assert_eq!(root.metric("tollgate.issuer_keys.fetched.idp"), 1);
    assert_eq!(root.metric("tollgate.issuer_keys.loaded.idp"), 1);
    let loaded = "tollgate: issuer idp: 1 keys loaded (0 skipped), version 1";
    assert_eq!(root.logged(Level::Info, loaded), 1);
    // The next request is decided at once, with the keys installed.
    assert_eq!(send(&filter, &root, 8).0, Step::Continue);
}

#[test]
fn a_held_request_whose_fetch_fails_is_answered_503_at_its_deadline() {
    let (mut filter, root) = worker(&Rc::default());
    let (_, request) = send(&filter, &root, 7);
    filter.tick(&root);
    answer(&mut filter, &root, Some(b"500"), true, b"oops");
    assert_eq!(
        request.answer(),
        None,
        "waits for a retry until its deadline"
    );
    assert!(!request.state.resumed.get());
    root.advance(2_000);
    filter.tick(&root);
    let (status, body) = request.answer().unwrap();
    assert_eq!(status, 503);
    assert!(body.contains("KEYS_UNAVAILABLE"), "{body}");
    assert!(!request.state.resumed.get());
}

#[test]
fn a_held_request_whose_fetch_never_answers_times_out() {
    let (mut filter, root) = worker(&Rc::default());
    let (_, request) = send(&filter, &root, 7);
    filter.tick(&root);
    for _ in 0..19 {
        root.advance(100);
        filter.tick(&root);
    }
    assert_eq!(request.answer(), None);
    root.advance(100);
    filter.tick(&root);
    assert_eq!(request.answer().map(|(s, _)| s), Some(503));
    assert_eq!(
        root.sent.borrow().len(),
        1,
        "one fetch while its lease holds"
    );
}

/// How a test makes a fetch fail.
type Failing = dyn Fn(&mut Filter, &FakeRoot);

/// The warning a first fetch that fails as `fail` says (the record is fresh each time).
fn first_failure(fail: impl Fn(&mut Filter, &FakeRoot)) -> String {
    let (mut filter, root) = worker(&Rc::default());
    filter.tick(&root);
    fail(&mut filter, &root);
    assert_eq!(root.metric("tollgate.issuer_keys.fetch_failed.idp"), 1);
    let logs = root.logs.borrow();
    let warned: Vec<&String> = logs
        .iter()
        .filter(|(level, _)| *level == Level::Warn)
        .map(|(_, line)| line)
        .collect();
    assert_eq!(warned.len(), 1, "{warned:?}");
    warned[0].clone()
}

#[test]
fn each_way_a_key_fetch_fails_is_counted_and_said() {
    let refused = {
        let process = Rc::default();
        let root = FakeRoot::new(&process, now_ms());
        root.refuse_calls.set(true);
        let mut filter = Filter::default();
        filter.configure(&root, &config(), &|_| None).unwrap();
        filter.tick(&root);
        assert_eq!(root.metric("tollgate.issuer_keys.fetch_failed.idp"), 1);
        let line = root.logs.borrow().last().unwrap().1.clone();
        line
    };
    assert_eq!(
        refused,
        "tollgate: issuer idp: the key fetch could not start through cluster \"idp\" (BadArgument, 1 failures in a row); is the cluster defined?"
    );
    let serving = "(1 failures in a row); no keys loaded yet: requests get 503 KEYS_UNAVAILABLE";
    let cases: Vec<(Box<Failing>, String)> = vec![
        (
            Box::new(|f, r| answer(f, r, Some(b"404"), true, b"")),
            "answered status 404".into(),
        ),
        (
            Box::new(|f, r| answer(f, r, Some(b"503"), false, b"no healthy upstream\nmore")),
            "got no answer (Envoy's own 503: no healthy upstream)".into(),
        ),
        (
            Box::new(|f, r| {
                let big = vec![b' '; MAX_JWKS_BYTES + 1];
                answer(f, r, Some(b"200"), true, &big);
            }),
            format!(
                "answered {} bytes, more than {MAX_JWKS_BYTES}",
                MAX_JWKS_BYTES + 1
            ),
        ),
        (
            Box::new(|f, r| answer(f, r, None, false, b"")),
            "got no answer within 5000 ms, or the connection failed".into(),
        ),
        (
            Box::new(|f, r| answer(f, r, Some(b"2\xff0"), true, b"")),
            "got no answer within 5000 ms, or the connection failed".into(),
        ),
        (
            Box::new(|f, r| answer(f, r, Some(b"200"), true, b"{\"keys\": 1}")),
            "was refused:".into(),
        ),
    ];
    for (fail, why) in cases {
        let line = first_failure(fail);
        assert!(
            line.starts_with(&format!("tollgate: issuer idp: the key fetch {why}")),
            "{line}"
        );
        assert!(line.ends_with(serving), "{line}");
    }
}

#[test]
fn two_workers_fetch_once_and_both_install_the_keys() {
    let process = Rc::default();
    let (mut a, root_a) = worker(&process);
    let (mut b, root_b) = worker(&process);
    root_b.clock.set(root_a.clock.get());
    a.tick(&root_a);
    b.tick(&root_b);
    let sent = root_a.sent.borrow().len() + root_b.sent.borrow().len();
    assert_eq!(sent, 1, "one lease, one fetch per process");
    let (_, held_b) = send(&b, &root_b, 9);
    root_a.advance(20);
    answer(&mut a, &root_a, Some(b"200"), true, &jwks());
    assert!(held_b.answer().is_none() && !held_b.state.resumed.get());
    root_b.advance(100);
    b.tick(&root_b);
    assert!(
        held_b.state.resumed.get(),
        "the other worker installs the stored keys"
    );
    assert_eq!(root_b.sent.borrow().len(), 0, "without fetching them");
    assert_eq!(root_b.metric("tollgate.issuer_keys.fetched.idp"), 0);
    assert_eq!(
        root_b.logged(Level::Info, "1 keys loaded (0 skipped), version 1"),
        1
    );
}

#[test]
fn a_worker_that_loses_the_compare_and_swap_does_not_fetch() {
    let process: Rc<Process> = Rc::default();
    let (mut a, root_a) = worker(&process);
    // Another worker writes the record between this worker's read and its write.
    process.lose_next_cas.set(1);
    a.tick(&root_a);
    assert_eq!(root_a.sent.borrow().len(), 0);
    a.tick(&root_a);
    assert_eq!(
        root_a.sent.borrow().len(),
        1,
        "the next tick takes the lease"
    );
    // A write of the result that keeps losing is retried.
    process.lose_next_cas.set(3);
    answer(&mut a, &root_a, Some(b"200"), true, &jwks());
    assert_eq!(root_a.metric("tollgate.issuer_keys.loaded.idp"), 1);
    let record = String::from_utf8(
        process
            .get(&format!(
                "tollgate.jwks|idp|https://idp.example.com{KEYS_PATH}|record"
            ))
            .unwrap(),
    )
    .unwrap();
    assert!(
        record.starts_with("2 1 0 "),
        "version 1, lease released: {record}"
    );
}

#[test]
fn a_held_requests_body_waits_with_it_and_is_read_once_let_on() {
    let (mut filter, root) = worker(&Rc::default());
    let bearer = format!("Bearer {}", token());
    let headers = [
        (":method", "POST"),
        (":path", "/orders/1"),
        (":authority", "api.example.com"),
        (":scheme", "https"),
        ("authorization", bearer.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let request = root.request(7, &headers);
    let mut flow = filter.request(7);
    assert_eq!(flow.on_headers(&request, &root, false), Step::Pause);
    let body = b"a=1&b=2";
    let read = |start: usize, len: usize| body[start..start + len].to_vec();
    assert_eq!(flow.on_body(&request, 3, false, read), Step::Pause, "held");
    filter.tick(&root);
    answer(&mut filter, &root, Some(b"200"), true, &jwks());
    assert!(request.state.resumed.get());
    // Let on: the rest is read as it streams, and goes on once read.
    assert_eq!(flow.on_body(&request, 7, true, read), Step::Continue);
    assert_eq!(request.answer(), None);
    // With the keys there, a form body naming a credential is refused once read.
    let request = root.request(8, &headers);
    let mut flow = filter.request(8);
    assert_eq!(flow.on_headers(&request, &root, false), Step::Continue);
    let body = b"access_token=x";
    let read = |start: usize, len: usize| body[start..start + len].to_vec();
    assert_eq!(flow.on_body(&request, body.len(), true, read), Step::Pause);
    assert_eq!(request.answer().map(|(s, _)| s), Some(400));
}

/// A native Envoy's worker does not fetch: a request it holds for a `kid` the keys lack is
/// marked in the shared data, the fetching side (the main thread's filter) fetches for it, and
/// the worker's next tick installs the keys and lets the request on.
#[test]
fn a_worker_that_does_not_fetch_is_served_by_the_one_that_does() {
    let process = Rc::default();
    let (mut main, main_root) = worker(&process);
    main.tick(&main_root);
    answer(
        &mut main,
        &main_root,
        Some(b"200"),
        true,
        &jwks_with_kid("old"),
    );
    let (mut follower, root) = worker(&process);
    root.follower.set(true);
    // The request comes after the first fetch started (in the same millisecond, that fetch
    // would answer it).
    root.clock.set(main_root.clock.get() + 10);
    follower.tick(&root);
    let (step, request) = send(&follower, &root, 7);
    assert_eq!(step, Step::Pause, "held for a kid the keys lack");
    follower.tick(&root);
    assert!(root.sent.borrow().is_empty(), "the worker does not fetch");
    main.tick(&main_root);
    assert_eq!(
        main_root.sent.borrow().len(),
        2,
        "the fetching side fetches for the kid the worker's request waits for"
    );
    answer(&mut main, &main_root, Some(b"200"), true, &jwks());
    assert!(!request.state.resumed.get());
    follower.tick(&root);
    assert!(request.state.resumed.get(), "let on with the keys fetched");
    assert_eq!(
        request.header_set("x-auth-user").as_deref(),
        Some("svc-orders")
    );
}

/// Held requests are decided at most `MAX_DECIDED_PER_CALL` per callback (each answer or
/// resumption calls into the host for that request, nested): the rest on the next ticks, in
/// the order they came, none forgotten.
#[test]
fn many_held_requests_are_decided_a_batch_per_callback() {
    use tollgate_core::lifecycle::MAX_DECIDED_PER_CALL;
    let (mut filter, root) = worker(&Rc::default());
    let requests: Vec<FakeRequest> = (1..=200).map(|id| send(&filter, &root, id).1).collect();
    filter.tick(&root);
    answer(&mut filter, &root, Some(b"200"), true, &jwks());
    let resumed = || requests.iter().filter(|r| r.state.resumed.get()).count();
    assert_eq!(resumed(), MAX_DECIDED_PER_CALL);
    assert!(requests[..MAX_DECIDED_PER_CALL]
        .iter()
        .all(|r| r.state.resumed.get()));
    let mut ticks = 0;
    while resumed() < requests.len() {
        root.advance(100);
        filter.tick(&root);
        ticks += 1;
        assert!(resumed() <= MAX_DECIDED_PER_CALL * (ticks + 1));
        assert!(ticks < 10, "{} of 200 let on", resumed());
    }
    assert_eq!(ticks, 200 / MAX_DECIDED_PER_CALL);
}
