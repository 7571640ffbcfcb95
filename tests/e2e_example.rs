//! The example configuration `make run` serves (envoy/envoy.yaml), run in a real Envoy with
//! the README's first curl session (tokens of its identity provider included), and the
//! minting tool it uses.

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::process::Command;

use support::idp::Idp;
use support::{Envoy, Request, SignIn};

const SECRET: &str = "example-readme-session-Tq8Vz3Kw7Rm2Xc9Nb4Hf";
const API_KEY: &str = "sk_demo_example_api_key_T9J5d8mTwcYu9aQKFMKQtQAh6oMS";
const PUBLISHABLE_KEY: &str = "pk_demo_example_publishable_Xq7Rt2Lm9Kv4Wc8N";
const CLIENT_SECRET: &str = "cs_demo_example_client_secret_rroDnobDQCm7JUcKkHnVm5uMGonr";
const OIDC_CLIENT_SECRET: &str = "oc_demo_B4gvZZ6jNxM07dk25wyd0X4Q4NOKV7mZ";
const COOKIE_KEYS: &str = "demo:3Kgd08AKIdZv0U_dIzYlYyZuwLqaLt642L9L0hK0rB0";

/// The variables `scripts/run.sh` gives Envoy.
const ENV: &[(&str, &str)] = &[
    ("TOLLGATE_SECRET", SECRET),
    ("TOLLGATE_API_KEY", API_KEY),
    ("TOLLGATE_PUBLISHABLE_KEY", PUBLISHABLE_KEY),
    ("TOLLGATE_CLIENT_SECRET", CLIENT_SECRET),
    ("TOLLGATE_OIDC_CLIENT_SECRET", OIDC_CLIENT_SECRET),
    ("TOLLGATE_COOKIE_KEYS", COOKIE_KEYS),
];

