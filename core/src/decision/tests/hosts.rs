//! Host-scoped rules in the decision: the host read strictly, a host that is not one a 400.

use super::*;

fn scoped() -> &'static Config {
    let json = format!(
        r#"{{"secrets": [{{"kid": "current", "key": "{K}"}}], "rules": [
            {{"prefix": "/", "mode": "none"}},
            {{"prefix": "/", "mode": "required", "hosts": ["api.example.com", "*.api.example.com"]}}
        ]}}"#
    );
    Box::leak(Box::new(Config::parse(json.as_bytes(), &|_| None).unwrap()))
}

fn at_host_path(authority: &str, path: &str) -> Req {
    let mut r = get(path);
    r.headers.retain(|(n, _)| n != ":authority");
    r.with(":authority", authority)
}

fn at_host(authority: &str) -> Req {
    at_host_path(authority, "/orders")
}

#[test]
fn the_host_selects_the_rule() {
    let c = scoped();
    for host in [
        "api.example.com",
        "API.Example.com:8443",
        "api.example.com.",
        "eu.api.example.com",
    ] {
        assert_eq!(
            code(&at_host(host).run(c)),
            "401 MISSING_CREDENTIALS",
            "{host}"
        );
    }
    let d = at_host("api.example.com").bearer(&token("alice")).run(c);
    assert_eq!(added(&d, "x-auth-user"), Some("alice"));
    assert!(matches!(
        at_host("www.example.com").run(c).action,
        Action::Forward(_)
    ));
}

#[test]
fn a_host_that_is_not_one_plain_name_is_a_400() {
    let c = scoped();
    for host in [
        "api.example.com..",
        "user@api.example.com",
        "api.example.com,www.example.com",
        "api%2eexample.com",
        "api.example.com:",
        "xn--pi-7ba.example.com\u{0430}",
    ] {
        assert_eq!(code(&at_host(host).run(c)), "400 INVALID_REQUEST", "{host}");
    }
    let missing = {
        let mut r = get("/orders");
        r.headers.retain(|(n, _)| n != ":authority");
        r
    };
    assert_eq!(code(&missing.run(c)), "400 INVALID_REQUEST", "missing");
    let twice = get("/orders").with(":authority", "www.example.com");
    assert_eq!(code(&twice.run(c)), "400 INVALID_REQUEST", "two :authority");
    let other_host = at_host("www.example.com").with("host", "api.example.com");
    assert_eq!(
        code(&other_host.run(c)),
        "400 INVALID_REQUEST",
        "Host differs"
    );
    let same_host = at_host("api.example.com").with("host", "API.example.com:443");
    assert_eq!(code(&same_host.run(c)), "401 MISSING_CREDENTIALS");
}

#[test]
fn without_host_scoped_rules_the_host_is_not_read() {
    let c = config();
    let odd = at_host_path("api.example.com..", "/catalog")
        .with("host", "other")
        .bearer(&token("bob"));
    assert_eq!(added(&odd.run(c), "x-auth-user"), Some("bob"));
}
