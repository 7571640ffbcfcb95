//! Host-scoped rules: which applies, how they rank, and what the configuration refuses.

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use tollgate_core::config::Config;
use tollgate_core::rules::Mode;

fn parse(rules: &str) -> Result<Config, String> {
    let json = format!(
        r#"{{"secrets": [{{"key": "Hq3vXo9TzK7rWm2pLc8dNs5yFb4gJe6A"}}], "default_mode": "required", "rules": [{rules}]}}"#
    );
    Config::parse(json.as_bytes(), &|_| None).map_err(|e| e.to_string())
}

fn config(rules: &str) -> Config {
    parse(rules).unwrap()
}

/// The mode and deciding rule for `method` on `path` at `host`.
fn at(config: &Config, host: &str, method: &str, path: &str) -> (Mode, Option<usize>) {
    let policy = config
        .rules
        .policy_for_path_at(host, method.as_bytes(), path);
    (policy.mode, policy.rule)
}

const SCOPED: &str = r#"
    {"prefix": "/", "mode": "none"},
    {"prefix": "/", "mode": "required", "hosts": ["api.example.com"]},
    {"prefix": "/docs", "mode": "none", "hosts": ["*.example.com"]},
    {"prefix": "/docs", "mode": "optional", "hosts": ["*.internal.example.com"]},
    {"prefix": "/docs", "mode": "required", "hosts": ["secret.internal.example.com"]},
    {"path": "/status", "mode": "required", "methods": ["GET"]},
    {"path": "/status", "mode": "none", "hosts": ["status.example.com"]}
"#;

#[test]
fn a_host_scoped_rule_applies_to_its_hosts_only() {
    let c = config(SCOPED);
    assert_eq!(
        at(&c, "api.example.com", "GET", "/x"),
        (Mode::Required, Some(1))
    );
    assert_eq!(
        at(&c, "www.example.com", "GET", "/x"),
        (Mode::None, Some(0))
    );
    assert_eq!(at(&c, "", "GET", "/x"), (Mode::None, Some(0)));
    // `*.example.com` is not `example.com` itself, nor a longer name that only ends alike.
    assert_eq!(at(&c, "example.com", "GET", "/docs"), (Mode::None, Some(0)));
    assert_eq!(
        at(&c, "badexample.com", "GET", "/docs"),
        (Mode::None, Some(0))
    );
    assert_eq!(
        at(&c, "www.example.com", "GET", "/docs"),
        (Mode::None, Some(2))
    );
    assert_eq!(
        at(&c, "a.b.example.com", "GET", "/docs/x"),
        (Mode::None, Some(2))
    );
}

#[test]
fn exact_host_over_longer_wildcard_over_shorter_over_none() {
    let c = config(SCOPED);
    let cases = [
        ("secret.internal.example.com", Mode::Required, 4),
        ("other.internal.example.com", Mode::Optional, 3),
        ("other.example.com", Mode::None, 2),
    ];
    for (host, mode, rule) in cases {
        assert_eq!(at(&c, host, "GET", "/docs/x"), (mode, Some(rule)), "{host}");
    }
    // The exact host's rule for `/` does not beat a longer path: paths rank first.
    assert_eq!(
        at(&c, "api.example.com", "GET", "/docs"),
        (Mode::None, Some(2))
    );
}

#[test]
fn hosts_rank_above_methods() {
    let c = config(SCOPED);
    assert_eq!(
        at(&c, "status.example.com", "GET", "/status"),
        (Mode::None, Some(6))
    );
    assert_eq!(
        at(&c, "api.example.com", "GET", "/status"),
        (Mode::Required, Some(5))
    );
    assert_eq!(
        at(&c, "api.example.com", "POST", "/status"),
        (Mode::Required, Some(1))
    );
}

#[test]
fn case_and_trailing_slash_readings_keep_the_host() {
    let c = config(
        r#"{"prefix": "/admin", "mode": "required", "hosts": ["api.example.com"]},
                      {"prefix": "/", "mode": "none"}"#,
    );
    for path in ["/admin", "/ADMIN", "/Admin/", "/admin.json"] {
        assert_eq!(
            at(&c, "api.example.com", "GET", path).0,
            Mode::Required,
            "{path}"
        );
        assert_eq!(
            at(&c, "www.example.com", "GET", path).0,
            Mode::None,
            "{path}"
        );
    }
}

