//! Request kinds of browser sign-in (`oidc` configured, the issuer's RS256 tokens):
//! `session-token` (the access token in the sealed session cookie, beside the refresh cookie
//! and another site cookie) and `session-bearer` (the same token as `Authorization: Bearer`,
//! the same configuration). Both are measured as the filter runs them: the callback and logout
//! paths checked, the session read from its cookies, then the decision.

use tollgate_core::config::Config;
use tollgate_core::oidc::provider_call::Tokens;
use tollgate_core::oidc::session;

use super::{bearer, request, Headers, IssuerKey, ISSUER, NOW};

pub const KINDS: &[&str] = &["session-token", "session-bearer"];

/// The cookie keys (`kid:key`, 32 bytes in base64url).
const COOKIE_KEYS: &str = "c1:3q2-7wABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGho";

/// The issuer configuration with browser sign-in through it.
pub fn config() -> Result<Config, String> {
    let base = super::issuer_config_json()?;
    let mut config: serde_json::Value = serde_json::from_str(&base).map_err(|e| e.to_string())?;
    let oidc = serde_json::json!({
        "issuer": "idp", "client_id": "web", "cluster": "idp",
        "authorization_endpoint": format!("{ISSUER}/auth"),
        "token_endpoint": format!("{ISSUER}/token"),
        "redirect_path": "/oauth/callback", "logout_path": "/logout",
        "cookie_key_env": "COOKIE_KEYS"
    });
    config
        .as_object_mut()
        .ok_or("the configuration is not an object")?
        .insert("oidc".into(), oidc);
    let env = |name: &str| (name == "COOKIE_KEYS").then(|| COOKIE_KEYS.to_owned());
    Config::parse(config.to_string().as_bytes(), &env).map_err(|e| e.to_string())
}

/// `iterations` requests of `kind`.
pub fn requests(config: &Config, kind: &str, iterations: usize) -> Option<Vec<Headers>> {
    let token = IssuerKey::load("rs256")?.sign("bench-user");
    let headers = match kind {
        "session-bearer" => request("/api/orders", &[bearer(&token)]),
        "session-token" => {
            let tokens = Tokens {
                access_token: token,
                id_token: Some("id.token.value".repeat(40)),
                refresh_token: Some("r".repeat(43)),
            };
            let set = session::set_cookies(config.oidc.as_ref()?, &tokens, NOW)?;
            let pairs: Vec<&str> = set
                .iter()
                .filter_map(|line| line.split(';').next())
                .collect();
            let cookie = format!("theme=dark; {}", pairs.join("; "));
            request("/api/orders", &[("cookie", cookie)])
        }
        _ => return None,
    };
    Some(vec![headers; iterations])
}
