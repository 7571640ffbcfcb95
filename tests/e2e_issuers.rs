//! Issuers: access tokens of a real OpenID Connect provider (npm's oidc-provider, run by
//! `tests/idp/server.mjs`, see `tests/support/idp.rs`), verified with the keys of its JWKS.
//!
//! For now, the harness alone: the provider issues RS256 and ES256 JWT access tokens through
//! its token endpoint, rotates its keys, counts and breaks its JWKS on demand, and a `Setup`
//! declares the named cluster Envoy reaches it through.

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::{Duration, Instant};

use jwt_simple::prelude::{
    ECDSAP256PublicKeyLike, ES256PublicKey, NoCustomClaims, RS256PublicKey, RSAPublicKeyLike,
    VerificationOptions,
};
use serde_json::{json, Value};
use support::idp::{
    bearer, decode_jwt, envoy_trusting, issuer_entry, Fault, Idp, AUDIENCE, ES256_CLIENT,
    RS256_CLIENT,
};
use support::{now, Envoy, Setup, K};

/// The JWKS as served now.
fn jwks(idp: &Idp) -> Value {
    let response = idp.get(&idp.jwks_path());
    assert_eq!(response.status, 200, "{}", response.text());
    response.json().unwrap()
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// Whether `token` verifies with the key of its `kid` in `jwks` (jwt-simple, with the
/// token's issuer and audience required). None when `jwks` has no key of that kid.
fn verifies(token: &str, jwks: &Value, issuer: &str) -> Option<bool> {
    let (header, _) = decode_jwt(token);
    let kid = header["kid"].as_str().unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)?
        .to_string();
    let options = VerificationOptions {
        allowed_issuers: Some([issuer.to_owned()].into()),
        allowed_audiences: Some([AUDIENCE.to_owned()].into()),
        ..VerificationOptions::default()
    };
    let verified = match header["alg"].as_str().unwrap() {
        "RS256" => RS256PublicKey::from_jwk(&jwk)
            .unwrap()
            .verify_token::<NoCustomClaims>(token, Some(options))
            .is_ok(),
        "ES256" => ES256PublicKey::from_jwk(&jwk)
            .unwrap()
            .verify_token::<NoCustomClaims>(token, Some(options))
            .is_ok(),
        other => panic!("alg {other}"),
    };
    Some(verified)
}

