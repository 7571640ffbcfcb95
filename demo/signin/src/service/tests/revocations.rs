//! The revocation endpoints and the feed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;

const ADMIN: &str = "admin-key-for-unit-tests-7yq2Hc9sVJrM4nB";

fn admin_service() -> Service {
    service().with_admin_key(ADMIN)
}

fn as_admin(r: Incoming) -> Incoming {
    with_header(r, "authorization", &format!("Bearer {ADMIN}"))
}

/// The feed page the service answers, read as the filter reads it.
fn feed(s: &Service, cursor: Option<&str>, now: u64) -> FeedPage {
    let mut r = request("GET", "/auth/revocations");
    if let Some(cursor) = cursor {
        r.query = format!("cursor={cursor}");
    }
    let reply = s.handle(&r, now);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    FeedPage::parse(reply.body.as_bytes()).expect("a feed page the filter accepts")
}

fn revoked_jtis(page: &FeedPage) -> Vec<String> {
    page.revoked.iter().filter_map(|e| e.jti.clone()).collect()
}

fn login(s: &Service) -> (String, String) {
    pair(&s.handle(&post("/login", JSON, DEMO_LOGIN), NOW))
}

fn revoke(s: &Service, body: &str, now: u64) -> Reply {
    s.handle(&post("/auth/revoke", FORM, body), now)
}

#[test]
fn an_empty_feed_is_a_reset_at_cursor_zero() {
    let s = service();
    let page = feed(&s, None, NOW);
    assert!(page.reset && page.revoked.is_empty());
    assert_eq!(seq(&page.cursor), 0);
    let garbled = feed(&s, Some("abc"), NOW);
    assert!(
        !garbled.reset,
        "a cursor of another database: the whole list, added"
    );
    let after = feed(&s, Some(&page.cursor), NOW);
    assert!(!after.reset && after.cursor == page.cursor);
    assert_eq!(
        s.handle(&post("/auth/revocations", JSON, "{}"), NOW).status,
        405
    );
}

