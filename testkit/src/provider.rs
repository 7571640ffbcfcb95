//! Configuration J of the hostile table: token headers, a payload header, and a provider
//! (EdDSA, inline keys) whose roles are spelled its way (`Admin`, `Orders.Read`); and the
//! placeholders of its tokens.

use jwt_simple::prelude::{Claims, Duration, Ed25519KeyPair, EdDSAKeyPairLike};
use serde_json::{json, Value};

use crate::{K, SK};

/// The provider's `iss`.
pub const PROVIDER_ISS: &str = "https://idp.acme.test";

fn pair() -> Option<Ed25519KeyPair> {
    let pem = include_str!("../../tests/data/issuer-keys/ed25519.pem");
    Some(Ed25519KeyPair::from_pem(pem).ok()?.with_key_id("acme-1"))
}

/// Configuration J.
pub fn config_j() -> Value {
    let mut jwk: Value = pair()
        .and_then(|p| serde_json::from_str(&p.public_key().to_jwk()).ok())
        .unwrap_or_default();
    jwk["kid"] = json!("acme-1");
    json!({
        "secrets": [{"key": K}],
        "api_keys": [{"name": "server", "key": SK}],
        "issuers": [{
            "name": "acme", "issuer": PROVIDER_ISS, "audiences": ["orders"],
            "jwks": {"keys": [jwk]}, "roles_claim": "roles"
        }],
        "token_headers": [{"name": "x-access-token"}, {"name": "authorization", "prefix": "Token "}],
        "payload_header": "x-jwt-payload",
        "rules": [
            {"prefix": "/public", "mode": "none"},
            {"prefix": "/feed", "mode": "optional"},
            {"prefix": "/orders", "mode": "required", "roles": ["Orders.Read"]},
            {"prefix": "/ops", "mode": "required", "roles": ["Admin"]},
            {"prefix": "/lower", "mode": "required", "roles": ["admin"]}
        ]
    })
}

/// The provider's tokens for carol at unix time `now` (valid for an hour): `R1` with roles
/// `Admin`, `Orders.Read` (and `Admin` again), `R2` with the one value `admin,user`, `R3` with
/// `Аdmin` (a Cyrillic `А`), `R4` with `ADMIN`, `R5` with `admin`.
pub fn provider_tokens(now: u64) -> Vec<(&'static str, String)> {
    let Some(pair) = pair() else {
        return Vec::new();
    };
    let sign = |roles: Value| {
        let claims = Claims::with_custom_claims(json!({ "roles": roles }), Duration::from_hours(1))
            .with_issuer(PROVIDER_ISS)
            .with_audience("orders")
            .with_subject("carol");
        let mut claims = claims;
        claims.issued_at = Some(Duration::from_secs(now));
        claims.invalid_before = Some(Duration::from_secs(now));
        claims.expires_at = Some(Duration::from_secs(now + 3600));
        pair.sign(claims).unwrap_or_default()
    };
    vec![
        ("R1", sign(json!(["Admin", "Orders.Read", "Admin"]))),
        ("R2", sign(json!(["admin,user"]))),
        ("R3", sign(json!(["\u{410}dmin"]))),
        ("R4", sign(json!(["ADMIN"]))),
        ("R5", sign(json!("admin"))),
    ]
}
