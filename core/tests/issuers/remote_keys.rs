//! Keys fetched from a provider, the claims a token carries to the upstream, and the tokens and key sets refused before a key is used.

use super::*;

fn remote_issuer() -> Value {
    json!({
        "name": "idp",
        "issuer": ISS,
        "audiences": [AUD],
        "jwks_uri": "https://idp.example.com/.well-known/jwks.json",
        "cluster": "idp",
        "roles_claim": "roles",
    })
}

#[test]
fn fetched_keys_are_awaited_then_used_and_a_new_version_reverifies_cached_tokens() {
    let config = config_with(remote_issuer());
    let mut worker = WorkerState::default();
    let s = signer("RS256", "k1");
    let token = (s.sign)(claims(json!({})));
    let request = Request::get("/orders").bearer(&token).to_native();
    // Never fetched: 503 KEYS_UNAVAILABLE, and the decision says keys could change it.
    let d = decide(&config, &mut worker, &request, now());
    assert_eq!(
        d.awaits_keys,
        Some(KeyWait {
            issuer: 0,
            why: KeysNeeded::NeverFetched
        })
    );
    let Action::Respond(response, _) = &d.action else {
        panic!("let on without keys")
    };
    assert_eq!(response.status, 503);
    assert!(response.body.contains("KEYS_UNAVAILABLE"));
    assert!(response.headers.iter().any(|(n, _)| *n == "retry-after"));
    // Keys installed: allowed, then from the cache.
    let jwks = json!({"keys": [s.jwk.clone()]}).to_string();
    let set = KeySet::parse(
        jwks.as_bytes(),
        &tollgate_core::verify::jwks::Algorithm::ALL,
    )
    .unwrap();
    worker.issuer_keys.install(0, set, 1);
    assert_eq!(ask(&config, &mut worker, &token).0, 200);
    let again = decide(&config, &mut worker, &request, now());
    assert_eq!(again.cache_hit, Some(true));
    // A token of a rotated-in key: the decision says a fetch could help.
    let rotated = signer("ES256", "k2");
    let new_token = (rotated.sign)(claims(json!({})));
    let new_request = Request::get("/orders").bearer(&new_token).to_native();
    let d = decide(&config, &mut worker, &new_request, now());
    assert_eq!(d.awaits_keys.map(|w| w.why), Some(KeysNeeded::UnknownKid));
    // The provider withdraws k1 and publishes k2: the cached k1 token is verified again and
    // refused; the k2 token passes.
    let jwks = json!({"keys": [rotated.jwk.clone()]}).to_string();
    let set = KeySet::parse(
        jwks.as_bytes(),
        &tollgate_core::verify::jwks::Algorithm::ALL,
    )
    .unwrap();
    worker.issuer_keys.install(0, set, 2);
    assert_eq!(ask(&config, &mut worker, &new_token).0, 200);
    let d = decide(&config, &mut worker, &request, now());
    assert_eq!(d.cache_hit, Some(false), "a new key version verifies again");
    assert!(matches!(d.outcome, Outcome::Denied(_)));
}

