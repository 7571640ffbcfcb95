//! The decision's trace: each step told in order, and the same decision traced or not.

use super::*;

/// Each step told, as a short label.
#[derive(Default)]
struct Labels(Vec<String>);

impl Trace for Labels {
    fn step(&mut self, step: Step<'_>) {
        self.0.push(match step {
            Step::Request(request) => format!("request spoofed={}", request.spoofed.len()),
            Step::NoPath => "no path".into(),
            Step::UnreadablePath { error, .. } => format!("unreadable {error:?}"),
            Step::Preflight { found } => format!("preflight hidden={}", found.encoded_in_path),
            Step::BadMethodOverride => "bad override".into(),
            Step::UnclearHost => "unclear host".into(),
            Step::Policy {
                methods,
                readings,
                policy,
                ..
            } => format!(
                "policy {} methods={} readings={} rule={:?}",
                policy.mode.as_str(),
                methods.len(),
                readings.len(),
                policy.rule
            ),
            Step::FormBody(e) => format!("form body {e:?}"),
            Step::Found { found, .. } => format!("found unread={}", found.unread()),
            Step::Presented(p) => format!("presented {}", p.is_some()),
            Step::NothingToVerify(mode) => format!("nothing to verify {}", mode.as_str()),
            Step::Key(identity) => format!("key {:?}", identity.and_then(|i| i.name.clone())),
            Step::Client { identity, .. } => format!("client {}", identity.is_some()),
            Step::Cached(identity) => format!("cached {:?}", identity.user),
            Step::Signer(signer) => format!("signer {signer:?}"),
            Step::Verified {
                issuer, identity, ..
            } => format!("verified {issuer:?} {:?}", identity.user),
            Step::TokenRefused(e) => format!("refused {e:?}"),
            Step::NeedsKeys { issuer, why } => format!("needs keys {issuer} {why:?}"),
            Step::Revocation(denial) => format!("revocation {denial:?}"),
            Step::Role {
                identity, passes, ..
            } => format!("role {} passes={passes}", identity.role),
            Step::Condition { rule, kind, held } => format!("condition {rule} {kind:?} {held}"),
        });
    }
}

/// The steps told for `request`, and the decision is the untraced one.
fn told(config: &'static Config, request: Req) -> Vec<String> {
    let headers: &'static [(String, Vec<u8>)] = Box::leak(request.headers.into_boxed_slice());
    let mut labels = Labels::default();
    let traced = decide_traced(
        config,
        &mut WorkerState::default(),
        headers,
        NOW,
        &mut labels,
    );
    let plain = decide(config, &mut WorkerState::default(), headers, NOW);
    assert_eq!(traced, plain);
    labels.0
}

#[test]
fn an_allowed_token_is_told_step_by_step() {
    let c = config();
    let t = token("alice");
    assert_eq!(
        told(c, get("/api/x").bearer(&t).with("x-auth-user", "eve")),
        [
            "request spoofed=1",
            "policy required methods=1 readings=1 rule=None",
            "found unread=false",
            "presented true",
            "signer Secrets",
            "verified None Some(\"alice\")",
            "role user passes=true",
        ]
    );
    // A second decision by the same worker is the cache's.
    let headers: &'static [(String, Vec<u8>)] =
        Box::leak(get("/api/x").bearer(&t).headers.into_boxed_slice());
    let mut worker = WorkerState::default();
    decide(c, &mut worker, headers, NOW);
    let mut labels = Labels::default();
    decide_traced(c, &mut worker, headers, NOW, &mut labels);
    assert_eq!(labels.0[3..5], ["presented true", "cached Some(\"alice\")"]);
}

#[test]
fn refusals_are_told_up_to_the_step_that_refuses() {
    let c = config();
    let last = |request: Req| told(c, request).last().cloned().unwrap();
    assert_eq!(
        last(get("/admin/x").bearer(&token("alice"))),
        "role user passes=false"
    );
    assert_eq!(
        last(get("/api/x").bearer("a.b.c")),
        "refused Malformed".to_owned()
    );
    assert_eq!(last(get("/api/x")), "nothing to verify required");
    assert_eq!(last(get("/feed")), "role anonymous passes=true");
    assert_eq!(last(get("/api/x").bearer("nope")), "key None");
    assert_eq!(
        told(c, get("/api/x").bearer(API_KEY))[4..],
        ["key Some(\"backend\")", "role admin passes=true"]
    );
    assert_eq!(
        last(get(&format!(
            "/reports?client_id=client-a&client_secret={CLIENT_SECRET}x"
        ))),
        "client false"
    );
    assert_eq!(
        last(get("/a/%2e%2e%2f..%00")),
        "unreadable ControlCharacter"
    );
    assert_eq!(last(get("x")), "unreadable NotAbsolute");
    assert_eq!(
        last(get(
            "/x?_method=PUT&_method=A&_method=B&_method=C&_method=D"
        )),
        "bad override"
    );
}

#[test]
fn none_paths_and_preflights_stop_early() {
    let c = config();
    assert_eq!(
        told(c, get("/public/x").bearer("whatever")),
        [
            "request spoofed=0",
            "policy none methods=1 readings=1 rule=Some(0)"
        ]
    );
    let preflight = req("OPTIONS", "/api/x")
        .with("origin", "https://app.example.com")
        .with("access-control-request-method", "GET");
    assert_eq!(
        told(c, preflight),
        ["request spoofed=0", "preflight hidden=false"]
    );
    let mut no_path = get("/x");
    no_path.headers.retain(|(n, _)| n != ":path");
    assert_eq!(told(c, no_path), ["request spoofed=0", "no path"]);
}

#[test]
fn a_form_body_that_cannot_be_read_is_told() {
    let request = req("POST", "/api/x")
        .with("content-type", "application/x-www-form-urlencoded")
        .with("content-encoding", "gzip")
        .with("content-length", "5");
    let steps = told(config(), request);
    assert_eq!(steps.last().unwrap(), "form body Encoded");
    // A form may carry `_method`: decided as every method the rules name, and any other.
    assert!(steps[1].contains("methods=3"), "{steps:?}");
}
