//! Revoked tokens, decided natively: by `jti`, by digest (whatever the signature's
//! spelling), by subject before a time, with cache hits, and a list too old to trust.

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::rc::Rc;

use serde_json::json;
use tollgate_core::verify::revocation::{encode, FeedPage, Retention, TokenMarks};
use tollgate_testkit::prelude::*;

fn config(extra: serde_json::Value) -> Config {
    let mut text = json!({
        "secrets": [{"key": K}],
        "api_keys": [{"name": "ops", "key": SK}],
        "login_url": LOGIN,
        "max_lifetime_seconds": 7200,
        "revocation": {"cluster": "signin", "path": "/auth/revocations", "poll_seconds": 2},
    });
    for (k, v) in extra.as_object().unwrap() {
        text[k] = v.clone();
    }
    Config::parse(text.to_string().as_bytes(), &|_| None).unwrap()
}

fn minted(sub: &str, jti: &str, issued: u64) -> String {
    let mut claims = claims_for(sub, "access", issued, 3600);
    claims.jwt_id = Some(jti.to_owned());
    SigningKey::new(None, K.as_bytes()).sign(claims).unwrap()
}

fn revoke(worker: &mut WorkerState, page: serde_json::Value) {
    let mut list = (*worker.revocations.list).clone();
    let page = FeedPage::parse(page.to_string().as_bytes()).unwrap();
    let retention = Retention {
        skew: 60,
        max_lifetime: 7200,
    };
    list.apply(page, now(), retention).unwrap();
    worker.revocations.list = Rc::new(list);
    worker.revocations.fresh_at = now();
}

fn status_and_code(config: &Config, worker: &mut WorkerState, request: &Request) -> (u32, String) {
    match decide(config, worker, &request.to_native(), now()).action {
        Action::Forward(_) => (200, String::new()),
        Action::Respond(r, _) => {
            let code = serde_json::from_str::<serde_json::Value>(&r.body)
                .ok()
                .and_then(|b| b["code"].as_str().map(str::to_owned))
                .unwrap_or_default();
            (r.status, code)
        }
    }
}

fn fresh_worker() -> WorkerState {
    let mut worker = WorkerState::default();
    worker.revocations.fresh_at = now();
    worker
}

#[test]
fn a_revoked_jti_is_refused_even_from_the_cache() {
    let config = config(json!({}));
    let mut worker = fresh_worker();
    let token = minted("alice", "t-1", now());
    let request = Request::get("/api").bearer(&token);
    assert_eq!(status_and_code(&config, &mut worker, &request).0, 200);
    assert_eq!(worker.tokens.len(), 1, "cached");
    revoke(
        &mut worker,
        json!({"cursor": "1", "revoked": [{"jti": "t-1", "expires_at": now() + 3600}]}),
    );
    assert_eq!(
        status_and_code(&config, &mut worker, &request),
        (401, "TOKEN_REVOKED".into())
    );
    // Another token of alice is untouched.
    let other = Request::get("/api").bearer(&minted("alice", "t-2", now()));
    assert_eq!(status_and_code(&config, &mut worker, &other).0, 200);
}

#[test]
fn a_digest_revokes_the_token_however_its_signature_is_spelled() {
    let config = config(json!({}));
    let mut worker = fresh_worker();
    let token = minted("bob", "t-3", now());
    let signing_input = token.rsplit_once('.').unwrap().0;
    revoke(
        &mut worker,
        json!({"cursor": "1", "revoked": [{
            "token_sha256": encode(&TokenMarks::digest_of(signing_input)),
            "expires_at": now() + 3600,
        }]}),
    );
    let request = Request::get("/api").bearer(&token);
    assert_eq!(
        status_and_code(&config, &mut worker, &request),
        (401, "TOKEN_REVOKED".into())
    );
    // The same token with its signature's last character re-spelled (base64url's unused
    // bits), if the reader accepts it at all, is still refused.
    let (head, signature) = token.rsplit_once('.').unwrap();
    let last = signature.chars().last().unwrap();
    for other in ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H'] {
        if other == last {
            continue;
        }
        let respelled = format!("{head}.{}{other}", &signature[..signature.len() - 1]);
        let (status, _) = status_and_code(
            &config,
            &mut worker,
            &Request::get("/api").bearer(&respelled),
        );
        assert_ne!(status, 200, "{respelled}");
    }
}

