//! The decision core driven natively for one kind of request, for counting instructions with
//! callgrind (`make bench-cost`): `decision_cost <kind> <iterations>`. Only `measured` is
//! counted (`--toggle-collect='*measured*'`), so building the request is not.
//!
//! Kinds: valid-token, distinct-tokens, missing-token, invalid-token, api-key, client,
//! none-path, optional-anonymous, browser-redirect, cookie-token (a valid token in the
//! `Cookie` header, which is rebuilt without it), form-post (a valid token and a 1 KiB
//! urlencoded body, decided through the filter's steps: the headers, then the body read for
//! credential fields).
//!
//! Issuer kinds (an identity provider's asymmetric tokens, keys inline, the fixed test keys of
//! tests/data/issuer-keys; the configuration then has the issuer too): rs256-token (the same
//! token, a cache hit), rs256-distinct, es256-distinct, es384-distinct, eddsa-distinct (a new token each
//! request: a full verification).
//!
//! Condition kinds (a rule with an audience, a scope and two claims; decision_cost/conditions.rs):
//! conditions-token (a cache hit) and conditions-distinct (a new token each request).
//!
//! Sign-in kinds (`oidc` configured; decision_cost/session.rs): session-token (the access
//! token in the sealed session cookie) and session-bearer (the same token as a Bearer header).
//!
//! `decision_cost --growth <small> <large> [kind...]` is for `make cost-growth`
//! (bench/cost_growth.py): for each kind (default: all), one request of the kind made bigger
//! each of three ways, first to `small` then to `large` bytes, each through its own call of
//! `measured` (run under `--dump-after='*measured*'`, each call is a callgrind dump of its
//! own). `path` appends `/a` segments to the path (before the query), `tricky-path` appends
//! segments with `%2F`, a `;` parameter, `//` and `..` (both in whole units, to at most the
//! size), and `cookie` adds small cookies (to the request's `Cookie` header, or a new one). The
//! rule that applies stays the kind's. A kind with a form body is also grown by its body: each
//! of [`body::BODY_GROWTHS`], hostile units repeated, urlencoded and multipart. One line per
//! measured call on stdout, in order: `<kind> <growth> <bytes> <outcome>`.

#[path = "decision_cost/body.rs"]
mod body;
#[path = "decision_cost/conditions.rs"]
mod conditions;
#[path = "decision_cost/session.rs"]
mod session;

use std::hint::black_box;

use jwt_simple::prelude::*;
use tollgate_core::config::Config;
use tollgate_core::decision::{decide, decide_in_session, Decision, NoTrace};
use tollgate_core::oidc::flow::{intercept, Seen};
use tollgate_core::oidc::refresh::{session_view, SessionView};
use tollgate_core::verify::token::{claims_for, AccessClaims, SigningKey};
use tollgate_core::worker::WorkerState;

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

const ISSUER: &str = "https://idp.cost";
const AUDIENCE: &str = "api://cost";

/// Request kinds of an issuer's tokens (measured with `issuer_config`; not in `KINDS`, the
/// kinds of `make cost-growth`).
const ISSUER_KINDS: &[&str] = &[
    "rs256-token",
    "rs256-distinct",
    "es256-distinct",
    "es384-distinct",
    "eddsa-distinct",
];

/// An issuer's private key, as its tokens are signed (one per run: its size does not matter).
#[allow(clippy::large_enum_variant)]
enum IssuerKey {
    RS256(RS256KeyPair),
    ES256(ES256KeyPair),
    ES384(ES384KeyPair),
    EdDSA(Ed25519KeyPair),
}

fn pem(name: &str) -> String {
    let path = format!(
        "{}/../tests/data/issuer-keys/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(1);
    })
}