#[test]
fn an_access_token_revokes_itself_and_its_session_goes_on() {
    let s = service();
    let (access, refresh) = login(&s);
    let jti = s.token_id(&access, "access", NOW).unwrap();
    let reply = revoke(
        &s,
        &format!("token={access}&token_type_hint=access_token"),
        NOW,
    );
    assert_eq!((reply.status, reply.body.trim()), (200, "{}"));
    let page = feed(&s, None, NOW);
    assert_eq!(revoked_jtis(&page), [jti]);
    assert_eq!(page.revoked[0].expires_at, NOW + 900 + 60);
    assert!(page.revoked[0].issuer.is_none());
    // RFC 7009 allows keeping the refresh token: the session goes on.
    assert_eq!(refresh_with(&s, &refresh, NOW).status, 200);
    // The cursor: nothing new, then only what came after.
    let cursor = page.cursor.clone();
    let same = feed(&s, Some(&cursor), NOW);
    assert!(!same.reset && same.revoked.is_empty() && same.cursor == cursor);
    let (other, _) = login(&s);
    let json = s.handle(
        &post("/auth/revoke", JSON, &format!(r#"{{"token":"{other}"}}"#)),
        NOW,
    );
    assert_eq!(json.status, 200);
    let next = feed(&s, Some(&cursor), NOW);
    assert_eq!(
        revoked_jtis(&next),
        [s.token_id(&other, "access", NOW).unwrap()]
    );
    assert!(seq(&next.cursor) > seq(&cursor));
    // The entry leaves once the token cannot be valid any more.
    assert!(feed(&s, None, NOW + 961).revoked.is_empty());
}

#[test]
fn a_refresh_token_ends_its_session_and_revokes_its_access_tokens() {
    let s = service();
    let (first_access, refresh) = login(&s);
    let (second_access, second_refresh) = pair(&refresh_with(&s, &refresh, NOW + 10));
    let reply = revoke(&s, &format!("token={second_refresh}"), NOW + 20);
    assert_eq!(reply.status, 200);
    assert_eq!(refresh_with(&s, &second_refresh, NOW + 20).status, 401);
    let mut revoked = revoked_jtis(&feed(&s, None, NOW + 20));
    revoked.sort();
    let mut expected = vec![
        s.token_id(&first_access, "access", NOW).unwrap(),
        s.token_id(&second_access, "access", NOW + 10).unwrap(),
    ];
    expected.sort();
    assert_eq!(revoked, expected);
}

#[test]
fn revoke_answers_200_for_any_token_400_without_one_405_otherwise() {
    let s = service();
    let (access, refresh) = login(&s);
    let minted = SigningKey::new(
        Some("demo".into()),
        b"another-key-0123456789-0123456789-abc",
    )
    .sign(claims_for("lUpa", "access", NOW, 600))
    .unwrap();
    for token in [
        "garbage".to_owned(),
        minted,
        access.clone(),
        refresh.clone(),
        format!("{access}x"),
    ] {
        let expired = NOW + 604_800 + 3600;
        for now in [NOW, expired] {
            let reply = revoke(&s, &format!("token={token}"), now);
            assert_eq!(reply.status, 200, "{token}: {}", reply.body);
        }
    }
    for body in ["", "token=", "token_type_hint=access_token"] {
        let reply = revoke(&s, body, NOW);
        assert_eq!(reply.status, 400, "{body}");
        assert!(reply.body.contains("invalid_request"), "{}", reply.body);
    }
    assert_eq!(s.handle(&request("GET", "/auth/revoke"), NOW).status, 405);
    assert_eq!(
        s.handle(&request("GET", "/auth/revoke-subject"), NOW)
            .status,
        405
    );
    // A token signed here without a `jti` is revoked by its digest.
    let no_jti = SigningKey::new(Some("demo".into()), SECRET.as_bytes())
        .sign(claims_for("lUpa", "access", NOW, 600))
        .unwrap();
    assert_eq!(revoke(&s, &format!("token={no_jti}"), NOW).status, 200);
    let page = feed(&s, None, NOW);
    let input = no_jti.rsplit_once('.').unwrap().0;
    let digest = crate::random::encode(&TokenMarks::digest_of(input));
    assert!(page
        .revoked
        .iter()
        .any(|e| e.token_sha256.as_deref() == Some(digest.as_str())));
}

#[test]
fn only_an_admin_revokes_by_jti() {
    let s = admin_service();
    let body = "jti=some-token-id";
    let anonymous = revoke(&s, body, NOW);
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));
    let wrong = with_header(
        post("/auth/revoke", FORM, body),
        "authorization",
        &format!("Bearer {ADMIN}x"),
    );
    assert_eq!(s.handle(&wrong, NOW).status, 401);
    assert!(feed(&s, None, NOW).revoked.is_empty());
    let reply = s.handle(&as_admin(post("/auth/revoke", FORM, body)), NOW);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let page = feed(&s, None, NOW);
    assert_eq!(revoked_jtis(&page), ["some-token-id"]);
    assert_eq!(
        page.revoked[0].expires_at,
        NOW + 7200 + 60,
        "the longest token the key may sign"
    );
    let long = format!("jti={}", "x".repeat(257));
    assert_eq!(
        s.handle(&as_admin(post("/auth/revoke", FORM, &long)), NOW)
            .status,
        400
    );
    // No admin key configured: no admin.
    let plain = service();
    let reply = plain.handle(&as_admin(post("/auth/revoke", FORM, body)), NOW);
    assert_eq!(reply.status, 401);
}

