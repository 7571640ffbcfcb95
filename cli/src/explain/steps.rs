//! The decision's trace, told: each step `decide` takes, as lines for the user. Nothing here
//! decides: every fact comes from a [`TraceStep`] the decision reports.

use tollgate_core::config::Config;
use tollgate_core::credential::spellings::{CredentialNames, Found, Spelling};
use tollgate_core::credential::{
    Locations, Presented, Source, CLIENT_ID_PARAM, CLIENT_SECRET_PARAM,
};
use tollgate_core::decision::{Step as TraceStep, Trace};
use tollgate_core::identity::Identity;
use tollgate_core::request::{query, RequestView};
use tollgate_core::rules::{Mode, Policy};
use tollgate_core::verify::issuer::KeysNeeded;
use tollgate_core::verify::token::is_token_shaped;
use tollgate_core::verify::Signer;

use super::{rule_name, text, token, Step};

/// The steps told so far, under `config` at unix time `now`.
pub(super) struct Told<'c> {
    config: &'c Config,
    now: u64,
    pub(super) steps: Vec<Step>,
    /// The mode that applied, once the rules were read.
    pub(super) mode: Option<String>,
    /// The presented token's parts as read, told first under "verification".
    token_parts: Vec<String>,
}

impl<'c> Told<'c> {
    pub(super) fn new(config: &'c Config, now: u64) -> Self {
        Told {
            config,
            now,
            steps: Vec::new(),
            mode: None,
            token_parts: Vec::new(),
        }
    }

    fn say(&mut self, step: &'static str, says: Vec<String>) {
        self.steps.push(Step { step, says });
    }

    /// A line of step `step`: the last step's when it is that one, else a new step's.
    fn add(&mut self, step: &'static str, line: String) {
        match self.steps.last_mut() {
            Some(last) if last.step == step => last.says.push(line),
            _ => self.say(step, vec![line]),
        }
    }

    /// A line of the verification, after the token's parts.
    fn verification(&mut self, line: String) {
        if self
            .steps
            .last()
            .is_none_or(|last| last.step != "verification")
        {
            let parts = std::mem::take(&mut self.token_parts);
            self.say("verification", parts);
        }
        self.add("verification", line);
    }

