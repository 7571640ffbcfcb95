//! What a session may hold, and what needs the provider's endpoints: only the sign-in
//! issuer's access tokens, well formed (at the callback, at refresh, and when a cookie is
//! opened); no code exchange, and no half logout, before discovery has answered.

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use jwt_simple::prelude::{Claims, Duration, EdDSAKeyPairLike};
use serde_json::json;

use tollgate_core::oidc::flow::{self, Intercepted, Pending, Seen};
use tollgate_core::oidc::provider_call::Tokens;
use tollgate_core::oidc::{refresh, session, SignInEvent};

mod oidc_support;

use oidc_support::*;

#[test]
fn a_session_holds_only_the_sign_in_issuers_access_token() {
    let config = config(json!({}));
    let oidc = config.oidc.as_ref().unwrap();
    let (pending, ..) = exchange(&config);
    let Pending::Exchange { transaction, .. } = &pending else {
        panic!()
    };
    // Another issuer's token (a provider mixing up issuers), and an opaque one.
    let foreign = pair()
        .sign(
            Claims::create(Duration::from_mins(5))
                .with_issuer("https://other.test")
                .with_subject("admin"),
        )
        .unwrap();
    // The issuer's token with a character a bearer credential cannot hold: the decision
    // takes a session's token as checked, so it is checked before it is one.
    let unreadable = format!(
        "{}!",
        pair()
            .sign(Claims::create(Duration::from_mins(5)).with_issuer(ISS))
            .unwrap()
    );
    for access in [foreign.as_str(), "opaque-token", unreadable.as_str()] {
        let answer = json!({"access_token": access, "id_token": id_token(&transaction.n, "web")})
            .to_string();
        let (response, event) = finish(&config, pending.clone(), Some("200"), &answer);
        assert_eq!(
            (response.status, event),
            (401, SignInEvent::FailedIdToken),
            "{access}"
        );
        assert!(!response
            .headers
            .iter()
            .any(|(_, v)| v.contains("tollgate-session=")));
        let kept = session::Kept {
            r: Some("r".into()),
            i: None,
        };
        let provider = flow::Answer {
            status: Some("200"),
            body: answer.as_bytes(),
        };
        assert!(
            refresh::renewed(oidc, &kept, provider, now()).is_none(),
            "{access}"
        );
        // A session cookie sealed with such a token (before this check, or by another
        // deployment sharing the keys) opens to no session.
        let tokens = Tokens {
            access_token: access.to_owned(),
            id_token: None,
            refresh_token: None,
        };
        let set = session::set_cookies(oidc, &tokens, now()).unwrap();
        let jar: Vec<&str> = set.iter().map(|c| c.split(';').next().unwrap()).collect();
        let headers = browser("/orders", Some(&jar.join("; ")));
        let opened = &mut Default::default();
        let view = refresh::session_view(oidc, &Seen::read(&headers), now(), opened).unwrap();
        assert!(view.token.is_none(), "{access}");
    }
}

#[test]
fn before_discovery_answers_a_callback_gets_a_page_and_keeps_its_code_unused() {
    let config =
        config(json!({"discovery": true, "authorization_endpoint": null, "token_endpoint": null}));
    let oidc = config.oidc.as_ref().unwrap();
    // A browser sent to the provider by another Envoy, back on one whose discovery has not
    // answered: the state is checked first, then a page to try again; no call, and the
    // sign-in cookie stays (the code is still unused).
    let started = config_with_endpoints();
    let (location, cookie) = start(&started, "/orders");
    let query = format!("code=abc&state={}", param(&location, "state"));
    let headers = browser(&format!("/oauth/callback?{query}"), Some(&cookie));
    match flow::intercept(oidc, None, &Seen::read(&headers), now()) {
        Intercepted::Answer(response, event) => {
            assert_eq!(response.status, 503);
            assert_eq!(event, Some(SignInEvent::FailedDiscovery));
            assert!(response
                .headers
                .iter()
                .all(|(name, _)| *name != "set-cookie"));
        }
        _ => panic!("the provider was called without endpoints"),
    }
    let headers = browser("/oauth/callback?code=abc&state=forged", Some(&cookie));
    match flow::intercept(oidc, None, &Seen::read(&headers), now()) {
        Intercepted::Answer(response, event) => {
            assert_eq!(
                (response.status, event),
                (400, Some(SignInEvent::FailedState))
            );
        }
        _ => panic!("a forged state was not refused first"),
    }
}

/// The same client and cookie keys with the endpoints configured: the sign-in another Envoy
/// started.
fn config_with_endpoints() -> tollgate_core::config::Config {
    config(json!({}))
}

/// Before discovery has answered, a logout that could not revoke the refresh token or end
/// the provider's session gets a page to try again (the cookies stay); with those endpoints
/// in the configuration, it goes on with them.
#[test]
fn before_discovery_answers_a_logout_is_whole_or_not_at_all() {
    let discovering =
        json!({"discovery": true, "authorization_endpoint": null, "token_endpoint": null});
    let config = config(discovering.clone());
    let oidc = config.oidc.as_ref().unwrap();
    let tokens = Tokens {
        access_token: access_token("alice", now() + 300),
        id_token: Some("id.token.value".into()),
        refresh_token: Some("refresh-token-value".into()),
    };
    let set = session::set_cookies(oidc, &tokens, now()).unwrap();
    let jar: Vec<&str> = set.iter().map(|c| c.split(';').next().unwrap()).collect();
    let headers = browser("/logout", Some(&jar.join("; ")));
    match flow::intercept(oidc, None, &Seen::read(&headers), now()) {
        Intercepted::Answer(response, event) => {
            assert_eq!(
                (response.status, event),
                (503, Some(SignInEvent::FailedDiscovery))
            );
            assert!(response
                .headers
                .iter()
                .all(|(name, _)| *name != "set-cookie"));
        }
        _ => panic!("a logout went on without the provider's endpoints"),
    }
    let mut named = discovering;
    named["revocation_endpoint"] = json!("https://idp.test/revoke");
    named["end_session_endpoint"] = json!("https://idp.test/bye");
    let config = self::config(named);
    let oidc = config.oidc.as_ref().unwrap();
    match flow::intercept(oidc, None, &Seen::read(&headers), now()) {
        Intercepted::Call(call, Pending::Logout { answer }) => {
            assert!(call
                .headers
                .iter()
                .any(|(n, v)| *n == ":path" && v == "/revoke"));
            let to = answer
                .headers
                .iter()
                .find(|(n, _)| *n == "location")
                .unwrap();
            assert!(to.1.starts_with("https://idp.test/bye?"), "{}", to.1);
        }
        _ => panic!("the configured endpoints were not used"),
    }
}
