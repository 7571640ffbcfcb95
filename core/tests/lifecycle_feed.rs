//! The revocation feed's polls through the worker's lifecycle ([`Filter`]) against a fake
//! root context: a run of pages followed at once, a refused page, a poll that cannot be
//! sent, and a second worker that installs the list without polling.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod fake_root;

use std::rc::Rc;

use fake_root::{FakeRoot, Process};
use serde_json::json;
use tollgate_core::lifecycle::{Filter, Level};

const T: u64 = 1_790_000_000_000;

fn config() -> Vec<u8> {
    json!({
        "secrets": [{"key": "Hq3vXo9TzK7rWm2pLc8dNs5yFb4gJe6A"}],
        "max_lifetime_seconds": 7200,
        "revocation": {"cluster": "signin", "path": "/auth/revocations", "poll_seconds": 5}
    })
    .to_string()
    .into_bytes()
}

fn worker(process: &Rc<Process>) -> (Filter, FakeRoot) {
    let root = FakeRoot::new(process, T);
    let mut filter = Filter::default();
    assert!(filter.configure(&root, &config(), &|_| None).is_some());
    (filter, root)
}

fn page(cursor: &str, more: bool, jtis: &[&str]) -> Vec<u8> {
    let revoked: Vec<_> = jtis
        .iter()
        .map(|jti| json!({"jti": jti, "expires_at": T / 1000 + 600}))
        .collect();
    json!({"cursor": cursor, "reset": false, "more": more, "revoked": revoked})
        .to_string()
        .into_bytes()
}

fn answer(filter: &mut Filter, root: &FakeRoot, status: &[u8], body: &[u8]) {
    root.set_answer(Some(status), true, body);
    filter.on_call_answer(root, root.last_sent().id, 2, body.len());
}

fn paths(root: &FakeRoot) -> Vec<String> {
    root.sent.borrow().iter().map(|s| s.path.clone()).collect()
}

#[test]
fn a_run_of_pages_is_followed_at_once_and_shared_at_its_end() {
    let process = Rc::default();
    let (mut filter, root) = worker(&process);
    filter.tick(&root);
    assert_eq!(paths(&root), ["/auth/revocations"]);
    assert_eq!(root.last_sent().cluster, "signin");
    answer(&mut filter, &root, b"200", &page("c1", true, &["a"]));
    assert_eq!(
        paths(&root),
        ["/auth/revocations", "/auth/revocations?cursor=c1"],
        "the next page is asked at once, not at the next tick"
    );
    answer(&mut filter, &root, b"200", &page("c2", false, &["b"]));
    assert_eq!(paths(&root).len(), 2, "the run ended");
    assert_eq!(root.metric("tollgate.revocation.polls_ok"), 2);
    assert_eq!(root.metric("tollgate.revocation.entries"), 2);
    assert_eq!(
        root.logged(Level::Info, "tollgate: revocation list: 2 entries"),
        1
    );
    // Another worker installs the shared list on its tick, without polling.
    let (mut other, other_root) = worker(&process);
    other.tick(&other_root);
    assert!(other_root.sent.borrow().is_empty());
    assert_eq!(other_root.metric("tollgate.revocation.entries"), 2);
    // The next poll, a period later, asks from the last cursor.
    root.advance(5_000);
    filter.tick(&root);
    assert_eq!(paths(&root).last().unwrap(), "/auth/revocations?cursor=c2");
}

#[test]
fn a_page_that_repeats_a_cursor_is_refused_and_counted() {
    let (mut filter, root) = worker(&Rc::default());
    filter.tick(&root);
    answer(&mut filter, &root, b"200", &page("c1", true, &[]));
    answer(&mut filter, &root, b"200", &page("c1", true, &[]));
    assert_eq!(root.metric("tollgate.revocation.polls_failed"), 1);
    let why = "tollgate: the revocation feed was refused: it says more follows and gives back a cursor this run of pages asked already (1 failures in a row); the last list keeps serving";
    assert_eq!(root.logged(Level::Warn, why), 1);
    assert_eq!(paths(&root).len(), 2, "no third page");
}

#[test]
fn a_failed_or_unsent_poll_keeps_the_list_and_says_why() {
    let (mut filter, root) = worker(&Rc::default());
    filter.tick(&root);
    answer(&mut filter, &root, b"500", b"");
    let failed = "tollgate: the revocation feed answered status 500 (1 failures in a row)";
    assert_eq!(root.logged(Level::Warn, failed), 1);
    root.refuse_calls.set(true);
    root.advance(5_000);
    filter.tick(&root);
    let unsent = "tollgate: the revocation feed could not be polled through cluster \"signin\" (BadArgument); the last list keeps serving";
    assert_eq!(root.logged(Level::Warn, unsent), 1);
    assert_eq!(root.metric("tollgate.revocation.polls_failed"), 2);
}