#[test]
fn keys_fetched_again_unchanged_or_with_a_key_added_keep_cached_tokens_verified() {
    let config = config_with(remote_issuer());
    let mut worker = WorkerState::default();
    let all = &tollgate_core::verify::jwks::Algorithm::ALL;
    let s = signer("RS256", "k1");
    let added = signer("ES256", "k2");
    let token = (s.sign)(claims(json!({})));
    let request = Request::get("/orders").bearer(&token).to_native();
    let first = KeySet::parse(json!({"keys": [s.jwk.clone()]}).to_string().as_bytes(), all);
    worker.issuer_keys.install(0, first.unwrap(), 1);
    assert_eq!(
        decide(&config, &mut worker, &request, now()).cache_hit,
        Some(false)
    );
    assert_eq!(
        decide(&config, &mut worker, &request, now()).cache_hit,
        Some(true)
    );
    // The same key again, written otherwise (members reordered, spaces): the same keys,
    // and even under a new version the cached token is not verified again.
    let mut members: Vec<(String, Value)> =
        s.jwk.as_object().unwrap().clone().into_iter().collect();
    members.reverse();
    let text = format!(
        "{{ \"keys\" : [ {{ {} }} ] }}",
        members
            .iter()
            .map(|(n, v)| format!("{n:?} : {v}"))
            .collect::<Vec<_>>()
            .join(" , ")
    );
    let again = KeySet::parse(text.as_bytes(), all).unwrap();
    assert!(again.same_keys(worker.issuer_keys.get(0).unwrap()));
    worker.issuer_keys.install(0, again, 2);
    assert_eq!(
        decide(&config, &mut worker, &request, now()).cache_hit,
        Some(true)
    );
    // A key added (a rotation that keeps the old key): the old key's tokens stay cached.
    let both = json!({"keys": [added.jwk.clone(), s.jwk.clone()]}).to_string();
    let both = KeySet::parse(both.as_bytes(), all).unwrap();
    assert!(!both.same_keys(worker.issuer_keys.get(0).unwrap()));
    worker.issuer_keys.install(0, both, 3);
    assert_eq!(
        decide(&config, &mut worker, &request, now()).cache_hit,
        Some(true)
    );
    // The same kid with other material is another key: verified again, and refused.
    let mut swapped = signer("RS256-other", "k1").jwk;
    swapped["kid"] = json!("k1");
    let swapped = KeySet::parse(json!({"keys": [swapped]}).to_string().as_bytes(), all);
    worker.issuer_keys.install(0, swapped.unwrap(), 4);
    let d = decide(&config, &mut worker, &request, now());
    assert_eq!(d.cache_hit, Some(false));
    assert!(matches!(d.outcome, Outcome::Denied(_)));
}

#[test]
fn claim_headers_are_stripped_from_clients_on_every_path() {
    let s = signer("ES256", "k1");
    let config = config_with(inline_issuer(json!({"keys": [s.jwk.clone()]})));
    let request = Request::get("/public/page")
        .header("x-auth-email", "ceo@example.com")
        .header("X_Auth_Email", "ceo@example.com")
        .to_native();
    let d = decide(&config, &mut WorkerState::default(), &request, now());
    let Action::Forward(edits) = d.action else {
        panic!("refused a none path")
    };
    let removed: HashSet<String> = edits
        .iter()
        .filter_map(|e| match e {
            HeaderEdit::Remove(n) => Some(n.to_ascii_lowercase()),
            _ => None,
        })
        .collect();
    assert!(removed.contains("x-auth-email"), "{removed:?}");
    assert!(removed.contains("x_auth_email"), "{removed:?}");
}

#[test]
fn roles_from_the_claim_decide_the_rules_roles() {
    let s = signer("ES256", "k1");
    let text = json!({
        "issuers": [inline_issuer(json!({"keys": [s.jwk.clone()]}))],
        "rules": [{"prefix": "/admin", "mode": "required", "roles": ["orders-admin"]}],
    });
    let config = Config::parse(text.to_string().as_bytes(), &|_| None).unwrap();
    let admin = (s.sign)(claims(
        json!({"realm_access": {"roles": ["viewer", "orders-admin"]}}),
    ));
    let viewer = (s.sign)(claims(json!({"realm_access": {"roles": "viewer"}})));
    let none = (s.sign)(claims(json!({})));
    let status = |token: &str| {
        let request = Request::get("/admin/x").bearer(token).to_native();
        match decide(&config, &mut WorkerState::default(), &request, now()).action {
            Action::Forward(_) => 200,
            Action::Respond(r, _) => r.status,
        }
    };
    assert_eq!(status(&admin), 200);
    assert_eq!(status(&viewer), 403);
    assert_eq!(status(&none), 403);
}

#[test]
fn unsafe_claim_values_never_reach_a_header() {
    let s = signer("ES256", "k1");
    let config = config_with(inline_issuer(json!({"keys": [s.jwk.clone()]})));
    let token = (s.sign)(claims(json!({"email": "a@example.com,ceo@example.com"})));
    let (status, _, set) = ask(&config, &mut WorkerState::default(), &token);
    assert_eq!(status, 200);
    assert_eq!(header(&set, "x-auth-email"), None);
}

