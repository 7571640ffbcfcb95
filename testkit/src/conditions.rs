//! Configuration J of the hostile-input table (conditions on rules) and the tokens with
//! claims its rows send (`<C1>` to `<C4>`), signed with the master secret.

use serde_json::{json, Value};

use tollgate_core::verify::token::sign_raw;

use crate::{K, SK};

/// Default-allow; required paths whose rules carry one condition each.
pub fn config_j() -> Value {
    let claim = |path: Value, test: Value| {
        let mut condition = json!({"claim": path});
        for (k, v) in test.as_object().into_iter().flatten() {
            condition[k] = v.clone();
        }
        json!([condition])
    };
    json!({
        "secrets": [{"key": K}],
        "api_keys": [{"name": "server", "key": SK}],
        "default_mode": "none",
        "rules": [
            {"prefix": "/scoped", "mode": "required", "scopes": ["orders:read", "orders:write"]},
            {"prefix": "/tenant", "mode": "required",
             "claims": claim(json!(["https://example.com/claims", "tenant"]), json!({"equals": "acme"}))},
            {"prefix": "/dotted", "mode": "required", "claims": claim(json!("a.b"), json!({"equals": "x"}))},
            {"prefix": "/groups", "mode": "required", "claims": claim(json!("groups"), json!({"contains": "ops"}))},
            {"prefix": "/level", "mode": "required", "claims": claim(json!("level"), json!({"equals": 1}))},
            {"prefix": "/verified", "mode": "required",
             "claims": claim(json!("email_verified"), json!({"equals": true}))},
            {"prefix": "/machines", "mode": "required", "roles": ["admin"], "credentials": ["api_key"]},
            {"prefix": "/tokens", "mode": "required", "issuers": ["secrets"]}
        ]
    })
}

/// The claim tokens, for alice, valid for an hour from `now`: C1 holds every condition; C2
/// the right values in the wrong types or places; C3 Unicode look-alikes; C4 extra spaces,
/// tabs and wrapped values.
pub fn claim_tokens(now: u64) -> [(&'static str, String); 4] {
    let claims = [
        (
            "C1",
            json!({"scope": "orders:read orders:write", "https://example.com/claims": {"tenant": "acme"},
                   "a": {"b": "x"}, "groups": ["dev", "ops"], "level": 1, "email_verified": true}),
        ),
        (
            "C2",
            json!({"scope": ["orders:read orders:write"], "https://example.com/claims.tenant": "acme",
                   "a.b": "x", "groups": "dev,ops", "level": "1", "email_verified": "true"}),
        ),
        (
            "C3",
            json!({"scope": "orders:reаd orders:write", "https://example.com/claims": {"tenant": "аcme"},
                   "a": {"b": "х"}, "groups": ["оps"], "level": true, "email_verified": 1}),
        ),
        (
            "C4",
            json!({"scope": "  orders:write   orders:read ", "https://example.com/claims": {"tenant": " acme"},
                   "a": {"b": ["x"]}, "groups": "dev\tops", "level": [1], "email_verified": [true]}),
        ),
    ];
    claims.map(|(name, mut payload)| {
        payload["sub"] = json!("alice");
        payload["token_type"] = json!("access");
        payload["iat"] = json!(now);
        payload["exp"] = json!(now + 3600);
        let header = r#"{"alg":"HS256","typ":"JWT"}"#;
        (name, sign_raw(header, &payload.to_string(), K.as_bytes()))
    })
}
