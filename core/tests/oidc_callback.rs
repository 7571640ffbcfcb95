//! Sign-in's callback natively: its state checks, the code exchange and its answer, the
//! session read back, logout, and refused configurations.

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use jwt_simple::prelude::{Claims, Duration, EdDSAKeyPairLike};
use serde_json::json;

use tollgate_core::config::Config;
use tollgate_core::oidc::cookies::Jar;
use tollgate_core::oidc::flow::{self, Intercepted, Pending, Seen};
use tollgate_core::oidc::{refresh, session, SignInEvent};

mod oidc_support;

use oidc_support::*;

fn answered(intercepted: Intercepted) -> (u32, Option<SignInEvent>, String) {
    match intercepted {
        Intercepted::Answer(answer, event) => (answer.status, event, answer.body),
        other => panic!("not answered: {other:?}"),
    }
}

#[test]
fn a_callback_without_the_transactions_state_is_400_without_a_call() {
    let config = config(json!({}));
    let (location, cookie) = start(&config, "/");
    let state = param(&location, "state");
    for (query, cookie) in [
        (format!("code=c&state={state}"), None),
        ("code=c&state=other".to_owned(), Some(cookie.as_str())),
        ("code=c".to_owned(), Some(cookie.as_str())),
        (
            format!("code=c&state={state}"),
            Some("__Host-tollgate-signin=k1.AAAA"),
        ),
    ] {
        let (status, event, body) = answered(callback(&config, &query, cookie));
        assert_eq!(
            (status, event),
            (400, Some(SignInEvent::FailedState)),
            "{query}"
        );
        assert!(body.contains("<h1>"));
    }
    // Another sign-in's transaction does not match this state either.
    let (_, other) = start(&config, "/");
    let (status, ..) = answered(callback(
        &config,
        &format!("code=c&state={state}"),
        Some(&other),
    ));
    assert_eq!(status, 400);
}

#[test]
fn a_provider_error_is_a_page_and_no_call() {
    let config = config(json!({}));
    let (location, cookie) = start(&config, "/");
    let state = param(&location, "state");
    let query = format!("error=access_denied&error_description=%3Cscript%3E&state={state}");
    let (status, event, body) = answered(callback(&config, &query, Some(&cookie)));
    assert_eq!((status, event), (401, Some(SignInEvent::FailedProvider)));
    assert!(!body.contains("script"));
}

#[test]
fn the_code_is_exchanged_with_the_verifier() {
    let config = config(json!({}));
    let (pending, body, headers) = exchange(&config);
    let Pending::Exchange { transaction, .. } = &pending else {
        panic!()
    };
    let body = String::from_utf8(body).unwrap();
    assert!(body.starts_with("grant_type=authorization_code&code=the-code&redirect_uri=https%3A%2F%2Fapp.test%2Foauth%2Fcallback&code_verifier="), "{body}");
    assert!(body.contains(&transaction.v));
    assert!(
        body.ends_with("&client_id=web"),
        "a public client names itself: {body}"
    );
    let header = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| *k == n)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header(":path").as_deref(), Some("/token"));
    assert_eq!(header(":authority").as_deref(), Some("idp.test"));
    assert_eq!(header(":method").as_deref(), Some("POST"));
    assert_eq!(header("content-length"), Some(body.len().to_string()));
    assert_eq!(header("authorization"), None);
    // A confidential client authenticates with HTTP Basic.
    let confidential = self::config(json!({"client_secret_env": "CLIENT_SECRET"}));
    let (_, body, headers) = exchange(&confidential);
    assert!(!String::from_utf8(body).unwrap().contains("client_id"));
    let basic = headers.iter().find(|(k, _)| *k == "authorization").unwrap();
    assert_eq!(basic.1, "Basic d2ViOmNsaWVudC1zZWNyZXQtdmFsdWU=");
}

