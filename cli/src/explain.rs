//! `tollgate explain`: one request through the real decision, told step by step.
//!
//! The steps call the core's own functions in the order `decide` calls them (the readings of
//! the path, the rule of each, the credential's place, its verification); the answer, the
//! edits and the identity are `decide`'s own. [`Explanation::agrees`] says whether the steps
//! predicted what `decide` did: if not, the command says so and exits 3.

use serde::Serialize;
use tollgate_core::config::Config;
use tollgate_core::credential::spellings::{self, CredentialNames, Found, Spelling};
use tollgate_core::credential::{
    self, Locations, Presented, Source, CLIENT_ID_PARAM, CLIENT_SECRET_PARAM,
};
use tollgate_core::decision::{apply_edits, decide, Action, Decision, HeaderEdit, Outcome};
use tollgate_core::denial::{BadCredential, BadRequest, Denial};
use tollgate_core::identity::Identity;
use tollgate_core::request::path::{self, PathError};
use tollgate_core::request::{query, RequestView};
use tollgate_core::rules::{Mode, Policy};
use tollgate_core::verify::issuer::IssuerCheck;
use tollgate_core::verify::token::{is_token_shaped, TokenError};
use tollgate_core::verify::{jws, signer, Signer};
use tollgate_core::worker::WorkerState;

/// What happened to one request, step by step. Strings may hold credentials until
/// [`crate::redact::Redactor::clean`] has been over the rendered text.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub request: Shown,
    /// Each step in the order the filter takes them.
    pub steps: Vec<Step>,
    /// The mode that applied (`none`, `optional`, `required`), when the path was read.
    pub mode: Option<String>,
    /// `rules[N]` or `default`, with the rule as configured.
    pub rule: String,
    pub identity: Option<IdentityShown>,
    /// What the upstream would get, when the request goes on.
    pub upstream: Option<Shown>,
    pub answer: Answer,
    /// Whether the steps predicted `decide`'s outcome.
    pub agrees: bool,
    /// What the steps predicted, when they disagree.
    pub disagreement: Option<String>,
}

/// A request as the filter or the upstream sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Shown {
    pub method: String,
    pub authority: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

/// One step and what it found.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub step: &'static str,
    pub says: Vec<String>,
}

/// Who the caller is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentityShown {
    #[serde(rename = "type")]
    pub kind: String,
    pub role: String,
    pub user: Option<String>,
    pub name: Option<String>,
}

/// The decision: on to the upstream (status 200 as far as the filter is concerned) or
/// answered by the filter.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    /// `allowed`, `unchecked`, `preflight`, `denied`, `redirected`.
    pub outcome: String,
    /// 200 when the request goes on, else the filter's status.
    pub status: u32,
    pub code: Option<String>,
    /// The filter's response headers (empty when the request goes on).
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// The header edits, in order.
    pub edits: Vec<String>,
}

/// What the steps predict the decision is.
#[derive(Debug, Clone, PartialEq)]
enum Predicted {
    Preflight,
    Unchecked(Option<usize>),
    Allowed(Identity, Option<usize>),
    Refused(Denial, Option<usize>),
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn listed(headers: &[(String, Vec<u8>)]) -> Shown {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| text(v))
            .unwrap_or_default()
    };
    Shown {
        method: get(":method"),
        authority: get(":authority"),
        path: get(":path"),
        headers: headers
            .iter()
            .filter(|(n, _)| !n.starts_with(':'))
            .map(|(n, v)| (n.clone(), text(v)))
            .collect(),
    }
}

/// `rules[N] (prefix /admin)` or `default`.
pub fn rule_name(config: &Config, rule: Option<usize>) -> String {
    match rule.and_then(|i| config.rules.rule(i).map(|r| (i, r))) {
        Some((i, r)) => format!("rules[{i}] ({})", r.describe()),
        None => format!("default ({})", config.rules.default_mode().as_str()),
    }
}

fn identity_shown(identity: &Identity) -> IdentityShown {
    IdentityShown {
        kind: identity.kind.as_str().to_owned(),
        role: identity.role.to_string(),
        user: identity.user.as_deref().map(str::to_owned),
        name: identity.name.as_deref().map(str::to_owned),
    }
}

fn refusal(denial: Denial) -> String {
    format!(
        "refused: {} {} ({denial:?}): {}",
        denial.status(),
        denial.code(),
        denial.message()
    )
}

/// Explains the request `headers` (pseudo-headers first) under `config` at unix time `now`.
pub fn explain(config: &Config, headers: &[(String, Vec<u8>)], now: u64) -> Explanation {
    let mut steps = Vec::new();
    let mut mode = None;
    let predicted = walk(config, headers, now, &mut steps, &mut mode);
    // A worker as the filter starts one: no fetched keys, an empty revocation list, fresh.
    let mut worker = WorkerState::default();
    worker.revocations.fresh_at = now;
    let decision = decide(config, &mut worker, headers, now);
    let actual = as_predicted(&decision);
    let agrees = actual == predicted;
    let identity = match &decision.outcome {
        Outcome::Allowed(identity) => Some(identity_shown(identity)),
        _ => None,
    };
    let (answer, upstream) = answer_of(&decision, headers);
    Explanation {
        request: listed(headers),
        steps,
        mode,
        rule: rule_name(config, decision.rule),
        identity,
        upstream,
        answer,
        agrees,
        disagreement: (!agrees)
            .then(|| format!("the steps predicted {predicted:?}; decide gave {actual:?}")),
    }
}

