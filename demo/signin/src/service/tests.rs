//! The endpoints, called directly.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;
use crate::store::tests::seq;
use tollgate_core::verify::revocation::{FeedEntry, FeedPage};

const SECRET: &str = "demo-secret-for-unit-tests-5WXvYpho4fE6FTgvtEDxvVsnu5eU";
const NOW: u64 = 1_800_000_000;
const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";
const DEMO_LOGIN: &str = r#"{"username":"demo","password":"demo-password"}"#;

/// The demo configuration, with a database in memory.
fn settings() -> Settings {
    let mut settings = Settings::parse(include_str!("../../signin.json")).unwrap();
    settings.database = ":memory:".into();
    settings
}

fn service() -> Service {
    Service::new(settings(), SECRET).unwrap()
}

fn request(method: &str, path: &str) -> Incoming {
    Incoming {
        method: method.into(),
        path: path.into(),
        query: String::new(),
        headers: vec![("host".into(), "127.0.0.1:10000".into())],
        body: String::new(),
        peer: IpAddr::from([127, 0, 0, 1]),
    }
}

fn post(path: &str, content_type: &str, body: &str) -> Incoming {
    let mut r = request("POST", path);
    r.headers.push(("content-type".into(), content_type.into()));
    r.body = body.into();
    r
}

fn with_header(mut r: Incoming, name: &str, value: &str) -> Incoming {
    r.headers.push((name.into(), value.into()));
    r
}

fn filter_verifier() -> TokenVerifier {
    TokenVerifier::new(
        vec![SigningKey::new(Some("demo".into()), SECRET.as_bytes())],
        60,
        None,
    )
}