impl IssuerKey {
    fn load(kind: &str) -> Option<IssuerKey> {
        let loaded = match kind.split('-').next() {
            Some("rs256") => RS256KeyPair::from_pem(&pem("rsa-2048.pem"))
                .map(|k| IssuerKey::RS256(k.with_key_id("rsa"))),
            Some("es256") => ES256KeyPair::from_pem(&pem("ec-p256.pem"))
                .map(|k| IssuerKey::ES256(k.with_key_id("ec"))),
            Some("es384") => ES384KeyPair::from_pem(&pem("ec-p384.pem"))
                .map(|k| IssuerKey::ES384(k.with_key_id("ec384"))),
            Some("eddsa") => Ed25519KeyPair::from_pem(&pem("ed25519.pem"))
                .map(|k| IssuerKey::EdDSA(k.with_key_id("ed"))),
            _ => return None,
        };
        loaded.ok()
    }

    fn public_jwk(&self) -> String {
        match self {
            IssuerKey::RS256(k) => k.public_key().with_key_id("rsa").to_jwk(),
            IssuerKey::ES256(k) => k.public_key().with_key_id("ec").to_jwk(),
            IssuerKey::ES384(k) => k.public_key().with_key_id("ec384").to_jwk(),
            IssuerKey::EdDSA(k) => k.public_key().with_key_id("ed").to_jwk(),
        }
    }

    fn sign(&self, sub: &str) -> String {
        let mut claims: JWTClaims<AccessClaims> = claims_for(sub, "access", NOW, 7200);
        claims.issuer = Some(ISSUER.into());
        claims.audiences = Some(Audiences::AsString(AUDIENCE.into()));
        match self {
            IssuerKey::RS256(k) => k.sign(claims),
            IssuerKey::ES256(k) => k.sign(claims),
            IssuerKey::ES384(k) => k.sign(claims),
            IssuerKey::EdDSA(k) => k.sign(claims),
        }
        .unwrap_or_default()
    }
}

/// `CONFIG` with the issuer of every issuer kind, its keys inline.
fn issuer_config() -> Result<Config, String> {
    Config::parse(issuer_config_json()?.as_bytes(), &|_| None).map_err(|e| e.to_string())
}

/// The text of [`issuer_config`].
fn issuer_config_json() -> Result<String, String> {
    let mut keys = Vec::new();
    for kind in ["rs256", "es256", "es384", "eddsa"] {
        let key = IssuerKey::load(kind).ok_or(format!("cannot load the {kind} key"))?;
        keys.push(
            serde_json::from_str::<serde_json::Value>(&key.public_jwk())
                .map_err(|e| e.to_string())?,
        );
    }
    let mut config: serde_json::Value = serde_json::from_str(CONFIG).map_err(|e| e.to_string())?;
    let issuers = serde_json::json!([{
        "name": "idp",
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "jwks": {"keys": keys},
    }]);
    config
        .as_object_mut()
        .ok_or("the configuration is not an object")?
        .insert("issuers".into(), issuers);
    Ok(config.to_string())
}

/// `iterations` requests of issuer kind `kind`.
fn issuer_requests(kind: &str, iterations: usize) -> Option<Vec<Headers>> {
    if !ISSUER_KINDS.contains(&kind) {
        return None;
    }
    let key = IssuerKey::load(kind)?;
    Some(if kind.ends_with("-distinct") {
        (0..iterations)
            .map(|i| request("/api/orders", &[bearer(&key.sign(&format!("user-{i}")))]))
            .collect()
    } else {
        vec![request("/api/orders", &[bearer(&key.sign("bench-user"))]); iterations]
    })
}

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

/// How many of `requests` are let on; with a `body`, each goes through the filter's steps,
/// the body included.
#[inline(never)]
fn measured(config: &Config, worker: &mut WorkerState, requests: &[Headers], body: &[u8]) -> usize {
    let mut allowed = 0;
    for headers in requests {
        if !body.is_empty() {
            allowed += usize::from(body::through_filter(config, worker, headers, body));
            continue;
        }
        allowed += usize::from(through_sign_in(config, worker, headers));
    }
    allowed
}