fn as_predicted(decision: &Decision<'_>) -> Predicted {
    match &decision.outcome {
        Outcome::Preflight => Predicted::Preflight,
        Outcome::Unchecked => Predicted::Unchecked(decision.rule),
        Outcome::Allowed(identity) => Predicted::Allowed(identity.clone(), decision.rule),
        Outcome::Denied(denial) | Outcome::Redirected(denial) => {
            Predicted::Refused(*denial, decision.rule)
        }
    }
}

fn edit_text(edit: &HeaderEdit<'_>) -> String {
    match edit {
        HeaderEdit::Remove(name) => format!("remove {name}"),
        HeaderEdit::Set(name, value) => format!("set {name}: {}", text(value.as_bytes())),
        HeaderEdit::Add(name, value) => format!("add {name}: {}", text(value.as_bytes())),
        HeaderEdit::SetPath(path) => format!("set :path {}", text(path)),
    }
}

fn answer_of(decision: &Decision<'_>, headers: &[(String, Vec<u8>)]) -> (Answer, Option<Shown>) {
    let outcome = decision.outcome.label().to_owned();
    match &decision.action {
        Action::Forward(edits) => (
            Answer {
                outcome,
                status: 200,
                code: None,
                headers: Vec::new(),
                body: None,
                edits: edits.iter().map(edit_text).collect(),
            },
            Some(listed(&apply_edits(headers, edits))),
        ),
        Action::Respond(response, edits) => {
            let code = serde_json::from_str::<serde_json::Value>(&response.body)
                .ok()
                .and_then(|b| b.get("code").and_then(|c| c.as_str()).map(str::to_owned));
            (
                Answer {
                    outcome,
                    status: response.status,
                    code,
                    headers: response
                        .headers
                        .iter()
                        .map(|(n, v)| ((*n).to_owned(), v.clone()))
                        .collect(),
                    body: (!response.body.is_empty()).then(|| response.body.clone()),
                    edits: edits.iter().map(edit_text).collect(),
                },
                None,
            )
        }
    }
}

