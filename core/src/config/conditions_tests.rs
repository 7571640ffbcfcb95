//! Conditions refused at load, each naming its key.

use serde_json::{json, Value};

use crate::config::Config;

const SECRET: &str = "Hq3vXo9TzK7rWm2pLc8dNs5yFb4gJe6A";

fn parse(rule: Value) -> Result<Config, String> {
    let config = json!({
        "secrets": [{"key": SECRET}],
        "issuers": [{"name": "idp", "issuer": "https://idp.example.com", "audiences": ["a"],
                     "jwks_uri": "https://idp.example.com/jwks", "cluster": "idp"}],
        "rules": [{"prefix": "/public", "mode": "none"}, rule],
    });
    Config::parse(config.to_string().as_bytes(), &|_| None).map_err(|e| e.to_string())
}

fn refused(rule: Value) -> String {
    match parse(rule.clone()) {
        Ok(_) => panic!("accepted {rule}"),
        Err(e) => e,
    }
}

#[test]
fn well_formed_conditions_load() {
    let rule = json!({"prefix": "/x", "mode": "required", "issuers": ["idp", "secrets"],
        "credentials": ["access_token", "api_key", "publishable_key", "client"],
        "audiences": ["api://x"], "scopes": ["orders:read"],
        "claims": [{"claim": "a.b", "equals": "x"}, {"claim": ["https://e.com/c", "t"], "one_of": [1, true, "y"]},
                   {"claim": "g", "contains": "ops"}, {"claim": "p", "present": true}]});
    let config = parse(rule).unwrap();
    assert!(!config.claim_paths.is_empty());
}

#[test]
fn no_conditions_read_no_claims() {
    let config =
        parse(json!({"prefix": "/x", "mode": "required", "credentials": ["api_key"]})).unwrap();
    assert!(config.claim_paths.is_empty());
}

#[test]
fn each_mistake_is_refused_naming_its_key() {
    let required = |extra: Value| {
        let mut rule = json!({"prefix": "/x", "mode": "required"});
        for (k, v) in extra.as_object().unwrap() {
            rule[k] = v.clone();
        }
        rule
    };
    for (rule, key) in [
        (
            json!({"prefix": "/x", "mode": "optional", "scopes": ["a"]}),
            "rules[1].scopes:",
        ),
        (
            json!({"prefix": "/x", "mode": "none", "issuers": ["idp"]}),
            "rules[1].issuers:",
        ),
        (required(json!({"issuers": []})), "rules[1].issuers:"),
        (
            required(json!({"issuers": ["idp", "other"]})),
            "rules[1].issuers[1]:",
        ),
        (
            required(json!({"issuers": ["Secrets"]})),
            "rules[1].issuers[0]:",
        ),
        (
            required(json!({"credentials": ["anonymous"]})),
            "rules[1].credentials[0]:",
        ),
        (
            required(json!({"credentials": ["token"]})),
            "rules[1].credentials[0]:",
        ),
        (
            required(json!({"credentials": []})),
            "rules[1].credentials:",
        ),
        (required(json!({"audiences": []})), "rules[1].audiences:"),
        (
            required(json!({"audiences": [""]})),
            "rules[1].audiences[0]:",
        ),
        (required(json!({"scopes": ["a b"]})), "rules[1].scopes[0]:"),
        (required(json!({"scopes": [""]})), "rules[1].scopes[0]:"),
        (required(json!({"claims": []})), "rules[1].claims:"),
        (
            required(json!({"claims": [{"claim": "", "present": true}]})),
            "rules[1].claims[0].claim:",
        ),
        (
            required(json!({"claims": [{"claim": "a..b", "present": true}]})),
            "rules[1].claims[0].claim:",
        ),
        (
            required(json!({"claims": [{"claim": [], "present": true}]})),
            "rules[1].claims[0].claim:",
        ),
        (
            required(json!({"claims": [{"claim": ["a", ""], "present": true}]})),
            "rules[1].claims[0].claim:",
        ),
        (
            required(json!({"claims": [{"claim": "a"}]})),
            "rules[1].claims[0]:",
        ),
        (
            required(json!({"claims": [{"claim": "a", "equals": "x", "contains": "x"}]})),
            "rules[1].claims[0]:",
        ),
        (
            required(json!({"claims": [{"claim": "a", "equals": ["x"]}]})),
            "rules[1].claims[0].equals:",
        ),
        (
            required(json!({"claims": [{"claim": "a", "equals": {"x": 1}}]})),
            "rules[1].claims[0].equals:",
        ),
        // Numbers that cannot be compared exactly: a fraction, beyond 64 bits.
        (
            required(json!({"claims": [{"claim": "a", "equals": 1.5}]})),
            "rules[1].claims[0].equals:",
        ),
        (
            required(json!({"claims": [{"claim": "a", "equals": 1e20}]})),
            "rules[1].claims[0].equals:",
        ),
        (
            required(json!({"claims": [{"claim": "a", "one_of": [1, 2.0]}]})),
            "rules[1].claims[0].one_of",
        ),
        (
            required(json!({"claims": [{"claim": "a", "one_of": []}]})),
            "rules[1].claims[0].one_of:",
        ),
        (
            required(json!({"claims": [{"claim": "a", "one_of": ["x", null]}]})),
            "rules[1].claims[0].one_of[1]:",
        ),
        (
            required(json!({"claims": [{"claim": "a", "contains": "x y"}]})),
            "rules[1].claims[0].contains:",
        ),
        (
            required(json!({"claims": [{"claim": "a", "present": false}]})),
            "rules[1].claims[0].present:",
        ),
    ] {
        let error = refused(rule.clone());
        assert!(error.starts_with(key), "{rule}: {error}");
    }
}

#[test]
fn secrets_must_exist_and_not_be_an_issuer_name_too() {
    let config = json!({
        "issuers": [{"name": "secrets", "issuer": "https://idp.example.com", "audiences": ["a"],
                     "jwks_uri": "https://idp.example.com/jwks", "cluster": "idp"}],
        "secrets": [{"key": SECRET}],
        "rules": [{"prefix": "/x", "mode": "required", "issuers": ["secrets"]}],
    });
    let error = Config::parse(config.to_string().as_bytes(), &|_| None).unwrap_err();
    assert_eq!(error.key, "rules[0].issuers[0]");
    let no_secrets = json!({
        "api_keys": [{"name": "k", "key": "sk_test_4f9d2c7a8b1e6f3d0a5c9e2b7f4a1d8c"}],
        "rules": [{"prefix": "/x", "mode": "required", "issuers": ["secrets"]}],
    });
    let error = Config::parse(no_secrets.to_string().as_bytes(), &|_| None).unwrap_err();
    assert_eq!(error.key, "rules[0].issuers[0]");
}
