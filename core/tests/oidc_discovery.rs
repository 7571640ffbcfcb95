//! `oidc.discovery`: the configuration's keys, and the provider's discovery document read
//! (OpenID Connect Discovery 1.0): the issuer must be the configured one, endpoints are
//! plain URLs (https when the document came over https), the configuration's keys win.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod oidc_support;

use oidc_support::{config, config_json, env};
use serde_json::json;
use tollgate_core::config::Config;
use tollgate_core::oidc::discovery;

fn refused(oidc: serde_json::Value) -> String {
    let json = config_json(oidc).to_string();
    Config::parse(json.as_bytes(), &env)
        .unwrap_err()
        .to_string()
}

fn discovering() -> tollgate_core::config::Config {
    config(json!({"discovery": true, "authorization_endpoint": null, "token_endpoint": null}))
}

#[test]
fn discovery_replaces_the_endpoints_and_without_it_they_are_required() {
    let config = discovering();
    let oidc = config.oidc.as_ref().unwrap();
    let document = oidc.discovery.as_ref().unwrap();
    assert_eq!(
        (
            document.https,
            document.authority.as_str(),
            document.path.as_str()
        ),
        (true, "idp.test", "/.well-known/openid-configuration")
    );
    assert!(oidc.endpoints(None).is_none(), "none until discovered");
    let error = refused(json!({"token_endpoint": null}));
    assert!(
        error.contains("oidc.token_endpoint") && error.contains("discovery"),
        "{error}"
    );
    let error = refused(json!({"authorization_endpoint": null}));
    assert!(error.contains("oidc.authorization_endpoint"), "{error}");
    let error = refused(json!({"discovery": "yes"}));
    assert!(error.contains("oidc.discovery"), "{error}");
}

#[test]
fn the_document_must_be_the_issuers_and_its_endpoints_plain() {
    let config = discovering();
    let oidc = config.oidc.as_ref().unwrap();
    let read =
        |document: serde_json::Value| discovery::endpoints(oidc, document.to_string().as_bytes());
    let good = json!({
        "issuer": "https://idp.test",
        "authorization_endpoint": "https://login.idp.test/authorize?prompt=login",
        "token_endpoint": "https://api.idp.test/oauth/token",
        "end_session_endpoint": "https://login.idp.test/logout"
    });
    let endpoints = read(good.clone()).unwrap();
    assert_eq!(
        endpoints.authorization,
        "https://login.idp.test/authorize?prompt=login"
    );
    assert_eq!(
        (
            endpoints.token.authority.as_str(),
            endpoints.token.path.as_str()
        ),
        ("api.idp.test", "/oauth/token")
    );
    assert_eq!(endpoints.revocation, None);
    assert_eq!(
        endpoints.end_session.as_deref(),
        Some("https://login.idp.test/logout")
    );
    let with = |key: &str, value: serde_json::Value| {
        let mut document = good.clone();
        document[key] = value;
        read(document).unwrap_err()
    };
    // Section 4.3: exactly the configured issuer (not a trailing-slash or case variant).
    for other in [
        "https://idp.test/",
        "https://IDP.test",
        "https://evil.test",
        "",
    ] {
        assert!(
            with("issuer", json!(other)).contains("names another issuer"),
            "{other}"
        );
    }
    assert!(with("issuer", json!(null)).contains("not a JSON object"));
    assert!(with("token_endpoint", json!(null)).contains("no token_endpoint"));
    assert!(with("authorization_endpoint", json!(null)).contains("no authorization_endpoint"));
    for bad in [
        "http://login.idp.test/authorize",
        "https://user@evil.test/authorize",
        "https://login.idp.test/a#frag",
        "/authorize",
        "https://login.idp.test/a b",
        "javascript:alert(1)",
    ] {
        let error = with("authorization_endpoint", json!(bad));
        assert!(
            error.contains("authorization_endpoint that is not"),
            "{bad}: {error}"
        );
        assert!(
            !error.contains(bad),
            "the log line quotes no endpoint: {error}"
        );
    }
    assert!(with("token_endpoint", json!(42)).contains("not a JSON object"));
    assert!(discovery::endpoints(oidc, b"<html>").is_err());
    let twice = br#"{"issuer": "https://idp.test", "issuer": "https://idp.test",
        "authorization_endpoint": "https://idp.test/a", "token_endpoint": "https://idp.test/t"}"#;
    assert!(discovery::endpoints(oidc, twice)
        .unwrap_err()
        .contains("not a JSON object"));
    assert!(discovery::endpoints(oidc, b"").is_err());
}

#[test]
fn the_configurations_endpoints_win_over_the_documents() {
    let config = config(json!({
        "discovery": true,
        "token_endpoint": null,
        "authorization_endpoint": "https://idp.test/auth-here",
        "end_session_endpoint": "https://idp.test/bye-here"
    }));
    let oidc = config.oidc.as_ref().unwrap();
    let document = json!({
        "issuer": "https://idp.test",
        "authorization_endpoint": "https://idp.test/authorize",
        "token_endpoint": "https://idp.test/token",
        "end_session_endpoint": "https://idp.test/logout",
        "revocation_endpoint": "https://idp.test/revoke"
    });
    let endpoints = discovery::endpoints(oidc, document.to_string().as_bytes()).unwrap();
    assert_eq!(endpoints.authorization, "https://idp.test/auth-here");
    assert_eq!(
        endpoints.end_session.as_deref(),
        Some("https://idp.test/bye-here")
    );
    assert_eq!(endpoints.token.path, "/token");
    assert_eq!(endpoints.revocation.unwrap().path, "/revoke");
    // A configured endpoint stands even when the document lacks or spoils it.
    let lacking = json!({"issuer": "https://idp.test", "token_endpoint": "https://idp.test/token"});
    assert!(discovery::endpoints(oidc, lacking.to_string().as_bytes()).is_ok());
}
