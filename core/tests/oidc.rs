//! Sign-in's pieces, natively: the configuration, the redirect to the provider, the
//! callback's checks, the code exchange's answer and the session read back.

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::json;

use tollgate_core::decision::{decide, Action, Outcome};
use tollgate_core::oidc::flow::Seen;
use tollgate_core::oidc::random;
use tollgate_core::oidc::start::Transaction;
use tollgate_core::worker::WorkerState;

mod oidc_support;

use oidc_support::*;

#[test]
fn a_browser_without_a_session_goes_to_the_provider_with_pkce() {
    let config = config(json!({}));
    let oidc = config.oidc.as_ref().unwrap();
    assert!(oidc.cookie_secure);
    let (location, cookie) = start(&config, "/orders?page=2");
    assert!(
        location.starts_with("https://idp.test/auth?response_type=code&"),
        "{location}"
    );
    assert_eq!(param(&location, "client_id"), "web");
    assert_eq!(
        param(&location, "redirect_uri"),
        "https://app.test/oauth/callback"
    );
    assert_eq!(param(&location, "scope"), "openid");
    assert_eq!(param(&location, "code_challenge_method"), "S256");
    assert!(cookie.starts_with("__Host-tollgate-signin="));
    let headers = browser("/", Some(&cookie));
    let seen = Seen::read(&headers);
    let transaction = Transaction::open(oidc, &seen.cookies, now()).unwrap();
    assert_eq!(transaction.s, param(&location, "state"));
    assert_eq!(transaction.n, param(&location, "nonce"));
    assert_eq!(
        random::challenge(&transaction.v),
        param(&location, "code_challenge")
    );
    assert_eq!(transaction.r, "https://app.test/orders?page=2");
    // Expired after ten minutes.
    assert!(Transaction::open(oidc, &seen.cookies, now() + 601).is_none());
}

#[test]
fn cookies_are_secure_and_host_prefixed_by_default_and_plain_when_asked() {
    let config = config(json!({}));
    let headers = browser("/", None);
    let decision = decide(&config, &mut WorkerState::default(), &headers, now());
    let Action::Respond(answer, _) = decision.action else {
        panic!()
    };
    let cookie = answer.header("set-cookie").unwrap();
    assert!(cookie.starts_with("__Host-tollgate-signin="), "{cookie}");
    for part in [
        "; Path=/",
        "; HttpOnly",
        "; SameSite=Lax",
        "; Secure",
        "; Max-Age=600",
    ] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    let plain = self::config(json!({"cookie_secure": false}));
    let (_, cookie) = start(&plain, "/");
    assert!(cookie.starts_with("tollgate-signin="), "{cookie}");
}

#[test]
fn api_clients_still_get_a_401() {
    let config = config(json!({}));
    let mut headers = browser("/", None);
    headers.retain(|(n, _)| n != "accept");
    let decision = decide(&config, &mut WorkerState::default(), &headers, now());
    assert!(matches!(decision.outcome, Outcome::Denied(_)));
}

#[test]
fn a_path_a_server_may_read_as_the_callback_or_logout_is_refused() {
    use tollgate_core::oidc::flow::{self, Intercepted};
    use tollgate_core::oidc::SignInEvent;
    let config = config(json!({}));
    let oidc = config.oidc.as_ref().unwrap();
    let (location, cookie) = start(&config, "/");
    let query = format!("?code=c&state={}", param(&location, "state"));
    for path in [
        "/OAuth/Callback",
        "/oauth//callback",
        "//oauth/callback",
        "/oauth/%63allback",
        "/oauth/callback/",
        "/oauth/callback;x=1",
        "/oauth/./callback",
        "/x/../oauth/callback",
        "/oauth%2Fcallback",
        "/LOGOUT",
        "/logout/",
        "/%6cogout",
        // Letters outside ASCII that Java, Go, .NET or Python fold onto ASCII ones.
        "/oauth/callbac%E2%84%AA",
        "/oauth/callback.json",
        "/oauth/callback.html",
        "/logout.json",
        "/OAUTH/CALLBAC%E2%84%AA.JSON",
    ] {
        let headers = browser(&format!("{path}{query}"), Some(&cookie));
        match flow::intercept(oidc, oidc.endpoints(None), &Seen::read(&headers), now()) {
            Intercepted::Answer(answer, event) => {
                assert_eq!(answer.status, 400, "{path}");
                assert_eq!(event, Some(SignInEvent::FailedState), "{path}");
                assert!(!answer.body.contains("code=c"), "{path}");
            }
            other => panic!("{path}: {other:?}"),
        }
    }
    for path in [
        "/oauth/callbacks",
        "/oauth",
        "/oauth/callback/x",
        "/logouts",
        "/",
    ] {
        let headers = browser(&format!("{path}{query}"), Some(&cookie));
        let seen = Seen::read(&headers);
        assert!(
            matches!(
                flow::intercept(oidc, oidc.endpoints(None), &seen, now()),
                Intercepted::Pass
            ),
            "{path}"
        );
    }
}

#[test]
fn a_token_cookie_named_like_sign_ins_own_cookies_is_refused() {
    for name in [
        "TOLLGATE-SESSION",
        "tollgate-signin",
        "__Host-tollgate-refresh",
    ] {
        let mut json = config_json(json!({}));
        json["token_cookie"] = json!(name);
        let error = tollgate_core::config::Config::parse(json.to_string().as_bytes(), &env)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("token_cookie") && error.contains("sign-in"),
            "{name}: {error}"
        );
    }
    let mut json = config_json(json!({}));
    json["token_cookie"] = json!("tollgate-sessions");
    assert!(tollgate_core::config::Config::parse(json.to_string().as_bytes(), &env).is_ok());
}
