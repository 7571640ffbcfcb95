//! `tollgate explain`: one request through the real decision, told step by step.
//!
//! The steps are the decision's own trace (the readings of the path, the rule of each, the
//! credential's place, its verification, the role), told as `decide` takes them; the answer,
//! the edits and the identity are the decision it returns.

use serde::Serialize;
use tollgate_core::config::Config;
use tollgate_core::decision::{
    apply_edits, decide_in_session, Action, Decision, HeaderEdit, Outcome,
};
use tollgate_core::denial::Denial;
use tollgate_core::identity::Identity;
use tollgate_core::worker::WorkerState;

use crate::fetched_keys::FetchedKeys;
use crate::filter_off::Skip;

mod sign_in;
mod steps;
mod token;

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
    /// Set when Envoy routes the request where the filter does not (or may not) run: the
    /// decision above is then not what happens (see [`crate::filter_off::skip`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_skipped: Option<Skip>,
    /// The access token a session cookie of the request holds: masked in the output like the
    /// request's own credentials.
    #[serde(skip)]
    pub session_token: Option<String>,
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
#[cfg(test)]
pub fn explain(config: &Config, headers: &[(String, Vec<u8>)], now: u64) -> Explanation {
    explain_with(config, headers, now, &FetchedKeys::default())
}

/// [`explain`], with the keys of `jwks_uri` issuers given with `--jwks` as if fetched.
pub fn explain_with(
    config: &Config,
    headers: &[(String, Vec<u8>)],
    now: u64,
    fetched: &FetchedKeys,
) -> Explanation {
    // A worker as the filter starts one: no fetched keys but those given, an empty
    // revocation list, fresh.
    let mut worker = WorkerState {
        discovered: sign_in::discovered(config),
        ..WorkerState::default()
    };
    fetched.install(&mut worker);
    worker.revocations.fresh_at = now;
    let (first, viewed, session_token) =
        match sign_in::before(config, worker.discovered.as_deref(), headers, now) {
            sign_in::Before::Answered { step, answer } => {
                return Explanation {
                    request: listed(headers),
                    steps: vec![step],
                    mode: None,
                    rule: "sign-in".to_owned(),
                    identity: None,
                    upstream: None,
                    answer,
                    filter_skipped: None,
                    session_token: None,
                }
            }
            sign_in::Before::Decide { step, viewed } => {
                let token = viewed.as_ref().and_then(|viewed| viewed.token.clone());
                (step, viewed, token)
            }
        };
    // With a session, the request as the filter hands it on (the filter's cookies gone),
    // decided with the session's token as its credential.
    let handed_on = viewed.as_ref().map(|viewed| viewed.handed_on(headers));
    let decided = handed_on.as_deref().unwrap_or(headers);
    let session = viewed.as_ref().map(sign_in::Viewed::session);
    let mut told = steps::Told::new(config, now);
    let decision = decide_in_session(
        config,
        &mut worker,
        (headers, session),
        true,
        &|| now,
        &mut told,
    );
    let mut steps: Vec<Step> = first.into_iter().chain(told.steps).collect();
    let identity = match &decision.outcome {
        Outcome::Allowed(identity) => Some(identity_shown(identity)),
        Outcome::Denied(denial) | Outcome::Redirected(denial) => {
            // The refusal ends the step that led to it.
            if let Some(last) = steps.last_mut() {
                last.says.push(refusal(*denial));
            }
            None
        }
        Outcome::Preflight | Outcome::Unchecked => None,
    };
    let (answer, upstream) = answer_of(&decision, decided);
    Explanation {
        request: listed(headers),
        steps,
        mode: told.mode,
        rule: rule_name(config, decision.rule),
        identity,
        upstream,
        answer,
        filter_skipped: None,
        session_token,
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
            let edits = edits.iter().map(edit_text).collect();
            (responded(response, outcome, code, edits), None)
        }
    }
}

/// The filter's own answer `response`, as an explanation shows it.
fn responded(
    response: &tollgate_core::response::LocalResponse,
    outcome: String,
    code: Option<String>,
    edits: Vec<String>,
) -> Answer {
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
        edits,
    }
}

impl Explanation {
    /// The explanation as text: [`Explanation::skip_line`], then one step per paragraph.
    pub fn render(&self) -> String {
        format!("{}{}", self.skip_line(), self.render_steps())
    }

    /// `warning: Envoy does not run the filter on this request: …` (`note: … may not …`
    /// when uncertain), or nothing.
    pub fn skip_line(&self) -> String {
        match &self.filter_skipped {
            Some(Skip { certain: true, reason }) => format!("warning: {}\n", skip_text(reason)),
            Some(Skip { certain: false, reason }) => format!(
                "note: Envoy may not run the filter on this request: {reason}; if so, the upstream receives it as sent\n"
            ),
            None => String::new(),
        }
    }

    /// The request, the steps and the answer.
    pub fn render_steps(&self) -> String {
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
        out
    }
}

/// Why the filter's answer is not Envoy's, for a request routed where it does not run.
pub fn skip_text(reason: &str) -> String {
    format!(
        "Envoy does not run the filter on this request: {reason}; the upstream receives it as sent"
    )
}

#[cfg(test)]
mod tests;
