//! The explanation is the decision's trace, told: each refusal ends the step that led to it.

use super::*;

const KEY: &str = "Hq3vXo9TzK7rWm2pLc8dNs5yFb4gJe6A";
const NOW: u64 = 1_750_000_000;

fn config() -> Config {
    let json = format!(
        r#"{{"secrets": [{{"key": "{KEY}"}}],
            "rules": [{{"prefix": "/admin", "mode": "required", "roles": ["admin"]}},
                      {{"prefix": "/items", "mode": "required", "methods": ["DELETE"]}}]}}"#
    );
    Config::parse(json.as_bytes(), &|_| None).unwrap()
}

fn request(method: &str, target: &str, headers: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    let mut list = vec![
        (":method".to_owned(), method.as_bytes().to_vec()),
        (":path".to_owned(), target.as_bytes().to_vec()),
        (":authority".to_owned(), b"api.example.com".to_vec()),
        (":scheme".to_owned(), b"https".to_vec()),
    ];
    list.extend(
        headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec())),
    );
    list
}

fn step<'e>(explanation: &'e Explanation, name: &str) -> &'e Step {
    let found = explanation.steps.iter().find(|s| s.step == name);
    found.unwrap_or_else(|| panic!("no step {name:?} in {}", explanation.render()))
}

#[test]
fn a_form_body_that_cannot_be_read_is_the_last_step() {
    let config = config();
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("content-encoding", "gzip"),
        ("content-length", "5"),
    ];
    let explained = explain(&config, &request("POST", "/items/7", &headers), NOW);
    let last = explained.steps.last().unwrap();
    assert_eq!(last.step, "form body", "{}", explained.render());
    assert!(
        last.says[1].starts_with("refused: 400 INVALID_REQUEST"),
        "{last:?}"
    );
    assert_eq!(explained.answer.status, 400);
    // The body may carry `_method`: the request is decided as every method.
    let methods = step(&explained, "methods the request may be served as");
    assert_eq!(methods.says[0], "POST, DELETE, any other method");
}

#[test]
fn a_role_refusal_ends_the_role_step() {
    let config = config();
    let token = tollgate_core::verify::token::SigningKey::new(None, KEY.as_bytes())
        .sign(tollgate_core::verify::token::claims_for(
            "alice",
            "access",
            NOW - 60,
            3600,
        ))
        .unwrap();
    let bearer = format!("Bearer {token}");
    let explained = explain(
        &config,
        &request("GET", "/admin/x", &[("authorization", &bearer)]),
        NOW,
    );
    let verification = step(&explained, "verification");
    assert!(
        verification
            .says
            .contains(&"verifier: the master secrets".to_owned()),
        "{verification:?}"
    );
    let last = explained.steps.last().unwrap();
    assert_eq!(last.step, "role");
    assert_eq!(last.says[0], "user is not among admin");
    assert!(last.says[1].starts_with("refused: 403 PERMISSION_DENIED"));
    assert_eq!(explained.mode.as_deref(), Some("required"));
}

#[test]
fn each_condition_is_shown_held_or_failed() {
    let json = format!(
        r#"{{"secrets": [{{"key": "{KEY}"}}],
            "rules": [{{"prefix": "/orders", "mode": "required", "issuers": ["secrets"],
                        "scopes": ["orders:read"],
                        "claims": [{{"claim": "tenant", "equals": "acme"}}]}}]}}"#
    );
    let config = Config::parse(json.as_bytes(), &|_| None).unwrap();
    let payload = format!(
        r#"{{"sub":"alice","token_type":"access","exp":{},"scope":"orders:read","tenant":"other"}}"#,
        NOW + 600
    );
    let token = tollgate_core::verify::token::sign_raw(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &payload,
        KEY.as_bytes(),
    );
    let bearer = format!("Bearer {token}");
    let explained = explain(
        &config,
        &request("GET", "/orders/1", &[("authorization", &bearer)]),
        NOW,
    );
    let last = explained.steps.last().unwrap();
    assert_eq!(last.step, "conditions", "{}", explained.render());
    assert_eq!(
        last.says[..3],
        [
            "rules[0].issuers: held",
            "rules[0].scopes: held",
            "rules[0].claims: failed"
        ]
    );
    assert!(
        last.says[3].starts_with("refused: 403 PERMISSION_DENIED"),
        "{last:?}"
    );
    assert_eq!(explained.answer.status, 403);
}

