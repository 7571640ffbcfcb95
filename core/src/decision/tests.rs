//! The decision on whole requests, natively.

use super::*;
use crate::denial::BadCredential;
use crate::response::LocalResponse;
use crate::verify::token::{claims_for, sign_raw, SigningKey, TokenError};
use crate::worker::WorkerState;

const K: &str = "Hq3vXo9TzK7rWm2pLc8dNs5yFb4gJe6A";
const OLD: &str = "previous-secret-4TqrxYCoq6TBUrbbswc";
const API_KEY: &str = "sk_test_4f9d2c7a8b1e6f3d0a5c9e2b7f4a1d8c";
const PUBLISHABLE: &str = "pk_test_7c3e9a1f5b2d8e4a6c0f3b9d1e7a5c2f";
const CLIENT_SECRET: &str = "cs_test_Zr4Qm8Vn2Lp6Xw1Ty9Hs3Kd7Bf5Gj0";
const NOW: u64 = 1_750_000_000;

fn config_with(extra: &str) -> &'static Config {
    let json = format!(
        r#"{{
        "secrets": [{{"kid": "current", "key": "{K}"}}, {{"kid": "old", "key": "{OLD}"}}],
        "api_keys": [{{"name": "backend", "key": "{API_KEY}"}}],
        "publishable_keys": [{{"name": "web", "key": "{PUBLISHABLE}"}}],
        "clients": [{{"client_id": "client-a", "client_secret": "{CLIENT_SECRET}", "role": "reporting"}}],
        "rules": [
            {{"prefix": "/public", "mode": "none"}},
            {{"path": "/login", "mode": "none"}},
            {{"path": "/healthz", "mode": "none"}},
            {{"prefix": "/feed", "mode": "optional"}},
            {{"prefix": "/admin", "mode": "required", "roles": ["admin"]}},
            {{"prefix": "/reports", "mode": "required", "roles": ["reporting", "admin"]}},
            {{"prefix": "/catalog", "mode": "required", "roles": ["user", "admin", "anonymous"]}},
            {{"prefix": "/orders", "mode": "none", "methods": ["GET"]}}
        ]{extra}
    }}"#
    );
    Box::leak(Box::new(Config::parse(json.as_bytes(), &|_| None).unwrap()))
}

fn config() -> &'static Config {
    config_with(r#", "login_url": "https://auth.example.com/login", "return_param": "return_to""#)
}

fn token(sub: &str) -> String {
    SigningKey::new(Some("current".into()), K.as_bytes())
        .sign(claims_for(sub, "access", NOW - 60, 3600))
        .unwrap()
}

struct Req {
    headers: Vec<(String, Vec<u8>)>,
}

fn req(method: &str, target: &str) -> Req {
    Req {
        headers: vec![
            (":method".into(), method.as_bytes().to_vec()),
            (":path".into(), target.as_bytes().to_vec()),
            (":authority".into(), b"api.example.com".to_vec()),
            (":scheme".into(), b"https".to_vec()),
        ],
    }
}

fn get(target: &str) -> Req {
    req("GET", target)
}

