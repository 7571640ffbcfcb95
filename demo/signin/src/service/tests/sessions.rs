//! A session after sign-in: refreshed once per refresh token, ended by signing out.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::*;

#[test]
fn a_refresh_token_works_once_and_its_reuse_ends_the_session() {
    let s = service();
    let (_, first) = pair(&s.handle(&post("/login", JSON, DEMO_LOGIN), NOW));
    let later = NOW + 3600;
    let (access, second) = pair(&refresh_with(&s, &first, later));
    assert_eq!(
        filter_verifier()
            .verify(&mut Default::default(), &access, later)
            .unwrap()
            .subject
            .as_ref(),
        "lUpa"
    );
    // The old token again: refused, and the session it belongs to ends.
    assert_eq!(refresh_with(&s, &first, later).status, 401);
    assert_eq!(refresh_with(&s, &second, later).status, 401);
}

#[test]
fn refresh_refuses_access_tokens_expired_and_foreign_tokens() {
    let s = service();
    let (access, refresh) = pair(&s.handle(&post("/login", JSON, DEMO_LOGIN), NOW));
    assert_eq!(refresh_with(&s, &access, NOW).status, 401);
    assert_eq!(refresh_with(&s, &refresh, NOW + 604800 + 120).status, 401);
    // Signed with the right key but never issued here (mint-token --type refresh).
    let minted = SigningKey::new(Some("demo".into()), SECRET.as_bytes())
        .sign(claims_for("lUpa", "refresh", NOW, 600))
        .unwrap();
    assert_eq!(refresh_with(&s, &minted, NOW).status, 401);
    let reply = s.handle(&post("/auth/refresh", JSON, "{}"), NOW);
    assert_eq!(reply.status, 400);
}

#[test]
fn logout_ends_the_session_and_clears_the_cookies() {
    let s = service();
    let (_, refresh) = pair(&s.handle(&post("/login", JSON, DEMO_LOGIN), NOW));
    let reply = s.handle(
        &post(
            "/logout",
            JSON,
            &format!(r#"{{"refresh_token":"{refresh}"}}"#),
        ),
        NOW,
    );
    assert_eq!(reply.status, 200);
    assert!(reply.body.contains(r#""signed_out":true"#));
    let set = cookies(&reply);
    assert_eq!(set.len(), 3);
    assert!(
        set.iter()
            .all(|c| c.contains("=;") && c.contains("Max-Age=0")),
        "{set:?}"
    );
    assert_eq!(refresh_with(&s, &refresh, NOW).status, 401);

    // A browser with only its access cookie.
    let (access, refresh) = pair(&s.handle(&post("/login", JSON, DEMO_LOGIN), NOW));
    let r = with_header(
        request("POST", "/logout"),
        "cookie",
        &format!("access_token={access}"),
    );
    let reply = s.handle(&r, NOW);
    assert_eq!(reply.status, 302);
    assert_eq!(reply.header("location"), Some("/login"));
    assert_eq!(refresh_with(&s, &refresh, NOW).status, 401);
}