    fn locations(&self) -> Locations<'c> {
        Locations {
            query_param: &self.config.token_query_param,
            cookie: &self.config.token_cookie,
        }
    }

    fn policy(
        &mut self,
        host: Option<&str>,
        methods: &[&[u8]],
        readings: &[&str],
        policy: &Policy<'_>,
    ) {
        let config = self.config;
        if let Some(host) = host {
            self.say("host (rules are limited to hosts)", vec![host.to_owned()]);
        }
        let mut said = vec![methods
            .iter()
            .map(|m| method_name(m))
            .collect::<Vec<_>>()
            .join(", ")];
        if methods.iter().any(|m| m.is_empty()) {
            said.push(
                "a body that may be a form or JSON may carry _method (read only as it streams): decided as every method"
                    .to_owned(),
            );
        }
        self.say("methods the request may be served as", said);
        let mut each = Vec::new();
        for reading in readings {
            for method in methods {
                let policy =
                    config
                        .rules
                        .policy_for_path_at(host.unwrap_or_default(), method, reading);
                each.push(format!(
                    "{reading} as {}: {} by {}",
                    method_name(method),
                    policy.mode.as_str(),
                    rule_name(config, policy.rule)
                ));
            }
        }
        self.say("path readings and the rule each matches", each);
        self.mode = Some(policy.mode.as_str().to_owned());
        let mut said = vec![format!(
            "{} (the strictest), from {}",
            policy.mode.as_str(),
            rule_name(config, policy.rule)
        )];
        match policy.mode {
            Mode::Required => said.push(format!("roles allowed: {}", policy.roles.join(", "))),
            Mode::None => said.push("none: the request goes on untouched and unchecked".to_owned()),
            Mode::Optional => {}
        }
        self.say("mode", said);
    }

    fn presented(&mut self, presented: Option<&Presented<'_>>) {
        let at = self.locations();
        let line = match presented {
            None => "none".to_owned(),
            Some(Presented::Bearer { value, source }) => {
                let place = match source {
                    Source::Header => "the Authorization header (Bearer)".to_owned(),
                    Source::Query => format!("the query parameter {}", at.query_param),
                    Source::Cookie => format!("the cookie {}", at.cookie),
                };
                let kind = if is_token_shaped(value) {
                    self.token_parts = token::parts(value, self.now);
                    "a token"
                } else {
                    "a key"
                };
                format!("{kind} in {place}: {value}")
            }
            Some(Presented::Client { id, .. }) => format!(
                "client credentials: client_id {:?} and a client_secret",
                text(id)
            ),
        };
        match self.steps.last_mut() {
            Some(last) if last.step == "credential" => last.says.insert(0, line),
            _ => self.say("credential", vec![line]),
        }
    }

    fn issuer_name(&self, issuer: usize) -> String {
        let issuers = &self.config.issuers.list;
        issuers
            .get(issuer)
            .map(|i| i.name.to_string())
            .unwrap_or_default()
    }

    fn verified(&mut self, issuer: Option<usize>, identity: &Identity, expires_at: u64) {
        let sub = identity.user.as_deref().unwrap_or_default();
        self.verification(match issuer {
            None => format!("verified with the master secrets: sub {sub:?}, expires at {expires_at}"),
            Some(_) => format!(
                "verified with the keys of issuer {:?}: sub {sub:?}, roles {}, expires at {expires_at}",
                identity.name.as_deref().unwrap_or_default(),
                identity.role,
            ),
        });
    }

    fn role(&mut self, identity: &Identity, policy: &Policy<'_>, passes: bool) {
        let line = match policy.mode {
            _ if !passes => format!("{} is not among {}", identity.role, policy.roles.join(", ")),
            Mode::Required => format!("{} is allowed", identity.role),
            _ => format!("{} (an optional path allows any)", identity.role),
        };
        self.say("role", vec![line]);
    }
}

