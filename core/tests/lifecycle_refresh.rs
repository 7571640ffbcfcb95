//! A browser's requests that carry the same expired session, through the worker's lifecycle
//! ([`Filter`]) against a fake root context: one refresh goes to the provider; the others
//! are held until it is answered, then decided with its renewal (and get its cookies), or
//! with the session's end when the provider refused it.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod fake_root;
mod oidc_support;

use std::rc::Rc;

use fake_root::{FakeRequest, FakeRoot, Process};
use oidc_support::*;
use serde_json::json;
use tollgate_core::config::Config;
use tollgate_core::lifecycle::{Filter, RequestFlow, ResponseHeader, Step};

fn config_json_text() -> Vec<u8> {
    config_json(json!({"scopes": ["offline_access"]}))
        .to_string()
        .into_bytes()
}

fn worker() -> (Filter, FakeRoot, String) {
    let process: Rc<Process> = Rc::default();
    let root = FakeRoot::new(&process, now() * 1000);
    let mut filter = Filter::default();
    assert!(filter.configure(&root, &config_json_text(), &env).is_some());
    let config = Config::parse(&config_json_text(), &env).unwrap();
    (filter, root, expired_session(&config))
}

fn page(root: &FakeRoot, id: u32, cookies: &str) -> FakeRequest {
    let headers = browser(&format!("/orders/{id}"), Some(cookies));
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), std::str::from_utf8(v).unwrap()))
        .collect();
    root.request(id, &headers)
}

/// Two page loads with the same session `cookies`, each decided by its flow.
fn both_sent(filter: &Filter, root: &FakeRoot, cookies: &str) -> [(FakeRequest, RequestFlow); 2] {
    [1, 2].map(|id| {
        let request = page(root, id, cookies);
        let mut flow = filter.request(id);
        assert_eq!(flow.on_headers(&request, root, true), Step::Pause);
        (request, flow)
    })
}

fn set_cookies(headers: &[ResponseHeader]) -> Vec<String> {
    headers
        .iter()
        .filter_map(|h| match h {
            ResponseHeader::Add("set-cookie", value) => Some(value.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn one_refresh_goes_to_the_provider_and_the_others_wait_for_it() {
    let (mut filter, root, cookies) = worker();
    let [(first, mut first_flow), (second, mut second_flow)] = both_sent(&filter, &root, &cookies);
    assert_eq!((first.state.calls.get(), second.state.calls.get()), (1, 0));
    assert!(second_flow.is_held());
    // Not answered yet: the tick leaves the second one held.
    filter.tick(&root);
    assert!(!second.state.resumed.get());
    let renewed = json!({
        "access_token": access_token("alice", now() + 300), "refresh_token": "second-refresh",
        "token_type": "Bearer", "expires_in": 300
    });
    first_flow.on_call_answer(&first, Some("200"), renewed.to_string().as_bytes());
    assert!(first.state.resumed.get());
    let first_cookies = set_cookies(&first_flow.take_response_headers());
    assert!(first_cookies
        .iter()
        .any(|c| c.contains("tollgate-session=")));
    filter.tick(&root);
    assert!(second.state.resumed.get(), "{:?}", second.answer());
    assert_eq!(second.state.calls.get(), 0, "no refresh of its own");
    assert_eq!(
        set_cookies(&second_flow.take_response_headers()),
        first_cookies
    );
}

#[test]
fn when_the_provider_refuses_the_refresh_the_waiting_requests_end_the_session_too() {
    let (mut filter, root, cookies) = worker();
    let [(first, mut first_flow), (second, _second_flow)] = both_sent(&filter, &root, &cookies);
    first_flow.on_call_answer(&first, Some("400"), br#"{"error":"invalid_grant"}"#);
    assert_eq!(first.answer().unwrap().0, 302);
    filter.tick(&root);
    let (status, _) = second.answer().unwrap();
    assert_eq!(status, 302, "sent to sign in again");
    assert_eq!(second.state.calls.get(), 0);
    let cleared = second.state.answer_headers.borrow();
    assert!(cleared.iter().any(|(n, v)| n == "set-cookie"
        && v.contains("tollgate-session=;")
        && v.contains("Max-Age=0")));
}

/// The first refresh never answers: a waiting request, decided again when its wait is over,
/// sends its own refresh, and that call's answer lets it on.
#[test]
fn a_waiting_request_whose_refresh_never_comes_refreshes_itself() {
    let (mut filter, root, cookies) = worker();
    let [(_first, _first_flow), (second, mut second_flow)] = both_sent(&filter, &root, &cookies);
    root.advance(7_000);
    filter.tick(&root);
    assert_eq!(second.state.calls.get(), 1, "its own refresh");
    assert!(second_flow.is_calling());
    let renewed = json!({
        "access_token": access_token("alice", now() + 300), "refresh_token": "next-refresh",
        "token_type": "Bearer", "expires_in": 300
    });
    second_flow.on_call_answer(&second, Some("200"), renewed.to_string().as_bytes());
    assert!(second.state.resumed.get(), "{:?}", second.answer());
    assert!(!set_cookies(&second_flow.take_response_headers()).is_empty());
}

/// The request whose refresh was at the provider goes away (its client left): the requests
/// waiting for it are decided on the next tick, not when their wait is over.
#[test]
fn when_the_refreshing_request_goes_away_the_others_stop_waiting_for_it() {
    let (mut filter, root, cookies) = worker();
    let [(_first, first_flow), (second, second_flow)] = both_sent(&filter, &root, &cookies);
    assert!(second_flow.is_held());
    drop(first_flow);
    filter.tick(&root);
    assert_eq!(
        second.state.calls.get(),
        1,
        "decided at once: its own refresh"
    );
}