#[test]
fn the_access_log_names_the_issuer() {
    let s = signer("EdDSA", "k1");
    let config = config_with(inline_issuer(json!({"keys": [s.jwk.clone()]})));
    let token = (s.sign)(claims(json!({"realm_access": {"roles": ["orders-admin"]}})));
    let request = Request::get("/orders").bearer(&token).to_native();
    let decision = decide(&config, &mut WorkerState::default(), &request, now());
    let fields: Vec<(String, String)> = decision
        .log_fields()
        .into_iter()
        .map(|(f, v)| (f.name().to_owned(), v.into_owned()))
        .collect();
    assert!(
        fields.contains(&("issuer".into(), "idp".into())),
        "{fields:?}"
    );
    assert!(
        fields.contains(&("user".into(), "svc-orders".into())),
        "{fields:?}"
    );
}

#[test]
fn a_withdrawn_key_stops_serving_even_when_no_usable_key_is_left() {
    let config = config_with(remote_issuer());
    let mut worker = WorkerState::default();
    let s = signer("RS256", "k1");
    let all = &tollgate_core::verify::jwks::Algorithm::ALL;
    let jwks = json!({"keys": [s.jwk.clone()]}).to_string();
    worker
        .issuer_keys
        .install(0, KeySet::parse(jwks.as_bytes(), all).unwrap(), 1);
    let token = (s.sign)(claims(json!({})));
    assert_eq!(ask(&config, &mut worker, &token).0, 200);
    // The provider now publishes no usable key (its key is for encryption only): believed.
    let mut enc = s.jwk.clone();
    enc["use"] = json!("enc");
    let withdrawn = KeySet::parse(json!({"keys": [enc]}).to_string().as_bytes(), all).unwrap();
    assert!(withdrawn.keys.is_empty());
    worker.issuer_keys.install(0, withdrawn, 2);
    let fresh = (s.sign)(claims(json!({"n": 1})));
    assert_eq!(ask(&config, &mut worker, &fresh).0, 401);
    assert_eq!(
        ask(&config, &mut worker, &token).0,
        401,
        "the cached token too"
    );
}

#[test]
fn tokens_of_another_purpose_are_refused_before_any_key_is_fetched() {
    let config = config_with(remote_issuer());
    let header = |typ: &str| format!(r#"{{"alg":"RS256","kid":"unknown","typ":"{typ}"}}"#);
    let payload = json!({"iss": ISS, "aud": AUD, "sub": "alice", "exp": now() + 300}).to_string();
    let token = |header: &str, payload: &str| {
        format!(
            "{}.{}.{}",
            b64(header.as_bytes()),
            b64(payload.as_bytes()),
            b64(b"sig")
        )
    };
    let awaits = |token: &str| {
        let request = Request::get("/orders").bearer(token).to_native();
        let d = decide(&config, &mut WorkerState::default(), &request, now());
        (
            d.awaits_keys.is_some(),
            matches!(d.outcome, Outcome::Denied(_)),
        )
    };
    for typ in ["logout+jwt", "secevent+jwt", "dpop+jwt", "id+jwt"] {
        assert_eq!(
            awaits(&token(&header(typ), &payload)),
            (false, true),
            "{typ}"
        );
    }
    for typ in ["JWT", "at+jwt", "application/at+JWT"] {
        assert!(
            awaits(&token(&header(typ), &payload)).0,
            "{typ}: may fetch keys"
        );
    }
    // Expired, or for another audience: no fetch either.
    let expired = json!({"iss": ISS, "aud": AUD, "sub": "a", "exp": now() - 3600}).to_string();
    assert_eq!(awaits(&token(&header("JWT"), &expired)), (false, true));
    let elsewhere =
        json!({"iss": ISS, "aud": "api://other", "sub": "a", "exp": now() + 300}).to_string();
    assert_eq!(awaits(&token(&header("JWT"), &elsewhere)), (false, true));
}

#[test]
fn a_token_without_kid_is_tried_against_two_keys_at_most() {
    let keys: Vec<Value> = ["RS256-other", "RS256"]
        .iter()
        .map(|alg| {
            let mut jwk = signer(alg, "x").jwk;
            jwk.as_object_mut().unwrap().remove("kid");
            jwk
        })
        .collect();
    let s = signer("RS256", "x");
    let mut token_claims = claims(json!({}));
    token_claims.subject = Some("svc".into());
    // Sign without a kid: jwt-simple adds the key's kid, so sign raw through a key pair
    // without one.
    let pair = RS256KeyPair::from_pem(&pem("rsa-2048.pem")).unwrap();
    let token = pair.sign(token_claims).unwrap();
    // Two writings of another key (copies of one key would load as one), then the signer's.
    let mut other_written_again = keys[0].clone();
    other_written_again.as_object_mut().unwrap().remove("alg");
    let padded: Vec<Value> = vec![keys[0].clone(), other_written_again, keys[1].clone()];
    let config = config_with(inline_issuer(json!({"keys": padded})));
    assert_eq!(
        ask(&config, &mut WorkerState::default(), &token).0,
        401,
        "third key not tried"
    );
    let config = config_with(inline_issuer(
        json!({"keys": [keys[0].clone(), keys[1].clone()]}),
    ));
    assert_eq!(ask(&config, &mut WorkerState::default(), &token).0, 200);
    assert!(config.warnings().is_empty(), "an issuer with audiences");
    let _ = s;
}

#[test]
fn an_issuer_without_audiences_is_warned_about() {
    let s = signer("RS256", "k1");
    let mut issuer = inline_issuer(json!({"keys": [s.jwk.clone()]}));
    issuer.as_object_mut().unwrap().remove("audiences");
    let warnings = config_with(issuer).warnings();
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].contains("issuer idp: no audiences"),
        "{warnings:?}"
    );
}