#[test]
fn ties_are_refused_overlapping_hosts_only() {
    let tie = |a: &str, b: &str| {
        parse(&format!(
            r#"{{"prefix": "/a", "mode": "none", "hosts": {a}}},
               {{"prefix": "/a", "mode": "required", "hosts": {b}}}"#
        ))
    };
    assert!(tie(r#"["a.example.com"]"#, r#"["a.example.com"]"#).is_err());
    assert!(tie(r#"["*.example.com"]"#, r#"["*.example.com"]"#).is_err());
    let e = tie(
        r#"["x.example.com", "*.example.com"]"#,
        r#"["*.example.com"]"#,
    )
    .unwrap_err();
    assert!(e.contains("rules[1]") && e.contains("rules[0]"), "{e}");
    assert!(tie(r#"["a.example.com"]"#, r#"["b.example.com"]"#).is_ok());
    // Overlapping but ranked apart: the exact name, then the longer suffix, wins.
    assert!(tie(r#"["a.example.com"]"#, r#"["*.example.com"]"#).is_ok());
    assert!(tie(r#"["*.b.example.com"]"#, r#"["*.example.com"]"#).is_ok());
    assert!(tie(r#"["*.a.example.com"]"#, r#"["*.b.example.com"]"#).is_ok());
    assert!(tie(r#"["example.com"]"#, r#"["*.example.com"]"#).is_ok());
    // A rule with hosts never ties with one without.
    assert!(parse(
        r#"{"prefix": "/a", "mode": "none"}, {"prefix": "/a", "mode": "required", "hosts": ["a.b"]}"#
    )
    .is_ok());
}

#[test]
fn hosts_that_are_not_host_names_are_refused_by_key() {
    let refused = |hosts: &str| {
        let rules = format!(
            r#"{{"prefix": "/", "mode": "none"}}, {{"prefix": "/a", "mode": "required", "hosts": {hosts}}}"#
        );
        parse(&rules).unwrap_err()
    };
    assert!(refused("[]").contains("rules[1].hosts:"), "empty");
    for bad in [
        "API.example.com",
        "api.example.com:443",
        "https://api.example.com",
        "api.example.com/x",
        "api.example.com.",
        "*",
        "*.",
        "*example.com",
        "a.*.example.com",
        "bücher.example",
        "user@api.example.com",
        " api.example.com",
        "",
        "[::1]",
    ] {
        let e = refused(&format!(
            r#"["ok.example.com", {}]"#,
            serde_json::json!(bad)
        ));
        assert!(e.contains("rules[1].hosts[1]"), "{bad:?}: {e}");
    }
    let e = refused(r#"["a.example.com", "b.example.com", "a.example.com"]"#);
    assert!(
        e.contains("rules[1].hosts[2]") && e.contains("twice"),
        "{e}"
    );
    assert!(parse(
        r#"{"prefix": "/a", "mode": "none", "hosts": ["xn--bcher-kva.example", "*.svc_1.local"]}"#
    )
    .is_ok());
}

#[test]
fn the_login_page_must_be_open_on_every_host() {
    let with_login = |rules: &str| {
        let json = format!(
            r#"{{"secrets": [{{"key": "Hq3vXo9TzK7rWm2pLc8dNs5yFb4gJe6A"}}], "login_url": "/login", "rules": [{rules}]}}"#
        );
        Config::parse(json.as_bytes(), &|_| None).map_err(|e| e.to_string())
    };
    let open = r#"{"path": "/login", "mode": "none"}"#;
    assert!(with_login(open).is_ok());
    let closed_on_a_host =
        format!(r#"{open}, {{"path": "/login", "mode": "required", "hosts": ["*.example.com"]}}"#);
    assert!(with_login(&closed_on_a_host)
        .unwrap_err()
        .contains("login_url"));
}

#[test]
fn rules_without_hosts_never_read_the_host() {
    let c = config(r#"{"prefix": "/", "mode": "none"}"#);
    assert!(!c.rules.has_hosts());
    assert!(config(SCOPED).rules.has_hosts());
}
