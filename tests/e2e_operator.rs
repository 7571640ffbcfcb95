//! The operator's kit, proved in a real Envoy: counters on the admin endpoint, the access
//! log, logs free of secrets, configuration updates that fail, the docker-compose and Istio
//! examples, and the configuration schema.

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{claims_for, now, Envoy, Request, Setup, SigningKey, K};

const SECRET: &str = "operator-test-secret-wa9tYBfYLqHhDP2UJyRbb8hFLebm";
const API_KEY: &str = "sk_demo_operator_api_key_UAKckZqnWJv7iqsuyDf828u4mbbb";
const PUBLISHABLE_KEY: &str = "pk_demo_operator_publishable_Wx7Kq2Rv9Tm4Nc8Z";
const CLIENT_SECRET: &str = "cs_demo_operator_client_secret_Hb3Pz8Vk2Xw7Qn5L";
const HOST: &str = "127.0.0.1:10000";

/// The variables `scripts/demo-secrets.sh` gives the example configurations.
const ENV: &[(&str, &str)] = &[
    ("TOLLGATE_SECRET", SECRET),
    ("TOLLGATE_API_KEY", API_KEY),
    ("TOLLGATE_PUBLISHABLE_KEY", PUBLISHABLE_KEY),
    ("TOLLGATE_CLIENT_SECRET", CLIENT_SECRET),
    (
        "TOLLGATE_OIDC_CLIENT_SECRET",
        "oc_demo_HTDQBSM9ecAhDxmBCFk72cb1jkct5M0S",
    ),
    (
        "TOLLGATE_COOKIE_KEYS",
        "demo:X89Qrbi53GwtXRPr4eCPsSWat-LLNZbUdjBxF9u37AA",
    ),
    ("TOLLGATE_SIGNIN_ADMIN_KEY", support::SIGNIN_ADMIN_KEY),
];

/// The example, its sign-in cluster a revocation feed of the test's own: the example refuses
/// tokens (`fail_closed_after_seconds`) until the feed answers.
fn example() -> Envoy {
    let feed = support::feed::Feed::start();
    support::example_envoy("envoy.yaml", feed.port, ENV)
        .unwrap_or_else(|r| panic!("example refused ({:?}):\n{}", r.exit_code, r.log))
}

fn token(sub: &str, token_type: &str, issued: u64, ttl: u64) -> String {
    SigningKey::new(Some("demo".into()), SECRET.as_bytes())
        .sign(claims_for(sub, token_type, issued, ttl))
        .unwrap()
}

fn get(target: &str) -> Request {
    Request::get(target).host(HOST)
}