#[test]
fn an_admin_revokes_a_subject_and_its_sessions_end() {
    let s = admin_service();
    let (_, refresh) = login(&s);
    let body = "subject=lUpa";
    for r in [
        post("/auth/revoke-subject", FORM, body),
        with_header(
            post("/auth/revoke-subject", FORM, body),
            "authorization",
            "Bearer nope",
        ),
    ] {
        let reply = s.handle(&r, NOW + 5);
        assert_eq!(reply.status, 401);
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    }
    assert_eq!(
        service()
            .handle(&as_admin(post("/auth/revoke-subject", FORM, body)), NOW)
            .status,
        401,
        "no admin key configured"
    );
    let missing = s.handle(&as_admin(post("/auth/revoke-subject", JSON, "{}")), NOW);
    assert_eq!(missing.status, 400);
    let reply = s.handle(
        &as_admin(post("/auth/revoke-subject", JSON, r#"{"subject":"lUpa"}"#)),
        NOW + 5,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(answer["data"]["sessions_ended"], 1);
    assert_eq!(refresh_with(&s, &refresh, NOW + 5).status, 401);
    let page = feed(&s, None, NOW + 5);
    assert_eq!(
        page.revoked,
        [FeedEntry {
            jti: None,
            token_sha256: None,
            subject: Some("lUpa".into()),
            before: Some(NOW + 6),
            issuer: None,
            expires_at: NOW + 5 + 7200 + 60,
        }]
    );
    // A session started in the same second is covered too: its refresh is refused.
    let (_, same_second) = pair(&s.handle(&post("/login", JSON, DEMO_LOGIN), NOW + 5));
    assert_eq!(refresh_with(&s, &same_second, NOW + 6).status, 401);
    // A later sign-in is not.
    let (_, later) = pair(&s.handle(&post("/login", JSON, DEMO_LOGIN), NOW + 6));
    assert_eq!(refresh_with(&s, &later, NOW + 7).status, 200);
}

#[test]
fn logout_revokes_every_live_access_token_of_the_session() {
    let s = service();
    let (a1, r1) = login(&s);
    let (a2, _) = pair(&refresh_with(&s, &r1, NOW + 1));
    let r = with_header(
        post("/logout", JSON, "{}"),
        "authorization",
        &format!("Bearer {a1}"),
    );
    let reply = s.handle(&r, NOW + 2);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body.contains(r#""signed_out":true"#));
    assert_eq!(cookies(&reply).len(), 3);
    let mut revoked = revoked_jtis(&feed(&s, None, NOW + 2));
    revoked.sort();
    let mut expected = vec![
        s.token_id(&a1, "access", NOW).unwrap(),
        s.token_id(&a2, "access", NOW + 1).unwrap(),
    ];
    expected.sort();
    assert_eq!(revoked, expected);
}

#[test]
fn revocation_posts_from_another_site_are_refused() {
    let s = admin_service();
    let (access, _) = login(&s);
    for r in [
        post("/auth/revoke", FORM, &format!("token={access}")),
        as_admin(post("/auth/revoke-subject", FORM, "subject=lUpa")),
    ] {
        let cross = with_header(r, "origin", "https://evil.example");
        assert_eq!(s.handle(&cross, NOW).status, 403);
    }
    assert!(feed(&s, None, NOW).revoked.is_empty());
}

#[test]
fn two_services_on_one_database_serve_one_feed_and_a_restart_keeps_it() {
    let db = crate::store::tests::TempDb::new("service");
    let open = || {
        let mut settings = settings();
        settings.database = db.path().into();
        Service::new(settings, SECRET)
            .unwrap()
            .with_admin_key(ADMIN)
    };
    let (a, b) = (open(), open());
    let (access, refresh) = login(&a);
    assert_eq!(
        revoke(&b, &format!("token={access}"), NOW).status,
        200,
        "b knows a's token"
    );
    let subject = as_admin(post("/auth/revoke-subject", FORM, "subject=someone"));
    assert_eq!(a.handle(&subject, NOW).status, 200);
    let (pa, pb) = (feed(&a, None, NOW), feed(&b, None, NOW));
    assert_eq!(pa, pb);
    assert_eq!(pa.revoked.len(), 2);
    assert_eq!(seq(&pa.cursor), 2);
    // b uses the refresh token; a sees it used, and ends the session everywhere.
    let (renewed, _) = pair(&refresh_with(&b, &refresh, NOW));
    assert_eq!(refresh_with(&a, &refresh, NOW).status, 401);
    let renewed = b.token_id(&renewed, "access", NOW).unwrap();
    let after = feed(&b, Some(&pa.cursor), NOW);
    assert_eq!(revoked_jtis(&after), [renewed]);
    let whole = feed(&a, None, NOW);
    drop((a, b));
    let restarted = open();
    assert_eq!(feed(&restarted, None, NOW), whole);
    assert_eq!(whole.revoked.len(), 3);
}

#[test]
fn a_session_ended_by_a_newer_sign_in_has_its_access_tokens_revoked() {
    let s = service();
    let (first_access, first_refresh) = login(&s);
    let (second_access, _) = login(&s);
    for _ in 0..19 {
        login(&s);
    }
    // The 21st sign-in ended the oldest session, as a logout does.
    let first = s.token_id(&first_access, "access", NOW).unwrap();
    assert_eq!(revoked_jtis(&feed(&s, None, NOW)), [first]);
    assert_eq!(refresh_with(&s, &first_refresh, NOW).status, 401);
    login(&s);
    let second = s.token_id(&second_access, "access", NOW).unwrap();
    assert!(revoked_jtis(&feed(&s, None, NOW)).contains(&second));
}

#[test]
fn a_revocation_is_refused_not_acknowledged_once_the_database_file_is_gone() {
    let db = crate::store::tests::TempDb::new("gone");
    let mut settings = settings();
    settings.database = db.path().into();
    let s = Service::new(settings, SECRET).unwrap();
    let (access, refresh) = login(&s);
    std::fs::remove_file(db.path()).unwrap();
    assert_eq!(revoke(&s, &format!("token={access}"), NOW).status, 503);
    let logout = post(
        "/logout",
        JSON,
        &format!(r#"{{"refresh_token":"{refresh}"}}"#),
    );
    assert_eq!(s.handle(&logout, NOW).status, 503);
    assert_eq!(s.handle(&post("/login", JSON, DEMO_LOGIN), NOW).status, 503);
}

#[test]
fn the_feed_is_for_the_trusted_proxies_and_the_admin_only() {
    let s = admin_service();
    let mut direct = request("GET", "/auth/revocations");
    direct.peer = IpAddr::from([192, 0, 2, 10]);
    let reply = s.handle(&direct, NOW);
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    assert_eq!(s.handle(&as_admin(direct), NOW).status, 200);
    // The Envoy that polls it, on a dual-stack listener too.
    let mut envoy = request("GET", "/auth/revocations");
    envoy.peer = IpAddr::from(std::net::Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped());
    assert_eq!(s.handle(&envoy, NOW).status, 200);
}

#[test]
fn wrong_admin_keys_are_limited_per_address() {
    let s = admin_service();
    let from = |key: &str| {
        let r = post("/auth/revoke-subject", FORM, "subject=lUpa");
        let mut r = with_header(r, "authorization", &format!("Bearer {key}"));
        r.peer = IpAddr::from([192, 0, 2, 20]);
        s.handle(&r, NOW)
    };
    for _ in 0..20 {
        assert_eq!(from("wrong-key").status, 401);
    }
    let reply = from("wrong-key");
    assert_eq!(reply.status, 429);
    assert!(reply.header("retry-after").is_some());
    assert_eq!(
        from(ADMIN).status,
        429,
        "not compared until the window ends"
    );
    let elsewhere = as_admin(post("/auth/revoke-subject", FORM, "subject=lUpa"));
    assert_eq!(s.handle(&elsewhere, NOW).status, 200);
}
