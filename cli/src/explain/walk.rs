//! The steps of `decide`, told one by one: the readings, the rule, the credential and what
//! comes of it.

use tollgate_core::config::Config;
use tollgate_core::credential::spellings::{self, CredentialNames, Found, Spelling};
use tollgate_core::credential::{
    self, Locations, Presented, Source, CLIENT_ID_PARAM, CLIENT_SECRET_PARAM,
};
use tollgate_core::denial::{BadRequest, Denial};
use tollgate_core::identity::Identity;
use tollgate_core::request::path::{self, PathError};
use tollgate_core::request::{query, RequestView};
use tollgate_core::rules::{Mode, Policy};
use tollgate_core::verify::token::is_token_shaped;

use super::{refusal, rule_name, text, Predicted, Step};

/// The steps of `decide`, told; returns what they lead to.
pub(super) fn walk(
    config: &Config,
    headers: &[(String, Vec<u8>)],
    now: u64,
    steps: &mut Vec<Step>,
    mode_out: &mut Option<String>,
) -> Predicted {
    let mut say = |step: &'static str, says: Vec<String>| steps.push(Step { step, says });
    // 1. Identity headers the client sent.
    let request = RequestView::new(headers, |name| config.identity_headers.is_spoof(name));
    say(
        "identity headers sent by the client",
        match request.spoofed.as_slice() {
            [] => vec!["none".to_owned()],
            names => names.iter().map(|n| format!("{n}: removed")).collect(),
        },
    );
    // 2. The path and its readings.
    let Some(target) = request.target else {
        let denial = BadRequest::UnsafePath(PathError::Missing).into();
        say("path", vec!["no :path".to_owned(), refusal(denial)]);
        return Predicted::Refused(denial, None);
    };
    let (raw_path, query) = path::split_target(target);
    let readings = match path::readings(raw_path) {
        Ok(readings) => readings,
        Err(e) => {
            let denial = BadRequest::UnsafePath(e).into();
            say(
                "path",
                vec![
                    format!("{:?} cannot be read: {e}", text(raw_path)),
                    refusal(denial),
                ],
            );
            return Predicted::Refused(denial, None);
        }
    };
    let at = Locations {
        query_param: &config.token_query_param,
        cookie: &config.token_cookie,
    };
    let names = CredentialNames::new(at);
    let find = || spellings::find(names, raw_path, query, &request.cookies);
    let query_overrides = spellings::query_method_overrides(query);
    // 3. A CORS preflight.
    if request.is_cors_preflight(true) && query_overrides.is_empty() {
        let found = find();
        if found.encoded_in_path {
            let denial = BadRequest::UnreadCredential.into();
            say(
                "CORS preflight",
                vec![
                    "a credential name behind an encoded separator in the path".to_owned(),
                    refusal(denial),
                ],
            );
            return Predicted::Refused(denial, None);
        }
        say(
            "CORS preflight",
            vec![
                "a real preflight: on without a credential (any it carries is removed)".to_owned(),
            ],
        );
        return Predicted::Preflight;
    }
    // 4. The rule of every reading and method; the strictest gives the mode.
    let Some(methods) = request.methods(&query_overrides) else {
        let denial = BadRequest::MethodOverride.into();
        say(
            "methods",
            vec![
                "a method override that is not a method token, or too many".to_owned(),
                refusal(denial),
            ],
        );
        return Predicted::Refused(denial, None);
    };
    let methods: Vec<&[u8]> = methods.iter().map(Vec::as_slice).collect();
    say(
        "methods the request may be served as",
        vec![methods
            .iter()
            .map(|m| text(m))
            .collect::<Vec<_>>()
            .join(", ")],
    );
    let mut readings_said = Vec::new();
    for reading in readings.iter() {
        for method in &methods {
            let policy = config.rules.policy_for_path(method, reading);
            readings_said.push(format!(
                "{reading} as {}: {} by {}",
                text(method),
                policy.mode.as_str(),
                rule_name(config, policy.rule)
            ));
        }
    }
    say("path readings and the rule each matches", readings_said);
    let policy = config.rules.policy_for_request(&methods, &readings);
    *mode_out = Some(policy.mode.as_str().to_owned());
    let mut mode_said = vec![format!(
        "{} (the strictest), from {}",
        policy.mode.as_str(),
        rule_name(config, policy.rule)
    )];
    if policy.mode == Mode::Required {
        mode_said.push(format!("roles allowed: {}", policy.roles.join(", ")));
    }
    if policy.mode == Mode::None {
        mode_said.push("none: the request goes on untouched and unchecked".to_owned());
        say("mode", mode_said);
        return Predicted::Unchecked(policy.rule);
    }
    say("mode", mode_said);
    // 5. The one credential.
    let rule = policy.rule;
    let found = find();
    let mut where_said = vec![sent_text(&request, query, at)];
    where_said.extend(found_text(&found));
    if found.encoded_in_path {
        let denial = BadRequest::UnreadCredential.into();
        where_said.push(refusal(denial));
        say("credential", where_said);
        return Predicted::Refused(denial, rule);
    }
    let presented = match credential::extract(&request, query, at) {
        Ok(presented) => presented,
        Err(denial) => {
            where_said.push(refusal(denial));
            say("credential", where_said);
            return Predicted::Refused(denial, rule);
        }
    };
    where_said.insert(0, presented_text(presented.as_ref(), at));
    if presented.is_some() && found.unread() {
        let denial = BadRequest::UnreadCredential.into();
        where_said.push(refusal(denial));
        say("credential", where_said);
        return Predicted::Refused(denial, rule);
    }
    say("credential", where_said);
    // 6. and 7. No credential, or its verification; then the role.
    let identity = match &presented {
        None if policy.mode == Mode::Optional => {
            say(
                "verification",
                vec!["nothing to verify: optional, on as anonymous".to_owned()],
            );
            Identity::anonymous()
        }
        None => {
            let denial = Denial::MissingCredentials;
            say(
                "verification",
                vec!["nothing to verify".to_owned(), refusal(denial)],
            );
            return Predicted::Refused(denial, rule);
        }
        Some(presented) => {
            let (said, result) = super::verify::verify(config, presented, now);
            let failed = result.as_ref().err().map(|denial| refusal(*denial));
            say("verification", said.into_iter().chain(failed).collect());
            match result {
                Ok(identity) => identity,
                Err(denial) => return Predicted::Refused(denial, rule),
            }
        }
    };
    if !role_passes(&policy, &identity) {
        let denial = Denial::PermissionDenied;
        say(
            "role",
            vec![
                format!("{} is not among {}", identity.role, policy.roles.join(", ")),
                refusal(denial),
            ],
        );
        return Predicted::Refused(denial, rule);
    }
    say(
        "role",
        vec![match policy.mode {
            Mode::Required => format!("{} is allowed", identity.role),
            _ => format!("{} (an optional path allows any)", identity.role),
        }],
    );
    Predicted::Allowed(identity, rule)
}