fn cookies(reply: &Reply) -> Vec<&str> {
    reply
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The nonce cookie and form token of a login page this service served.
fn form_token(s: &Service) -> (String, String) {
    let page = s.handle(&request("GET", "/login"), NOW);
    let set = cookies(&page)
        .into_iter()
        .find(|c| c.starts_with("login_csrf="))
        .unwrap();
    let nonce = set["login_csrf=".len()..].split(';').next().unwrap();
    let token = page
        .body
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .unwrap();
    let token = token.split('"').next().unwrap();
    (format!("login_csrf={nonce}"), token.to_owned())
}

/// A form post of `fields` with a valid CSRF token, as the browser sends it.
fn form_post(s: &Service, fields: &str) -> Incoming {
    let (cookie, token) = form_token(s);
    let r = post("/login", FORM, &format!("{fields}&csrf_token={token}"));
    let r = with_header(r, "cookie", &cookie);
    with_header(r, "origin", "http://127.0.0.1:10000")
}

fn pair(reply: &Reply) -> (String, String) {
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body: Value = serde_json::from_str(&reply.body).unwrap();
    let token = &body["data"]["token"];
    (
        token["access_token"].as_str().unwrap().to_owned(),
        token["refresh_token"].as_str().unwrap().to_owned(),
    )
}

fn refresh_with(s: &Service, refresh: &str, now: u64) -> Reply {
    s.handle(
        &post(
            "/auth/refresh",
            JSON,
            &format!(r#"{{"refresh_token":"{refresh}"}}"#),
        ),
        now,
    )
}

#[test]
fn json_login_answers_the_token_pair() {
    let reply = service().handle(&post("/login", JSON, DEMO_LOGIN), NOW);
    let body: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(body["code"], 0);
    assert_eq!(body["msg"], "");
    assert_eq!(body["data"]["user"]["id"], "lUpa");
    assert_eq!(body["data"]["token"]["access_expires"], NOW + 900);
    assert_eq!(body["data"]["token"]["refresh_expires"], NOW + 604800);
    let (access, refresh) = pair(&reply);
    let verified = filter_verifier()
        .verify(&mut Default::default(), &access, NOW)
        .unwrap();
    assert_eq!(verified.subject.as_ref(), "lUpa");
    assert!(
        filter_verifier()
            .verify(&mut Default::default(), &refresh, NOW)
            .is_err(),
        "the filter refuses refresh tokens"
    );
}

#[test]
fn tokens_carry_distinct_ids_even_in_the_same_second() {
    let s = service();
    let (a1, r1) = pair(&s.handle(&post("/login", JSON, DEMO_LOGIN), NOW));
    let (a2, r2) = pair(&s.handle(&post("/login", JSON, DEMO_LOGIN), NOW));
    assert_ne!(a1, a2);
    assert_ne!(r1, r2);
    let ids: Vec<String> = [&a1, &a2, &r1, &r2]
        .iter()
        .map(|t| {
            let kind = if t.as_str() == a1 || t.as_str() == a2 {
                "access"
            } else {
                "refresh"
            };
            s.token_id(t, kind, NOW).expect("a jti")
        })
        .collect();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(ids.iter().filter(|other| *other == id).count(), 1, "{i}");
    }
}

#[test]
fn wrong_password_is_401_and_logged_without_it() {
    let s = service();
    let reply = s.handle(
        &post("/login", JSON, r#"{"username":"demo","password":"nope"}"#),
        NOW,
    );
    assert_eq!(reply.status, 401);
    assert!(reply.body.contains("invalid username or password"));
    let reply = s.handle(
        &form_post(&s, "username=demo&password=nope&redirect=%2F"),
        NOW,
    );
    assert_eq!(reply.status, 401);
    assert!(reply.body.contains("Invalid username or password"));
    assert!(reply.body.contains("id=\"error\""));
}

#[test]
fn form_login_sets_the_cookies_and_goes_back_to_trusted_hosts_only() {
    let s = service();
    let body = "username=demo&password=demo-password&redirect=http%3A%2F%2F127.0.0.1%3A10000%2Fapp%3Fx%3D1";
    let reply = s.handle(&form_post(&s, body), NOW);
    assert_eq!(reply.status, 302, "{}", reply.body);
    assert_eq!(
        reply.header("location"),
        Some("http://127.0.0.1:10000/app?x=1")
    );
    let set = cookies(&reply);
    assert!(set[0].starts_with("access_token=ey"));
    assert!(set[0].contains("HttpOnly") && set[0].contains("SameSite=Lax"));
    assert!(set.iter().all(|c| !c.contains("Secure")), "{set:?}");
    assert!(set.iter().any(|c| c.contains("Path=/auth/refresh")));
    assert!(set.iter().any(|c| c.contains("Path=/logout")));
    let evil = "username=demo&password=demo-password&redirect=https%3A%2F%2Fevil.example%2F";
    let reply = s.handle(&form_post(&s, evil), NOW);
    assert_eq!(reply.header("location"), Some("/"));
}

#[test]
fn secure_follows_the_configuration_not_a_client_header() {
    let s = service();
    let body = "username=demo&password=demo-password&redirect=%2F";
    let https = with_header(form_post(&s, body), "x-forwarded-proto", "https");
    let reply = s.handle(&https, NOW);
    assert!(cookies(&reply).iter().all(|c| !c.contains("Secure")));

    let mut settings = settings();
    settings.cookie_secure = true;
    let s = Service::new(settings, SECRET).unwrap();
    let reply = s.handle(&form_post(&s, body), NOW);
    let set = cookies(&reply);
    assert!(set.iter().all(|c| c.contains("; Secure")), "{set:?}");
}

#[test]
fn a_form_post_without_this_sites_token_is_refused() {
    let s = service();
    let body = "username=demo&password=demo-password&redirect=%2F";
    // The attacker's own page: no cookie of ours, a token from their own visit.
    let (_, their_token) = form_token(&s);
    for r in [
        post("/login", FORM, body),
        post("/login", FORM, &format!("{body}&csrf_token={their_token}")),
        with_header(
            post("/login", FORM, &format!("{body}&csrf_token={their_token}")),
            "cookie",
            "login_csrf=AAAAAAAAAAAAAAAAAAAAAA",
        ),
    ] {
        let reply = s.handle(&r, NOW);
        assert_eq!(reply.status, 403, "{}", reply.body);
        assert!(cookies(&reply)
            .iter()
            .all(|c| !c.starts_with("access_token=ey")));
        assert!(reply.body.contains("id=\"error\""));
    }
}

#[test]
fn a_post_from_another_site_is_refused() {
    let s = service();
    let body = "username=demo&password=demo-password&redirect=%2F";
    let from_evil = with_header(form_post(&s, body), "origin", "https://evil.example");
    // form_post sent this site's Origin first; a second one must not win.
    let mut only_evil = from_evil;
    only_evil
        .headers
        .retain(|(n, v)| n != "origin" || v.contains("evil"));
    let reply = s.handle(&only_evil, NOW);
    assert_eq!(reply.status, 403);
    let cross = with_header(
        post("/login", JSON, DEMO_LOGIN),
        "sec-fetch-site",
        "cross-site",
    );
    assert_eq!(s.handle(&cross, NOW).status, 403);
    let refresh = with_header(
        post("/auth/refresh", JSON, "{}"),
        "origin",
        "http://evil.example",
    );
    assert_eq!(s.handle(&refresh, NOW).status, 403);
    let trusted = with_header(
        post("/login", JSON, DEMO_LOGIN),
        "origin",
        "http://localhost:10000",
    );
    assert_eq!(s.handle(&trusted, NOW).status, 200);
}

#[test]
fn repeated_failures_are_429_with_retry_after_even_with_the_right_password() {
    let s = service();
    let wrong = r#"{"username":"demo","password":"guess"}"#;
    for _ in 0..5 {
        assert_eq!(s.handle(&post("/login", JSON, wrong), NOW).status, 401);
    }
    let reply = s.handle(&post("/login", JSON, DEMO_LOGIN), NOW + 1);
    assert_eq!(reply.status, 429, "{}", reply.body);
    assert_eq!(reply.header("retry-after"), Some("899"));
    assert!(reply.body.contains("too many failed sign-ins"));
    // The window ends.
    let reply = s.handle(&post("/login", JSON, DEMO_LOGIN), NOW + 900);
    assert_eq!(reply.status, 200);
}

#[test]
fn failures_under_another_case_of_the_username_do_not_lock_the_account_out() {
    let s = service();
    let wrong = r#"{"username":"DEMO","password":"guess"}"#;
    for _ in 0..5 {
        assert_eq!(s.handle(&post("/login", JSON, wrong), NOW).status, 401);
    }
    assert_eq!(s.handle(&post("/login", JSON, wrong), NOW).status, 429);
    // Usernames are case-sensitive: `DEMO` is not the account `demo`, and cannot sign in
    // with its password either.
    let upper = r#"{"username":"DEMO","password":"demo-password"}"#;
    assert_eq!(
        s.handle(&post("/login", JSON, upper), NOW + 900).status,
        401
    );
    let reply = s.handle(&post("/login", JSON, DEMO_LOGIN), NOW + 1);
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[test]
fn parallel_wrong_passwords_check_no_more_hashes_than_the_limit() {
    let s = service();
    let wrong = r#"{"username":"demo","password":"guess"}"#;
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..40)
            .map(|_| scope.spawn(|| s.handle(&post("/login", JSON, wrong), NOW).status))
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let checked = s.verifications.load(std::sync::atomic::Ordering::SeqCst);
    assert!(checked <= 5, "{checked} hashes checked for a limit of 5");
    assert_eq!(statuses.iter().filter(|&&s| s == 401).count(), checked);
    assert_eq!(statuses.iter().filter(|&&s| s == 429).count(), 40 - checked);
}

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

#[test]
fn every_answer_carries_the_security_headers() {
    let s = service();
    for r in [
        request("GET", "/login"),
        request("GET", "/nope"),
        post("/login", JSON, DEMO_LOGIN),
        post("/login", FORM, "username=demo"),
    ] {
        let reply = s.handle(&r, NOW);
        assert_eq!(reply.header("x-frame-options"), Some("DENY"), "{}", r.path);
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert!(reply
            .header("content-security-policy")
            .unwrap()
            .contains("frame-ancestors 'none'"));
    }
}

#[test]
fn the_client_address_comes_from_trusted_proxies_only() {
    let mut settings = settings();
    settings.trusted_proxies = vec![IpAddr::from([127, 0, 0, 1])];
    let s = Service::new(settings, SECRET).unwrap();
    let r = with_header(request("GET", "/"), "x-forwarded-for", "1.1.1.1, 10.0.0.7");
    assert_eq!(s.client(&r), IpAddr::from([10, 0, 0, 7]));
    let garbled = with_header(request("GET", "/"), "x-forwarded-for", "1.1.1.1, junk");
    assert_eq!(s.client(&garbled), IpAddr::from([127, 0, 0, 1]));
    let mut direct = r;
    direct.peer = IpAddr::from([192, 168, 0, 9]);
    assert_eq!(s.client(&direct), IpAddr::from([192, 168, 0, 9]));
}

#[test]
fn a_dual_stack_listener_sees_ipv4_clients_and_the_trusted_proxy_as_ipv4() {
    let mapped = |a: [u8; 4]| IpAddr::from(std::net::Ipv4Addr::from(a).to_ipv6_mapped());
    let s = service();
    // The trusted proxy (127.0.0.1) arrives as ::ffff:127.0.0.1: its X-Forwarded-For counts.
    let mut r = with_header(request("GET", "/"), "x-forwarded-for", "10.0.0.7");
    r.peer = mapped([127, 0, 0, 1]);
    assert_eq!(s.client(&r), IpAddr::from([10, 0, 0, 7]));
    let r = with_header(request("GET", "/"), "x-forwarded-for", "::ffff:10.0.0.8");
    assert_eq!(s.client(&r), IpAddr::from([10, 0, 0, 8]));
    // Two IPv4 clients are two clients, not one /64.
    let wrong = r#"{"username":"demo","password":"guess"}"#;
    let from = |a: [u8; 4], body: &str| {
        let mut r = post("/login", JSON, body);
        r.peer = mapped(a);
        s.handle(&r, NOW).status
    };
    for i in 0..20 {
        assert_eq!(
            from([192, 0, 2, 1], &wrong.replace("demo", &format!("u{i}"))),
            401
        );
    }
    assert_eq!(from([192, 0, 2, 1], wrong), 429);
    assert_eq!(from([192, 0, 2, 2], DEMO_LOGIN), 200);
}

/// A login of `body` from `client` (through the trusted proxy 127.0.0.1).
fn login_from(s: &Service, client: &str, body: &str, now: u64) -> u16 {
    let r = with_header(post("/login", JSON, body), "x-forwarded-for", client);
    s.handle(&r, now).status
}

#[test]
fn anonymous_guesses_never_lock_the_owner_out_of_an_address_that_did_not_guess() {
    let s = service();
    let wrong = r#"{"username":"demo","password":"guess"}"#;
    for _ in 0..5 {
        assert_eq!(login_from(&s, "203.0.113.1", wrong, NOW), 401);
    }
    assert_eq!(login_from(&s, "203.0.113.1", DEMO_LOGIN, NOW), 429);
    assert_eq!(
        login_from(&s, "198.51.100.7", DEMO_LOGIN, NOW),
        200,
        "the owner"
    );
    // Guesses from many addresses, past the account's budget: the guessing addresses are
    // refused, a clean one still signs in.
    let statuses: Vec<u16> = (1..=60)
        .map(|i| login_from(&s, &format!("203.0.114.{i}"), wrong, NOW + 1))
        .collect();
    assert_eq!(statuses.iter().filter(|&&c| c == 401).count(), 60);
    for _ in 0..3 {
        assert_eq!(login_from(&s, "203.0.114.1", wrong, NOW + 2), 429);
    }
    assert_eq!(
        login_from(&s, "198.51.100.8", DEMO_LOGIN, NOW + 2),
        200,
        "the owner"
    );
    assert_eq!(
        login_from(&s, "198.51.100.7", DEMO_LOGIN, NOW + 2),
        200,
        "the owner"
    );
}

#[test]
fn login_page_carries_the_redirect_and_a_form_token() {
    let mut r = request("GET", "/login");
    r.query = "redirect=http%3A%2F%2F127.0.0.1%3A10000%2Fapp".into();
    let reply = service().handle(&r, NOW);
    assert_eq!(reply.status, 200);
    assert!(reply.body.contains("value=\"http://127.0.0.1:10000/app\""));
    assert!(reply.body.contains("name=\"csrf_token\""));
    let set = cookies(&reply);
    assert!(set[0].starts_with("login_csrf="));
    assert!(set[0].contains("HttpOnly") && set[0].contains("SameSite=Strict"));
}

// Revocation.

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

#[test]
fn a_form_nonce_the_client_chose_is_replaced_and_a_form_expires() {
    let s = service();
    let chosen = "AAAAAAAAAAAAAAAAAAAAAA";
    let page = s.handle(
        &with_header(
            request("GET", "/login"),
            "cookie",
            &format!("login_csrf={chosen}"),
        ),
        NOW,
    );
    let set = cookies(&page);
    assert!(
        set[0].starts_with("login_csrf=") && !set[0].contains(chosen),
        "{set:?}"
    );
    // A form posted more than an hour after it was served is refused.
    let late = form_post(&s, "username=demo&password=demo-password&redirect=%2F");
    assert_eq!(s.handle(&late, NOW + 3601).status, 403);
    let fresh = form_post(&s, "username=demo&password=demo-password&redirect=%2F");
    assert_eq!(s.handle(&fresh, NOW + 3600).status, 302);
}

#[test]
fn the_login_page_names_the_demo_user_only_when_it_has_the_demo_password() {
    assert!(service()
        .handle(&request("GET", "/login"), NOW)
        .body
        .contains("demo-password"));
    let mut settings = settings();
    settings.users[0].password_hash = password::hash("another password").unwrap();
    let s = Service::new(settings, SECRET).unwrap();
    let page = s.handle(&request("GET", "/login"), NOW);
    assert!(!page.body.contains("demo-password"), "{}", page.body);
}
