//! The properties of one decided request: what reaches the upstream, the access log and
//! the client's answer.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;

/// The properties of one decided request (see [`check_decision`]).
pub(super) fn check_decided(headers: &[(String, Vec<u8>)]) {
    let headers = headers.to_vec();
    let config = config();
    let decision = decide(config, &mut WorkerState::default(), &headers, NOW);
    let texts = request_texts(&headers);
    let identity_names = [
        config.identity_headers.user.as_str(),
        config.identity_headers.kind.as_str(),
        config.identity_headers.role.as_str(),
        config.identity_headers.name.as_str(),
    ];
    match (&decision.action, &decision.outcome) {
        (Action::Forward(edits), outcome) => {
            let upstream = apply(&headers, edits);
            for name in identity_names {
                let values: Vec<&Vec<u8>> = upstream
                    .iter()
                    .filter(|(n, _)| n == name)
                    .map(|(_, v)| v)
                    .collect();
                assert!(values.len() <= 1, "{name} {values:?}");
                for v in values {
                    assert!(v.iter().all(|b| b.is_ascii_graphic()), "{name} {v:?}");
                }
            }
            for (name, _) in &upstream {
                let spelled = name.replace('_', "-");
                if identity_names.contains(&spelled.as_str()) {
                    assert!(
                        identity_names.contains(&name.as_str()),
                        "spoofed {name} reached the upstream"
                    );
                }
            }
            match outcome {
                Outcome::Allowed(identity) => {
                    let holds = |secret: &str| texts.iter().any(|t| t.contains(secret));
                    match identity.kind {
                        CredentialKind::AccessToken => {
                            let user = identity.user.as_deref().unwrap_or_default();
                            assert!(request_holds_token_for(&texts, user), "unverified {user}");
                        }
                        CredentialKind::ApiKey => assert!(holds(SK)),
                        CredentialKind::PublishableKey => assert!(holds(PK)),
                        CredentialKind::Client => assert!(holds(CS)),
                        CredentialKind::Anonymous => {
                            let target = headers
                                .iter()
                                .find(|(n, _)| n == ":path")
                                .map(|(_, v)| path::split_target(v).0)
                                .unwrap_or_default();
                            let readings = path::readings(target).unwrap();
                            let policy = config
                                .rules
                                .policy_for_readings(headers[0].1.as_slice(), &readings);
                            assert_ne!(policy.mode, Mode::Required, "anonymous on {readings:?}");
                        }
                    }
                }
                Outcome::Unchecked | Outcome::Preflight => {
                    for name in identity_names {
                        assert!(upstream.iter().all(|(n, _)| n != name), "{name} on none");
                    }
                }
                other => panic!("forwarded as {other:?}"),
            }
        }
        (Action::Respond(response, edits), outcome) => {
            // The body and the challenge hold no secret. The Location carries the original URL,
            // which may hold anything the client wrote outside a credential parameter, but
            // never a credential parameter.
            let location = response.headers.iter().find(|(n, _)| *n == "location");
            let others: Vec<_> = response
                .headers
                .iter()
                .filter(|(n, _)| *n != "location")
                .collect();
            let echoed = format!("{others:?} {}", response.body);
            for secret in [SK, PK, CS, K] {
                assert!(!echoed.contains(secret), "{echoed}");
            }
            if let Some((_, location)) = location {
                let (_, login_query) = path::split_target(location.as_bytes());
                for param in login_query.into_iter().flat_map(query::params) {
                    let Some(original) = query::percent_decode(param.value) else {
                        continue;
                    };
                    let (_, q) = path::split_target(&original);
                    for inner in q.into_iter().flat_map(query::params) {
                        for name in ["access_token", "client_id", "client_secret"] {
                            assert!(!query::name_is(inner.name, name), "{name} in {location}");
                        }
                    }
                }
            }
            // The body is the fixed one of its denial: nothing of the request in it (a header
            // value that happens to be a piece of the fixed text is no echo).
            if let Outcome::Denied(denial) = outcome {
                let fixed = tollgate_core::response::error(*denial, b"");
                assert_eq!(
                    response.body, fixed.body,
                    "the body holds something of the request"
                );
            }
            // What Envoy's access log reads: the request as the filter leaves it.
            let logged = apply(&headers, edits);
            for edit in edits {
                assert!(
                    matches!(
                        edit,
                        HeaderEdit::SetPath(_)
                            | HeaderEdit::Remove(_)
                            | HeaderEdit::Add("cookie", _)
                    ),
                    "a refusal only removes credentials: {edit:?}"
                );
                if let HeaderEdit::SetPath(p) = edit {
                    let (_, q) = path::split_target(p);
                    for param in q.into_iter().flat_map(query::params) {
                        for name in ["access_token", "client_id", "client_secret"] {
                            assert!(!query::name_is(param.name, name), "{name} kept in {p:?}");
                        }
                    }
                }
            }
            assert_no_credential(&logged, "the access log");
            for (name, _) in &logged {
                assert!(
                    !config.identity_headers.is_spoof(name),
                    "a client's {name} stays in what the access log reads"
                );
            }
        }
    }
}

/// No credential where a server would read one in `headers`: no `Authorization`, and no
/// query parameter, `;` path parameter or cookie whose name reads as a credential name.
pub(super) fn assert_no_credential(headers: &[(String, Vec<u8>)], place: &str) {
    // Only where some server reads a credential: a client may write anything in a header or
    // parameter of another name, and nobody reads it as one.
    let names = ["access_token", "client_id", "client_secret", "session"];
    let reads_as_credential = |raw: &[u8]| {
        let mut name = raw.to_vec();
        for _ in 0..2 {
            name = query::percent_decode(&name).unwrap_or(name);
        }
        let name: Vec<u8> = name
            .split(|&b| b == b'[' || b == 0)
            .next()
            .unwrap_or_default()
            .trim_ascii()
            .iter()
            .map(|b| match b {
                b'.' | b' ' | b'+' | b'-' => b'_',
                _ => b.to_ascii_lowercase(),
            })
            .collect();
        names.iter().any(|n| n.as_bytes() == name.as_slice())
    };
    // A `name=value` pair whose name reads as a credential's, with a value to hold one.
    let holds_credential = |pair: &[u8]| {
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            return false;
        };
        pair.len() > eq + 1 && reads_as_credential(&pair[..eq])
    };
    for (name, value) in headers {
        let holds = match name.as_str() {
            "authorization" => true,
            ":path" => {
                let (path, query) = path::split_target(value);
                let in_query = query
                    .into_iter()
                    .any(|q| q.split(|&b| b == b'&' || b == b';').any(holds_credential));
                let in_path = path
                    .split(|&b| b == b'/')
                    .any(|segment| segment.split(|&b| b == b';').skip(1).any(holds_credential));
                in_query || in_path
            }
            "cookie" => value
                .split(|&b| b == b';' || b == b',')
                .any(holds_credential),
            _ => false,
        };
        assert!(
            !holds,
            "a credential reached {place} in {name}: {headers:?}"
        );
    }
}
