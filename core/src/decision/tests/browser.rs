//! A browser sent to sign in: the redirect, never an open one, and the login URL.

use super::*;

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
