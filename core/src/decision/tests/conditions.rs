//! Conditions on rules (`issuers`, `credentials`, `audiences`, `scopes`, `claims`), decided
//! on whole requests with master-secret tokens of any payload, keys and clients.

use super::*;
use crate::denial::Denial;
use crate::rules::conditions::ConditionKind;

fn conditioned() -> &'static Config {
    let json = format!(
        r#"{{
        "secrets": [{{"kid": "current", "key": "{K}"}}],
        "api_keys": [{{"name": "backend", "key": "{API_KEY}"}}],
        "clients": [{{"client_id": "client-a", "client_secret": "{CLIENT_SECRET}", "role": "reporting"}}],
        "rules": [
            {{"prefix": "/aud", "mode": "required", "audiences": ["api://orders"]}},
            {{"prefix": "/scope", "mode": "required", "scopes": ["orders:read", "orders:write"]}},
            {{"prefix": "/tenant", "mode": "required",
              "claims": [{{"claim": ["https://example.com/claims", "tenant"], "equals": "acme"}}]}},
            {{"prefix": "/level", "mode": "required", "claims": [{{"claim": "a.b.level", "one_of": [1, 2]}}]}},
            {{"prefix": "/groups", "mode": "required", "claims": [{{"claim": "groups", "contains": "ops"}}]}},
            {{"prefix": "/verified", "mode": "required", "claims": [{{"claim": "email_verified", "equals": true}}]}},
            {{"prefix": "/present", "mode": "required", "claims": [{{"claim": "act", "present": true}}]}},
            {{"prefix": "/machines", "mode": "required", "roles": ["admin", "reporting"],
              "credentials": ["api_key", "client"]}},
            {{"prefix": "/secrets", "mode": "required", "issuers": ["secrets"]}},
            {{"prefix": "/both", "mode": "required", "scopes": ["a"]}},
            {{"prefix": "/both", "mode": "required", "methods": ["POST"], "scopes": ["b"]}}
        ]
    }}"#
    );
    Box::leak(Box::new(Config::parse(json.as_bytes(), &|_| None).unwrap()))
}

/// A master-secret token carrying `extra` claims (a JSON object's members, without braces).
fn with_claims(extra: &str) -> String {
    let payload = format!(
        r#"{{"sub":"u1","token_type":"access","iat":{},"exp":{}{}{extra}}}"#,
        NOW - 60,
        NOW + 3600,
        if extra.is_empty() { "" } else { "," }
    );
    sign_raw(
        r#"{"alg":"HS256","typ":"JWT","kid":"current"}"#,
        &payload,
        K.as_bytes(),
    )
}

fn status(path: &str, extra: &str) -> String {
    let d = get(path).bearer(&with_claims(extra)).run(conditioned());
    match &d.action {
        Action::Forward(_) => "200".into(),
        Action::Respond(..) => code(&d),
    }
}

const DENIED: &str = "403 PERMISSION_DENIED";

