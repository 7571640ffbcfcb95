//! The migration guide's policies (docs/migrating/) in a real Envoy: each configuration runs
//! in the built filter, with its `jwks_uri` issuers given the same keys inline (the keys its
//! cases file's first line passes to `tollgate test --jwks`), and each case's request gets the
//! status, error code, identity and upstream headers the case expects. Tokens are minted as
//! `tollgate test` mints them: the claims as written, `iss`, `iat` and `exp` added unless
//! present, signed under the `alg` and `kid` of the issuer's key the private key matches.

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::PathBuf;

use jwt_simple::prelude::*;
use serde_json::{json, Map, Value};
use support::{manifest_dir, Envoy, Request, Setup};

/// The policy's configuration, with inline keys, and its cases.
struct Policy {
    config: Value,
    cases: Vec<Value>,
    dir: PathBuf,
}

/// Reads `docs/migrating/<name>.*`: `--jwks NAME=FILE` of the cases file's first line become
/// `jwks` of those issuers.
fn policy(name: &str) -> Policy {
    let dir = manifest_dir().join("docs/migrating");
    let text = std::fs::read_to_string(dir.join(format!("{name}.cases.yaml"))).unwrap();
    let config_text = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
    let mut config: Value = serde_json::from_str(&config_text).unwrap();
    let words: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    for pair in words.windows(2).filter(|w| w[0] == "--jwks") {
        let (issuer, file) = pair[1].split_once('=').unwrap();
        let jwks = std::fs::read_to_string(manifest_dir().join(file)).unwrap();
        let entry = config["issuers"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|i| i["name"] == issuer)
            .unwrap_or_else(|| panic!("{name}: no issuer {issuer}"));
        let entry = entry.as_object_mut().unwrap();
        for key in ["jwks_uri", "cluster", "refresh_seconds"] {
            entry.remove(key);
        }
        entry.insert("jwks".into(), Value::String(jwks));
    }
    let cases = match support::yaml(&text) {
        Value::Array(cases) => cases,
        other => panic!("{name}: not a list of cases: {other}"),
    };
    Policy { config, cases, dir }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn seconds(value: &Value) -> u64 {
    if let Some(n) = value.as_u64() {
        return n;
    }
    let text = value.as_str().unwrap();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let n: u64 = text[..split].parse().unwrap();
    n * match &text[split..] {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        unit => panic!("unit {unit}"),
    }
}

/// The JWKs an issuer of `config` trusts (inline, after [`policy`]).
fn issuer_keys(issuer: &Value) -> Vec<Value> {
    let jwks: Value = serde_json::from_str(issuer["jwks"].as_str().unwrap()).unwrap();
    jwks["keys"].as_array().unwrap().clone()
}

/// `{mint: {issuer, key, claims, ttl?, issued_ago?, kid?}}` as `tollgate test` mints it.
fn mint(policy: &Policy, mint: &Value) -> String {
    let issuer = policy.config["issuers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == mint["issuer"])
        .unwrap();
    let mut claims: Map<String, Value> = mint["claims"].as_object().cloned().unwrap_or_default();
    let issued = now() - mint.get("issued_ago").map_or(0, seconds);
    let ttl = mint.get("ttl").map_or(3600, seconds);
    claims.entry("iss").or_insert(issuer["issuer"].clone());
    claims.entry("iat").or_insert(json!(issued));
    claims.entry("exp").or_insert(json!(issued + ttl));
    let pem = std::fs::read_to_string(policy.dir.join(mint["key"].as_str().unwrap())).unwrap();
    let keys = issuer_keys(issuer);
    let claims = JWTClaims {
        issued_at: None,
        expires_at: None,
        invalid_before: None,
        issuer: None,
        subject: None,
        audiences: None,
        jwt_id: None,
        nonce: None,
        custom: claims,
    };
    // The issuer's key of the same public half gives the kid; none: no kid.
    let matching = |member: &str, public: &str| {
        let public: Value = serde_json::from_str(public).unwrap();
        keys.iter()
            .find(|k| k[member] == public[member])
            .and_then(|k| k["kid"].as_str().map(str::to_owned))
    };
    let kid = mint["kid"].as_str().map(str::to_owned);
    if let Ok(key) = RS256KeyPair::from_pem(&pem) {
        let kid = kid.or_else(|| matching("n", &key.public_key().to_jwk()));
        let key = match kid {
            Some(kid) => key.with_key_id(&kid),
            None => key,
        };
        return key.sign(claims).unwrap();
    }
    let key = ES256KeyPair::from_pem(&pem).unwrap();
    let kid = kid.or_else(|| matching("x", &key.public_key().to_jwk()));
    let key = match kid {
        Some(kid) => key.with_key_id(&kid),
        None => key,
    };
    key.sign(claims).unwrap()
}

/// A target or header value: text, `{mint: …}`, or a list of those joined.
fn text(policy: &Policy, value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(pieces) => pieces.iter().map(|p| text(policy, p)).collect(),
        Value::Object(special) => mint(policy, &special["mint"]),
        other => panic!("not a text: {other}"),
    }
}

/// The case's request as Envoy gets it.
fn request(policy: &Policy, case: &Value) -> Request {
    let spec = &case["request"];
    let mut request = Request::new(
        spec["method"].as_str().unwrap(),
        text(policy, &spec["target"]),
    );
    let headers: Vec<(String, Value)> = match &spec["headers"] {
        Value::Object(map) => map.iter().map(|(n, v)| (n.clone(), v.clone())).collect(),
        Value::Array(list) => list
            .iter()
            .flat_map(|m| m.as_object().unwrap().clone())
            .collect(),
        _ => Vec::new(),
    };
    for (name, value) in headers {
        let value = text(policy, &value);
        request = if name.eq_ignore_ascii_case("host") {
            request.host(&value)
        } else {
            request.header(&name, value)
        };
    }
    request
}

/// Runs every case of `name` through an Envoy running its configuration.
fn run_policy(name: &str) {
    let policy = policy(name);
    let envoy = Envoy::try_start(Setup::new(policy.config.clone())).unwrap_or_else(|r| {
        let filter: Vec<&str> = r.log.lines().filter(|l| l.contains("tollgate")).collect();
        panic!(
            "{name}: configuration refused by Envoy:\n{}",
            filter.join("\n")
        )
    });
    let mut failures = Vec::new();
    for case in &policy.cases {
        let label = case["name"].as_str().unwrap_or("a case");
        let expect = &case["expect"];
        let r = envoy.send(&request(&policy, case));
        let mut problems = Vec::new();
        let status = expect["status"].as_u64().unwrap();
        if u64::from(r.status) != status {
            problems.push(format!("status {} ({})", r.status, r.text()));
        }
        if let Some(code) = expect["code"].as_str() {
            if r.code().as_deref() != Some(code) {
                problems.push(format!("code {:?}", r.code()));
            }
        }
        if let Some(location) = expect["location"].as_str() {
            if r.header("location") != Some(location) {
                problems.push(format!("location {:?}", r.header("location")));
            }
        }
        let upstream = status == 200 && r.status == 200;
        if upstream {
            if let Some(path) = expect["upstream_path"].as_str() {
                if r.upstream_path() != path {
                    problems.push(format!("upstream path {}", r.upstream_path()));
                }
            }
            let mut headers: Vec<(String, Value)> = [
                ("user", "x-auth-user"),
                ("role", "x-auth-role"),
                ("type", "x-auth-type"),
                ("name", "x-auth-name"),
            ]
            .iter()
            .filter(|(key, _)| !expect[*key].is_null())
            .map(|(key, header)| ((*header).to_owned(), expect[*key].clone()))
            .collect();
            if let Some(map) = expect["upstream_headers"].as_object() {
                headers.extend(map.iter().map(|(n, v)| (n.clone(), v.clone())));
            }
            for (header, want) in headers {
                let got = r.upstream_headers(&header);
                let ok = match want.as_str() {
                    Some(value) => got == [value],
                    None => got.is_empty(),
                };
                if !ok {
                    problems.push(format!("upstream {header}: {got:?}, expected {want}"));
                }
            }
        }
        if !problems.is_empty() {
            failures.push(format!("{label}: {}", problems.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: {} of {} cases differ in Envoy:\n{}",
        failures.len(),
        policy.cases.len(),
        failures.join("\n")
    );
}

macro_rules! policies {
    ($($test:ident => $name:literal),* $(,)?) => {
        $(#[test]
        fn $test() {
            run_policy($name);
        })*

        /// Every cases file under docs/migrating has its test above.
        #[test]
        fn every_policy_is_run() {
            let mut listed = vec![$($name),*];
            listed.sort_unstable();
            let mut found: Vec<String> = std::fs::read_dir(manifest_dir().join("docs/migrating"))
                .unwrap()
                .filter_map(|e| {
                    let name = e.unwrap().file_name().into_string().unwrap();
                    name.strip_suffix(".cases.yaml").map(str::to_owned)
                })
                .collect();
            found.sort_unstable();
            assert_eq!(found, listed);
        }
    };
}

policies! {
    require_jwt => "01-require-jwt",
    per_host_issuers => "02-per-host-issuers",
    all_but_healthz => "03-all-but-healthz",
    deny_admin_without_jwt => "04-deny-admin-without-jwt",
    request_principal => "05-request-principal",
    groups_claim => "06-groups-claim",
    methods_paths_issuer => "07-methods-paths-issuer",
    jwt_authn_requires_any => "08-jwt-authn-requires-any",
    provider_and_audiences => "09-provider-and-audiences",
    token_headers_payload => "10-token-headers-payload",
    params_and_claim_headers => "11-params-and-claim-headers",
    scopes => "12-scopes",
    app_roles => "13-app-roles",
}
