//! API keys, publishable keys, client credentials and roles, through a real Envoy.

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::sync::OnceLock;

use serde_json::json;
use support::{token_for, Envoy, Request, Response, Setup, K};
use support::{
    CS as CLIENT_A_SECRET, CSB as CLIENT_B_SECRET, PK as PUBLISHABLE_KEY, SK as API_KEY,
};

const INLINE_API_KEY: &str = "sk_test_inline_RTRSjgRwNnSbCTJzsPi9j6Gx";

fn envoy() -> &'static Envoy {
    static ENVOY: OnceLock<Envoy> = OnceLock::new();
    ENVOY.get_or_init(|| {
        let config = json!({
            "secrets": [{"key_env": "TOLLGATE_SECRET"}],
            "api_keys": [
                {"name": "backend", "key_env": "API_KEY"},
                {"name": "inline", "key": INLINE_API_KEY}
            ],
            "publishable_keys": [{"name": "web", "key_env": "PUBLISHABLE_KEY"}],
            "clients": [
                {"client_id": "client-a", "client_secret_env": "CLIENT_A_SECRET", "role": "reporting"},
                {"client_id": "client-b", "client_secret": CLIENT_B_SECRET}
            ],
            "rules": [
                {"prefix": "/public", "mode": "none"},
                {"prefix": "/feed", "mode": "optional"},
                {"prefix": "/admin", "mode": "required", "roles": ["admin"]},
                {"prefix": "/reports", "mode": "required", "roles": ["reporting", "admin"]},
                {"prefix": "/catalog", "mode": "required", "roles": ["user", "admin", "anonymous"]}
            ]
        });
        Envoy::start(
            Setup::new(config)
                .vm_env("TOLLGATE_SECRET", K)
                .vm_env("API_KEY", API_KEY)
                .vm_env("PUBLISHABLE_KEY", PUBLISHABLE_KEY)
                .vm_env("CLIENT_A_SECRET", CLIENT_A_SECRET),
        )
    })
}

fn token() -> String {
    token_for("alice")
}

/// One way of presenting a credential.
#[derive(Clone, Copy, Debug)]
enum Cred {
    Token,
    ApiKey,
    InlineApiKey,
    Publishable,
    ClientA,
    ClientB,
}

impl Cred {
    fn request(self, path: &str) -> Request {
        match self {
            Cred::Token => Request::get(path).bearer(&token()),
            Cred::ApiKey => Request::get(path).bearer(API_KEY),
            Cred::InlineApiKey => Request::get(path).bearer(INLINE_API_KEY),
            Cred::Publishable => Request::get(path).bearer(PUBLISHABLE_KEY),
            Cred::ClientA => Request::get(format!(
                "{path}?client_id=client-a&client_secret={CLIENT_A_SECRET}"
            )),
            Cred::ClientB => Request::get(format!(
                "{path}?client_id=client-b&client_secret={CLIENT_B_SECRET}"
            )),
        }
    }

    /// (type, role, user, name) the upstream should receive.
    fn identity(
        self,
    ) -> (
        &'static str,
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
    ) {
        match self {
            Cred::Token => ("access_token", "user", Some("alice"), None),
            Cred::ApiKey => ("api_key", "admin", None, Some("backend")),
            Cred::InlineApiKey => ("api_key", "admin", None, Some("inline")),
            Cred::Publishable => ("publishable_key", "anonymous", None, Some("web")),
            Cred::ClientA => ("client", "reporting", None, Some("client-a")),
            Cred::ClientB => ("client", "admin", None, Some("client-b")),
        }
    }
}

const ALL: [Cred; 6] = [
    Cred::Token,
    Cred::ApiKey,
    Cred::InlineApiKey,
    Cred::Publishable,
    Cred::ClientA,
    Cred::ClientB,
];

