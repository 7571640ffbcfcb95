//! The decision core driven natively for one kind of request, for counting instructions with
//! callgrind (`make bench-cost`): `decision_cost <kind> <iterations>`. Only `measured` is
//! counted (`--toggle-collect='*measured*'`), so building the request is not.
//!
//! Kinds: valid-token, distinct-tokens, missing-token, invalid-token, api-key, client,
//! none-path, optional-anonymous, browser-redirect.

use std::hint::black_box;

use tollgate::config::Config;
use tollgate::decision::{decide, Decision};
use tollgate::token::{claims_for, SigningKey};

const SECRET: &str = "cost-harness-secret-NKLde2EmBvczzjDrXxELt";
const API_KEY: &str = "sk_cost_FFqDN9p487HXgX4jHYRvqgXA67iCcrg";
const CLIENT_SECRET: &str = "cs_cost_uXVtuZhcQeukUdHakusn7JagMYNT3gg";
const NOW: u64 = 1_800_000_000;

const CONFIG: &str = r#"{
    "secrets": [{"kid": "bench", "key": "cost-harness-secret-NKLde2EmBvczzjDrXxELt"}],
    "api_keys": [{"name": "backend", "key": "sk_cost_FFqDN9p487HXgX4jHYRvqgXA67iCcrg"}],
    "clients": [{"client_id": "reports", "client_secret": "cs_cost_uXVtuZhcQeukUdHakusn7JagMYNT3gg"}],
    "rules": [
        {"prefix": "/public", "mode": "none"},
        {"path": "/healthz", "mode": "none"},
        {"prefix": "/feed", "mode": "optional"},
        {"prefix": "/admin", "mode": "required", "roles": ["admin"]}
    ],
    "login_url": "https://login.example.com/signin"
}"#;

type Headers = Vec<(String, Vec<u8>)>;

fn request(path: &str, extra: &[(&str, String)]) -> Headers {
    let mut headers: Headers = vec![
        (":authority".into(), b"api.example.com".to_vec()),
        (":path".into(), path.as_bytes().to_vec()),
        (":method".into(), b"GET".to_vec()),
        (":scheme".into(), b"http".to_vec()),
        ("user-agent".into(), b"wrk".to_vec()),
        ("x-auth-user".into(), b"mallory".to_vec()),
    ];
    for (name, value) in extra {
        headers.push(((*name).into(), value.as_bytes().to_vec()));
    }
    headers
}

fn token(sub: &str) -> String {
    SigningKey::new(Some("bench".into()), SECRET.as_bytes())
        .sign(claims_for(sub, "access", NOW, 7200))
        .unwrap_or_default()
}

fn bearer(credential: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {credential}"))
}

#[inline(never)]
fn measured(config: &Config, requests: &[Headers]) -> usize {
    let mut allowed = 0;
    for headers in requests {
        let decision: Decision = decide(config, headers, NOW);
        allowed += usize::from(matches!(
            decision.outcome,
            tollgate::decision::Outcome::Allowed(_)
        ));
        black_box(decision);
    }
    allowed
}

fn main() {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "valid-token".into());
    let iterations: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let config = match Config::parse(CONFIG.as_bytes(), &|_| None) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let same = |headers: Headers| vec![headers; iterations];
    let requests: Vec<Headers> = match kind.as_str() {
        "valid-token" => same(request("/api/orders", &[bearer(&token("bench-user"))])),
        "distinct-tokens" => (0..iterations)
            .map(|i| request("/api/orders", &[bearer(&token(&format!("user-{i}")))]))
            .collect(),
        "missing-token" => same(request("/api/orders", &[])),
        "invalid-token" => {
            // The same token with one signature character changed: a bad signature.
            let t = token("bench-user");
            let at = t.len() - 10;
            let t: String = t
                .char_indices()
                .map(|(i, c)| match (i == at, c) {
                    (true, 'A') => 'B',
                    (true, _) => 'A',
                    (false, c) => c,
                })
                .collect();
            same(request("/api/orders", &[bearer(&t)]))
        }
        "api-key" => same(request("/admin/stats", &[bearer(API_KEY)])),
        "client" => same(request(
            &format!("/api/orders?client_id=reports&client_secret={CLIENT_SECRET}&page=2"),
            &[],
        )),
        "none-path" => same(request("/public/logo.svg", &[])),
        "optional-anonymous" => same(request("/feed/latest", &[])),
        "browser-redirect" => same(request(
            "/app/page?x=1",
            &[("accept", "text/html,application/xhtml+xml".into())],
        )),
        other => {
            eprintln!("unknown kind {other}");
            std::process::exit(2);
        }
    };
    // One request first, outside the measurement (warms any cache, as in steady state).
    if let Some(first) = requests.first() {
        black_box(decide(&config, first, NOW));
    }
    let allowed = measured(&config, &requests);
    println!("{kind}: {iterations} requests, {allowed} allowed");
}
