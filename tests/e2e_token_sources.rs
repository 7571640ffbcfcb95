//! Token sources (`token_headers`), the payload header (`payload_header`) and roles as a
//! provider spells them, through a real Envoy over HTTP/1.1 and HTTP/2 (h2c, sent with curl),
//! with tokens of the test OpenID provider (`tests/idp/server.mjs`): its client
//! `tollgate-provider-roles` carries roles `Admin` and `Orders.Read`, its client
//! `tollgate-uncarriable-role` the one value `admin,user`.

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use support::idp::{envoy_trusting, issuer_entry, Idp};
use support::{wait_until, Envoy, Request};

const ROLES_CLIENT: (&str, &str) = (
    "tollgate-provider-roles",
    "idp-test-secret-roles-7Xk2Pq9Lm4Wv8Rz3",
);
const UNCARRIABLE_CLIENT: (&str, &str) = (
    "tollgate-uncarriable-role",
    "idp-test-secret-badrole-3Nc8Vt5Qy1Hs6Jd2",
);

/// What a client saw: the status, and the upstream's headers when the request went on.
struct Seen {
    status: u16,
    upstream: Option<Vec<(String, String)>>,
}

impl Seen {
    fn values(&self, name: &str) -> Vec<&str> {
        self.upstream
            .iter()
            .flatten()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn one(&self, name: &str) -> Option<&str> {
        let values = self.values(name);
        assert!(values.len() <= 1, "{name}: {values:?}");
        values.first().copied()
    }
}

fn seen_of(status: u16, body: &[u8]) -> Seen {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let upstream = json.filter(|j| j["path"].is_string()).map(|j| {
        j["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| {
                (
                    pair[0].as_str().unwrap().to_owned(),
                    pair[1].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    });
    Seen { status, upstream }
}

#[derive(Clone, Copy, Debug)]
enum Http {
    One,
    Two,
}

fn send(envoy: &Envoy, http: Http, target: &str, headers: &[(&str, &str)]) -> Seen {
    match http {
        Http::One => {
            let mut request = Request::get(target).header("X-Echo-Format", "json");
            for (name, value) in headers {
                request = request.header(name, value);
            }
            let response = envoy.send(&request);
            seen_of(response.status, &response.body)
        }
        Http::Two => {
            let dir = support::scratch_dir("h2-sources");
            let body_file = dir.join("body");
            let mut curl = Command::new("curl");
            curl.args(["-s", "--http2-prior-knowledge", "--max-time", "10"])
                .args(["-o", body_file.to_str().unwrap(), "-w", "%{http_code}"])
                .args(["-H", "X-Echo-Format: json", "-H", "Host: api.example.com"]);
            for (name, value) in headers {
                curl.args(["-H", &format!("{name}: {value}")]);
            }
            let url = format!("http://127.0.0.1:{}{target}", envoy.port);
            let out = curl.arg(url).output().expect("curl is installed");
            let status = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
            seen_of(status, &std::fs::read(&body_file).unwrap_or_default())
        }
    }
}

fn envoy(idp: &Idp) -> Envoy {
    envoy_trusting(
        json!([issuer_entry(idp, 600)]),
        idp.port(),
        json!({
            "token_headers": [{"name": "x-access-token"}, {"name": "authorization", "prefix": "Token "}],
            "payload_header": "x-jwt-payload",
            "rules": [
                {"prefix": "/public", "mode": "none"},
                {"prefix": "/feed", "mode": "optional"},
                {"prefix": "/orders", "mode": "required", "roles": ["Orders.Read"]},
                {"prefix": "/ops", "mode": "required", "roles": ["Admin"]},
                {"prefix": "/lower", "mode": "required", "roles": ["admin"]},
            ],
        }),
    )
}

/// Waits until the provider's keys are in (the first request may get 503 before).
fn ready(envoy: &Envoy, token: &str) {
    wait_until("the provider's keys", Duration::from_secs(20), || {
        send(
            envoy,
            Http::One,
            "/orders",
            &[("Authorization", &format!("Bearer {token}"))],
        )
        .status
            != 503
    });
}

#[test]
fn provider_roles_and_token_sources_over_http1_and_http2() {
    let idp = Idp::start();
    let envoy = envoy(&idp);
    let token = idp.token_of(ROLES_CLIENT.0, ROLES_CLIENT.1);
    ready(&envoy, &token);
    let payload = token.split('.').nth(1).unwrap();
    let bearer = format!("Bearer {token}");
    let prefixed = format!("tOkEn {token}");
    let sources: [(&str, &str); 3] = [
        ("Authorization", &bearer),
        ("X-Access-Token", &token),
        ("Authorization", &prefixed),
    ];
    for http in [Http::One, Http::Two] {
        for (name, value) in sources {
            let at = format!("{http:?} {name}");
            let seen = send(
                &envoy,
                http,
                "/orders",
                &[(name, value), ("X-JWT-Payload", "e30")],
            );
            assert_eq!(seen.status, 200, "{at}");
            assert_eq!(seen.one("x-auth-role"), Some("Admin,Orders.Read"), "{at}");
            assert_eq!(seen.one("x-auth-name"), Some("idp"), "{at}");
            assert_eq!(
                seen.one("x-jwt-payload"),
                Some(payload),
                "{at}: the verified claims"
            );
            assert!(seen.values("authorization").is_empty(), "{at}");
            assert!(seen.values("x-access-token").is_empty(), "{at}");
            assert_eq!(
                send(&envoy, http, "/ops", &[(name, value)]).status,
                200,
                "{at}"
            );
            let lower = send(&envoy, http, "/lower", &[(name, value)]);
            assert_eq!(lower.status, 403, "{at}: Admin is not admin");
        }
        let cases: [(&[(&str, &str)], u16); 5] = [
            (
                &[("X-Access-Token", &token), ("Authorization", &bearer)],
                400,
            ),
            (
                &[("X-Access-Token", &token), ("X-Access-Token", &token)],
                400,
            ),
            (&[("X_Access_Token", &token)], 400),
            (&[("Authorization", &format!("Tokens {token}"))], 401),
            (&[("X-Access-Token", &format!("{token}x"))], 401),
        ];
        for (i, (headers, status)) in cases.iter().enumerate() {
            let seen = send(&envoy, http, "/orders", headers);
            assert_eq!(seen.status, *status, "{http:?} case {i}");
        }
        let public = send(&envoy, http, "/public/x", &[("X-JWT-Payload", "e30")]);
        assert_eq!(public.status, 200);
        assert!(
            public.values("x-jwt-payload").is_empty(),
            "{http:?}: removed on none paths"
        );
    }
}

#[test]
fn an_uncarriable_role_is_left_out_counted_and_logged_never_user() {
    let idp = Idp::start();
    let envoy = envoy(&idp);
    let token = idp.token_of(UNCARRIABLE_CLIENT.0, UNCARRIABLE_CLIENT.1);
    ready(&envoy, &token);
    let bearer = format!("Bearer {token}");
    for http in [Http::One, Http::Two] {
        for target in ["/orders", "/lower", "/ops"] {
            let seen = send(&envoy, http, target, &[("Authorization", &bearer)]);
            assert_eq!(seen.status, 403, "{http:?} {target}");
        }
        let feed = send(
            &envoy,
            http,
            "/feed",
            &[("Authorization", &bearer), ("X-Auth-Role", "admin")],
        );
        assert_eq!(feed.status, 200, "{http:?}");
        assert_eq!(feed.one("x-auth-type"), Some("access_token"));
        assert!(
            feed.values("x-auth-role").is_empty(),
            "{http:?}: no role, not user"
        );
    }
    wait_until("tollgate.role_dropped", Duration::from_secs(20), || {
        envoy
            .stats("wasmcustom.tollgate.role_dropped")
            .values()
            .any(|n| *n >= 1)
    });
    let log = envoy.log();
    assert!(log.contains("names a role holding a comma"), "{log}");
    assert!(!log.contains("admin,user"), "the value is never logged");
}
