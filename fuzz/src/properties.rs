//! What must hold for any input, checked by the fuzz targets (`make fuzz`) and replayed over
//! the committed corpus by `tests/fuzz_corpus.rs` in `make test`. Each `check_*` panics when a
//! property fails.
//!
//! Inputs of `check_extract` and `check_decision` are requests written as bytes: the first
//! line is the method's initial (G, P, H, O, C=CONNECT without a path, else GET) followed by
//! the request target; every further line is `name:value`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use jwt_simple::prelude::{Duration, HS256Key, MACLike, UnixTimeStamp, VerificationOptions};
use serde_json::Value;
use tollgate_core::config::Config;
use tollgate_core::credential::{Locations, Presented};
use tollgate_core::decision::{decide, Action, HeaderEdit, Outcome};
use tollgate_core::identity::CredentialKind;
use tollgate_core::request::path;
use tollgate_core::request::query;
use tollgate_core::request::RequestView;
use tollgate_core::rules::Mode;
use tollgate_core::verify::token::{
    is_safe_subject, sign_raw, AccessClaims, SigningKey, TokenVerifier,
};
use tollgate_core::worker::WorkerState;

// A path relative to this file, so that the corpus replay (`tests/fuzz_corpus.rs`), which
// includes this file by its path, finds it too.
#[path = "properties/decided.rs"]
mod decided;

use decided::{assert_no_credential, check_decided};

/// The clock of every check: tokens in the corpus expire in 2100.
pub const NOW: u64 = 1_750_000_000;
pub const K: &str = "Hq3vXo9TzK7rWm2pLc8dNs5yFb4gJe6A";
pub const SK: &str = "sk_test_4f9d2c7a8b1e6f3d0a5c9e2b7f4a1d8c";
pub const PK: &str = "pk_test_7c3e9a1f5b2d8e4a6c0f3b9d1e7a5c2f";
pub const CS: &str = "cs_test_Zr4Qm8Vn2Lp6Xw1Ty9Hs3Kd7Bf5Gj0";

/// Default-deny with every credential kind, a login page and an admin-only prefix.
pub fn config() -> &'static Config {
    thread_local! {
        static CONFIG: &'static Config = Box::leak(Box::new(build_config()));
    }
    CONFIG.with(|c| *c)
}

fn build_config() -> Config {
    {
        let json = serde_json::json!({
            "secrets": [{"key": K}],
            "api_keys": [{"name": "server", "key": SK}],
            "publishable_keys": [{"name": "web", "key": PK}],
            "clients": [{"client_id": "client-a", "client_secret": CS}],
            "rules": [
                {"prefix": "/public", "mode": "none"},
                {"path": "/login", "mode": "none"},
                {"prefix": "/feed", "mode": "optional"},
                {"prefix": "/admin", "mode": "required", "roles": ["admin"]}
            ],
            "login_url": "https://auth.example.com/login",
            "token_cookie": "session"
        });
        Config::parse(json.to_string().as_bytes(), &|_| None).unwrap()
    }
}

// ---------------------------------------------------------------------------------------
// Configuration

/// Parsing never panics, and a refusal never quotes a value written where a secret goes.
pub fn check_config(data: &[u8]) {
    let env = |name: &str| (name == "SECRET").then(|| K.to_owned());
    match Config::parse(data, &env) {
        Ok(config) => {
            let _ = config.summary();
        }
        Err(e) => {
            let mut message = e.to_string();
            if let Ok(json) = serde_json::from_slice::<Value>(data) {
                let (mut secrets, mut names) = (Vec::new(), Vec::new());
                strings(&json, false, &mut secrets, &mut names);
                // Names (of variables, keys, rules) may be quoted; blank them out first, longest
                // first, so that a secret that happens to be part of a name does not count. A
                // blank is a control character, so taking a name out can never join the text
                // around it into something that reads as a secret.
                names.sort_by_key(|n| std::cmp::Reverse(n.len()));
                for name in names.iter().filter(|n| !n.is_empty()) {
                    message = message.replace(name.as_str(), "\u{1}");
                }
                for secret in secrets
                    .iter()
                    .filter(|s| s.len() >= 8 && !s.contains('\u{1}'))
                {
                    assert!(!message.contains(secret.as_str()), "{e}");
                }
            }
        }
    }
}

