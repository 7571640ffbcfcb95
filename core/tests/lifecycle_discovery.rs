//! The sign-in provider's discovery (`oidc.discovery`) through the worker's lifecycle
//! ([`Filter`]) against a fake root context: the document fetched once per process through
//! the cluster, a browser sent to the discovered endpoint, another worker installing it
//! without a fetch, a 503 page before the endpoints came, and documents that are refused
//! (another issuer's, an endpoint in clear) while the ones installed keep serving.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod fake_root;
mod oidc_support;

use std::rc::Rc;

use fake_root::{FakeRequest, FakeRoot, Process};
use serde_json::{json, Value};
use tollgate_core::lifecycle::{Filter, Level};

const T: u64 = 1_790_000_000_000;
const DOCUMENT_PATH: &str = "/.well-known/openid-configuration";

fn config() -> Vec<u8> {
    let oidc = json!({"discovery": true, "authorization_endpoint": null, "token_endpoint": null});
    oidc_support::config_json(oidc).to_string().into_bytes()
}

fn worker(process: &Rc<Process>) -> (Filter, FakeRoot) {
    let root = FakeRoot::new(process, T);
    let mut filter = Filter::default();
    assert!(filter
        .configure(&root, &config(), &oidc_support::env)
        .is_some());
    (filter, root)
}

fn document(issuer: &str, base: &str) -> Vec<u8> {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "end_session_endpoint": format!("{base}/logout"),
        "jwks_uri": format!("{base}/jwks"),
        "scopes_supported": ["openid"]
    })
    .to_string()
    .into_bytes()
}

fn answer(filter: &mut Filter, root: &FakeRoot, status: &[u8], body: &[u8]) {
    root.set_answer(Some(status), true, body);
    filter.on_call_answer(root, root.last_sent().id, 2, body.len());
}

/// A browser's page load of a required path, decided by `filter`.
fn page_load(filter: &Filter, root: &FakeRoot, id: u32) -> FakeRequest {
    let headers = [
        (":method", "GET"),
        (":path", "/orders"),
        (":authority", "app.test"),
        (":scheme", "https"),
        ("accept", "text/html"),
    ];
    let request = root.request(id, &headers);
    filter.request(id).on_headers(&request, root, true);
    request
}

fn location(request: &FakeRequest) -> Value {
    let headers = request.state.answer_headers.borrow();
    let location = headers.iter().find(|(n, _)| n == "location");
    json!(location.map(|(_, v)| v.clone()))
}

#[test]
fn one_worker_fetches_the_document_and_every_worker_sends_browsers_to_its_endpoint() {
    let process = Rc::default();
    let (mut filter, root) = worker(&process);
    // Before the document comes, a browser gets a page to try again, counted.
    let early = page_load(&filter, &root, 1);
    let (status, body) = early.answer().unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("Sign-in is unavailable"), "{body}");
    filter.report(&root);
    assert_eq!(root.metric("tollgate.oidc.login_failed.discovery"), 1);
    assert_eq!(root.metric("tollgate.oidc.login_started"), 0);
    filter.tick(&root);
    let sent = root.last_sent();
    assert_eq!(
        (sent.cluster.as_str(), sent.path.as_str()),
        ("idp", DOCUMENT_PATH)
    );
    answer(
        &mut filter,
        &root,
        b"200",
        &document("https://idp.test", "https://login.idp.test"),
    );
    assert_eq!(root.metric("tollgate.oidc.discovery_fetched"), 1);
    assert_eq!(root.logged(Level::Info, "endpoints discovered"), 1);
    let signed_in = page_load(&filter, &root, 2);
    assert_eq!(signed_in.answer().unwrap().0, 302);
    let to = location(&signed_in);
    assert!(
        to.as_str()
            .unwrap()
            .starts_with("https://login.idp.test/authorize?response_type=code&"),
        "{to}"
    );
    // No second fetch within the hour; another worker installs the document it stored.
    filter.tick(&root);
    assert_eq!(root.sent.borrow().len(), 1);
    let (mut other, other_root) = worker(&process);
    other.tick(&other_root);
    assert!(other_root.sent.borrow().is_empty());
    assert_eq!(page_load(&other, &other_root, 3).answer().unwrap().0, 302);
    // An hour later the document is fetched again.
    root.advance(3_600_000);
    filter.tick(&root);
    assert_eq!(root.sent.borrow().len(), 2);
}