impl Req {
    fn with(mut self, name: &str, value: impl AsRef<[u8]>) -> Req {
        self.headers.push((name.into(), value.as_ref().to_vec()));
        self
    }
    fn bearer(self, credential: &str) -> Req {
        self.with("authorization", format!("Bearer {credential}"))
    }
    fn browser(self) -> Req {
        self.with("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
    }
    /// Decides (the request is leaked so the decision can borrow it for the test).
    fn run(self, config: &'static Config) -> Decision<'static> {
        let headers: &'static [(String, Vec<u8>)] = Box::leak(self.headers.into_boxed_slice());
        decide(config, &mut WorkerState::default(), headers, NOW)
    }
}

fn edits<'d>(d: &'d Decision<'_>) -> &'d [HeaderEdit<'d>] {
    match &d.action {
        Action::Forward(edits) => edits,
        Action::Respond(r, _) => panic!("responded {} {}", r.status, r.body),
    }
}

fn response<'d>(d: &'d Decision<'_>) -> &'d LocalResponse {
    match &d.action {
        Action::Respond(r, _) => r,
        Action::Forward(e) => panic!("forwarded with {e:?}"),
    }
}

/// The value an identity header (or the rebuilt cookie) is set to.
fn added<'d>(d: &'d Decision<'_>, name: &str) -> Option<&'d str> {
    edits(d).iter().find_map(|e| match e {
        HeaderEdit::Set(n, v) | HeaderEdit::Add(n, v) if *n == name => {
            std::str::from_utf8(v.as_bytes()).ok()
        }
        _ => None,
    })
}

fn removed(d: &Decision, name: &str) -> bool {
    edits(d)
        .iter()
        .any(|e| matches!(e, HeaderEdit::Remove(n) if *n == name))
}

fn new_path(d: &Decision) -> Option<String> {
    edits(d).iter().find_map(|e| match e {
        HeaderEdit::SetPath(p) => Some(String::from_utf8_lossy(p).into_owned()),
        _ => None,
    })
}

fn code(d: &Decision) -> String {
    let r = response(d);
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    format!("{} {}", r.status, body["code"].as_str().unwrap())
}

#[test]
fn access_token_on_a_required_path() {
    let c = config();
    let d = get("/api/x?page=2").bearer(&token("alice")).run(c);
    assert_eq!(added(&d, "x-auth-user"), Some("alice"));
    assert_eq!(added(&d, "x-auth-type"), Some("access_token"));
    assert_eq!(added(&d, "x-auth-role"), Some("user"));
    assert_eq!(added(&d, "x-auth-name"), None);
    assert!(removed(&d, "authorization"));
    assert_eq!(new_path(&d), None);
    assert!(matches!(d.outcome, Outcome::Allowed(_)));
}

#[test]
fn missing_and_invalid_credentials() {
    let c = config();
    let d = get("/api/x").run(c);
    assert_eq!(code(&d), "401 MISSING_CREDENTIALS");
    assert_eq!(
        response(&d).header("www-authenticate"),
        Some("Bearer realm=\"api.example.com\"")
    );
    let cases: &[(&str, &str)] = &[
        ("Basic YWxpY2U6cGFzc3dvcmQ=", "401 INVALID_CREDENTIALS"),
        ("Bearer not-a-key-or-token", "401 INVALID_CREDENTIALS"),
        ("Bearer a.b.c", "401 INVALID_CREDENTIALS"),
        ("Bearer", "401 INVALID_CREDENTIALS"),
    ];
    for (header, expected) in cases {
        let d = get("/api/x").with("authorization", header).run(c);
        assert_eq!(&code(&d), expected, "{header}");
        assert!(response(&d)
            .header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_token\""));
    }
}

#[test]
fn non_utf8_credential_is_invalid_not_a_crash() {
    let c = config();
    let d = get("/api/x")
        .with("authorization", b"Bearer \xc0\xa7\xc0\xa2")
        .with("user-agent", b"\xff\xfe")
        .run(c);
    assert_eq!(code(&d), "401 INVALID_CREDENTIALS");
    let d = get("/api/x").with("cookie", b"access_token=\xff").run(c);
    assert_eq!(code(&d), "401 INVALID_CREDENTIALS");
}

#[test]
fn token_time_checks() {
    let c = config();
    let key = SigningKey::new(Some("current".into()), K.as_bytes());
    let expired = key
        .sign(claims_for("u", "access", NOW - 7200, 3600))
        .unwrap();
    let within_skew = key
        .sign(claims_for("u", "access", NOW - 3630, 3600))
        .unwrap();
    let mut future = claims_for("u", "access", NOW, 3600);
    future.invalid_before = Some(jwt_simple::prelude::UnixTimeStamp::from_secs(NOW + 600));
    let future = key.sign(future).unwrap();
    let refresh = key.sign(claims_for("u", "refresh", NOW, 3600)).unwrap();
    let d = get("/api").bearer(&expired).run(c);
    assert_eq!(code(&d), "401 TOKEN_EXPIRED");
    assert!(response(&d).body.contains("refresh"));
    assert!(matches!(
        get("/api").bearer(&within_skew).run(c).action,
        Action::Forward(_)
    ));
    assert_eq!(
        code(&get("/api").bearer(&future).run(c)),
        "401 INVALID_CREDENTIALS"
    );
    assert_eq!(
        code(&get("/api").bearer(&refresh).run(c)),
        "401 INVALID_CREDENTIALS"
    );
}

#[test]
fn rotated_and_unknown_keys() {
    let c = config();
    let old = SigningKey::new(Some("old".into()), OLD.as_bytes())
        .sign(claims_for("bob", "access", NOW, 600))
        .unwrap();
    assert_eq!(
        added(&get("/api").bearer(&old).run(c), "x-auth-user"),
        Some("bob")
    );
    let unknown = SigningKey::new(Some("retired".into()), OLD.as_bytes())
        .sign(claims_for("bob", "access", NOW, 600))
        .unwrap();
    let d = get("/api").bearer(&unknown).run(c);
    assert_eq!(
        d.outcome,
        Outcome::Denied(Denial::InvalidCredentials(BadCredential::Token(
            TokenError::UnknownKeyId
        )))
    );
    let none_alg = sign_raw(
        r#"{"alg":"none"}"#,
        r#"{"sub":"eve","token_type":"access","exp":4102444800}"#,
        b"",
    );
    assert_eq!(
        code(&get("/api").bearer(&none_alg).run(c)),
        "401 INVALID_CREDENTIALS"
    );
}

#[test]
fn each_mode() {
    let c = config();
    let t = token("alice");
    // none: never checked, even with a broken credential; nothing added or removed.
    let d = get("/public/x").bearer("garbage").run(c);
    assert_eq!(d.outcome, Outcome::Unchecked);
    assert!(edits(&d).is_empty());
    // optional: anonymous without a credential.
    let d = get("/feed/x").run(c);
    assert_eq!(added(&d, "x-auth-type"), Some("anonymous"));
    assert_eq!(added(&d, "x-auth-role"), Some("anonymous"));
    assert_eq!(added(&d, "x-auth-user"), None);
    // optional: annotated with a valid credential, 401 with an invalid one.
    assert_eq!(
        added(&get("/feed/x").bearer(&t).run(c), "x-auth-user"),
        Some("alice")
    );
    assert_eq!(
        code(&get("/feed/x").bearer("a.b.c").run(c)),
        "401 INVALID_CREDENTIALS"
    );
    // required.
    assert_eq!(code(&get("/elsewhere").run(c)), "401 MISSING_CREDENTIALS");
}

#[test]
fn spoofed_identity_headers_are_stripped_everywhere() {
    let c = config();
    for target in ["/public/x", "/feed/x", "/api/x"] {
        let d = get(target)
            .with("x-auth-user", "admin")
            .with("x_auth_user", "admin")
            .with("x-auth-role", "admin")
            .with("X_Auth_Name", "root")
            .bearer(&token("alice"))
            .run(c);
        for name in ["x-auth-user", "x_auth_user", "x-auth-role", "X_Auth_Name"] {
            // Removed, or replaced by the filter's own value.
            let set = edits(&d)
                .iter()
                .any(|e| matches!(e, HeaderEdit::Set(n, _) if *n == name));
            assert!(removed(&d, name) || set, "{target} {name}");
        }
        let first_add = edits(&d)
            .iter()
            .position(|e| matches!(e, HeaderEdit::Set(..) | HeaderEdit::Add(..)));
        let last_remove = edits(&d).iter().rposition(
            |e| matches!(e, HeaderEdit::Remove(n) if n.to_ascii_lowercase().starts_with("x")),
        );
        if let (Some(add), Some(remove)) = (first_add, last_remove) {
            assert!(remove < add, "{target}: removals come first");
        }
    }
}

#[test]
fn credential_removal_and_forwarding() {
    let c = config();
    let t = token("alice");
    let d = get(&format!("/api/x?a=1&access_token={t}&b=2")).run(c);
    assert_eq!(new_path(&d).as_deref(), Some("/api/x?a=1&b=2"));
    let d = get(&format!("/api/x?access_token={t}")).run(c);
    assert_eq!(new_path(&d).as_deref(), Some("/api/x"));
    let d = get("/api/x")
        .with("cookie", format!("theme=dark; access_token={t}; lang=en"))
        .run(c);
    assert!(removed(&d, "cookie"));
    assert_eq!(added(&d, "cookie"), Some("theme=dark; lang=en"));
    let forward = config_with(r#", "forward_credentials": true"#);
    let d = get(&format!("/api/x?access_token={t}")).run(forward);
    assert_eq!(new_path(&d), None);
    let d = get("/api/x").bearer(&t).run(forward);
    assert!(!removed(&d, "authorization"));
    assert_eq!(added(&d, "x-auth-user"), Some("alice"));
}

#[test]
fn refusals_scrub_query_credentials_for_the_access_log() {
    let c = config();
    let d = get("/api/x?a=1&access_token=a.b.c&client_secret=s").run(c);
    match &d.action {
        Action::Respond(r, edits) => {
            assert_eq!(r.status, 400);
            assert_eq!(edits, &[HeaderEdit::SetPath(b"/api/x?a=1".to_vec())]);
        }
        other => panic!("{other:?}"),
    }
    let d = get("/api/x?a=1").run(c);
    assert!(matches!(&d.action, Action::Respond(_, edits) if edits.is_empty()));
    let d = get("/..?access_token=x").run(c);
    assert!(
        matches!(&d.action, Action::Respond(_, edits) if edits == &[HeaderEdit::SetPath(b"/..".to_vec())])
    );
    // A credential in a path parameter is no credential, and is kept out of logs too.
    let headers = get("/api/x;access_token=a.b.c;v=1/y?q=1").headers;
    let d = decide(c, &mut WorkerState::default(), &headers, NOW);
    match &d.action {
        Action::Respond(r, edits) => {
            assert_eq!(r.status, 401);
            assert_eq!(edits, &[HeaderEdit::SetPath(b"/api/x;v=1/y?q=1".to_vec())]);
        }
        other => panic!("{other:?}"),
    }
    let line = d.describe(&headers);
    assert!(
        !line.contains("a.b.c") && line.contains("/api/x;access_token=…;v=…/y"),
        "{line}"
    );
}

#[test]
fn cors_preflight_passes_without_credentials() {
    let c = config();
    let d = req("OPTIONS", "/admin/x")
        .with("origin", "https://app.example.com")
        .with("access-control-request-method", "GET")
        .with("x-auth-user", "admin")
        .run(c);
    assert_eq!(d.outcome, Outcome::Preflight);
    assert_eq!(edits(&d), &[HeaderEdit::Remove("x-auth-user")]);
    let d = req("OPTIONS", "/admin/x")
        .with("origin", "https://app")
        .run(c);
    assert_eq!(code(&d), "401 MISSING_CREDENTIALS");
}

#[test]
fn keys_clients_and_roles() {
    let c = config();
    let d = get("/admin/x").bearer(API_KEY).run(c);
    assert_eq!(added(&d, "x-auth-type"), Some("api_key"));
    assert_eq!(added(&d, "x-auth-role"), Some("admin"));
    assert_eq!(added(&d, "x-auth-name"), Some("backend"));
    let d = get("/admin/x").bearer(PUBLISHABLE).run(c);
    assert_eq!(code(&d), "403 PERMISSION_DENIED");
    assert!(response(&d)
        .header("www-authenticate")
        .unwrap()
        .contains("error=\"insufficient_scope\""));
    let d = get("/catalog/x").bearer(PUBLISHABLE).run(c);
    assert_eq!(added(&d, "x-auth-type"), Some("publishable_key"));
    assert_eq!(
        code(&get("/admin/x").bearer(&token("alice")).run(c)),
        "403 PERMISSION_DENIED"
    );
    let d = get(&format!(
        "/reports/q?client_id=client-a&client_secret={CLIENT_SECRET}&q=1"
    ))
    .run(c);
    assert_eq!(added(&d, "x-auth-type"), Some("client"));
    assert_eq!(added(&d, "x-auth-role"), Some("reporting"));
    assert_eq!(added(&d, "x-auth-name"), Some("client-a"));
    assert_eq!(new_path(&d).as_deref(), Some("/reports/q?q=1"));
    let wrong = code(&get("/reports/q?client_id=client-a&client_secret=nope").run(c));
    let unknown = code(&get("/reports/q?client_id=nobody&client_secret=nope").run(c));
    assert_eq!(wrong, "401 INVALID_CREDENTIALS");
    assert_eq!(
        response(&get("/reports/q?client_id=client-a&client_secret=nope").run(c)),
        response(&get("/reports/q?client_id=nobody&client_secret=nope").run(c))
    );
    assert_eq!(wrong, unknown);
}

#[test]
fn browser_redirect() {
    let c = config();
    let d = get("/app/page?x=1").browser().run(c);
    let r = response(&d);
    assert_eq!(r.status, 302);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(
        r.header("location"),
        Some("https://auth.example.com/login?return_to=https%3A%2F%2Fapi.example.com%2Fapp%2Fpage%3Fx%3D1")
    );
    // Script requests, other methods and JSON clients get the 401.
    assert_eq!(
        response(
            &get("/app")
                .browser()
                .with("x-requested-with", "XMLHttpRequest")
                .run(c)
        )
        .status,
        401
    );
    assert_eq!(response(&req("POST", "/app").browser().run(c)).status, 401);
    assert_eq!(
        response(&get("/app").with("accept", "application/json").run(c)).status,
        401
    );
    assert_eq!(response(&req("HEAD", "/app").browser().run(c)).status, 302);
    // An expired token in the query: redirected, without the token in the return URL.
    let expired = SigningKey::new(Some("current".into()), K.as_bytes())
        .sign(claims_for("u", "access", NOW - 7200, 60))
        .unwrap();
    let d = get(&format!("/app?access_token={expired}&x=1"))
        .browser()
        .run(c);
    assert_eq!(
        response(&d).header("location"),
        Some(
            "https://auth.example.com/login?return_to=https%3A%2F%2Fapi.example.com%2Fapp%3Fx%3D1"
        )
    );
    // 403 and 400 are never redirected.
    assert_eq!(
        response(&get("/admin").bearer(&token("a")).browser().run(c)).status,
        403
    );
    assert_eq!(response(&get("/..").browser().run(c)).status, 400);
}

#[test]
fn redirect_never_becomes_an_open_redirect() {
    let c = config();
    let location = |target: &str| {
        response(&get(target).browser().run(c))
            .header("location")
            .unwrap()
            .to_string()
    };
    for (target, expected) in [
        (
            "//evil.example/x",
            "https%3A%2F%2Fapi.example.com%2Fevil.example%2Fx",
        ),
        (
            "/\\evil.example",
            "https%3A%2F%2Fapi.example.com%2F%255Cevil.example",
        ),
        (
            "/%2F%2Fevil.example",
            "https%3A%2F%2Fapi.example.com%2F%252F%252Fevil.example",
        ),
        ("/app/%0d%0aSet-Cookie:%20x=y", ""),
        (
            "/p?x=1&return_to=https://evil.example",
            "https%3A%2F%2Fapi.example.com%2Fp%3Fx%3D1%26return_to%3Dhttps%3A%2F%2Fevil.example",
        ),
    ] {
        if expected.is_empty() {
            assert_eq!(
                response(&get(target).browser().run(c)).status,
                400,
                "{target}"
            );
            continue;
        }
        assert_eq!(
            location(target),
            format!("https://auth.example.com/login?return_to={expected}"),
            "{target}"
        );
    }
    let hostile_host = get("/app").browser().run(config());
    assert!(response(&hostile_host).header("location").is_some());
    let mut r = get("/app").browser();
    r.headers[2].1 = b"evil.example\"><script>".to_vec();
    let d = r.run(c);
    assert_eq!(
        response(&d).header("location"),
        Some("https://auth.example.com/login?return_to=%2Fapp")
    );
}

#[test]
fn login_url_with_query_and_path() {
    let c = config_with(r#", "login_url": "/login?tenant=acme""#);
    let d = get("/app").browser().with(":scheme", "http").run(c);
    let location = response(&d).header("location").unwrap();
    assert!(
        location.starts_with("/login?tenant=acme&redirect="),
        "{location}"
    );
}

#[test]
fn credential_and_identity_trailers_are_removed_others_kept() {
    let config = config();
    for name in [
        "authorization",
        "Authorization",
        "cookie",
        "proxy-authorization",
        "x-auth-user",
        "x_auth_role",
    ] {
        assert!(crate::decision::trailer_is_removed(config, name), "{name}");
    }
    for name in ["grpc-status", "x-checksum", "content-md5"] {
        assert!(!crate::decision::trailer_is_removed(config, name), "{name}");
    }
}