/// Waits until `check` holds (Envoy flushes logs and applies updates asynchronously).
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn counters_count_every_decision_exactly() {
    let envoy = example();
    let good = token("lUpa", "access", now(), 600);
    let expired = token("lUpa", "access", now() - 7200, 600);
    let send = |request: Request, times: usize, status: u16| {
        for _ in 0..times {
            let r = envoy.send(&request);
            assert_eq!(r.status, status, "{}", r.text());
        }
    };
    send(get("/api/x").bearer(&good), 3, 200);
    send(get("/admin/stats").bearer(API_KEY), 2, 200);
    send(get("/catalog/items").bearer(PUBLISHABLE_KEY), 1, 200);
    send(
        get(&format!(
            "/reports/daily?client_id=reporting-job&client_secret={CLIENT_SECRET}"
        )),
        1,
        200,
    );
    send(get("/feed"), 2, 200);
    send(get("/api/x"), 4, 401);
    send(get("/api/x").bearer("garbage"), 1, 401);
    send(get("/api/x").bearer(&expired), 1, 401);
    send(get("/api/x?client_id=reporting-job"), 1, 400);
    send(get("/api/x?access_token=a&access_token=b"), 1, 400);
    send(get("/admin/stats").bearer(PUBLISHABLE_KEY), 1, 403);
    send(get("/app").browser(), 2, 302);
    send(get("/public/x"), 3, 200);
    send(
        Request::new("OPTIONS", "/api/x")
            .host(HOST)
            .header("Origin", "https://app.example.com")
            .header("Access-Control-Request-Method", "POST"),
        2,
        200,
    );

    let expected: &[(&str, u64)] = &[
        ("allowed.access_token", 3),
        ("allowed.api_key", 2),
        ("allowed.publishable_key", 1),
        ("allowed.client", 1),
        ("allowed.anonymous", 2),
        ("denied.missing_credentials", 4),
        ("denied.invalid_credentials", 1),
        ("denied.token_expired", 1),
        ("denied.invalid_request", 2),
        ("denied.permission_denied", 1),
        ("redirected", 2),
        ("unchecked", 3),
        ("preflight", 2),
        ("config.failed", 0),
        // The first good token is verified and cached, the next two are hits; the expired
        // one is verified (and refused).
        ("token_cache.hit", 2),
        ("token_cache.miss", 2),
    ];
    // Counts reach Envoy once a second.
    let mut stats = Default::default();
    eventually("the counters", || {
        stats = envoy.stats("wasmcustom.tollgate.");
        expected
            .iter()
            .all(|(name, value)| stats.get(&format!("wasmcustom.tollgate.{name}")) == Some(value))
    });
    // One load per VM: with one worker, the main thread's two and the worker's (the native
    // module: one on the main thread, one in the worker).
    let loads = if support::native_module().is_some() {
        2
    } else {
        3
    };
    assert_eq!(
        stats.get("wasmcustom.tollgate.config.loaded"),
        Some(&loads),
        "{stats:?}"
    );

    // The native module's series carry Envoy's prefix (docs/native.md relabels them).
    let prefix = if support::native_module().is_some() {
        "envoy_wasmcustom_"
    } else {
        ""
    };
    let prometheus = envoy.admin("/stats/prometheus").text();
    for line in [
        "tollgate_allowed{credential_type=\"access_token\"} 3",
        "tollgate_allowed{credential_type=\"client\"} 1",
        "tollgate_denied{code=\"token_expired\"} 1",
        "tollgate_denied{code=\"missing_credentials\"} 4",
        "tollgate_redirected{} 2",
        "tollgate_preflight{} 2",
    ] {
        let line = format!("{prefix}{line}");
        assert!(
            prometheus.lines().any(|l| l == line),
            "no {line:?} in:\n{}",
            prometheus
                .lines()
                .filter(|l| l.contains("tollgate"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn the_access_log_records_each_decision() {
    let envoy = example();
    let good = token("lUpa", "access", now(), 600);
    let expired = token("lUpa", "access", now() - 7200, 600);
    let requests = [
        get("/api/orders").bearer(&good),
        get(&format!("/admin/stats?access_token={API_KEY}&page=2")),
        get(&format!("/api/orders?access_token={expired}")),
        get("/app").browser(),
        get("/public/logo.svg"),
        get("/admin/stats").bearer(PUBLISHABLE_KEY),
    ];
    for request in &requests {
        envoy.send(request);
    }
    let mut lines: Vec<Value> = Vec::new();
    eventually("six access log lines", || {
        lines = envoy
            .access_log()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        lines.len() >= requests.len()
    });
    let field = |i: usize, name: &str| lines[i][name].clone();
    let expect = |i: usize, fields: &[(&str, Value)]| {
        for (name, value) in fields {
            assert_eq!(
                &field(i, name),
                value,
                "line {i} field {name}: {}",
                lines[i]
            );
        }
    };
    expect(
        0,
        &[
            ("path", json!("/api/orders")),
            ("status", json!(200)),
            // An allowed request's identity comes from the identity headers; the outcome says
            // they are the filter's.
            ("auth_type", json!("access_token")),
            ("auth_user", json!("lUpa")),
            ("auth_role", json!("user")),
            ("auth_outcome", json!("allowed")),
            ("auth_rule", Value::Null),
            ("auth_code", Value::Null),
        ],
    );
    expect(
        1,
        &[
            ("path", json!("/admin/stats")),
            ("auth_type", json!("api_key")),
            ("auth_name", json!("backend")),
            ("auth_role", json!("admin")),
        ],
    );
    expect(
        2,
        &[
            ("status", json!(401)),
            ("auth_outcome", json!("denied")),
            ("auth_code", json!("TOKEN_EXPIRED")),
            ("auth_rule", json!("default")),
            ("auth_user", Value::Null),
        ],
    );
    expect(
        3,
        &[
            ("status", json!(302)),
            ("auth_outcome", json!("redirected")),
            ("auth_code", json!("MISSING_CREDENTIALS")),
        ],
    );
    expect(
        4,
        &[
            ("status", json!(200)),
            ("auth_outcome", json!("unchecked")),
            ("auth_rule", Value::Null),
            ("auth_type", Value::Null),
        ],
    );
    expect(
        5,
        &[
            ("status", json!(403)),
            ("auth_code", json!("PERMISSION_DENIED")),
            ("auth_rule", json!("rules[7]")),
        ],
    );
    let log = envoy.access_log();
    for secret in [good.as_str(), expired.as_str(), API_KEY, PUBLISHABLE_KEY] {
        assert!(!log.contains(secret), "a credential reached the access log");
    }
}

#[test]
fn envoys_default_access_log_never_sees_a_refused_query_credential() {
    // Envoy's default format logs %REQ(:PATH)% with its query; a refused request keeps its
    // path but not the credential in it.
    let mut setup = Setup::new(json!({"secrets": [{"key": K}]}));
    setup.hcm = json!({
        "access_log": [{
            "name": "envoy.access_loggers.stdout",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"}
        }]
    });
    let envoy = Envoy::start(setup);
    let expired = SigningKey::new(None, K.as_bytes())
        .sign(claims_for("u", "access", now() - 7200, 60))
        .unwrap();
    let r = envoy.get(&format!("/api/x?page=2&access_token={expired}"));
    assert_eq!(r.status, 401);
    let r = envoy.get("/api/x?client_id=c&client_secret=some-client-secret-value&q=1");
    assert_eq!(r.status, 401);
    eventually("two access log lines", || {
        envoy.access_log().lines().count() >= 2
    });
    let log = envoy.access_log();
    assert!(log.contains("/api/x?page=2"), "{log}");
    assert!(log.contains("/api/x?q=1"), "{log}");
    assert!(
        !log.contains(&expired) && !log.contains("some-client-secret-value"),
        "{log}"
    );
}

#[test]
fn logs_hold_no_secret_at_any_level() {
    let envoy = example();
    let good = token("lUpa", "access", now(), 600);
    let expired = token("lUpa", "access", now() - 7200, 600);
    let refresh = token("lUpa", "refresh", now(), 600);
    let forged = SigningKey::new(Some("demo".into()), b"forged-secret-Exren4RQtbXF4J9dreMj8N")
        .sign(claims_for("eve", "access", now(), 600))
        .unwrap();
    let requests = [
        get("/api/x").bearer(&good),
        get(&format!("/api/x?access_token={good}")),
        get("/api/x").header("Cookie", format!("access_token={good}")),
        get("/api/x").bearer(&expired),
        get("/api/x").bearer(&refresh),
        get("/api/x").bearer(&forged),
        get("/admin/x").bearer(API_KEY),
        get("/admin/x").bearer(&API_KEY[..API_KEY.len() - 1]),
        get("/catalog/x").bearer(PUBLISHABLE_KEY),
        get("/admin/x").bearer(PUBLISHABLE_KEY),
        get(&format!(
            "/reports/x?client_id=reporting-job&client_secret={CLIENT_SECRET}"
        )),
        get("/reports/x?client_id=reporting-job&client_secret=wrong-secret-value-0123"),
        get("/reports/x?client_id=nobody&client_secret=wrong-secret-value-0123"),
        get(&format!("/app?access_token={expired}")).browser(),
        get("/api/x").header("Authorization", b"Bearer \xc0\xa7"),
    ];
    for request in &requests {
        envoy.send(request);
    }
    eventually("the decisions in the debug log", || {
        // (Not the issuer's key-fetch lines: its provider is not running here.)
        let log = envoy.log();
        log.matches("tollgate: ").count() - log.matches("tollgate: issuer ").count()
            >= requests.len()
    });
    let log = envoy.log();
    // The log is not empty of what an operator needs: the configuration line and decisions.
    assert!(log.contains(
        "tollgate 0.1.0 configured: 11 rules, 1 secrets, 1 API keys, 1 publishable keys, 1 clients, 1 issuers, login redirect on"
    ));
    assert!(log.contains(
        "tollgate: allowed GET /api/x type=access_token role=user user=lUpa rule=default"
    ));
    assert!(log.contains("tollgate: denied GET /api/x code=TOKEN_EXPIRED rule=default"));
    assert!(log.contains("tollgate: allowed GET /reports/x type=client role=reporting name=reporting-job rule=rules[6]"));
    let everything = format!("{log}{}", envoy.access_log());
    let mut secrets: Vec<String> = ENV.iter().map(|(_, v)| v.to_string()).collect();
    for t in [&good, &expired, &refresh, &forged] {
        secrets.push(t.clone());
        secrets.push(t.rsplit('.').next().unwrap().to_owned());
    }
    secrets.push("wrong-secret-value-0123".into());
    for secret in &secrets {
        assert!(
            !everything.contains(secret.as_str()),
            "a secret or token is in the logs"
        );
    }
}

#[test]
fn a_bad_configuration_update_is_refused_counted_and_the_old_one_keeps_serving() {
    let good = json!({"secrets": [{"key": K}], "rules": [{"prefix": "/public", "mode": "none"}]});
    let envoy = Envoy::start(Setup::new(good).dynamic());
    let token = SigningKey::new(None, K.as_bytes())
        .sign(claims_for("alice", "access", now(), 600))
        .unwrap();
    assert_eq!(envoy.send(&Request::get("/api").bearer(&token)).status, 200);

    envoy.update_plugin_config(
        &json!({"secrets": [{"key": K}], "rules": [{"prefix": "/public", "mode": "requried"}]})
            .to_string(),
        "2",
    );
    eventually("the update to be rejected", || {
        envoy
            .stats("listener_manager.lds.update_rejected")
            .values()
            .next()
            .is_some_and(|v| *v >= 1)
    });
    assert!(envoy
        .log()
        .contains("configuration refused: rules[0].mode: unknown mode \"requried\" (expected none, optional, required)"));
    assert!(
        envoy.stats("wasmcustom.tollgate.config.failed")["wasmcustom.tollgate.config.failed"] >= 1
    );
    // The previous configuration still decides.
    assert_eq!(envoy.send(&Request::get("/api").bearer(&token)).status, 200);
    assert_eq!(envoy.get("/api").status, 401);
    assert_eq!(envoy.get("/public/x").status, 200);

    // A good update takes over.
    envoy.update_plugin_config(
        &json!({"secrets": [{"key": K}], "default_mode": "none"}).to_string(),
        "3",
    );
    eventually("the good update to apply", || {
        envoy.try_get("/api").is_some_and(|r| r.status == 200)
    });
}

#[path = "e2e_operator/examples.rs"]
mod examples;
