//! The decision: given the request headers and the time, what happens to the request.
//!
//! Pure: the adapter hands over the header list, applies the returned edits or sends the
//! returned response, and reports the outcome. The steps, in order, are README's "How a
//! request is decided"; each step's detail lives in its own module. Each step is told to a
//! [`Trace`] when one is given (`tollgate explain`); the filter's [`NoTrace`] compiles away.

mod annotate;
mod authenticate;
mod conditions;
mod outcome;
mod refusal;
mod report;
mod scrub;
pub mod trace;

pub use authenticate::KeyWait;
pub use outcome::{apply_edits, Action, Decision, HeaderEdit, Outcome, Value};
pub use report::LogField;
pub use scrub::trailer_is_removed;
pub use trace::{NoTrace, Step, Trace};

use annotate::{annotate, annotate_payload};
use authenticate::authenticate;
use refusal::refuse;
use scrub::remove_credentials;

use crate::config::Config;
use crate::credential::spellings::{self, CredentialNames, Found};
use crate::credential::{self, Locations};
use crate::denial::{BadRequest, Denial};
use crate::identity::Identity;
use crate::request::path::{self, PathError};
use crate::request::{form, host};
use crate::request::{RequestView, Session};
use crate::rules::{Mode, Policy};
use crate::worker::WorkerState;

/// Decides what happens to a request, from its headers (pseudo-headers included) at unix time
/// `now`, for a request whose headers end the stream (no body follows).
pub fn decide<'a, N, V>(
    config: &'a Config,
    worker: &mut WorkerState,
    headers: &'a [(N, V)],
    now: u64,
) -> Decision<'a>
where
    N: AsRef<str>,
    V: AsRef<[u8]>,
{
    decide_stream(config, worker, headers, true, &|| now)
}

/// [`decide`], telling each step to `trace` (`tollgate explain`).
pub fn decide_traced<'a, N, V>(
    config: &'a Config,
    worker: &mut WorkerState,
    headers: &'a [(N, V)],
    now: u64,
    trace: &mut impl Trace,
) -> Decision<'a>
where
    N: AsRef<str>,
    V: AsRef<[u8]>,
{
    decide_stream_traced(config, worker, headers, true, &|| now, trace)
}

/// [`decide`], told whether the headers end the stream (`stream_ends` false: a body follows,
/// so the request is never a CORS preflight), with a clock read only when a token is checked
/// (in the filter, each reading is a call into the host).
pub fn decide_stream<'a, N, V>(
    config: &'a Config,
    worker: &mut WorkerState,
    headers: &'a [(N, V)],
    stream_ends: bool,
    now: &dyn Fn() -> u64,
) -> Decision<'a>
where
    N: AsRef<str>,
    V: AsRef<[u8]>,
{
    decide_stream_traced(config, worker, headers, stream_ends, now, &mut NoTrace)
}

/// [`decide_stream`], telling each step to `trace`.
pub fn decide_stream_traced<'a, N, V>(
    config: &'a Config,
    worker: &mut WorkerState,
    headers: &'a [(N, V)],
    stream_ends: bool,
    now: &dyn Fn() -> u64,
    trace: &mut impl Trace,
) -> Decision<'a>
where
    N: AsRef<str>,
    V: AsRef<[u8]>,
{
    decide_in_session(config, worker, (headers, None), stream_ends, now, trace)
}