impl Trace for Told<'_> {
    fn step(&mut self, step: TraceStep<'_>) {
        match step {
            TraceStep::Request(request) => self.say(
                "identity headers sent by the client",
                match request.spoofed.as_slice() {
                    [] => vec!["none".to_owned()],
                    names => names.iter().map(|n| format!("{n}: removed")).collect(),
                },
            ),
            TraceStep::NoPath => self.say("path", vec!["no :path".to_owned()]),
            TraceStep::UnreadablePath { raw, error } => self.say(
                "path",
                vec![format!("{:?} cannot be read: {error}", text(raw))],
            ),
            TraceStep::Preflight { found } => self.say(
                "CORS preflight",
                vec![if found.encoded_in_path {
                    "a credential name behind an encoded separator in the path".to_owned()
                } else {
                    "a real preflight: on without a credential (any it carries is removed)"
                        .to_owned()
                }],
            ),
            TraceStep::BadMethodOverride => self.say(
                "methods",
                vec!["a method override that is not a method token, or too many".to_owned()],
            ),
            TraceStep::UnclearHost => self.say(
                "host",
                vec![
                    "rules are limited to hosts and the host is not one plain host name".to_owned(),
                ],
            ),
            TraceStep::Policy {
                host,
                methods,
                readings,
                policy,
            } => {
                let readings: Vec<&str> = readings.iter().collect();
                self.policy(host, methods, &readings, policy);
            }
            TraceStep::FormBody(error) => self.say(
                "form body",
                vec![format!(
                    "a form body follows that cannot be read with certainty ({error:?})"
                )],
            ),
            TraceStep::Found {
                request,
                query,
                found,
            } => {
                let mut said = vec![sent_text(request, query, self.locations())];
                said.extend(found_text(found));
                self.say("credential", said);
            }
            TraceStep::Presented(presented) => self.presented(presented),
            TraceStep::NothingToVerify(mode) => self.verification(match mode {
                Mode::Optional => "nothing to verify: optional, on as anonymous".to_owned(),
                _ => "nothing to verify".to_owned(),
            }),
            TraceStep::Key(Some(identity)) => self.verification(format!(
                "a configured {} named {:?}",
                identity.kind.as_str(),
                identity.name.as_deref().unwrap_or_default()
            )),
            TraceStep::Key(None) => {
                self.verification("not a token (no two dots) and no configured key".to_owned())
            }
            TraceStep::Client { id, identity } => {
                let id = text(id);
                let why = match identity {
                    Some(_) => "the secret matches",
                    None if self.config.clients.contains(&id) => "the secret does not match",
                    None => "no such client_id",
                };
                self.verification(format!("client {id:?}: {why}"));
            }
            TraceStep::Cached(identity) => self.verification(format!(
                "verified before, under the same keys (the cache of verified tokens): sub {:?}",
                identity.user.as_deref().unwrap_or_default()
            )),
            TraceStep::Signer(Signer::Secrets) => {
                self.verification("verifier: the master secrets".to_owned())
            }
            TraceStep::Signer(Signer::Issuer(algorithm)) => self.verification(format!(
                "verifier: the issuer the token's iss names ({})",
                algorithm.name()
            )),
            TraceStep::Verified {
                issuer,
                identity,
                expires_at,
            } => self.verified(issuer, identity, expires_at),
            TraceStep::TokenRefused(e) => {
                self.verification(format!("token refused: {e:?}: {}", e.message()))
            }
            TraceStep::NeedsKeys { issuer, why } => {
                let name = self.issuer_name(issuer);
                self.verification(match why {
                    KeysNeeded::NeverFetched => format!(
                        "issuer {name:?} has its keys fetched at run time (jwks_uri): explained without them, as before the first fetch"
                    ),
                    KeysNeeded::UnknownKid => format!(
                        "issuer {name:?} has no key with the token's kid at hand (its keys are fetched at run time: jwks_uri)"
                    ),
                });
            }
            TraceStep::Revocation(None) => self.verification(
                "revocation: the list is polled at run time; explained here as empty".to_owned(),
            ),
            TraceStep::Revocation(Some(denial)) => {
                self.verification(format!("revocation: {}", denial.message()))
            }
            TraceStep::Role {
                identity,
                policy,
                passes,
            } => self.role(identity, policy, passes),
            TraceStep::Condition { rule, kind, held } => self.add(
                "conditions",
                format!(
                    "rules[{rule}].{}: {}",
                    kind.key(),
                    if held { "held" } else { "failed" }
                ),
            ),
        }
    }
}

/// A method as the rules read it: the empty method stands for every method no rule names.
fn method_name(method: &[u8]) -> String {
    match method {
        [] => "any other method".to_owned(),
        _ => text(method),
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
        (
            "the Authorization header".to_owned(),
            request.authorization_count,
        ),
        (
            format!("the query parameter {}", at.query_param),
            count(at.query_param),
        ),
        (CLIENT_ID_PARAM.to_owned(), count(CLIENT_ID_PARAM)),
        (CLIENT_SECRET_PARAM.to_owned(), count(CLIENT_SECRET_PARAM)),
        (format!("the cookie {}", at.cookie), cookies),
    ];
    let sent: Vec<String> = places
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(place, n)| match n {
            1 => place,
            _ => format!("{place} ({n} times)"),
        })
        .collect();
    match sent.as_slice() {
        [] => "sent: nothing the filter reads as a credential".to_owned(),
        _ => format!("sent: {}", sent.join(", ")),
    }
}

/// What else the request carries that the filter does not read as its credential.
fn found_text(found: &Found) -> Vec<String> {
    [
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
    ]
    .into_iter()
    .filter(|(set, _)| *set)
    .map(|(_, what)| format!("also sent: {what}"))
    .collect()
}