fn assert_identity(r: &Response, cred: Cred) {
    assert_eq!(r.status, 200, "{cred:?}: {}", r.text());
    let (kind, role, user, name) = cred.identity();
    assert_eq!(
        r.upstream_header("x-auth-type").as_deref(),
        Some(kind),
        "{cred:?}"
    );
    assert_eq!(
        r.upstream_header("x-auth-role").as_deref(),
        Some(role),
        "{cred:?}"
    );
    assert_eq!(
        r.upstream_header("x-auth-user").as_deref(),
        user,
        "{cred:?}"
    );
    assert_eq!(
        r.upstream_header("x-auth-name").as_deref(),
        name,
        "{cred:?}"
    );
    assert!(r.upstream_headers("authorization").is_empty(), "{cred:?}");
    let path = r.upstream_path();
    assert!(
        !path.contains("client_secret") && !path.contains("client_id"),
        "{cred:?}: {path}"
    );
}

fn assert_forbidden(r: &Response, cred: Cred) {
    assert_eq!(r.status, 403, "{cred:?}: {}", r.text());
    assert_eq!(r.code().as_deref(), Some("PERMISSION_DENIED"));
    let challenge = r.header("www-authenticate").unwrap();
    assert!(
        challenge.starts_with("Bearer realm=\"api.example.com\", error=\"insufficient_scope\""),
        "{challenge}"
    );
}

#[test]
fn every_kind_on_a_none_path_is_untouched() {
    for cred in ALL {
        let r = envoy().send(&cred.request("/public/x"));
        assert_eq!(r.status, 200);
        assert!(r.upstream_headers("x-auth-type").is_empty(), "{cred:?}");
    }
}

#[test]
fn every_kind_on_an_optional_path_is_annotated() {
    for cred in ALL {
        assert_identity(&envoy().send(&cred.request("/feed/x")), cred);
    }
}

#[test]
fn default_required_roles_are_user_and_admin() {
    for cred in ALL {
        let r = envoy().send(&cred.request("/api/x"));
        match cred {
            Cred::Publishable | Cred::ClientA => assert_forbidden(&r, cred),
            _ => assert_identity(&r, cred),
        }
    }
}

#[test]
fn role_outcomes_per_rule() {
    let table: &[(&str, &[Cred])] = &[
        (
            "/admin/x",
            &[Cred::ApiKey, Cred::InlineApiKey, Cred::ClientB],
        ),
        (
            "/reports/x",
            &[
                Cred::ApiKey,
                Cred::InlineApiKey,
                Cred::ClientA,
                Cred::ClientB,
            ],
        ),
        (
            "/catalog/x",
            &[
                Cred::Token,
                Cred::ApiKey,
                Cred::InlineApiKey,
                Cred::Publishable,
                Cred::ClientB,
            ],
        ),
    ];
    for (path, allowed) in table {
        for cred in ALL {
            let r = envoy().send(&cred.request(path));
            if allowed
                .iter()
                .any(|a| std::mem::discriminant(a) == std::mem::discriminant(&cred))
            {
                assert_identity(&r, cred);
            } else {
                assert_forbidden(&r, cred);
            }
        }
    }
}

#[test]
fn keys_travel_like_tokens() {
    let r = envoy().send(&Request::get(format!(
        "/admin/x?access_token={API_KEY}&page=2"
    )));
    assert_identity(&r, Cred::ApiKey);
    assert_eq!(r.upstream_path(), "/admin/x?page=2");
    let r = envoy().send(
        &Request::get("/catalog/x")
            .header("Cookie", format!("access_token={PUBLISHABLE_KEY}; a=b")),
    );
    assert_identity(&r, Cred::Publishable);
    assert_eq!(r.upstream_headers("cookie"), vec!["a=b".to_string()]);
    let r = envoy()
        .send(&Request::get("/admin/x").header("Authorization", format!("bearer {API_KEY}")));
    assert_identity(&r, Cred::ApiKey);
}

#[test]
fn near_miss_keys_are_invalid() {
    // The last character changed, one added, one taken away; upper case.
    let short = &API_KEY[..API_KEY.len() - 1];
    assert!(API_KEY.ends_with('c'));
    let near = [
        format!("{short}d"),
        format!("{API_KEY}0"),
        short.to_owned(),
        API_KEY.to_uppercase(),
    ];
    for key in &near {
        let r = envoy().send(&Request::get("/admin/x").bearer(key));
        assert_eq!(r.status, 401);
        assert_eq!(r.code().as_deref(), Some("INVALID_CREDENTIALS"));
        assert!(!r.text().contains(key.as_str()));
    }
}