/// The string values of `json`: in `secrets` those written where secrets go (`key`,
/// `client_secret`, or a bare string in a list of secrets or keys), in `names` the others.
fn strings(json: &Value, sensitive: bool, secrets: &mut Vec<String>, names: &mut Vec<String>) {
    match json {
        Value::String(s) if sensitive => secrets.push(s.clone()),
        Value::String(s) => names.push(s.clone()),
        Value::Array(items) => items
            .iter()
            .for_each(|v| strings(v, sensitive, secrets, names)),
        Value::Object(map) => {
            for (k, v) in map {
                names.push(k.clone());
                let holds = matches!(
                    k.as_str(),
                    "key"
                        | "client_secret"
                        | "secrets"
                        | "api_keys"
                        | "publishable_keys"
                        | "clients"
                ) && !matches!(v, Value::Object(_));
                strings(v, holds, secrets, names);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------
// Paths

/// Every reading is a normal path, normalising it again changes nothing (and reading it again
/// finds no new reading), the literal reading
/// agrees with a plain RFC 3986 normaliser, and a path that resolves into `/admin` gets
/// `/admin`'s mode whatever `..`, encodings or parameters it went through.
pub fn check_path(data: &[u8]) {
    let Ok(readings) = path::readings(data) else {
        return;
    };
    for reading in readings.iter() {
        assert!(reading.starts_with('/'), "{reading:?}");
        assert!(!reading.contains("//"), "{reading:?}");
        assert!(reading.bytes().all(|b| b.is_ascii_graphic()), "{reading:?}");
        // A reading with dot segments left as they are (a server that resolves none) is
        // normal but for them; every other reading is in normal form.
        let literal_dots = reading.split('/').any(|s| s == "." || s == "..");
        if !literal_dots {
            let again = path::normalize(reading.as_bytes())
                .unwrap_or_else(|e| panic!("{reading:?} is not normal: {e}"));
            assert_eq!(again, reading, "not idempotent");
        }
        // Reading a reading again finds nothing the first pass missed.
        let all: Vec<&str> = readings.iter().collect();
        for other in path::readings(reading.as_bytes()).unwrap().iter() {
            assert!(all.contains(&other), "{other:?} not among {all:?}");
        }
    }
    if let Some(expected) = reference_normal_form(data) {
        assert_eq!(readings.first(), expected, "literal reading differs");
    }
    let policy = config().rules.policy_for_readings(b"GET", &readings);
    let under_admin = readings
        .iter()
        .any(|r| r == "/admin" || r.starts_with("/admin/"));
    if under_admin {
        assert_eq!(policy.mode, Mode::Required, "{:?}", readings);
        assert!(!policy.allows_role("user"), "{:?}", readings);
    }
}

/// RFC 3986 section 5.2.4 with repeated slashes merged, for paths of plain characters and
/// escapes of unreserved characters only; `None` for anything else.
fn reference_normal_form(raw: &[u8]) -> Option<String> {
    if raw.first() != Some(&b'/') {
        return None;
    }
    let mut decoded = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'%' {
            let hex = std::str::from_utf8(raw.get(i + 1..i + 3)?).ok()?;
            let byte = u8::from_str_radix(hex, 16).ok()?;
            if !path::is_unreserved(byte) {
                return None;
            }
            decoded.push(byte);
            i += 3;
        } else if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,=:@/".contains(&b) {
            decoded.push(b);
            i += 1;
        } else {
            return None;
        }
    }
    let text = String::from_utf8(decoded).ok()?;
    let mut segments: Vec<&str> = Vec::new();
    let parts: Vec<&str> = text.split('/').skip(1).collect();
    let mut trailing = false;
    for (n, part) in parts.iter().enumerate() {
        let last = n + 1 == parts.len();
        match *part {
            "" => trailing = last,
            "." => trailing = last,
            ".." => {
                segments.pop()?;
                trailing = last;
            }
            s => {
                segments.push(s);
                trailing = false;
            }
        }
    }
    let mut out = format!("/{}", segments.join("/"));
    if trailing && out != "/" {
        out.push('/');
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------
// Tokens

fn verifier() -> &'static TokenVerifier {
    thread_local! {
        static VERIFIER: &'static TokenVerifier = Box::leak(Box::new(TokenVerifier::new(
            vec![SigningKey::new(None, K.as_bytes())],
            60,
            None,
        )));
    }
    VERIFIER.with(|v| *v)
}

/// Input starting with `S`: a header and a payload (split at the first newline) signed with
/// the key; otherwise the token itself.
pub fn token_from(data: &[u8]) -> String {
    match data.split_first() {
        Some((b'S', rest)) => {
            let text = String::from_utf8_lossy(rest);
            let (header, payload) = text.split_once('\n').unwrap_or((&text, ""));
            sign_raw(header, payload, K.as_bytes())
        }
        _ => String::from_utf8_lossy(data).into_owned(),
    }
}

