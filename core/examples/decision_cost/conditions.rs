//! Request kinds on a rule with conditions (audience, scope and two claims): `conditions-token`
//! (one token, so cache hits: the claims ride with the entry) and `conditions-distinct` (a new
//! token each time: verified, its claims extracted once).

use tollgate_core::config::Config;
use tollgate_core::verify::token::sign_raw;

use super::{bearer, request, Headers, CONFIG, NOW, SECRET};

pub const KINDS: &[&str] = &["conditions-token", "conditions-distinct"];

/// `CONFIG` with a conditioned rule on `/orders`.
pub fn config() -> Result<Config, String> {
    let mut config: serde_json::Value = serde_json::from_str(CONFIG).map_err(|e| e.to_string())?;
    let rule = serde_json::json!({
        "prefix": "/orders", "mode": "required", "audiences": ["api://cost"],
        "scopes": ["orders:read"],
        "claims": [
            {"claim": ["https://example.com/claims", "tenant"], "equals": "acme"},
            {"claim": "groups", "contains": "ops"}
        ]
    });
    if let Some(rules) = config.get_mut("rules").and_then(|r| r.as_array_mut()) {
        rules.push(rule);
    }
    Config::parse(config.to_string().as_bytes(), &|_| None).map_err(|e| e.to_string())
}

fn token(sub: &str) -> String {
    let payload = serde_json::json!({
        "sub": sub, "token_type": "access", "iat": NOW, "exp": NOW + 7200,
        "aud": "api://cost", "scope": "orders:read orders:write",
        "https://example.com/claims": {"tenant": "acme"}, "groups": ["dev", "ops"],
    });
    sign_raw(
        r#"{"alg":"HS256","typ":"JWT","kid":"bench"}"#,
        &payload.to_string(),
        SECRET.as_bytes(),
    )
}

/// `iterations` requests of `kind`.
pub fn requests(kind: &str, iterations: usize) -> Option<Vec<Headers>> {
    match kind {
        "conditions-token" => Some(vec![
            request("/orders/7", &[bearer(&token("bench-user"))]);
            iterations
        ]),
        "conditions-distinct" => Some(
            (0..iterations)
                .map(|i| request("/orders/7", &[bearer(&token(&format!("user-{i}")))]))
                .collect(),
        ),
        _ => None,
    }
}
