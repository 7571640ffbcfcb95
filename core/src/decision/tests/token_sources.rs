//! Token headers (`token_headers`) and the payload header (`payload_header`) on whole
//! requests.

use super::*;

fn sourced() -> &'static Config {
    config_with(
        r#", "token_headers": [{"name": "x-access-token"}, {"name": "authorization", "prefix": "Token "}],
        "payload_header": "x-jwt-payload""#,
    )
}

#[test]
fn a_token_in_a_token_header_passes_and_is_removed_with_the_payload_set() {
    let t = token("alice");
    let d = get("/catalog").with("x-access-token", &t).run(sourced());
    assert_eq!(added(&d, "x-auth-user"), Some("alice"));
    assert!(removed(&d, "x-access-token"));
    let payload = t.split('.').nth(1).unwrap();
    assert_eq!(added(&d, "x-jwt-payload"), Some(payload));
    let d = get("/catalog")
        .with("authorization", format!("token {t}"))
        .run(sourced());
    assert_eq!(added(&d, "x-auth-user"), Some("alice"));
    assert!(removed(&d, "authorization"));
}

#[test]
fn the_payload_header_a_client_sends_is_removed_and_never_set_for_keys() {
    let d = get("/admin")
        .bearer(API_KEY)
        .with("x-jwt-payload", "eyJzdWIiOiJhZG1pbiJ9")
        .with("x_jwt_payload", "x")
        .run(sourced());
    assert!(removed(&d, "x-jwt-payload") && removed(&d, "x_jwt_payload"));
    assert_eq!(added(&d, "x-jwt-payload"), None);
    let d = get("/public/x")
        .with("x-jwt-payload", "eyJzdWIiOiJhZG1pbiJ9")
        .run(sourced());
    assert!(removed(&d, "x-jwt-payload"), "on none paths too");
    let d = get("/catalog")
        .with("x-jwt-payload", "forged")
        .bearer(&token("bob"))
        .run(sourced());
    let payload = token("bob");
    assert_eq!(added(&d, "x-jwt-payload"), payload.split('.').nth(1));
    assert!(!removed(&d, "x-jwt-payload"), "replaced, not removed");
}

#[test]
fn two_sources_repeats_and_spellings_are_400_and_bad_prefixes_401() {
    let t = token("alice");
    let cases = [
        (get("/catalog").with("x-access-token", &t).bearer(&t), 400),
        (
            get("/catalog")
                .with("x-access-token", &t)
                .with("x-access-token", &t),
            400,
        ),
        (
            get("/catalog")
                .with("x-access-token", &t)
                .with("x_access_token", &t),
            400,
        ),
        (get("/catalog").with("x_access_token", &t), 400),
        (
            get(&format!("/catalog?access_token={t}")).with("x-access-token", &t),
            400,
        ),
        (
            get("/catalog").with("authorization", format!("Tok {t}")),
            401,
        ),
        (
            get("/catalog").with("x-access-token", "a".repeat(9000)),
            401,
        ),
    ];
    for (i, (request, status)) in cases.into_iter().enumerate() {
        let d = request.run(sourced());
        assert_eq!(response(&d).status, status, "case {i}");
    }
}

#[test]
fn a_preflight_and_a_refusal_carry_no_token_header_on() {
    let d = req("OPTIONS", "/catalog")
        .with("origin", "https://app.example.com")
        .with("access-control-request-method", "GET")
        .with("x-access-token", token("alice"))
        .with("x_access_token", "x")
        .run(sourced());
    assert!(removed(&d, "x-access-token") && removed(&d, "x_access_token"));
    let d = get("/admin")
        .with("x-access-token", token("alice"))
        .run(sourced());
    assert_eq!(response(&d).status, 403);
    let Action::Respond(_, scrub) = &d.action else {
        panic!("forwarded");
    };
    assert!(scrub.contains(&HeaderEdit::Remove("x-access-token")));
}

#[test]
fn without_token_headers_a_header_named_so_is_not_read() {
    let d = get("/catalog")
        .with("x-access-token", token("alice"))
        .run(config());
    assert_eq!(response(&d).status, 401);
}