/// jwt-simple's verdict under the contract's options, with our extra claim checks: the
/// subject, or why not.
fn jwt_simple_verdict(token: &str) -> Result<String, String> {
    let options = VerificationOptions {
        time_tolerance: Some(Duration::from_secs(60)),
        artificial_time: Some(UnixTimeStamp::from_secs(NOW)),
        max_token_length: Some(8192),
        ..Default::default()
    };
    let claims = HS256Key::from_bytes(K.as_bytes())
        .verify_token::<AccessClaims>(token, Some(options))
        .map_err(|e| e.to_string())?;
    claims.expires_at.ok_or("no exp")?;
    if claims.custom.token_type.as_deref() != Some("access") {
        return Err("not an access token".into());
    }
    claims.subject.ok_or_else(|| "no sub".into())
}

fn jwt_simple_accepts(token: &str) -> Option<String> {
    jwt_simple_verdict(token).ok()
}

/// A token we accept, jwt-simple accepts too, with the same safe subject; and asking twice
/// (the second answer may come from the cache) gives the same answer.
pub fn check_token(data: &[u8]) {
    let token = token_from(data);
    let first = verifier().verify(&mut Default::default(), &token, NOW);
    let second = verifier().verify(&mut Default::default(), &token, NOW);
    assert_eq!(
        first
            .as_ref()
            .map(|t| t.subject.clone())
            .map_err(|e| format!("{e:?}")),
        second
            .as_ref()
            .map(|t| t.subject.clone())
            .map_err(|e| format!("{e:?}")),
        "the cache changed the answer"
    );
    if let Ok(verified) = first {
        assert!(is_safe_subject(&verified.subject), "{:?}", verified.subject);
        match jwt_simple_verdict(&token) {
            Ok(theirs) => assert_eq!(theirs, &*verified.subject),
            // The one known difference: jwt-simple keeps the claims it does not know in a map
            // and so parses their numbers, refusing one beyond f64 (`1e999`); we skip claims
            // we do not read. Such a token still carries our own valid signature.
            Err(e) if e.contains("number out of range") => {}
            Err(e) => panic!("jwt-simple refuses a token we accept ({e}): {token}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Requests

/// The request `data` describes, as Envoy hands it over (pseudo-headers first).
pub fn request_from(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut lines = data.split(|&b| b == b'\n');
    let first = lines.next().unwrap_or_default();
    let (method, target) = match first.split_first() {
        Some((b'P', t)) => ("POST", Some(t)),
        Some((b'H', t)) => ("HEAD", Some(t)),
        Some((b'O', t)) => ("OPTIONS", Some(t)),
        Some((b'C', _)) => ("CONNECT", None),
        Some((_, t)) => ("GET", Some(t)),
        None => ("GET", Some(&b"/"[..])),
    };
    let mut headers: Vec<(String, Vec<u8>)> = vec![(":method".into(), method.into())];
    if let Some(target) = target {
        headers.push((":path".into(), target.to_vec()));
    }
    headers.push((":authority".into(), b"api.example.com".to_vec()));
    headers.push((":scheme".into(), b"https".to_vec()));
    headers.extend(header_lines(lines, false));
    headers
}

/// `Name: value` lines as header pairs (names lower-cased; pseudo-headers and lines without
/// a colon skipped), the value's leading whitespace trimmed when `trim` says so.
fn header_lines<'a>(
    lines: impl Iterator<Item = &'a [u8]> + 'a,
    trim: bool,
) -> impl Iterator<Item = (String, Vec<u8>)> + 'a {
    lines.filter_map(move |line| {
        let colon = line.iter().position(|&b| b == b':')?;
        let name = String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase();
        if name.is_empty() || name.starts_with(':') {
            return None;
        }
        let value = &line[colon + 1..];
        Some((
            name,
            if trim {
                value.trim_ascii_start()
            } else {
                value
            }
            .to_vec(),
        ))
    })
}

/// Every place a credential could come from, as text: header values, and the target with
/// and without percent-decoding.
fn request_texts(headers: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut texts = Vec::new();
    for (_, value) in headers {
        texts.push(String::from_utf8_lossy(value).into_owned());
        // Query parameters are decoded one by one: one bad escape spoils only its own.
        for pair in value.split(|&b| b == b'&' || b == b'?') {
            let after_name = pair.splitn(2, |&b| b == b'=').nth(1);
            for piece in [Some(pair), after_name].into_iter().flatten() {
                if let Some(decoded) = query::percent_decode(piece) {
                    texts.push(String::from_utf8_lossy(&decoded).into_owned());
                }
            }
        }
        // Each query parameter's value, as a target's query is split.
        if let (_, Some(q)) = path::split_target(value) {
            for param in query::params(q) {
                if let Some(decoded) = query::percent_decode(param.value) {
                    texts.push(String::from_utf8_lossy(&decoded).into_owned());
                }
            }
        }
    }
    texts
}

/// A presented credential comes from the request, is not empty and stays under the cap.
pub fn check_extract(data: &[u8]) {
    let headers = request_from(data);
    let view = RequestView::new(&headers, |name| config().identity_headers.is_spoof(name));
    let query = view.target.and_then(|t| path::split_target(t).1);
    let at = Locations {
        query_param: "access_token",
        cookie: "session",
    };
    let texts = request_texts(&headers);
    match tollgate_core::credential::extract(&view, query, at) {
        Ok(Some(Presented::Bearer { value, .. })) => {
            assert!(!value.is_empty());
            assert!(value.len() <= 8192, "{} bytes", value.len());
            assert!(!value.bytes().any(|b| b.is_ascii_whitespace()), "{value:?}");
            assert!(texts.iter().any(|t| t.contains(&*value)), "{value:?}");
        }
        Ok(Some(Presented::Client { id, secret })) => {
            for part in [id, secret] {
                let part = String::from_utf8_lossy(&part).into_owned();
                assert!(texts.iter().any(|t| t.contains(&part)), "{part:?}");
            }
        }
        Ok(None) | Err(_) => {}
    }
}

/// Whether some credential-shaped piece of the request verifies as `subject`'s token.
fn request_holds_token_for(texts: &[String], subject: &str) -> bool {
    texts.iter().any(|text| {
        text.split(|c: char| " ,;=&?\"'".contains(c))
            .filter(|piece| piece.bytes().filter(|&b| b == b'.').count() == 2)
            .any(|piece| jwt_simple_accepts(piece).as_deref() == Some(subject))
    })
}

/// The whole decision: an allowed request carries an identity that came from a verified
/// credential; identity headers reach the upstream only from the filter, once, with safe
/// values; `none` paths get no identity; refusals echo no credential.
pub fn check_decision(data: &[u8]) {
    check_decided(&request_from(data));
}

/// A whole request as text: `METHOD TARGET` on the first line (any method, in any case),
/// then `Name: value` lines (overrides, preflight headers, cookies, anything).
pub fn whole_request_from(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut lines = data.split(|&b| b == b'\n');
    let first = lines.next().unwrap_or_default();
    let (method, target) = match first.iter().position(|&b| b == b' ') {
        Some(sp) => (&first[..sp], &first[sp + 1..]),
        None => (&b"GET"[..], first),
    };
    let mut headers: Vec<(String, Vec<u8>)> = vec![
        (":method".into(), method.to_vec()),
        (":path".into(), target.to_vec()),
        (":authority".into(), b"api.example.com".to_vec()),
        (":scheme".into(), b"https".to_vec()),
    ];
    headers.extend(header_lines(lines, true));
    headers
}

/// The whole request: everything [`check_decided`] holds, and besides: no credential (a
/// key, a client secret, a token that verifies) survives into what a checked request
/// forwards, in any place or spelling; an anonymous caller never passes a path that any
/// method the request may be served as (any case, `HEAD` for `GET`, overrides) makes
/// `required`.
pub fn check_request(data: &[u8]) {
    let headers = whole_request_from(data);
    check_decided(&headers);
    let config = config();
    let decision = decide(config, &mut WorkerState::default(), &headers, NOW);
    let Action::Forward(edits) = &decision.action else {
        return;
    };
    if matches!(decision.outcome, Outcome::Unchecked) {
        return;
    }
    assert_no_credential(&apply(&headers, edits), "the upstream");
    if let Outcome::Allowed(identity) = &decision.outcome {
        if identity.kind == CredentialKind::Anonymous {
            let view = RequestView::new(&headers, |_| false);
            let query = view.target.and_then(|t| path::split_target(t).1);
            let overrides = tollgate_core::credential::spellings::query_method_overrides(query);
            let methods = view
                .methods(&overrides)
                .expect("an allowed request has methods");
            let methods: Vec<&[u8]> = methods.iter().map(Vec::as_slice).collect();
            let target = view.target.map(|t| path::split_target(t).0).unwrap();
            let readings = path::readings(target).unwrap();
            for method in &methods {
                for reading in readings.iter() {
                    let policy = config.rules.policy(method, reading);
                    assert_ne!(policy.mode, Mode::Required, "{method:?} {reading}");
                }
            }
        }
    }
}

/// The upstream's headers after `edits` (as Envoy applies them).
pub fn apply(headers: &[(String, Vec<u8>)], edits: &[HeaderEdit<'_>]) -> Vec<(String, Vec<u8>)> {
    tollgate_core::decision::apply_edits(headers, edits)
}
