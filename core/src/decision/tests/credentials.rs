//! Credentials on whole requests: tokens, keys, clients, the modes and roles.

use super::*;

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