fn mint(args: &[&str]) -> String {
    let out = Command::new(support::mint_token_binary())
        .args(args)
        .env("TOLLGATE_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn example_envoy(signin_port: u16, env: &[(&str, &str)]) -> Result<Envoy, support::Refused> {
    support::example_envoy("envoy.yaml", signin_port, env)
}

#[test]
fn readme_session_on_the_example_configuration() {
    let signin = SignIn::start(SECRET, "127.0.0.1:10000");
    let envoy = example_envoy(signin.port, ENV)
        .unwrap_or_else(|r| panic!("example refused ({:?}):\n{}", r.exit_code, r.log));
    let host = "127.0.0.1:10000";

    let r = envoy.send(&Request::get("/api/orders").host(host));
    assert_eq!(r.status, 401);
    assert_eq!(r.code().as_deref(), Some("MISSING_CREDENTIALS"));
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"127.0.0.1:10000\"")
    );

    let r = envoy.send(&Request::get("/public/hello").host(host));
    assert_eq!(r.status, 200);

    let r = envoy.send(&Request::get("/feed").host(host));
    assert_eq!(
        r.upstream_header("x-auth-type").as_deref(),
        Some("anonymous")
    );

    let token = mint(&["--sub", "lUpa", "--ttl", "2h", "--kid", "demo"]);
    let r = envoy.send(&Request::get("/api/orders").host(host).bearer(&token));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.upstream_header("x-auth-user").as_deref(), Some("lUpa"));
    assert_eq!(
        r.upstream_header("x-auth-type").as_deref(),
        Some("access_token")
    );
    assert_eq!(r.upstream_header("x-auth-role").as_deref(), Some("user"));
    assert!(r.upstream_headers("authorization").is_empty());

    let r =
        envoy.send(&Request::get(format!("/api/orders?access_token={token}&page=2")).host(host));
    assert_eq!(r.status, 200);
    assert_eq!(r.upstream_path(), "/api/orders?page=2");

    let expired = mint(&[
        "--sub",
        "lUpa",
        "--ttl",
        "5m",
        "--issued-ago",
        "1h",
        "--kid",
        "demo",
    ]);
    let r = envoy.send(&Request::get("/api/orders").host(host).bearer(&expired));
    assert_eq!(r.status, 401);
    assert_eq!(r.code().as_deref(), Some("TOKEN_EXPIRED"));

    let refresh = mint(&["--sub", "lUpa", "--type", "refresh", "--kid", "demo"]);
    let r = envoy.send(&Request::get("/api/orders").host(host).bearer(&refresh));
    assert_eq!(r.code().as_deref(), Some("INVALID_CREDENTIALS"));

    // The README's revoke: RFC 7009 at the sign-in service through Envoy, then refused.
    let r = envoy.send(
        &Request::new("POST", "/auth/revoke")
            .host(host)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body_text(&format!("token={token}")),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(4);
    let refused = loop {
        let r = envoy.send(&Request::get("/api/orders").host(host).bearer(&token));
        if r.status == 401 || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(refused.code().as_deref(), Some("TOKEN_REVOKED"));
    // The feed itself is for the filter (and admins), not for anyone.
    let r = envoy.send(&Request::get("/auth/revocations").host(host));
    assert_eq!(r.status, 401);
}

#[test]
fn every_credential_kind_on_the_example_configuration() {
    let signin = SignIn::start(SECRET, "127.0.0.1:10000");
    let envoy = example_envoy(signin.port, ENV)
        .unwrap_or_else(|r| panic!("example refused ({:?}):\n{}", r.exit_code, r.log));
    let host = "127.0.0.1:10000";

    let r = envoy.send(&Request::get("/admin/stats").host(host).bearer(API_KEY));
    assert_eq!(r.upstream_header("x-auth-type").as_deref(), Some("api_key"));
    assert_eq!(r.upstream_header("x-auth-name").as_deref(), Some("backend"));

    let r = envoy.send(
        &Request::get("/admin/stats")
            .host(host)
            .bearer(PUBLISHABLE_KEY),
    );
    assert_eq!(r.status, 403);
    let r = envoy.send(
        &Request::get("/catalog/items")
            .host(host)
            .bearer(PUBLISHABLE_KEY),
    );
    assert_eq!(
        r.upstream_header("x-auth-type").as_deref(),
        Some("publishable_key")
    );

    let r = envoy.send(
        &Request::get(format!(
            "/reports/daily?client_id=reporting-job&client_secret={CLIENT_SECRET}"
        ))
        .host(host),
    );
    assert_eq!(
        r.upstream_header("x-auth-role").as_deref(),
        Some("reporting")
    );
    assert_eq!(r.upstream_path(), "/reports/daily");

    let r = envoy.send(
        &Request::get("/app")
            .host(host)
            .header("Accept", "text/html"),
    );
    // A browser signs in at the demo provider (oidc), to come back to /oauth/callback.
    assert_eq!(r.status, 302);
    let location = r.header("location").unwrap();
    assert!(
        location.starts_with("http://127.0.0.1:9400/auth?response_type=code&client_id=tollgate-web&redirect_uri=http%3A%2F%2F127.0.0.1%3A10000%2Foauth%2Fcallback&"),
        "{location}"
    );

    let r = envoy.send(
        &Request::new("POST", "/login")
            .host(host)
            .header("Content-Type", "application/json")
            .body_text(r#"{"username":"demo","password":"demo-password"}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let access = r.json().unwrap()["data"]["token"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = envoy.send(&Request::get("/api/orders").host(host).bearer(&access));
    assert_eq!(r.upstream_header("x-auth-user").as_deref(), Some("lUpa"));
}

/// The issuer `demo-idp` of the example: `make run` starts the provider on 127.0.0.1:9400
/// with that issuer; here it listens elsewhere, under the same issuer.
#[test]
fn provider_tokens_on_the_example_configuration() {
    let port = Idp::free_port();
    let idp = Idp::start_with_issuer(port, "http://127.0.0.1:9400");
    // The sign-in cluster: a revocation feed (the example's tokens wait for its first page).
    let feed = support::feed::Feed::start();
    let envoy = support::example_envoy_with_idp("envoy.yaml", feed.port, port, ENV)
        .unwrap_or_else(|r| panic!("example refused ({:?}):\n{}", r.exit_code, r.log));
    let host = "127.0.0.1:10000";

    // tollgate-rs256's token: roles reader and writer.
    let token = idp.token("RS256");
    let r = envoy.send(
        &Request::get("/inventory/items")
            .host(host)
            .bearer(&token)
            .header("X-Auth-Email", "someone-else@example.com"),
    );
    assert_eq!(r.status, 200, "{}\n{}", r.text(), envoy.log());
    assert_eq!(
        r.upstream_header("x-auth-type").as_deref(),
        Some("access_token")
    );
    assert_eq!(
        r.upstream_header("x-auth-user").as_deref(),
        Some("tollgate-rs256")
    );
    assert_eq!(
        r.upstream_header("x-auth-name").as_deref(),
        Some("demo-idp")
    );
    assert_eq!(
        r.upstream_header("x-auth-role").as_deref(),
        Some("reader,writer")
    );
    assert_eq!(
        r.upstream_headers("x-auth-email"),
        ["rs256-service@tollgate.test"]
    );
    // A rule that names no roles admits user and admin: not reader or writer.
    let r = envoy.send(&Request::get("/api/orders").host(host).bearer(&token));
    assert_eq!(r.status, 403, "{}", r.text());

    // tollgate-es256's token: roles reader and admin.
    let token = idp.token("ES256");
    let r = envoy.send(&Request::get("/admin/stats").host(host).bearer(&token));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.upstream_header("x-auth-role").as_deref(),
        Some("reader,admin")
    );

    // A client's own x-auth-email never reaches the upstream, on any path.
    let r = envoy.send(
        &Request::get("/public/hello")
            .host(host)
            .header("X-Auth-Email", "admin@example.com"),
    );
    assert_eq!(r.status, 200);
    assert!(r.upstream_headers("x-auth-email").is_empty());

    // One fetch of the keys served every request.
    assert_eq!(idp.jwks_fetches(), 1);
}

#[test]
fn example_refuses_to_start_without_its_secrets() {
    for missing in [
        "TOLLGATE_SECRET",
        "TOLLGATE_API_KEY",
        "TOLLGATE_CLIENT_SECRET",
        "TOLLGATE_OIDC_CLIENT_SECRET",
        "TOLLGATE_COOKIE_KEYS",
    ] {
        let env: Vec<(&str, &str)> = ENV.iter().copied().filter(|(k, _)| *k != missing).collect();
        match example_envoy(1, &env) {
            Ok(_) => panic!("the example served without {missing}"),
            Err(refused) => assert!(
                refused.log.contains(&format!("\"{missing}\" is not set")),
                "{}",
                refused.log
            ),
        }
    }
}

#[test]
fn mint_token_never_takes_the_secret_from_argv() {
    let out = Command::new(support::mint_token_binary())
        .args(["--sub", "x", "--secret", SECRET])
        .env_remove("TOLLGATE_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let out = Command::new(support::mint_token_binary())
        .args(["--sub", "x"])
        .env_remove("TOLLGATE_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TOLLGATE_SECRET is not set"));
}