/// The decision of `headers`; with sign-in configured, after the filter's steps before it
/// (session.rs): the callback and logout paths checked, the session read from its cookies.
fn through_sign_in(config: &Config, worker: &mut WorkerState, headers: &Headers) -> bool {
    let view = config.oidc.as_ref().and_then(|oidc| {
        let seen = Seen::read(headers);
        black_box(intercept(oidc, oidc.endpoints(None), &seen, NOW));
        session_view(oidc, &seen, NOW, &mut worker.sessions)
    });
    let allowed = |decision: Decision| {
        let allowed = matches!(
            decision.outcome,
            tollgate_core::decision::Outcome::Allowed(_)
        );
        black_box(decision);
        allowed
    };
    let read = (headers.as_slice(), view.as_ref().map(SessionView::session));
    allowed(decide_in_session(
        config,
        worker,
        read,
        true,
        &|| NOW,
        &mut NoTrace,
    ))
}

const KINDS: &[&str] = &[
    "valid-token",
    "distinct-tokens",
    "missing-token",
    "invalid-token",
    "api-key",
    "client",
    "none-path",
    "optional-anonymous",
    "browser-redirect",
    "cookie-token",
    "form-post",
];

/// `iterations` requests of `kind`; distinct tokens are numbered from `first`.
fn requests(kind: &str, iterations: usize, first: usize) -> Option<Vec<Headers>> {
    let same = |headers: Headers| vec![headers; iterations];
    Some(match kind {
        "valid-token" => same(request("/api/orders", &[bearer(&token("bench-user"))])),
        "distinct-tokens" => (first..first + iterations)
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
        "cookie-token" => same(request(
            "/api/orders",
            &[(
                "cookie",
                format!("theme=dark; access_token={}", token("bench-user")),
            )],
        )),
        "form-post" => {
            let mut headers = request("/api/orders", &[bearer(&token("bench-user"))]);
            let length = body::of_kind(kind).len();
            body::set_body_headers(&mut headers, "application/x-www-form-urlencoded", length);
            same(headers)
        }
        _ => return None,
    })
}

/// Ways a request is made bigger.
const GROWTHS: &[&str] = &["path", "tricky-path", "query", "cookie"];

/// A unit of the tricky path: an encoded slash, a `;` parameter, an empty segment and a `..`
/// that climbs back out of the segment before it (never above the root).
const TRICKY_UNIT: &str = "/x%2Fy;p=1//z/..";

/// `headers` made bigger as `growth` says: a path of at most `bytes` bytes (whole units), or
/// `bytes` bytes of cookies.
fn grow(headers: &mut Headers, growth: &str, bytes: usize) {
    match growth {
        "path" | "tricky-path" => {
            if let Some((_, target)) = headers.iter_mut().find(|(n, _)| n == ":path") {
                let text = String::from_utf8_lossy(target).into_owned();
                let (path, query) = match text.split_once('?') {
                    Some((p, q)) => (p.to_owned(), format!("?{q}")),
                    None => (text, String::new()),
                };
                let room = bytes.saturating_sub(path.len());
                // Whole units only: no trailing slash (which adds a reading), and every `..`
                // has its segment.
                let unit = match growth {
                    "path" => "/a",
                    _ => TRICKY_UNIT,
                };
                let tail = unit.repeat(room / unit.len());
                *target = format!("{path}{tail}{query}").into_bytes();
            }
        }
        "query" => {
            // Escapes and separators only (`%&`): every pair a name to decode and compare.
            if let Some((_, target)) = headers.iter_mut().find(|(n, _)| n == ":path") {
                let separator = if target.contains(&b'?') { b'&' } else { b'?' };
                target.push(separator);
                let room = bytes.saturating_sub(target.len());
                target.extend_from_slice("%&".repeat(room / 2).as_bytes());
            }
        }
        _ => {
            let mut cookies = String::new();
            let mut i = 0;
            while cookies.len() < bytes {
                cookies.push_str(&format!("c{i}=v{i}; "));
                i += 1;
            }
            let cookies = cookies.get(..bytes).unwrap_or_default().trim_end();
            // Into the request's own Cookie header when it has one (after its cookies).
            match headers.iter_mut().find(|(n, _)| n == "cookie") {
                Some((_, value)) => {
                    value.extend_from_slice(b"; ");
                    value.extend_from_slice(cookies.as_bytes());
                }
                None => headers.push(("cookie".into(), cookies.as_bytes().to_vec())),
            }
        }
    }
}

