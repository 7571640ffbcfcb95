//! A `POST` whose body may be a form may carry `_method` (Rack's MethodOverride, Laravel,
//! Symfony), read only once the body streams: it is decided as every method the rules name.

use super::*;
use crate::denial::Code;
use crate::verify::token::{claims_for, SigningKey};
use crate::worker::WorkerState;

const K: &str = "Hq3vXo9TzK7rWm2pLc8dNs5yFb4gJe6A";
const NOW: u64 = 1_750_000_000;
const URLENCODED: &str = "application/x-www-form-urlencoded";
const MULTIPART: &str = "multipart/form-data; boundary=XyZ";

fn config(rules: &str, default_mode: &str) -> &'static Config {
    let json = format!(
        r#"{{"secrets": [{{"key": "{K}"}}], "default_mode": "{default_mode}", "rules": [{rules}]}}"#
    );
    Box::leak(Box::new(Config::parse(json.as_bytes(), &|_| None).unwrap()))
}

/// `DELETE /items` needs a credential; anything else is not checked.
fn delete_required() -> &'static Config {
    config(
        r#"{"prefix": "/items", "mode": "required", "methods": ["DELETE"]}"#,
        "none",
    )
}

/// Decides `method target` with `headers` (a `Content-Length` of 10 announces the body) and
/// `Bearer token` when given.
fn run(
    config: &'static Config,
    method: &str,
    headers: &[(&str, &str)],
    token: Option<&str>,
) -> Decision<'static> {
    let mut list: Vec<(String, Vec<u8>)> = vec![
        (":method".into(), method.into()),
        (":path".into(), b"/items/7".to_vec()),
        (":authority".into(), b"api.example.com".to_vec()),
        (":scheme".into(), b"https".to_vec()),
        ("content-length".into(), b"10".to_vec()),
    ];
    list.extend(
        headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())),
    );
    if let Some(token) = token {
        list.push((
            "authorization".into(),
            format!("Bearer {token}").into_bytes(),
        ));
    }
    let list: &'static [(String, Vec<u8>)] = Box::leak(list.into_boxed_slice());
    decide_stream(config, &mut WorkerState::default(), list, false, &|| NOW)
}

fn denied(d: &Decision) -> Option<Code> {
    match &d.outcome {
        Outcome::Denied(denial) => Some(denial.code()),
        _ => None,
    }
}

#[test]
fn a_post_with_a_form_body_is_decided_as_every_method() {
    let c = delete_required();
    let token = SigningKey::new(None, K.as_bytes())
        .sign(claims_for("alice", "access", NOW - 60, 3600))
        .unwrap();
    for content_type in [Some(URLENCODED), Some(MULTIPART), Some(""), None] {
        let headers: Vec<(&str, &str)> = content_type
            .map(|t| ("content-type", t))
            .into_iter()
            .collect();
        for method in ["POST", "post"] {
            let d = run(c, method, &headers, None);
            assert_eq!(
                denied(&d),
                Some(Code::MissingCredentials),
                "{method} {content_type:?}"
            );
            let d = run(c, method, &headers, Some(&token));
            assert!(
                matches!(&d.outcome, Outcome::Allowed(_)),
                "{method} {content_type:?}: {:?}",
                d.outcome
            );
            assert!(d.form.is_some(), "the body is read for credential fields");
        }
    }
    // A form that cannot be read with certainty may be read as one: refused.
    let gzip = [("content-type", URLENCODED), ("content-encoding", "gzip")];
    let d = run(c, "POST", &gzip, Some(&token));
    assert_eq!(denied(&d), Some(Code::InvalidRequest));
}

#[test]
fn other_bodies_and_methods_keep_their_rule() {
    let c = delete_required();
    let text = [("content-type", "text/plain")];
    assert_eq!(run(c, "POST", &text, None).outcome, Outcome::Unchecked);
    let form = [("content-type", URLENCODED)];
    // Servers read `_method` in the body of a `POST` only.
    for method in ["PUT", "PATCH", "GET"] {
        assert_eq!(
            run(c, method, &form, None).outcome,
            Outcome::Unchecked,
            "{method}"
        );
    }
}

#[test]
fn a_method_no_rule_names_counts_too() {
    // `POST /items` is open, every other method falls to the default: a form body's
    // `_method=PATCH` would be served as `PATCH`.
    let c = config(
        r#"{"prefix": "/items", "mode": "none", "methods": ["POST", "GET"]}"#,
        "required",
    );
    let form = [("content-type", URLENCODED)];
    assert_eq!(
        denied(&run(c, "POST", &form, None)),
        Some(Code::MissingCredentials)
    );
    let xml = [("content-type", "application/xml")];
    assert_eq!(run(c, "POST", &xml, None).outcome, Outcome::Unchecked);
}

#[test]
fn a_json_post_may_carry_a_method_too() {
    // Laravel reads `_method` from a JSON body (its input source for JSON requests).
    let c = delete_required();
    for json in [
        "application/json",
        "Application/JSON; charset=utf-8",
        "application/vnd.api+json",
    ] {
        let headers = [("content-type", json)];
        assert_eq!(
            denied(&run(c, "POST", &headers, None)),
            Some(Code::MissingCredentials),
            "{json}"
        );
    }
    let token = SigningKey::new(None, K.as_bytes())
        .sign(claims_for("alice", "access", NOW, 3600))
        .unwrap();
    let headers = [("content-type", "application/json")];
    assert!(matches!(
        run(c, "POST", &headers, Some(&token)).outcome,
        Outcome::Allowed(..)
    ));
}