#[test]
fn another_issuers_document_or_an_endpoint_in_clear_is_refused_and_the_last_keeps_serving() {
    let process = Rc::default();
    let (mut filter, root) = worker(&process);
    filter.tick(&root);
    answer(
        &mut filter,
        &root,
        b"200",
        &document("https://evil.test", "https://evil.test"),
    );
    assert_eq!(root.metric("tollgate.oidc.discovery_failed"), 1);
    assert_eq!(
        root.logged(
            Level::Warn,
            "names another issuer than \"https://idp.test\""
        ),
        1
    );
    assert_eq!(page_load(&filter, &root, 1).answer().unwrap().0, 503);
    // The retry comes after a short pause, not at once.
    filter.tick(&root);
    assert_eq!(root.sent.borrow().len(), 1);
    root.advance(1_000);
    filter.tick(&root);
    assert_eq!(root.sent.borrow().len(), 2);
    answer(
        &mut filter,
        &root,
        b"200",
        &document("https://idp.test", "https://login.idp.test"),
    );
    assert_eq!(page_load(&filter, &root, 2).answer().unwrap().0, 302);
    // A later document with an endpoint in clear (its document came over https) is refused:
    // the endpoints installed keep serving.
    root.advance(3_600_000);
    filter.tick(&root);
    answer(
        &mut filter,
        &root,
        b"200",
        &document("https://idp.test", "http://login.idp.test"),
    );
    assert_eq!(root.metric("tollgate.oidc.discovery_failed"), 2);
    assert_eq!(
        root.logged(
            Level::Warn,
            "token_endpoint that is not an absolute https URL"
        ),
        0
    );
    assert_eq!(
        root.logged(
            Level::Warn,
            "authorization_endpoint that is not an absolute https URL"
        ),
        1
    );
    let still = page_load(&filter, &root, 3);
    assert!(location(&still)
        .as_str()
        .unwrap()
        .starts_with("https://login.idp.test/"));
    // A failed fetch (no answer) is counted too.
    root.advance(60_000);
    filter.tick(&root);
    root.set_answer(None, false, b"");
    filter.on_call_answer(&root, root.last_sent().id, 0, 0);
    assert_eq!(root.metric("tollgate.oidc.discovery_failed"), 3);
}

/// A configuration of another issuer string with the same document address (a trailing
/// `/`) does not take the document stored for the first one: it fetches its own.
#[test]
fn another_issuer_at_the_same_address_fetches_its_own_document() {
    let process = Rc::default();
    let (mut filter, root) = worker(&process);
    filter.tick(&root);
    answer(
        &mut filter,
        &root,
        b"200",
        &document("https://idp.test", "https://login.idp.test"),
    );
    let mut json: Value = serde_json::from_slice(&config()).unwrap();
    json["issuers"][0]["issuer"] = json!("https://idp.test/");
    let other_root = FakeRoot::new(&process, T);
    let mut other = Filter::default();
    let text = json.to_string().into_bytes();
    assert!(other
        .configure(&other_root, &text, &oidc_support::env)
        .is_some());
    other.tick(&other_root);
    assert_eq!(
        other_root.sent.borrow().len(),
        1,
        "fetched for its own issuer"
    );
    let good = document("https://idp.test/", "https://login.idp.test");
    answer(&mut other, &other_root, b"200", &good);
    assert_eq!(page_load(&other, &other_root, 1).answer().unwrap().0, 302);
}
