//! What the upstream and the access log never see: spoofed identity headers, credentials
//! in every place, trailers; and the CORS preflight that passes without one.

use super::*;

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