#[test]
fn provider_issues_rs256_and_es256_jwt_access_tokens() {
    let idp = Idp::start();
    let discovery = idp.discovery();
    assert_eq!(discovery["issuer"], idp.issuer());
    assert!(
        discovery["jwks_uri"]
            .as_str()
            .unwrap()
            .ends_with(&idp.jwks_path()),
        "{discovery}"
    );
    assert!(discovery["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("client_credentials")));
    let keys = jwks(&idp);
    for (alg, client, roles, kty) in [
        ("RS256", RS256_CLIENT, json!(["reader", "writer"]), "RSA"),
        ("ES256", ES256_CLIENT, json!(["reader", "admin"]), "EC"),
    ] {
        let token = idp.token(alg);
        let (header, payload) = decode_jwt(&token);
        assert_eq!(header["alg"], alg, "{header}");
        assert_eq!(header["typ"], "at+jwt", "{header}");
        let kid = header["kid"].as_str().expect("a kid");
        let jwk = keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .unwrap_or_else(|| panic!("kid {kid} not in {keys}"));
        assert_eq!(jwk["kty"], kty);
        assert_eq!(jwk["alg"], alg);
        assert_eq!(jwk["use"], "sig");
        assert!(jwk.get("d").is_none(), "the JWKS publishes a private key");
        assert_eq!(payload["iss"], idp.issuer(), "{payload}");
        assert_eq!(payload["aud"], AUDIENCE, "{payload}");
        assert_eq!(payload["sub"], client, "{payload}");
        assert_eq!(payload["client_id"], client, "{payload}");
        assert_eq!(payload["scope"], "read write", "{payload}");
        assert_eq!(payload["realm_access"]["roles"], roles, "{payload}");
        assert!(payload["email"]
            .as_str()
            .unwrap()
            .ends_with("@tollgate.test"));
        assert!(payload["jti"].as_str().is_some_and(|j| !j.is_empty()));
        let iat = payload["iat"].as_u64().unwrap();
        assert!(iat.abs_diff(now()) < 60, "{payload}");
        assert_eq!(payload["exp"].as_u64().unwrap(), iat + 3600, "{payload}");
        assert_eq!(verifies(&token, &keys, idp.issuer()), Some(true));
    }
    // A wrong secret gets nothing from the token endpoint.
    let refused = idp.send(
        &support::Request::new("POST", "/token")
            .host(&format!("127.0.0.1:{}", idp.port()))
            .header("Authorization", "Basic dG9sbGdhdGUtcnMyNTY6d3Jvbmc=")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body_text("grant_type=client_credentials"),
    );
    assert_eq!(refused.unwrap().status, 401);
    // Shorter-lived tokens on demand.
    idp.set_token_ttl(5);
    let (_, payload) = decode_jwt(&idp.token("ES256"));
    assert_eq!(
        payload["exp"].as_u64().unwrap(),
        payload["iat"].as_u64().unwrap() + 5
    );
}

#[test]
fn rotation_publishes_new_and_old_keys_and_new_key_signs() {
    let idp = Idp::start();
    let before: Vec<String> = ["RS256", "ES256"].iter().map(|a| idp.token(a)).collect();
    let old_kids = kids(&jwks(&idp));
    assert_eq!(old_kids.len(), 2, "{old_kids:?}");

    let signing = idp.rotate(false);
    let published = jwks(&idp);
    let all = kids(&published);
    assert_eq!(all.len(), 4, "{all:?}");
    for kid in &old_kids {
        assert!(all.contains(kid), "old key {kid} dropped: {all:?}");
    }
    for (alg, old) in ["RS256", "ES256"].iter().zip(&before) {
        let token = idp.token(alg);
        let (header, _) = decode_jwt(&token);
        assert_eq!(header["kid"], signing[alg], "{header} {signing}");
        assert!(!old_kids.contains(&header["kid"].as_str().unwrap().to_owned()));
        assert_eq!(verifies(&token, &published, idp.issuer()), Some(true));
        // Tokens signed before the rotation stay verifiable.
        assert_eq!(verifies(old, &published, idp.issuer()), Some(true));
    }

    let signing = idp.rotate(true);
    let published = jwks(&idp);
    let only_new = kids(&published);
    assert_eq!(only_new.len(), 2, "{only_new:?}");
    for alg in ["RS256", "ES256"] {
        assert!(only_new.contains(&signing[alg].as_str().unwrap().to_owned()));
        let token = idp.token(alg);
        assert_eq!(verifies(&token, &published, idp.issuer()), Some(true));
    }
    for old in &before {
        assert_eq!(verifies(old, &published, idp.issuer()), None);
    }
}

#[test]
fn faults_and_fetch_counting() {
    let idp = Idp::start();
    idp.reset_stats();
    assert_eq!(idp.jwks_fetches(), 0);
    let path = idp.jwks_path();
    jwks(&idp);
    jwks(&idp);
    assert_eq!(idp.jwks_fetches(), 2);
    // Other routes are not counted.
    idp.discovery();
    idp.token("RS256");
    assert_eq!(idp.jwks_fetches(), 2);
    assert_eq!(idp.token_requests(), 1);

    idp.fault(Fault::Status500);
    assert_eq!(idp.get(&path).status, 500);

    idp.fault(Fault::Garbage);
    let garbage = idp.get(&path);
    assert_eq!(garbage.status, 200);
    assert!(garbage.json().is_none(), "{}", garbage.text());

    idp.fault(Fault::Huge);
    let huge = idp.get(&path);
    assert_eq!(huge.status, 200);
    assert_eq!(huge.body.len(), 10 * 1024 * 1024);
    assert_eq!(kids(&huge.json().unwrap()).len(), 2);

    idp.fault(Fault::Down);
    let down = idp.send(&support::Request::get(&path).host("127.0.0.1"));
    assert!(down.is_err(), "{down:?}");

    idp.fault(Fault::Slow(2));
    let started = Instant::now();
    assert_eq!(kids(&jwks(&idp)).len(), 2);
    assert!(started.elapsed() >= Duration::from_secs(2));

    idp.fault(Fault::Ok);
    jwks(&idp);
    // Every request to the path counts, whatever its answer.
    assert_eq!(idp.jwks_fetches(), 8);
    idp.reset_stats();
    assert_eq!(idp.jwks_fetches(), 0);
}

#[test]
fn provider_on_a_chosen_port_goes_down_and_comes_back() {
    let port = Idp::free_port();
    let idp = Idp::start_on(port);
    assert_eq!(idp.port(), port);
    assert_eq!(idp.issuer(), format!("http://127.0.0.1:{port}"));
    let first = kids(&jwks(&idp));
    idp.stop();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    let idp = Idp::start_on(port);
    let token = idp.token("ES256");
    let (_, payload) = decode_jwt(&token);
    assert_eq!(payload["iss"], format!("http://127.0.0.1:{port}"));
    // New keys: a restarted provider has none of the old ones.
    let second = kids(&jwks(&idp));
    assert!(
        second.iter().all(|k| !first.contains(k)),
        "{first:?} {second:?}"
    );
}

#[test]
fn issuer_with_a_path_serves_under_it() {
    let port = Idp::free_port();
    let issuer = format!("http://127.0.0.1:{port}/realms/tollgate");
    let idp = Idp::start_with_issuer(port, &issuer);
    assert_eq!(idp.jwks_path(), "/realms/tollgate/jwks");
    let discovery = idp.discovery();
    assert_eq!(discovery["issuer"], issuer.as_str());
    assert_eq!(
        discovery["jwks_uri"],
        format!("http://127.0.0.1:{port}/realms/tollgate/jwks")
    );
    let token = idp.token("RS256");
    assert_eq!(decode_jwt(&token).1["iss"], issuer.as_str());
    assert_eq!(verifies(&token, &jwks(&idp), &issuer), Some(true));
    assert_eq!(idp.jwks_fetches(), 1);
}

#[test]
fn setup_declares_a_named_cluster_to_the_provider() {
    let idp = Idp::start();
    let envoy =
        Envoy::start(Setup::new(json!({"secrets": [{"key": K}]})).cluster("idp", idp.port()));
    let clusters = envoy.admin("/clusters?format=json").json().unwrap();
    let cluster = clusters["cluster_statuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "idp")
        .unwrap_or_else(|| panic!("no cluster idp: {clusters}"));
    let address = &cluster["host_statuses"][0]["address"]["socket_address"];
    assert_eq!(address["address"], "127.0.0.1");
    assert_eq!(address["port_value"], idp.port());
}

// ---------------------------------------------------------------------------------------
// The filter with the provider: Envoy with 4 workers fetches the keys through a cluster
// (`support::idp::envoy_trusting`). Fetching, rotation and failures: `e2e_issuer_keys.rs`.

#[test]
fn provider_tokens_pass_with_identity_roles_and_claims() {
    let idp = Idp::start();
    let envoy = envoy_trusting(json!([issuer_entry(&idp, 600)]), idp.port(), json!({}));
    for (alg, client, roles) in [
        ("RS256", RS256_CLIENT, "reader,writer"),
        ("ES256", ES256_CLIENT, "reader,admin"),
    ] {
        let token = idp.token(alg);
        let response = envoy.send(&bearer(&token).header("x-auth-email", "ceo@example.com"));
        assert_eq!(response.status, 200, "{alg}: {}", response.text());
        assert_eq!(
            response.upstream_header("x-auth-user").as_deref(),
            Some(client)
        );
        assert_eq!(
            response.upstream_header("x-auth-type").as_deref(),
            Some("access_token")
        );
        assert_eq!(
            response.upstream_header("x-auth-name").as_deref(),
            Some("idp")
        );
        assert_eq!(
            response.upstream_header("x-auth-role").as_deref(),
            Some(roles)
        );
        let email = format!("{}-service@tollgate.test", alg.to_ascii_lowercase());
        assert_eq!(response.upstream_header("x-auth-email"), Some(email));
        assert_eq!(response.upstream_header("authorization"), None);
    }
    // A claim header a client sends is removed on a path that checks nothing, too.
    let response =
        envoy.send(&support::Request::get("/public/x").header("X-Auth-Email", "ceo@example.com"));
    assert_eq!(response.status, 200);
    assert_eq!(response.upstream_header("x-auth-email"), None);
    let stats = envoy.stats("wasmcustom.tollgate.issuer_keys");
    assert_eq!(
        stats.get("wasmcustom.tollgate.issuer_keys.fetched.idp"),
        Some(&1),
        "{stats:?}"
    );
    assert_eq!(
        idp.jwks_fetches(),
        1,
        "one fetch for the process, not one per worker"
    );
}

fn b64(bytes: &[u8]) -> String {
    use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Encoder};
    Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap()
}

/// A token signed with the fixed test key `tests/data/issuer-keys/rsa-2048.pem` (a key no
/// provider here publishes), claiming `iss`.
fn foreign_token(iss: &str, kid: &str) -> String {
    use jwt_simple::prelude::*;
    let pem = std::fs::read_to_string(
        support::manifest_dir().join("tests/data/issuer-keys/rsa-2048.pem"),
    )
    .unwrap();
    let key = RS256KeyPair::from_pem(&pem).unwrap().with_key_id(kid);
    let claims = Claims::create(jwt_simple::prelude::Duration::from_mins(5))
        .with_issuer(iss)
        .with_audience(AUDIENCE)
        .with_subject("mallory");
    key.sign(claims).unwrap()
}

#[test]
fn tokens_are_refused_with_the_right_code() {
    let idp = Idp::start();
    // Another provider, and one that claims to be `idp` (its own keys under idp's issuer).
    let other = Idp::start();
    let impostor = Idp::start_with_issuer(Idp::free_port(), idp.issuer());
    let mut elsewhere = issuer_entry(&other, 600);
    elsewhere["name"] = json!("other");
    elsewhere["cluster"] = json!("other");
    elsewhere["audiences"] = json!(["api://another-service"]);
    let issuers = json!([issuer_entry(&idp, 600), elsewhere]);
    let mut config = json!({
        "secrets": [{"key": K}],
        "issuers": issuers,
        "clock_skew_seconds": 0,
        "rules": [{"prefix": "/orders", "mode": "required", "roles": ["reader", "user"]}],
    });
    config["rules"][0]["roles"] = json!(["reader", "user"]);
    let mut setup = Setup::new(config)
        .cluster("idp", idp.port())
        .cluster("other", other.port());
    setup.concurrency = 4;
    let envoy = Envoy::start(setup);
    let good = idp.token("RS256");
    assert_eq!(envoy.send(&bearer(&good)).status, 200);
    let code = |token: &str| {
        let response = envoy.send(&bearer(token));
        (response.status, response.code().unwrap_or_default())
    };
    let invalid = (401, "INVALID_CREDENTIALS".to_string());
    // Wrong iss: a provider nobody configured.
    assert_eq!(
        code(&foreign_token("https://unknown.example", "x")),
        invalid
    );
    // Wrong aud: `other` is trusted for another audience only.
    assert_eq!(code(&other.token("ES256")), invalid);
    // A key from another provider, under the trusted issuer's name (its kid is unknown, so
    // the keys are fetched again, and the token is still refused).
    assert_eq!(code(&impostor.token("RS256")), invalid);
    assert_eq!(code(&foreign_token(idp.issuer(), "x")), invalid);
    // HS256 signed with the provider's public key, in each form an attacker may try.
    let jwks = jwks(&idp);
    let rsa = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kty"] == "RSA")
        .unwrap();
    let payload = json!({"iss": idp.issuer(), "aud": AUDIENCE, "sub": "admin", "exp": now() + 300, "token_type": "access"}).to_string();
    for secret in [rsa.to_string(), rsa["n"].as_str().unwrap().to_owned()] {
        for header in [
            json!({"alg": "HS256", "kid": rsa["kid"]}).to_string(),
            json!({"alg": "HS256"}).to_string(),
        ] {
            assert_eq!(
                code(&support::sign_raw(&header, &payload, secret.as_bytes())),
                invalid,
                "{header}"
            );
        }
    }
    // alg none.
    let none = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(payload.as_bytes()));
    assert_eq!(code(&none), invalid);
    // Expired (the provider issues a 1-second token; no skew is allowed here).
    idp.set_token_ttl(1);
    let short = idp.token("ES256");
    idp.set_token_ttl(3600);
    let expired = (401, "TOKEN_EXPIRED".to_string());
    support::wait_until(
        "the 1-second token to expire",
        Duration::from_secs(10),
        || code(&short) == expired,
    );
    // Nothing secret in the log: tokens, key material, client secrets.
    let log = envoy.log();
    for secret in [good.as_str(), short.as_str(), rsa["n"].as_str().unwrap(), K] {
        assert!(!log.contains(secret), "the log holds a secret");
    }
    for (_, client_secret) in [
        support::idp::client_for("RS256"),
        support::idp::client_for("ES256"),
    ] {
        assert!(!log.contains(client_secret));
    }
}