#[test]
fn audiences_hold_when_aud_names_one() {
    assert_eq!(status("/aud", r#""aud":"api://orders""#), "200");
    assert_eq!(status("/aud", r#""aud":["x","api://orders"]"#), "200");
    for refused in ["", r#""aud":"api://other""#, r#""aud":"API://orders""#] {
        assert_eq!(status("/aud", refused), DENIED, "{refused}");
    }
    // An `aud` of another shape is no token at all.
    for other_shape in [
        r#""aud":[["api://orders"]]"#,
        r#""aud":{"api://orders":1}"#,
        r#""aud":1"#,
    ] {
        assert_eq!(status("/aud", other_shape), "401 INVALID_CREDENTIALS");
    }
}

#[test]
fn scopes_must_all_be_granted_by_scope_or_scp() {
    for granted in [
        r#""scope":"orders:read orders:write""#,
        r#""scope":"  orders:write   x orders:read ""#,
        r#""scp":["orders:read","orders:write"]"#,
        r#""scp":"orders:write orders:read""#,
        r#""scope":"orders:read","scp":["orders:write"]"#,
    ] {
        assert_eq!(status("/scope", granted), "200", "{granted}");
    }
    for refused in [
        r#""scope":"orders:read""#,
        r#""scope":"orders:read\torders:write""#,
        r#""scope":["orders:read orders:write"]"#,
        r#""scope":"orders:read,orders:write""#,
        r#""scope":"ORDERS:READ orders:write""#,
        r#""scope":"orders:read orders:wrіte""#,
        r#""scope":1"#,
    ] {
        assert_eq!(status("/scope", refused), DENIED, "{refused}");
    }
}

#[test]
fn claims_follow_paths_whose_keys_hold_dots_and_slashes() {
    let ok = r#""https://example.com/claims":{"tenant":"acme"}"#;
    assert_eq!(status("/tenant", ok), "200");
    for refused in [
        r#""https://example.com/claims":{"tenant":"acme2"}"#,
        r#""https://example.com/claims":{"tenant":["acme"]}"#,
        r#""https://example.com/claims.tenant":"acme""#,
        r#""https://example":{"com/claims":{"tenant":"acme"}}"#,
        r#""https://example.com/claims":{"tenant":"аcme"}"#,
        r#""tenant":"acme""#,
    ] {
        assert_eq!(status("/tenant", refused), DENIED, "{refused}");
    }
    assert_eq!(status("/level", r#""a":{"b":{"level":2}}"#), "200");
    for refused in [
        // Written as a float: read lossily, never equal to an integer.
        r#""a":{"b":{"level":1.0}}"#,
        r#""a":{"b":{"level":2.0}}"#,
        r#""a":{"b":{"level":2e0}}"#,
        r#""a":{"b":{"level":"2"}}"#,
        r#""a":{"b":{"level":true}}"#,
        r#""a":{"b":{"level":3}}"#,
        r#""a.b.level":2"#,
        r#""a":{"b.level":2}"#,
    ] {
        assert_eq!(status("/level", refused), DENIED, "{refused}");
    }
}

#[test]
fn contains_equals_and_present_never_coerce() {
    assert_eq!(status("/groups", r#""groups":["dev","ops"]"#), "200");
    assert_eq!(status("/groups", r#""groups":"dev ops""#), "200");
    for refused in [
        r#""groups":"dev,ops""#,
        r#""groups":"devops""#,
        r#""groups":[["ops"]]"#,
        r#""groups":{"ops":true}"#,
        r#""groups":"dev\tops""#,
        r#""groups":["Ops"]"#,
    ] {
        assert_eq!(status("/groups", refused), DENIED, "{refused}");
    }
    assert_eq!(status("/verified", r#""email_verified":true"#), "200");
    for refused in [r#""email_verified":"true""#, r#""email_verified":1"#, ""] {
        assert_eq!(status("/verified", refused), DENIED, "{refused}");
    }
    assert_eq!(status("/present", r#""act":{"sub":"x"}"#), "200");
    assert_eq!(status("/present", r#""act":null"#), "200");
    assert_eq!(status("/present", ""), DENIED);
}

#[test]
fn a_repeated_claim_at_any_depth_refuses_the_token() {
    let d = get("/tenant")
        .bearer(&with_claims(
            r#""https://example.com/claims":{"tenant":"acme","tenant":"evil"}"#,
        ))
        .run(conditioned());
    assert_eq!(code(&d), "401 INVALID_CREDENTIALS");
    assert_eq!(
        status(
            "/scope",
            r#""scope":"x","scope":"orders:read orders:write""#
        ),
        "401 INVALID_CREDENTIALS"
    );
}

#[test]
fn credential_types_and_issuers_limit_who_passes() {
    assert_eq!(
        code(&get("/machines").bearer(&with_claims("")).run(conditioned())),
        DENIED
    );
    let key = get("/machines").bearer(API_KEY).run(conditioned());
    assert_eq!(added(&key, "x-auth-type"), Some("api_key"));
    let client = get(&format!(
        "/machines?client_id=client-a&client_secret={CLIENT_SECRET}"
    ))
    .run(conditioned());
    assert_eq!(added(&client, "x-auth-type"), Some("client"));
    assert_eq!(status("/secrets", ""), "200");
    assert_eq!(
        code(&get("/secrets").bearer(API_KEY).run(conditioned())),
        DENIED
    );
    // A key has no claims: it fails every condition on them.
    assert_eq!(
        code(&get("/aud").bearer(API_KEY).run(conditioned())),
        DENIED
    );
}

#[test]
fn every_rule_a_request_may_be_served_as_must_hold() {
    assert_eq!(status("/both", r#""scope":"a""#), "200");
    let overridden = |scope: &str| {
        get("/both")
            .with("x-http-method-override", "POST")
            .bearer(&with_claims(scope))
            .run(conditioned())
    };
    assert_eq!(code(&overridden(r#""scope":"a""#)), DENIED);
    assert_eq!(code(&overridden(r#""scope":"b""#)), DENIED);
    assert!(matches!(
        overridden(r#""scope":"a b""#).action,
        Action::Forward(_)
    ));
}

#[test]
fn the_refusal_names_the_kind_never_a_value() {
    let d = get("/tenant")
        .bearer(&with_claims(
            r#""https://example.com/claims":{"tenant":"secret-tenant"}"#,
        ))
        .run(conditioned());
    let r = response(&d);
    assert!(!r.body.contains("secret-tenant"));
    assert!(r
        .body
        .contains(Denial::ConditionFailed(ConditionKind::Claim).message()));
    let challenge = r
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("www-authenticate"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
}

#[test]
fn a_cache_hit_keeps_what_the_conditions_read() {
    let config = conditioned();
    let mut worker = WorkerState::default();
    let token = with_claims(r#""scope":"orders:read orders:write""#);
    let request = get("/scope").bearer(&token);
    let headers: &'static [(String, Vec<u8>)] = Box::leak(request.headers.into_boxed_slice());
    let first = decide(config, &mut worker, headers, NOW);
    let second = decide(config, &mut worker, headers, NOW);
    assert_eq!(first.cache_hit, Some(false));
    assert_eq!(second.cache_hit, Some(true));
    assert!(matches!(second.action, Action::Forward(_)));
}

#[test]
fn each_condition_is_told_to_the_trace() {
    #[derive(Default)]
    struct Conditions(Vec<String>);
    impl Trace for Conditions {
        fn step(&mut self, step: Step<'_>) {
            if let Step::Condition { rule, kind, held } = step {
                self.0.push(format!("{rule} {} {held}", kind.key()));
            }
        }
    }
    let request = get("/both")
        .with("x-http-method-override", "POST")
        .bearer(&with_claims(r#""scope":"b""#));
    let headers: &'static [(String, Vec<u8>)] = Box::leak(request.headers.into_boxed_slice());
    let mut told = Conditions::default();
    let d = decide_traced(
        conditioned(),
        &mut WorkerState::default(),
        headers,
        NOW,
        &mut told,
    );
    assert_eq!(code(&d), DENIED);
    assert_eq!(told.0.len(), 2);
    assert!(
        told.0.contains(&"9 scopes false".to_owned()),
        "{:?}",
        told.0
    );
    assert!(
        told.0.contains(&"10 scopes true".to_owned()),
        "{:?}",
        told.0
    );
}
