//! The sign-in tests' steps up to the code exchange and its answer.

#![allow(dead_code)]

use jwt_simple::prelude::{Claims, Duration, EdDSAKeyPairLike};
use serde_json::json;

use tollgate_core::config::Config;
use tollgate_core::oidc::flow::{self, Intercepted, Pending, Seen};
use tollgate_core::oidc::SignInEvent;

use super::{browser, now, pair, param, start, ISS};

/// The provider's callback with `query`, the browser sending `cookie`.
pub fn callback(config: &Config, query: &str, cookie: Option<&str>) -> Intercepted {
    let headers = browser(&format!("/oauth/callback?{query}"), cookie);
    let oidc = config.oidc.as_ref().unwrap();
    flow::intercept(oidc, oidc.endpoints(None), &Seen::read(&headers), now())
}

/// A sign-in up to the code exchange: the call and what the request waits with.
pub fn exchange(config: &Config) -> (flow::Pending, Vec<u8>, Vec<(&'static str, String)>) {
    let (location, cookie) = start(config, "/orders?page=2");
    let state = param(&location, "state");
    match callback(
        config,
        &format!("code=the-code&state={state}"),
        Some(&cookie),
    ) {
        Intercepted::Call(call, pending) => (pending, call.body, call.headers),
        other => panic!("no call: {other:?}"),
    }
}

/// An ID token of the issuer for `audience` with `nonce`.
pub fn id_token(nonce: &str, audience: &str) -> String {
    let claims = Claims::with_custom_claims(json!({ "nonce": nonce }), Duration::from_mins(5))
        .with_issuer(ISS)
        .with_audience(audience)
        .with_subject("alice");
    pair().sign(claims).unwrap()
}

/// The exchange's `pending` sign-in answered by the provider.
pub fn finish(
    config: &Config,
    pending: Pending,
    status: Option<&str>,
    body: &str,
) -> (tollgate_core::response::LocalResponse, SignInEvent) {
    let oidc = config.oidc.as_ref().unwrap();
    let issuer = config.issuers.list.first();
    flow::on_answer(
        oidc,
        (issuer, None),
        pending,
        flow::Answer {
            status,
            body: body.as_bytes(),
        },
        60,
        now(),
    )
}

/// A session whose access token expired, and the cookies that carry it.
pub fn expired_session(config: &Config) -> String {
    let (pending, ..) = exchange(config);
    let Pending::Exchange { transaction, .. } = &pending else {
        panic!()
    };
    let answer = json!({
        "access_token": super::access_token("alice", now() - 600), "refresh_token": "first-refresh",
        "id_token": id_token(&transaction.n, "web"), "token_type": "Bearer"
    });
    let (response, _) = finish(config, pending.clone(), Some("200"), &answer.to_string());
    let jar: Vec<String> = response
        .headers
        .iter()
        .filter(|(n, v)| *n == "set-cookie" && !v.contains("Max-Age=0"))
        .map(|(_, v)| v.split(';').next().unwrap().to_owned())
        .collect();
    jar.join("; ")
}