/// `--growth <small> <large> [kind...]`: see the module documentation.
fn growth(config: &Config, mut args: impl Iterator<Item = String>) -> Result<(), String> {
    let worker = &mut WorkerState::default();
    let mut size = || -> Result<usize, String> {
        args.next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| "usage: decision_cost --growth <small> <large> [kind...]".into())
    };
    let sizes = [size()?, size()?];
    let mut kinds: Vec<String> = args.collect();
    if kinds.is_empty() {
        kinds = KINDS.iter().map(|k| k.to_string()).collect();
    }
    let mut numbered = 1;
    for kind in &kinds {
        let Some(warm) = requests(kind, 1, 0) else {
            return Err(format!("unknown kind {kind}"));
        };
        // The kind's plain request first, outside the measurement (warms any cache).
        if let Some(first) = warm.first() {
            black_box(decide(config, worker, first, NOW));
        }
        let body = body::of_kind(kind);
        let body_growths = if body.is_empty() {
            &[][..]
        } else {
            body::BODY_GROWTHS
        };
        for growth in GROWTHS.iter().chain(body_growths) {
            for bytes in sizes {
                let mut grown = requests(kind, 1, numbered).unwrap_or_default();
                numbered += 1;
                let mut grown_body = body.clone();
                for headers in grown.iter_mut() {
                    if body_growths.contains(growth) {
                        grown_body = body::grow(headers, growth, bytes);
                    } else {
                        grow(headers, growth, bytes);
                    }
                }
                let allowed = measured(config, worker, &grown, &grown_body);
                // Outside `measured`, so not counted; the outcome shows the request still is
                // of its kind. Not repeated for a large path (today's cost would double).
                let outcome = match grown.first() {
                    // A grown body is read whole only if it is let on.
                    _ if body_growths.contains(growth) && allowed == 0 => "refused".to_owned(),
                    Some(first) if bytes == sizes[0] || growth == &"cookie" => {
                        label(&decide(config, worker, first, NOW).outcome)
                    }
                    _ => "-".to_owned(),
                };
                println!("{kind} {growth} {bytes} {outcome}");
            }
        }
    }
    Ok(())
}

/// One word for an outcome (a denial's code).
fn label(outcome: &tollgate_core::decision::Outcome) -> String {
    use tollgate_core::decision::Outcome;
    match outcome {
        Outcome::Denied(d) => format!("denied:{}", d.code()),
        Outcome::Redirected(d) => format!("redirected:{}", d.code()),
        other => other.label().to_owned(),
    }
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let config = match Config::parse(CONFIG.as_bytes(), &|_| None) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    if args.peek().map(String::as_str) == Some("--growth") {
        args.next();
        if let Err(e) = growth(&config, args) {
            eprintln!("{e}");
            std::process::exit(2);
        }
        return;
    }
    let mut worker = WorkerState::default();
    let kind = args.next().unwrap_or_else(|| "valid-token".into());
    let iterations: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let (config, requests) = if session::KINDS.contains(&kind.as_str()) {
        let config = session::config().unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(1);
        });
        let requests = session::requests(&config, &kind, iterations);
        (config, requests)
    } else if conditions::KINDS.contains(&kind.as_str()) {
        let config = conditions::config().unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(1);
        });
        (config, conditions::requests(&kind, iterations))
    } else if ISSUER_KINDS.contains(&kind.as_str()) {
        let config = issuer_config().unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(1);
        });
        (config, issuer_requests(&kind, iterations))
    } else {
        (config, requests(&kind, iterations, 0))
    };
    let Some(requests) = requests else {
        eprintln!("unknown kind {kind}");
        std::process::exit(2);
    };
    // One request first, outside the measurement (warms any cache, as in steady state).
    if let Some(first) = requests.first() {
        black_box(through_sign_in(&config, &mut worker, first));
    }
    let allowed = measured(&config, &mut worker, &requests, &body::of_kind(&kind));
    println!("{kind}: {iterations} requests, {allowed} allowed");
}