#[test]
fn a_good_answer_sets_the_session_and_returns_the_browser() {
    let config = config(json!({}));
    let oidc = config.oidc.as_ref().unwrap();
    let (pending, ..) = exchange(&config);
    let Pending::Exchange { transaction, .. } = &pending else {
        panic!()
    };
    let access = access_token("alice", now() + 300);
    let answer = json!({
        "access_token": access, "refresh_token": "refresh-token-value",
        "id_token": id_token(&transaction.n, "web"), "token_type": "Bearer"
    });
    let (response, event) = finish(&config, pending.clone(), Some("200"), &answer.to_string());
    assert_eq!(event, SignInEvent::Completed);
    assert_eq!(response.status, 302);
    assert_eq!(
        response.header("location"),
        Some("https://app.test/orders?page=2")
    );
    let cookies: Vec<&str> = response
        .headers
        .iter()
        .filter(|(n, _)| *n == "set-cookie")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(cookies.len(), 3);
    assert!(cookies
        .iter()
        .all(|c| c.len() <= 4096 && c.contains("HttpOnly")));
    assert!(cookies
        .iter()
        .any(|c| c.starts_with("__Host-tollgate-signin=;") && c.contains("Max-Age=0")));
    assert!(!format!("{response:?}").contains("token-value"));
    // The session reads back as the request's bearer token, and leaves the upstream.
    let jar: Vec<String> = cookies
        .iter()
        .filter(|c| !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap().to_owned())
        .collect();
    let cookie = format!("theme=dark; {}", jar.join("; "));
    let headers = browser("/orders", Some(&cookie));
    let session =
        refresh::session_view(oidc, &Seen::read(&headers), now(), &mut Default::default()).unwrap();
    let sealed = session.refresh_cookie.unwrap();
    let opened = session::open_kept(oidc, sealed, now()).unwrap();
    assert_eq!(opened.r.as_deref(), Some("refresh-token-value"));
    let read = session.session();
    assert_eq!(read.cookie, Some(&b"theme=dark"[..]));
    assert_eq!(read.token, Some(access.as_str()));
    let kept = session::kept(oidc, &Seen::read(&headers).cookies, now()).unwrap();
    assert_eq!(kept.r.as_deref(), Some("refresh-token-value"));
    // A tampered session cookie is no session (its cookies still leave the upstream).
    let tampered = cookie.replacen("tollgate-session=k1.", "tollgate-session=k1.A", 1);
    let headers = browser("/orders", Some(&tampered));
    let session =
        refresh::session_view(oidc, &Seen::read(&headers), now(), &mut Default::default()).unwrap();
    assert_eq!(session.token, None);
    assert_eq!(session.cookie.as_deref(), Some(&b"theme=dark"[..]));
    assert!(session.refresh_cookie.is_none());
    // The request's own Authorization header wins: the session is not added beside it.
    let mut headers = browser("/orders", Some(&cookie));
    headers.push(("authorization".into(), b"Bearer mine".to_vec()));
    let session =
        refresh::session_view(oidc, &Seen::read(&headers), now(), &mut Default::default()).unwrap();
    assert_eq!(session.token, None);
    assert_eq!(session.cookie.as_deref(), Some(&b"theme=dark"[..]));
}

#[test]
fn a_bad_id_token_or_a_failed_exchange_completes_nothing() {
    let config = config(json!({}));
    let (pending, ..) = exchange(&config);
    let Pending::Exchange { transaction, .. } = &pending else {
        panic!()
    };
    let nonce = transaction.n.clone();
    for (id, why) in [
        (id_token("another-nonce", "web"), "nonce"),
        (id_token(&nonce, "another-client"), "audience"),
        (id_token(&nonce, "web").replace('.', ".x"), "malformed"),
    ] {
        let answer = json!({"access_token": access_token("alice", now() + 300), "id_token": id});
        let (response, event) = finish(&config, pending.clone(), Some("200"), &answer.to_string());
        assert_eq!(
            (response.status, event),
            (401, SignInEvent::FailedIdToken),
            "{why}"
        );
    }
    let answer = json!({"access_token": "secret-access"}).to_string();
    for (status, body) in [
        (None, ""),
        (Some("500"), answer.as_str()),
        (Some("200"), "not json"),
    ] {
        let (response, event) = finish(&config, pending.clone(), status, body);
        assert_eq!(
            (response.status, event),
            (503, SignInEvent::FailedTokenEndpoint)
        );
        assert!(response
            .header("content-type")
            .unwrap()
            .starts_with("text/html"));
        assert!(!response.body.contains("secret"));
        // The sign-in is over: its cookie cannot drive another exchange.
        let cleared = response.headers.iter().any(|(n, v)| {
            *n == "set-cookie"
                && v.starts_with("__Host-tollgate-signin=;")
                && v.contains("Max-Age=0")
        });
        assert!(cleared, "{:?}", response.headers);
    }
}