/// The steps of `decide`, told; returns what they lead to.
fn walk(
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
            let (said, result) = verify(config, presented, now);
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

/// The verification steps of a presented credential, with the core's verifiers.
fn verify(
    config: &Config,
    presented: &Presented<'_>,
    now: u64,
) -> (Vec<String>, Result<Identity, Denial>) {
    let bad = |b: BadCredential| Denial::InvalidCredentials(b);
    match presented {
        Presented::Bearer { value, .. } if is_token_shaped(value) => {
            let mut said = token_parts(value, now);
            let (more, result) = verify_token(config, value, now);
            said.extend(more);
            if config.revocation.is_some() {
                said.push(
                    "revocation: the list is polled at run time; explained here as empty"
                        .to_owned(),
                );
            }
            (said, result)
        }
        Presented::Bearer { value, .. } => match config.keys.identify(value.as_bytes()) {
            Some(identity) => {
                let name = identity.name.as_deref().unwrap_or_default().to_owned();
                (
                    vec![format!(
                        "a configured {} named {name:?}",
                        identity.kind.as_str()
                    )],
                    Ok(identity),
                )
            }
            None => (
                vec!["not a token (no two dots) and no configured key".to_owned()],
                Err(bad(BadCredential::Unknown)),
            ),
        },
        Presented::Client { id, secret } => {
            let known = config.clients.contains(&text(id));
            match config.clients.authenticate(id, secret) {
                Some(identity) => (
                    vec![format!("client {:?}: the secret matches", text(id))],
                    Ok(identity),
                ),
                None => (
                    vec![format!(
                        "client {:?}: {}",
                        text(id),
                        if known {
                            "the secret does not match"
                        } else {
                            "no such client_id"
                        }
                    )],
                    Err(bad(BadCredential::Client)),
                ),
            }
        }
    }
}

/// An access token: HS256 by the master secrets, else by the issuer its `iss` names (with its
/// inline keys; fetched keys are not fetched here).
fn verify_token(config: &Config, token: &str, now: u64) -> (Vec<String>, Result<Identity, Denial>) {
    let refused = |e: TokenError| {
        (
            vec![format!("token refused: {}", token_error(e))],
            Err(Denial::InvalidCredentials(BadCredential::Token(e))),
        )
    };
    let algorithm = match signer(token, !config.issuers.is_empty()) {
        Ok(Signer::Secrets) => None,
        Ok(Signer::Issuer(algorithm)) => Some(algorithm),
        Err(e) => return refused(e),
    };
    let Some(algorithm) = algorithm else {
        return match config.verifier.verify_typed(token, "access", now) {
            Ok(token) => (
                vec![format!(
                    "verified with the master secrets: sub {:?}, expires at {}",
                    &*token.subject, token.expires_at
                )],
                Ok(Identity::user(token.subject)),
            ),
            Err(e) => refused(e),
        };
    };
    match config.issuers.check(token, algorithm, now, |_| None) {
        IssuerCheck::Valid(verified) => (
            vec![format!(
                "verified with the keys of issuer {:?}: sub {:?}, roles {}, expires at {}",
                verified.identity.name.as_deref().unwrap_or_default(),
                verified.identity.user.as_deref().unwrap_or_default(),
                verified.identity.role,
                verified.expires_at
            )],
            Ok(verified.identity),
        ),
        IssuerCheck::Refused(e) => refused(e),
        IssuerCheck::NeedsKeys { issuer, .. } => {
            let name = config
                .issuers
                .list
                .get(issuer)
                .map(|i| i.name.to_string())
                .unwrap_or_default();
            (
                vec![format!(
                    "issuer {name:?} has its keys fetched at run time (jwks_uri): explained without them, as before the first fetch"
                )],
                Err(Denial::KeysUnavailable),
            )
        }
    }
}

fn token_error(e: TokenError) -> String {
    format!("{e:?}: {}", e.message())
}

/// The token's header and claims as read (never its signature), with times against `now`.
fn token_parts(token: &str, now: u64) -> Vec<String> {
    let Some(parts) = jws::split(token) else {
        return vec!["not three base64url parts".to_owned()];
    };
    let mut said = Vec::new();
    let mut buffer = Vec::new();
    match jws::parse_header(parts.header, &mut buffer) {
        Some(header) => said.push(format!(
            "header: alg {}, kid {}",
            header.alg,
            header.kid.as_deref().map_or(
                "(none: every key of the algorithm is tried)".to_owned(),
                |k| format!("{k:?} (only the key with this kid is tried)")
            )
        )),
        None => said.push("header: not base64url JSON of a JOSE header".to_owned()),
    }
    let mut buffer = Vec::new();
    match jws::parse_claims(parts.payload, &mut buffer) {
        Some(claims) => {
            let when = |t: Option<u64>| match t {
                None => "absent".to_owned(),
                Some(t) if t >= now => format!("{t} (in {} s)", t - now),
                Some(t) => format!("{t} ({} s ago)", now - t),
            };
            said.push(format!(
                "claims: sub {}, token_type {}, iat {}, nbf {}, exp {}",
                claims
                    .sub
                    .as_deref()
                    .map_or("absent".to_owned(), |s| format!("{s:?}")),
                claims
                    .token_type
                    .as_deref()
                    .map_or("absent".to_owned(), |s| format!("{s:?}")),
                when(claims.iat),
                when(claims.nbf),
                when(claims.exp)
            ));
        }
        None => said.push("claims: not base64url JSON of the claims".to_owned()),
    }
    said.push(format!(
        "signature: {} bytes of base64url (not shown)",
        parts.signature.len()
    ));
    said
}

impl Explanation {
    /// The explanation as text, one step per paragraph.
    pub fn render(&self) -> String {
        let mut out = format!(
            "request: {} {} (host {})\n",
            self.request.method, self.request.path, self.request.authority
        );
        for (n, v) in &self.request.headers {
            out.push_str(&format!("  {n}: {v}\n"));
        }
        for (i, step) in self.steps.iter().enumerate() {
            out.push_str(&format!("{}. {}\n", i + 1, step.step));
            for line in &step.says {
                out.push_str(&format!("   {line}\n"));
            }
        }
        out.push_str(&format!("rule: {}\n", self.rule));
        if let Some(id) = &self.identity {
            out.push_str(&format!("identity: type {}, role {}", id.kind, id.role));
            if let Some(user) = &id.user {
                out.push_str(&format!(", user {user}"));
            }
            if let Some(name) = &id.name {
                out.push_str(&format!(", name {name}"));
            }
            out.push('\n');
        }
        if !self.answer.edits.is_empty() {
            out.push_str("edits:\n");
            for edit in &self.answer.edits {
                out.push_str(&format!("  {edit}\n"));
            }
        }
        if let Some(up) = &self.upstream {
            out.push_str(&format!("upstream gets: {} {}\n", up.method, up.path));
            for (n, v) in &up.headers {
                out.push_str(&format!("  {n}: {v}\n"));
            }
        }
        out.push_str(&format!("answer: {}", self.answer.status));
        match &self.answer.code {
            Some(code) => out.push_str(&format!(" {code} ({})\n", self.answer.outcome)),
            None if self.upstream.is_some() => {
                out.push_str(&format!(" from the upstream ({})\n", self.answer.outcome))
            }
            None => out.push_str(&format!(" ({})\n", self.answer.outcome)),
        }
        for (n, v) in &self.answer.headers {
            out.push_str(&format!("  {n}: {v}\n"));
        }
        if let Some(body) = &self.answer.body {
            out.push_str(&format!("  {body}\n"));
        }
        if let Some(what) = &self.disagreement {
            out.push_str(&format!("!!! DISAGREEMENT: {what}\n"));
        }
        out
    }
}