/// [`decide_stream_traced`] of a request whose `Cookie` headers and access token are those
/// of a browser `session`, when one is given (sign-in read them from its cookies).
pub fn decide_in_session<'a, N, V>(
    config: &'a Config,
    worker: &mut WorkerState,
    (headers, session): (&'a [(N, V)], Option<Session<'a>>),
    stream_ends: bool,
    now: &dyn Fn() -> u64,
    trace: &mut impl Trace,
) -> Decision<'a>
where
    N: AsRef<str>,
    V: AsRef<[u8]>,
{
    // The steps are those of README's "How a request is decided".
    // 1. Identity headers the client sent are removed, on every path.
    let spoof = |name: &str| config.identity_headers.is_spoof(name);
    let request = RequestView::read_in_session(headers, session, spoof, &config.token_headers);
    // Where a browser is sent to sign in (with discovery, the endpoints this worker has).
    let discovered = worker.discovered.clone();
    let sign_in = config
        .oidc
        .as_ref()
        .and_then(|oidc| oidc.endpoints(discovered.as_deref()));
    let site = (config, sign_in);
    trace.step(Step::Request(&request));
    let mut edits: Vec<HeaderEdit<'a>> = Vec::with_capacity(request.spoofed.len() + 5);
    edits.extend(request.spoofed.iter().map(|name| HeaderEdit::Remove(name)));
    // 2. The path, read every way a server might read it; one that cannot be read is a 400.
    let Some(target) = request.target else {
        trace.step(Step::NoPath);
        let denial = BadRequest::UnsafePath(PathError::Missing).into();
        return refuse(site, &request, None, None, denial, None, now);
    };
    let (raw_path, query) = path::split_target(target);
    let readings = match path::readings(raw_path) {
        Ok(readings) => readings,
        Err(error) => {
            trace.step(Step::UnreadablePath {
                raw: raw_path,
                error,
            });
            return refuse(
                site,
                &request,
                None,
                None,
                BadRequest::UnsafePath(error).into(),
                None,
                now,
            );
        }
    };
    let names = CredentialNames::new(locations(config));
    // Where credentials sit: looked for on checked requests only (`none` paths stay untouched).
    let find = || spellings::find(names, raw_path, query, &request.cookies);
    let query_overrides = spellings::query_method_overrides(query);
    let refuse_at = |rule, denial: Denial, found: Option<Found>| {
        refuse(
            site,
            &request,
            Some(readings.first()),
            rule,
            denial,
            found,
            now,
        )
    };
    let hidden =
        |rule, found: Found| refuse_at(rule, BadRequest::UnreadCredential.into(), Some(found));
    // 3. A CORS preflight passes without a credential (any it carries is removed).
    if request.is_cors_preflight(stream_ends) && query_overrides.is_empty() {
        let found = find();
        trace.step(Step::Preflight { found: &found });
        if found.encoded_in_path {
            return hidden(None, found);
        }
        if !config.forward_credentials {
            remove_credentials(names, &request, raw_path, query, &found, &mut edits);
        }
        return Decision::forward(edits, Outcome::Preflight, None);
    }
    // 4. The strictest rule over every reading and method gives the mode; `none` goes on.
    //    A `POST` whose body may be a form or JSON may carry `_method` (Rails, Symfony and
    //    Spring read it from a form, Laravel from JSON too), read only once the body
    //    streams, if at all: it may be served as any method.
    let Some(methods) = request.methods(&query_overrides) else {
        trace.step(Step::BadMethodOverride);
        return refuse_at(None, BadRequest::MethodOverride.into(), None);
    };
    let has_body = request.announces_body || !stream_ends;
    let form = form::classify(has_body, &request.content_types, &request.content_encodings);
    let mut methods: Vec<&[u8]> = methods.iter().map(Vec::as_slice).collect();
    let may_override = form != Ok(None) || (has_body && form::may_be_json(&request.content_types));
    if may_override && request.method.trim_ascii().eq_ignore_ascii_case(b"POST") {
        methods.extend(config.rules.every_method());
    }
    // Rules limited to hosts: the host is read strictly; one that is not a plain host name is
    // a 400, as its reading by the upstream cannot be known.
    let host = match config.rules.has_hosts().then(|| host::of_headers(headers)) {
        Some(Some(host)) => Some(host),
        Some(None) => {
            trace.step(Step::UnclearHost);
            return refuse_at(None, BadRequest::UnclearHost.into(), None);
        }
        None => None,
    };
    let host_name = host.as_deref().unwrap_or_default();
    let policy = config.rules.policy_for_host(host_name, &methods, &readings);
    trace.step(Step::Policy {
        host: host.as_deref(),
        methods: &methods,
        readings: &readings,
        policy: &policy,
    });
    let rule = policy.rule;
    if policy.mode == Mode::None {
        return Decision::forward(edits, Outcome::Unchecked, rule);
    }
    // 5. The one credential is found; several, or one in a place not read, is a 400. A form
    //    body is such a place: it is read for credential fields as it streams (after the
    //    decision), and one that cannot be read with certainty is refused now.
    let form = match form {
        Ok(form) => form,
        Err(e) => {
            trace.step(Step::FormBody(e));
            return refuse_at(rule, BadRequest::FormBody(e).into(), None);
        }
    };
    let found = find();
    trace.step(Step::Found {
        request: &request,
        query,
        found: &found,
    });
    if found.encoded_in_path {
        return hidden(rule, found);
    }
    let refuse_here = |denial: Denial| refuse_at(rule, denial, Some(found));
    let presented = match credential::extract_with(&request, query, names.at, &config.token_headers)
    {
        Ok(presented) => presented,
        Err(denial) => return refuse_here(denial),
    };
    trace.step(Step::Presented(presented.as_ref()));
    if presented.is_some() && found.unread() {
        return refuse_here(BadRequest::UnreadCredential.into());
    }
    // 6. No credential: `optional` goes on as anonymous, `required` is a 401.
    // 7. A credential is checked; a valid one whose role the rule does not allow is a 403.
    let mut cache_hit = None;
    let mut token = authenticate::TokenFacts::default();
    let identity = match &presented {
        None if policy.mode == Mode::Optional => {
            trace.step(Step::NothingToVerify(Mode::Optional));
            Identity::anonymous()
        }
        None => {
            trace.step(Step::NothingToVerify(policy.mode));
            return refuse_here(Denial::MissingCredentials);
        }
        Some(credential) => {
            let checked = authenticate(config.verifiers(), worker, credential, now, trace);
            cache_hit = checked.cache_hit;
            token = checked.token;
            match checked.result {
                Ok(identity) => identity,
                Err(denial) => {
                    return refuse_here(denial)
                        .with_cache_hit(cache_hit)
                        .awaiting(checked.waits)
                        .with_form(checked.waits.and(form))
                }
            }
        }
    };
    let passes = role_passes(&policy, &identity);
    trace.step(Step::Role {
        identity: &identity,
        policy: &policy,
        passes,
    });
    if !passes {
        return refuse_here(Denial::PermissionDenied);
    }
    if let Some(kind) = conditions::first_failed(&policy, &identity, &token, trace) {
        return refuse_here(Denial::ConditionFailed(kind));
    }
    // 8. The identity headers are set and every credential is removed.
    annotate(config, &identity, &mut edits);
    if let (Some(_), Some(credential::Presented::Bearer { value, .. })) =
        (&config.payload_header, &presented)
    {
        annotate_payload(config, &identity, value, &mut edits);
    }
    if !config.forward_credentials {
        remove_credentials(names, &request, raw_path, query, &found, &mut edits);
    }
    Decision::forward(edits, Outcome::Allowed(identity), rule)
        .with_cache_hit(cache_hit)
        .with_form(form)
}

/// Where the configuration reads credentials.
fn locations(config: &Config) -> Locations<'_> {
    Locations {
        query_param: &config.token_query_param,
        cookie: &config.token_cookie,
    }
}

fn role_passes(policy: &Policy, identity: &Identity) -> bool {
    policy.mode != Mode::Required || identity.roles().any(|role| policy.allows_role(role))
}

#[cfg(test)]
mod method_override_tests;
#[cfg(test)]
mod tests;
