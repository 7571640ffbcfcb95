//! The access log (no credential, the filter's identity told from a client's) and Envoy routes that match case-insensitively or rewrite prefixes.

use super::*;

/// A refused request leaves no credential in what Envoy's access log reads (the request as
/// the filter leaves it): not the `Authorization` header, not a cookie, not the query.
#[test]
fn refused_requests_leave_no_credential_in_the_access_log() {
    let api_key = "sk_live_Wq7Tz3Kp9Lm2Xv8Rc5Nd4Hf6Jb1Gs0Ya";
    let config = json!({
        "secrets": [{"key": K}],
        "api_keys": [{"name": "srv", "key": api_key}],
        "token_cookie": "session",
        "rules": [
            {"prefix": "/admin", "mode": "required", "roles": ["admin"]},
            {"prefix": "/reports", "mode": "required", "roles": ["admin"]}
        ]
    });
    let mut setup = Setup::new(config);
    setup.hcm = json!({"access_log": [{
        "name": "envoy.access_loggers.stdout",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
            "log_format": {"text_format_source": {"inline_string":
                "%RESPONSE_CODE% path=%REQ(:PATH)% auth=%REQ(AUTHORIZATION)% cookie=%REQ(COOKIE)%\n"}}
        }
    }]});
    let envoy = Envoy::start(setup);
    let token = token();
    let bearer = format!("Bearer {token}");
    let refused = [
        // 403: a valid token on a path its role may not pass.
        (
            http1(&envoy, "GET", "/reports/x", &[("Authorization", &bearer)]),
            403,
        ),
        // 400: a read cookie next to an unread spelling of it.
        (
            http1(
                &envoy,
                "GET",
                "/admin/x",
                &[("Cookie", &format!("session={token}; SESSION=x; theme=dark"))],
            ),
            400,
        ),
        // 400: an unread query spelling next to a read header.
        (
            http1(
                &envoy,
                "GET",
                &format!("/admin/x?ACCESS_TOKEN={token}"),
                &[("Authorization", &bearer)],
            ),
            400,
        ),
        // 401: a wrong key in the query.
        (
            http1(
                &envoy,
                "GET",
                &format!("/admin/x?access_token={api_key}x"),
                &[],
            ),
            401,
        ),
    ];
    for (answer, status) in &refused {
        assert_eq!(answer.status, *status, "{answer:?}");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let log = loop {
        let log = envoy.access_log();
        if log.lines().filter(|l| l.contains("path=")).count() >= refused.len()
            || std::time::Instant::now() > deadline
        {
            break log;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(
        log.lines().filter(|l| l.contains("path=")).count() >= refused.len(),
        "{log}"
    );
    assert!(
        log.contains("cookie=theme=dark"),
        "other cookies stay: {log}"
    );
    for secret in [token.as_str(), api_key] {
        assert!(
            !log.contains(secret),
            "the access log holds a credential:\n{log}"
        );
    }
}

/// A log line's identity fields are the filter's only where its outcome says the filter ran:
/// when Envoy answers first (here a path-normalisation redirect), the client's forged
/// identity headers are in the request, and the outcome is empty.
#[test]
fn the_access_log_tells_the_filters_identity_from_a_clients() {
    let mut setup = Setup::new(plugin_config());
    let mut hcm = recommended();
    hcm["access_log"] = json!([{
        "name": "envoy.access_loggers.stdout",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
            "log_format": {"text_format_source": {"inline_string":
                "%RESPONSE_CODE% outcome=%FILTER_STATE(wasm.tollgate.outcome:PLAIN)% user=%REQ(X-AUTH-USER)%\n"}}
        }
    }]);
    setup.hcm = hcm;
    let envoy = Envoy::start(setup);
    let forged = [("X-Auth-User", "mallory"), ("X-Auth-Type", "api_key")];
    let bearer = format!("Bearer {}", token());
    let answered_by_envoy = http1(&envoy, "GET", "/admin%2Fx", &forged);
    assert_eq!(answered_by_envoy.status, 307);
    let allowed = http1(
        &envoy,
        "GET",
        "/admin/x",
        &[forged[0], forged[1], ("Authorization", &bearer)],
    );
    assert_eq!(allowed.status, 200);
    let unchecked = http1(&envoy, "GET", "/public/x", &forged);
    assert_eq!(unchecked.status, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let log = loop {
        let log = envoy.access_log();
        if log.lines().filter(|l| l.contains("outcome=")).count() >= 3
            || std::time::Instant::now() > deadline
        {
            break log;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("outcome=")).collect();
    assert_eq!(
        lines,
        [
            "307 outcome=- user=mallory",
            "200 outcome=allowed user=alice",
            "200 outcome=unchecked user=-"
        ],
        "{log}"
    );
}

/// A rule for every route below, one spelled with capitals; default-allow.
fn routed_config() -> Value {
    json!({
        "secrets": [{"key": K}],
        "default_mode": "none",
        "rules": [
            {"prefix": "/admin", "mode": "required", "roles": ["admin"]},
            {"prefix": "/api", "mode": "required"},
            {"prefix": "/v2", "mode": "required"},
            {"prefix": "/Reports", "mode": "required"},
            {"prefix": "/orders", "mode": "required"}
        ]
    })
}

/// Envoy routes as docs/deploying.md recommends them (segment-aligned prefixes, or
/// `path_separated_prefix`), some case-insensitive, some rewriting the path; each tells the
/// upstream which route it took (`x-route`). The last, `rest`, is the only unprotected one.
fn protected_routes() -> Value {
    let route = |name: &str, matched: Value, rewrite: Option<&str>| {
        let mut action = json!({"cluster": "echo"});
        if let Some(rewrite) = rewrite {
            action["prefix_rewrite"] = json!(rewrite);
        }
        json!({
            "match": matched,
            "route": action,
            "request_headers_to_add": [{"header": {"key": "x-route", "value": name}}]
        })
    };
    json!({"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
        route("admin", json!({"prefix": "/admin", "case_sensitive": false}), None),
        route("api", json!({"path_separated_prefix": "/api"}), Some("/")),
        route("v2", json!({"prefix": "/v2/", "case_sensitive": false}), Some("/")),
        route("reports", json!({"prefix": "/reports/", "case_sensitive": false}), None),
        route("orders", json!({"path_separated_prefix": "/orders", "case_sensitive": false}), Some("/")),
        route("rest", json!({"prefix": "/"}), None)
    ]}]})
}