/// An ID token for the audiences `audiences` naming `azp` (none: no `azp` claim).
fn id_token_for(nonce: &str, audiences: &[&str], azp: Option<&str>) -> String {
    let mut custom = json!({ "nonce": nonce });
    if let Some(azp) = azp {
        custom["azp"] = json!(azp);
    }
    let claims = Claims::with_custom_claims(custom, Duration::from_mins(5))
        .with_issuer(ISS)
        .with_audiences(audiences.iter().map(|a| a.to_string()).collect())
        .with_subject("alice");
    pair().sign(claims).unwrap()
}

#[test]
fn an_id_token_for_another_authorized_party_is_refused() {
    let config = config(json!({}));
    let (pending, ..) = exchange(&config);
    let Pending::Exchange { transaction, .. } = &pending else {
        panic!()
    };
    let nonce = transaction.n.clone();
    for (audiences, azp, status) in [
        (&["web", "other"][..], Some("other"), 401),
        (&["web", "other"][..], None, 401),
        (&["web"][..], Some("other"), 401),
        (&["web", "other"][..], Some("web"), 302),
        (&["web"][..], None, 302),
    ] {
        let id = id_token_for(&nonce, audiences, azp);
        let answer = json!({"access_token": access_token("alice", now() + 300), "id_token": id});
        let (response, _) = finish(&config, pending.clone(), Some("200"), &answer.to_string());
        assert_eq!(response.status, status, "{audiences:?} {azp:?}");
    }
}

#[test]
fn return_urls_stay_on_the_origin() {
    let origin = "https://app.test";
    assert_eq!(
        flow::same_origin("https://app.test/a?b", origin),
        "https://app.test/a?b"
    );
    for other in [
        "https://app.test.evil/a",
        "https://app.test//evil/a",
        "https://app.test@evil/",
        "http://app.test/a",
        "/a",
        "",
    ] {
        assert_eq!(
            flow::same_origin(other, origin),
            "https://app.test/",
            "{other}"
        );
    }
}

#[test]
fn another_site_cannot_sign_the_browser_out() {
    let config = config(json!({}));
    let oidc = config.oidc.as_ref().unwrap();
    for (site, status) in [
        ("cross-site", 403),
        ("same-site", 403),
        ("same-origin", 302),
        ("none", 302),
    ] {
        let mut headers = browser("/logout", None);
        headers.push(("sec-fetch-site".into(), site.as_bytes().to_vec()));
        match flow::intercept(oidc, oidc.endpoints(None), &Seen::read(&headers), now()) {
            Intercepted::Answer(answer, _) => {
                assert_eq!(answer.status, status, "{site}");
                let clears = answer.headers.iter().any(|(n, _)| *n == "set-cookie");
                assert_eq!(clears, status == 302, "{site}");
            }
            other => panic!("{site}: {other:?}"),
        }
    }
}