fn role_passes(policy: &Policy<'_>, identity: &Identity) -> bool {
    policy.mode != Mode::Required || identity.roles().any(|role| policy.allows_role(role))
}

fn presented_text(presented: Option<&Presented<'_>>, at: Locations<'_>) -> String {
    match presented {
        None => "none".to_owned(),
        Some(Presented::Bearer { value, source }) => {
            let place = match source {
                Source::Header => "the Authorization header (Bearer)".to_owned(),
                Source::Query => format!("the query parameter {}", at.query_param),
                Source::Cookie => format!("the cookie {}", at.cookie),
            };
            let kind = if is_token_shaped(value) {
                "a token"
            } else {
                "a key"
            };
            format!("{kind} in {place}: {value}")
        }
        Some(Presented::Client { id, .. }) => {
            format!(
                "client credentials: client_id {:?} and a client_secret",
                text(id)
            )
        }
    }
}

/// Every place the request sends a credential the filter reads, and how often.
fn sent_text(request: &RequestView<'_>, query: Option<&[u8]>, at: Locations<'_>) -> String {
    let params = || query::params(query.unwrap_or_default());
    let count = |name: &str| params().filter(|p| query::name_is(p.name, name)).count();
    let names = CredentialNames::new(at);
    let cookies = request
        .cookies
        .iter()
        .flat_map(|header| header.split(|&b| b == b';'))
        .filter_map(|pair| pair.split(|&b| b == b'=').next())
        .filter(|name| names.cookie(name.trim_ascii()) == Spelling::Read)
        .count();
    let places = [
        ("the Authorization header", request.authorization_count),
        ("the query parameter {}", count(at.query_param)),
        ("client_id", count(CLIENT_ID_PARAM)),
        ("client_secret", count(CLIENT_SECRET_PARAM)),
        ("the cookie {}", cookies),
    ];
    let sent: Vec<String> = places
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(place, n)| {
            let place = place
                .replace("parameter {}", &format!("parameter {}", at.query_param))
                .replace("cookie {}", &format!("cookie {}", at.cookie));
            if *n > 1 {
                format!("{place} ({n} times)")
            } else {
                place
            }
        })
        .collect();
    match sent.as_slice() {
        [] => "sent: nothing the filter reads as a credential".to_owned(),
        _ => format!("sent: {}", sent.join(", ")),
    }
}

fn found_text(found: &Found) -> Vec<String> {
    let mut said = Vec::new();
    let flags = [
        (
            found.unread_param,
            "a query parameter in a spelling the filter does not read",
        ),
        (
            found.unread_cookie,
            "a cookie in a spelling the filter does not read",
        ),
        (
            found.path_param,
            "a ; path parameter named like a credential",
        ),
        (
            found.encoded_in_path,
            "a credential behind an encoded separator in the path",
        ),
    ];
    for (set, what) in flags {
        if set {
            said.push(format!("also sent: {what}"));
        }
    }
    said
}
