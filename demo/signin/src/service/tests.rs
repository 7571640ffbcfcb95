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

mod revocations;
mod sessions;