#[test]
fn logout_clears_the_session_and_ends_it_at_the_provider() {
    let config = config(json!({
        "end_session_endpoint": "https://idp.test/session/end",
        "post_logout_redirect_uri": "https://app.test/bye"
    }));
    let headers = browser("/logout", None);
    let seen = Seen::read(&headers);
    let oidc = config.oidc.as_ref().unwrap();
    let intercepted = flow::intercept(oidc, oidc.endpoints(None), &seen, now());
    let (status, event, _) = answered(intercepted);
    assert_eq!((status, event), (302, Some(SignInEvent::LoggedOut)));
    let with_revocation =
        self::config(json!({"revocation_endpoint": "https://idp.test/token/revocation"}));
    let oidc = with_revocation.oidc.as_ref().unwrap();
    let tokens = tollgate_core::oidc::provider_call::Tokens {
        access_token: "a".into(),
        id_token: Some("i.d.t".into()),
        refresh_token: Some("r".into()),
    };
    let set = session::set_cookies(oidc, &tokens, now()).unwrap();
    let cookie: Vec<&str> = set.iter().map(|c| c.split(';').next().unwrap()).collect();
    let headers = browser("/logout", Some(&cookie.join("; ")));
    match flow::intercept(oidc, oidc.endpoints(None), &Seen::read(&headers), now()) {
        Intercepted::Call(call, Pending::Logout { answer }) => {
            assert_eq!(
                String::from_utf8(call.body).unwrap(),
                "token=r&token_type_hint=refresh_token&client_id=web"
            );
            assert_eq!(answer.header("location"), Some("/"));
            let clears = answer
                .headers
                .iter()
                .filter(|(n, v)| *n == "set-cookie" && v.contains("Max-Age=0"));
            assert_eq!(clears.count(), Jar::ALL.len());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_oidc_configurations_name_the_key_and_never_the_secret() {
    for (oidc, key) in [
        (json!({"issuer": "nobody"}), "oidc.issuer"),
        (
            json!({"authorization_endpoint": "javascript:x"}),
            "oidc.authorization_endpoint",
        ),
        (json!({"token_endpoint": "/token"}), "oidc.token_endpoint"),
        (json!({"redirect_path": "/a/../b"}), "oidc.redirect_path"),
        (
            json!({"logout_path": "/oauth/callback"}),
            "oidc.logout_path",
        ),
        (json!({"cookie_key_env": "UNSET"}), "oidc.cookie_key_env"),
        (
            json!({"client_secret_env": "UNSET"}),
            "oidc.client_secret_env",
        ),
        (json!({"session_seconds": 5}), "oidc.session_seconds"),
        (json!({"scopes": ["a b"]}), "oidc.scopes[0]"),
        (json!({"extra": 1}), "oidc.extra"),
    ] {
        let json = config_json(oidc.clone()).to_string();
        let e = Config::parse(json.as_bytes(), &env).unwrap_err();
        assert_eq!(e.key, key, "{oidc}: {e}");
    }
    let weak = |name: &str| (name == "COOKIE_KEYS").then(|| "k1:c2VjcmV0LXNob3J0".to_owned());
    let json = config_json(json!({})).to_string();
    let e = Config::parse(json.as_bytes(), &weak).unwrap_err();
    assert_eq!(e.key, "oidc.cookie_key_env");
    assert!(!e.to_string().contains("c2VjcmV0"), "{e}");
}

#[test]
fn a_refresh_keeps_what_the_provider_does_not_renew() {
    let config = config(json!({"client_secret_env": "CLIENT_SECRET"}));
    let oidc = config.oidc.as_ref().unwrap();
    let kept = session::Kept {
        r: Some("old-refresh".into()),
        i: Some("old.id.token".into()),
    };
    let call = refresh::call(oidc, oidc.endpoints(None).unwrap(), &kept).unwrap();
    assert_eq!(
        String::from_utf8(call.body).unwrap(),
        "grant_type=refresh_token&refresh_token=old-refresh"
    );
    let new_access = access_token("alice", now() + 300);
    let answer = json!({"access_token": new_access, "token_type": "Bearer"}).to_string();
    let provider = flow::Answer {
        status: Some("200"),
        body: answer.as_bytes(),
    };
    let (token, cookies) = refresh::renewed(oidc, &kept, provider, now()).unwrap();
    assert_eq!(token, new_access);
    let jar: Vec<&str> = cookies
        .iter()
        .map(|c| c.split(';').next().unwrap())
        .collect();
    let headers = browser("/", Some(&jar.join("; ")));
    let seen = Seen::read(&headers);
    assert_eq!(session::kept(oidc, &seen.cookies, now()).unwrap(), kept);
    let opened = &mut Default::default();
    let view = refresh::session_view(oidc, &seen, now(), opened).unwrap();
    assert_eq!(view.token.as_deref(), Some(new_access.as_str()));
    // A refused refresh (invalid_grant) ends the session.
    let refused = flow::Answer {
        status: Some("400"),
        body: br#"{"error":"invalid_grant"}"#,
    };
    assert!(refresh::renewed(oidc, &kept, refused, now()).is_none());
    assert!(refresh::ended(oidc).iter().all(|c| c.contains("Max-Age=0")));
    assert!(refresh::call(
        oidc,
        oidc.endpoints(None).unwrap(),
        &session::Kept::default()
    )
    .is_none());
}
