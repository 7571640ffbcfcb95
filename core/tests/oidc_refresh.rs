//! A session refreshed while its request waited, through the host calls the filter makes:
//! whatever answers the request carries the renewed cookies.

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::cell::{Cell, RefCell};

use serde_json::json;

use tollgate_core::config::Config;
use tollgate_core::host::{Host, HostError};

mod oidc_support;

use oidc_support::*;

/// An answer the filter gave: its status and headers.
type Answered = (u32, Vec<(String, String)>);

/// A browser's request through the host calls the filter makes: what it answered, and the
/// calls it sent to the provider.
struct BrowserRequest {
    headers: Vec<(String, Vec<u8>)>,
    answered: RefCell<Option<Answered>>,
    calls: Cell<u32>,
    continued: Cell<bool>,
}

impl BrowserRequest {
    fn new(headers: Vec<(String, Vec<u8>)>) -> BrowserRequest {
        BrowserRequest {
            headers,
            answered: Default::default(),
            calls: Default::default(),
            continued: Default::default(),
        }
    }
}

impl Host for BrowserRequest {
    fn request_headers(&self) -> Vec<(String, Vec<u8>)> {
        self.headers.clone()
    }
    fn now(&self) -> u64 {
        now()
    }
    fn remove_header(&self, _: &str) -> Result<(), HostError> {
        Ok(())
    }
    fn set_header(&self, _: &str, _: &[u8]) -> Result<(), HostError> {
        Ok(())
    }
    fn add_header(&self, _: &str, _: &[u8]) -> Result<(), HostError> {
        Ok(())
    }
    fn set_property(&self, _: &str, _: &[u8]) -> Result<(), HostError> {
        Ok(())
    }
    fn respond(&self, status: u32, headers: &[(&str, &str)], _: &[u8]) -> Result<(), HostError> {
        let headers = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        *self.answered.borrow_mut() = Some((status, headers));
        Ok(())
    }
    fn debug_enabled(&self) -> bool {
        false
    }
    fn debug(&self, _: &str) {}
    fn warn(&self, _: &str) {}
    fn http_call(&self, _: &str, _: &[(&str, &str)], _: &[u8], _: u64) -> Result<u32, HostError> {
        self.calls.set(self.calls.get() + 1);
        Ok(1)
    }
    fn continue_request(&self) -> Result<(), HostError> {
        self.continued.set(true);
        Ok(())
    }
}

#[test]
fn a_request_refused_after_its_session_was_refreshed_still_gets_the_new_cookies() {
    let mut json = config_json(json!({"scopes": ["offline_access"]}));
    json["rules"] = json!([{"prefix": "/admin", "mode": "required", "roles": ["admin"]}]);
    let config = Config::parse(json.to_string().as_bytes(), &env).unwrap();
    // A session whose access token has expired.
    let cookies = expired_session(&config);
    // The page needs a role alice lacks: the session is refreshed, then the request refused.
    let request = BrowserRequest::new(browser("/admin/panel", Some(&cookies)));
    let mut worker = tollgate_core::worker::WorkerState::default();
    let after =
        tollgate_core::host::on_request_headers(&request, &config, &mut worker, true, true, |_| ());
    assert_eq!(
        request.calls.get(),
        1,
        "the refresh was not sent: {:?} {:?}",
        after.verdict,
        request.answered.borrow()
    );
    let renewed = json!({
        "access_token": access_token("alice", now() + 300), "refresh_token": "second-refresh",
        "token_type": "Bearer", "expires_in": 300
    });
    let cookies = tollgate_core::host::on_call_answer(
        &request,
        &config,
        &mut worker,
        after.pending.unwrap(),
        Some("200"),
        renewed.to_string().as_bytes(),
        &|_| (),
    );
    assert!(cookies.is_empty(), "the request was not let on");
    let (status, headers) = request.answered.borrow().clone().unwrap();
    assert_eq!(status, 403);
    let set: Vec<&String> = headers
        .iter()
        .filter(|(n, _)| n == "set-cookie")
        .map(|(_, v)| v)
        .collect();
    assert!(
        set.iter()
            .any(|c| c.contains("tollgate-refresh=") && !c.contains("Max-Age=0")),
        "the renewed refresh cookie is not on the answer: {set:?}"
    );
}