#[test]
fn a_subject_is_revoked_before_a_time_and_later_tokens_pass() {
    let config = config(json!({}));
    let mut worker = fresh_worker();
    let before = minted("carol", "t-4", now() - 100);
    assert_eq!(
        status_and_code(&config, &mut worker, &Request::get("/api").bearer(&before)).0,
        200
    );
    revoke(
        &mut worker,
        json!({"cursor": "2", "revoked": [{"subject": "carol", "before": now() - 50, "expires_at": now() + 3600}]}),
    );
    assert_eq!(
        status_and_code(&config, &mut worker, &Request::get("/api").bearer(&before)),
        (401, "TOKEN_REVOKED".into())
    );
    let after = minted("carol", "t-5", now() - 10);
    assert_eq!(
        status_and_code(&config, &mut worker, &Request::get("/api").bearer(&after)).0,
        200
    );
    // A browser with a revoked cookie is sent to sign in again.
    let browser = Request::get("/app")
        .browser()
        .header("Cookie", format!("access_token={before}"));
    let (status, _) = status_and_code(&config, &mut worker, &browser);
    assert_eq!(status, 302);
}

#[test]
fn a_list_older_than_fail_closed_after_refuses_tokens_not_keys() {
    let config = config(json!({"revocation": {
        "cluster": "signin", "path": "/auth/revocations", "poll_seconds": 2,
        "fail_closed_after_seconds": 10,
    }}));
    let mut worker = WorkerState::default();
    worker.revocations.fresh_at = now() - 11;
    let token = Request::get("/api").bearer(&minted("dave", "t-6", now()));
    assert_eq!(
        status_and_code(&config, &mut worker, &token),
        (503, "REVOCATION_UNAVAILABLE".into())
    );
    let key = Request::get("/api").bearer(SK);
    assert_eq!(status_and_code(&config, &mut worker, &key).0, 200);
    worker.revocations.fresh_at = now() - 9;
    assert_eq!(status_and_code(&config, &mut worker, &token).0, 200);
    // A list larger than the filter holds: tokens are refused, keys are not.
    worker.revocations.overflowed = true;
    assert_eq!(
        status_and_code(&config, &mut worker, &token),
        (503, "REVOCATION_UNAVAILABLE".into())
    );
    assert_eq!(status_and_code(&config, &mut worker, &key).0, 200);
}

#[test]
fn the_configuration_is_checked() {
    let refused = |revocation: serde_json::Value| {
        let text = json!({"secrets": [{"key": K}], "max_lifetime_seconds": 7200, "revocation": revocation}).to_string();
        Config::parse(text.as_bytes(), &|_| None)
            .unwrap_err()
            .to_string()
    };
    assert!(refused(json!({"cluster": "s", "path": "feed"})).contains("revocation.path"));
    assert!(refused(json!({"cluster": "s", "path": "/f?x=1"})).contains("revocation.path"));
    assert!(
        refused(json!({"cluster": "s", "path": "/f", "poll_seconds": 0})).contains("poll_seconds")
    );
    assert!(refused(
        json!({"cluster": "s", "path": "/f", "poll_seconds": 5, "fail_closed_after_seconds": 6})
    )
    .contains("fail_closed_after_seconds"));
    assert!(refused(json!({"cluster": "s", "path": "/f", "url": "x"})).contains("revocation"));
    // Without max_lifetime_seconds no token lifetime bounds how long a subject's revocation
    // must last: refused, naming the key.
    let text = json!({"secrets": [{"key": K}], "revocation": {"cluster": "s", "path": "/f"}});
    let error = Config::parse(text.to_string().as_bytes(), &|_| None)
        .unwrap_err()
        .to_string();
    assert!(error.contains("max_lifetime_seconds"), "{error}");
}