#[test]
fn jwks_texts_that_other_parsers_read_differently_are_refused() {
    let s = signer("RS256", "k1");
    let refused = |issuer: Value| {
        let text = json!({"issuers": [issuer]}).to_string();
        Config::parse(text.as_bytes(), &|_| None)
            .unwrap_err()
            .to_string()
    };
    let private: Value = serde_json::from_str(
        &RS256KeyPair::from_pem(&pem("rsa-2048.pem"))
            .unwrap()
            .to_jwk(),
    )
    .unwrap();
    // Two "keys": the last one would win in most parsers, the first in others.
    let doubled = format!(r#"{{"keys":[{private}],"keys":[{}]}}"#, s.jwk);
    let e = refused(inline_issuer(json!(doubled)));
    assert!(e.contains("no name repeated"), "{e}");
    assert!(!e.contains(private["d"].as_str().unwrap()));
    // The same, written as an object in the configuration (not as a string).
    let config_text =
        format!(r#"{{"issuers":[{{"name":"idp","issuer":"{ISS}","jwks":{doubled}}}]}}"#);
    let e = Config::parse(config_text.as_bytes(), &|_| None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no name repeated"), "{e}");
    // Private material anywhere in the document.
    let nested = json!({"keys": [s.jwk.clone()], "backup": {"d": private["d"].clone()}});
    assert!(refused(inline_issuer(nested)).contains("private key material"));
    // A fetched JWKS with a repeated name is not a JWKS.
    let all = &tollgate_core::verify::jwks::Algorithm::ALL;
    assert!(KeySet::parse(doubled.as_bytes(), all).is_err());
}

#[test]
fn plain_http_key_urls_are_refused_unless_local() {
    let parse = |uri: &str| {
        let mut issuer = remote_issuer();
        issuer["jwks_uri"] = json!(uri);
        let text = json!({"issuers": [issuer]}).to_string();
        Config::parse(text.as_bytes(), &|_| None)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    for remote in [
        "http://idp.example.com/jwks",
        "http://127.0.0.1.evil.example/jwks",
        "http://localhost.evil.example/jwks",
        "http://10.0.0.5/jwks",
        "http://[::ffff:10.0.0.5]/jwks",
        "http://[::1]evil.example/jwks",
        "http://[::1].evil.example:80/jwks",
        "http://evil.svc:x/jwks",
        "http://127.evil.example/jwks",
    ] {
        assert!(parse(remote).unwrap_err().contains("https://"), "{remote}");
    }
    for ok in [
        "https://idp.example.com/jwks",
        "http://127.0.0.1:9400/jwks",
        "http://localhost/jwks",
        "http://127.0.0.2:9000/jwks",
        "http://[::1]:8080/jwks",
        "http://keycloak.auth.svc.cluster.local:8080/realms/x/protocol/openid-connect/certs",
    ] {
        assert_eq!(parse(ok), Ok(()), "{ok}");
    }
}