/// A browser's requests that carry the same expired session, sent before the first one's
/// refresh came back: the others wait for it (no call of their own), then take its renewal;
/// so does a request with the old cookies that comes after it.
#[test]
fn requests_with_the_same_old_cookies_take_the_refresh_another_request_made() {
    use tollgate_core::host::Verdict;
    let config = Config::parse(
        config_json(json!({"scopes": ["offline_access"]}))
            .to_string()
            .as_bytes(),
        &env,
    )
    .unwrap();
    let cookies = expired_session(&config);
    let mut worker = tollgate_core::worker::WorkerState::default();
    let page = |path: &str| BrowserRequest::new(browser(path, Some(&cookies)));
    let decide = |request: &BrowserRequest, worker: &mut _, may_wait| {
        tollgate_core::host::on_request_headers(request, &config, worker, true, may_wait, |_| ())
    };
    let (first, second) = (page("/orders"), page("/orders/2"));
    let first_after = decide(&first, &mut worker, true);
    let second_after = decide(&second, &mut worker, true);
    assert_eq!((first.calls.get(), second.calls.get()), (1, 0));
    assert_eq!(second_after.verdict, Verdict::WaitRefresh);
    assert!(second_after.refresh_wait.is_some());
    // Its wait over before an answer: decided as it is, without a refresh of its own.
    let impatient = page("/orders/5");
    let after = decide(&impatient, &mut worker, false);
    assert_eq!(
        (impatient.calls.get(), after.verdict),
        (0, Verdict::Answered)
    );
    let renewed = json!({
        "access_token": access_token("alice", now() + 300), "refresh_token": "second-refresh",
        "token_type": "Bearer", "expires_in": 300
    });
    let new_cookies = tollgate_core::host::on_call_answer(
        &first,
        &config,
        &mut worker,
        first_after.pending.unwrap(),
        Some("200"),
        renewed.to_string().as_bytes(),
        &|_| (),
    );
    assert!(first.continued.get());
    assert!(new_cookies.iter().any(|c| c.contains("tollgate-session=")));
    let second_after = decide(&second, &mut worker, true);
    assert_eq!(second_after.verdict, Verdict::Continue);
    assert_eq!(
        (second.calls.get(), second_after.cookies),
        (0, new_cookies.clone())
    );
    let third = page("/orders/3");
    let third_after = decide(&third, &mut worker, true);
    assert_eq!(third.calls.get(), 0);
    assert_eq!(third_after.cookies, new_cookies);
    // The old refresh cookie beside another session cookie (a thief's own) gets nothing: its
    // refresh goes to the provider.
    let thief_session = expired_session(&config);
    let session_of = |jar: &str| {
        jar.split("; ")
            .find(|c| c.contains("tollgate-session="))
            .unwrap()
            .to_owned()
    };
    let refresh_of = |jar: &str| {
        jar.split("; ")
            .find(|c| c.contains("tollgate-refresh="))
            .unwrap()
            .to_owned()
    };
    let mixed = format!("{}; {}", session_of(&thief_session), refresh_of(&cookies));
    let thief = BrowserRequest::new(browser("/orders/6", Some(&mixed)));
    decide(&thief, &mut worker, true);
    assert_eq!(
        thief.calls.get(),
        1,
        "no renewal without the session's own cookies"
    );
    // Another worker knows nothing of it: the old cookies refresh there.
    let fourth = page("/orders/4");
    decide(
        &fourth,
        &mut tollgate_core::worker::WorkerState::default(),
        true,
    );
    assert_eq!(fourth.calls.get(), 1);
}