#[test]
fn client_credentials_are_removed_from_the_upstream_path() {
    let r = envoy().send(&Request::get(format!(
        "/reports/q?from=2026-01-01&client_id=client-a&client_secret={CLIENT_A_SECRET}&to=2026-02-01"
    )));
    assert_identity(&r, Cred::ClientA);
    assert_eq!(
        r.upstream_path(),
        "/reports/q?from=2026-01-01&to=2026-02-01"
    );
}

#[test]
fn a_lone_client_id_or_secret_is_a_bad_request() {
    for target in [
        "/reports/q?client_id=client-a".to_string(),
        format!("/reports/q?client_secret={CLIENT_A_SECRET}"),
        format!("/reports/q?client_id=client-a&client_id=client-b&client_secret={CLIENT_A_SECRET}"),
    ] {
        let r = envoy().get(&target);
        assert_eq!(r.status, 400, "{target}");
        assert_eq!(r.code().as_deref(), Some("INVALID_REQUEST"));
        assert!(r
            .header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_request\""));
    }
}

#[test]
fn wrong_secret_and_unknown_client_get_the_same_answer() {
    let answer = |target: &str| {
        let r = envoy().get(target);
        (
            r.status,
            r.header("www-authenticate").map(str::to_owned),
            r.header("content-type").map(str::to_owned),
            r.text(),
        )
    };
    let wrong = answer("/reports/q?client_id=client-a&client_secret=not-the-secret");
    let unknown = answer("/reports/q?client_id=nobody&client_secret=not-the-secret");
    let swapped = answer(&format!(
        "/reports/q?client_id=client-a&client_secret={CLIENT_B_SECRET}"
    ));
    assert_eq!(wrong.0, 401);
    assert!(wrong.3.contains("INVALID_CREDENTIALS"));
    assert_eq!(wrong, unknown);
    assert_eq!(wrong, swapped);
    // A client secret is not an API key, nor the other way round.
    let r = envoy().send(&Request::get("/reports/q").bearer(CLIENT_A_SECRET));
    assert_eq!(r.code().as_deref(), Some("INVALID_CREDENTIALS"));
    let r = envoy().get(&format!(
        "/reports/q?client_id=client-a&client_secret={API_KEY}"
    ));
    assert_eq!(r.code().as_deref(), Some("INVALID_CREDENTIALS"));
}

#[test]
fn key_and_client_methods_cannot_be_combined() {
    let r = envoy().send(
        &Request::get(format!(
            "/reports/q?client_id=client-a&client_secret={CLIENT_A_SECRET}"
        ))
        .bearer(API_KEY),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.code().as_deref(), Some("INVALID_REQUEST"));
}

#[test]
fn keys_from_an_unset_variable_refuse_the_configuration() {
    let base = |entry: serde_json::Value| {
        let mut config = json!({"secrets": [{"key": K}]});
        for (k, v) in entry.as_object().unwrap() {
            config[k] = v.clone();
        }
        config
    };
    let cases = [
        (
            base(json!({"api_keys": [{"name": "a", "key_env": "MISSING_KEY"}]})),
            "api_keys[0].key_env: environment variable \"MISSING_KEY\" is not set",
        ),
        (
            base(json!({"publishable_keys": [{"name": "a", "key_env": "MISSING_KEY"}]})),
            "publishable_keys[0].key_env: environment variable \"MISSING_KEY\" is not set",
        ),
        (
            base(json!({"clients": [{"client_id": "c", "client_secret_env": "MISSING_KEY"}]})),
            "clients[0].client_secret_env: environment variable \"MISSING_KEY\" is not set",
        ),
        (
            base(json!({"rules": [{"prefix": "/a", "mode": "required", "roles": ["auditor"]}]})),
            "rules[0].roles[0]: unknown role \"auditor\"",
        ),
        (
            base(json!({"rules": [{"prefix": "/a", "mode": "optional", "roles": ["user"]}]})),
            "rules[0].roles: only a \"required\" rule takes roles",
        ),
    ];
    for (config, message) in cases {
        match Envoy::try_start(Setup::new(config.clone())) {
            Ok(_) => panic!("served {config}"),
            Err(refused) => assert!(refused.log.contains(message), "{message}:\n{}", refused.log),
        }
    }
}