#[test]
fn the_host_read_and_the_host_scoped_rule_are_told() {
    let json = format!(
        r#"{{"secrets": [{{"key": "{KEY}"}}], "default_mode": "none",
            "rules": [{{"prefix": "/", "mode": "required", "hosts": ["*.example.com"]}}]}}"#
    );
    let config = Config::parse(json.as_bytes(), &|_| None).unwrap();
    let explained = explain(&config, &request("GET", "/x", &[]), NOW);
    let host = step(&explained, "host (rules are limited to hosts)");
    assert_eq!(host.says, vec!["api.example.com".to_owned()]);
    let mode = step(&explained, "mode");
    assert!(mode.says[0].contains("hosts *.example.com"), "{mode:?}");
    let mut odd = request("GET", "/x", &[]);
    odd.retain(|(n, _)| n != ":authority");
    odd.push((":authority".to_owned(), b"user@api.example.com".to_vec()));
    let refused = explain(&config, &odd, NOW);
    let last = refused.steps.last().unwrap();
    assert_eq!(last.step, "host", "{}", refused.render());
    assert_eq!(refused.answer.status, 400);
}

/// Configuration J with browser sign-in through its provider.
fn sign_in_config() -> Config {
    let mut json = tollgate_testkit::provider::config_j();
    json["oidc"] = serde_json::json!({
        "issuer": "acme", "client_id": "orders", "cluster": "idp",
        "authorization_endpoint": "https://idp.acme.test/auth",
        "token_endpoint": "https://idp.acme.test/token",
        "redirect_path": "/oauth/callback", "logout_path": "/logout",
        "cookie_key_env": "COOKIE_KEYS"
    });
    let env = |name: &str| {
        (name == "COOKIE_KEYS").then(|| "c1:3q2-7wABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGho".to_owned())
    };
    Config::parse(json.to_string().as_bytes(), &env).unwrap()
}

#[test]
fn a_browser_request_is_explained_with_its_session_or_without() {
    use tollgate_core::oidc::{provider_call::Tokens, session};
    let config = sign_in_config();
    let now = tollgate_testkit::now();
    let (_, access) = tollgate_testkit::provider::provider_tokens(now).remove(0);
    let tokens = Tokens {
        access_token: access,
        id_token: None,
        refresh_token: Some("r".into()),
    };
    let set = session::set_cookies(config.oidc.as_ref().unwrap(), &tokens, now).unwrap();
    let jar: Vec<&str> = set.iter().map(|c| c.split(';').next().unwrap()).collect();
    let cookie = format!("theme=dark; {}", jar.join("; "));
    let browser = [("accept", "text/html"), ("cookie", cookie.as_str())];
    let signed_in = explain(&config, &request("GET", "/orders/1", &browser), now);
    let text = signed_in.render();
    assert!(
        step(&signed_in, "session").says[0].starts_with("the session cookie opens"),
        "{text}"
    );
    assert_eq!(signed_in.answer.status, 200, "{text}");
    assert_eq!(
        signed_in.identity.as_ref().unwrap().user.as_deref(),
        Some("carol")
    );
    let upstream = signed_in.upstream.as_ref().unwrap();
    assert!(
        upstream
            .headers
            .contains(&("cookie".to_owned(), "theme=dark".to_owned())),
        "{text}"
    );
    assert!(upstream
        .headers
        .iter()
        .all(|(n, v)| n != "authorization" && !v.contains("tollgate-")));

    let without = explain(
        &config,
        &request("GET", "/orders/1", &[("accept", "text/html")]),
        now,
    );
    assert!(
        step(&without, "session").says[0].starts_with("no cookie"),
        "{}",
        without.render()
    );
    assert_eq!(without.answer.status, 302, "{}", without.render());

    let callback = explain(
        &config,
        &request("GET", "/oauth/callback?code=c&state=s", &browser),
        now,
    );
    assert_eq!(
        (callback.answer.status, callback.rule.as_str()),
        (400, "sign-in")
    );
    assert!(step(&callback, "sign-in").says[0].starts_with("the callback path"));
    let logout = explain(&config, &request("GET", "/logout", &browser), now);
    assert_eq!(logout.answer.status, 302, "{}", logout.render());
    let near = explain(&config, &request("GET", "/Logout", &browser), now);
    assert_eq!(near.answer.status, 400, "{}", near.render());
}