/// The route an answer's request took upstream and the role it carried, from the echo.
fn route_and_role(body: &[u8]) -> Option<(String, Option<String>)> {
    let echo: Value = serde_json::from_slice(body).ok()?;
    let header = |name: &str| {
        echo["headers"].as_array()?.iter().find_map(|pair| {
            pair[0]
                .as_str()?
                .eq_ignore_ascii_case(name)
                .then(|| pair[1].as_str().map(str::to_owned))?
        })
    };
    Some((header("x-route")?, header("x-auth-role")))
}

/// Envoy's router matches some routes case-insensitively and rewrites prefixes: whatever
/// reaches a protected route's backend was decided `required` by the filter, with the route's
/// roles, over HTTP/1.1 and HTTP/2, with Envoy's defaults and the recommended settings.
#[test]
fn envoy_routes_reach_no_protected_backend_the_filter_did_not_require() {
    const PATHS: &[&str] = &[
        "/ADMIN/users",
        "/Admin/",
        "/aDmIn",
        "/%41DMIN/users",
        "/api/orders",
        "/API/orders",
        "/apiorders",
        "/api.v2/x",
        "/api-internal/x",
        "/v2/x",
        "/V2/x",
        "/v2x",
        "/REPORTS/q1",
        "/reports/q1",
        "/Reports/x",
        "/ORDERS/1",
        "/Orders",
        "/orders.json",
    ];
    let bearer = format!("Bearer {}", token());
    let mut failures = Vec::new();
    let mut reached = 0;
    for (settings, mut hcm) in [
        ("Envoy defaults", json!({})),
        ("recommended", recommended()),
    ] {
        hcm["route_config"] = protected_routes();
        let mut setup = Setup::new(routed_config());
        setup.hcm = hcm;
        let envoy = Envoy::start(setup);
        for target in PATHS {
            for credential in [None, Some(bearer.as_str())] {
                let headers: Vec<(&str, &str)> = credential
                    .map(|c| ("Authorization", c))
                    .into_iter()
                    .collect();
                for (protocol, answer) in [
                    ("HTTP/1.1", http1_raw(&envoy, target, &headers)),
                    ("HTTP/2", http2_bytes(&envoy, "GET", target, &headers)),
                ] {
                    let (status, body) = answer;
                    let Some((route, role)) = route_and_role(&body).filter(|_| status == 200)
                    else {
                        continue;
                    };
                    reached += 1;
                    let allowed = match route.as_str() {
                        "rest" => true,
                        "admin" => role.as_deref() == Some("admin"),
                        _ => role.is_some(),
                    };
                    if !allowed {
                        failures.push(format!(
                            "{settings}, {protocol}: {target} ({}) reached route {route} with role {role:?}",
                            if credential.is_some() { "a user's token" } else { "no credential" }
                        ));
                    }
                }
            }
        }
        // Routes are reached, so the property above is not vacuous.
        let open = http1_raw(&envoy, "/apiorders", &[]);
        assert_eq!(
            route_and_role(&open.1).map(|r| r.0).as_deref(),
            Some("rest")
        );
        let api = http1_raw(&envoy, "/API/orders", &[("Authorization", &bearer)]);
        assert_eq!(
            route_and_role(&api.1).map(|r| r.0).as_deref(),
            Some("rest"),
            "{settings}"
        );
        let folded = http2_bytes(&envoy, "GET", "/ORDERS/1", &[("Authorization", &bearer)]);
        let seen = route_and_role(&folded.1);
        if seen != Some(("orders".into(), Some("user".into()))) {
            failures.push(format!(
                "{settings}: /ORDERS/1 with a token reached {seen:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(reached > PATHS.len(), "{reached}");
}

/// `GET target` over HTTP/1.1: the status and the body.
fn http1_raw(envoy: &Envoy, target: &str, headers: &[(&str, &str)]) -> (u16, Vec<u8>) {
    let mut request = Request::new("GET", target).header("X-Echo-Format", "json");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = envoy.send(&request);
    (response.status, response.body)
}
