//! The decision: given the request headers and the time, what happens to the request.
//!
//! Pure: the adapter hands over the header list, applies the returned edits or sends the
//! returned response, and reports the outcome.

use crate::config::Config;
use crate::credentials::{self, Locations, Presented, Source, CLIENT_ID_PARAM, CLIENT_SECRET_PARAM};
use crate::denial::{BadCredential, BadRequest, Denial};
use crate::identity::{CredentialKind, Identity};
use crate::path::{self, PathError};
use crate::query;
use crate::request::{names, RequestView};
use crate::response::{self, LocalResponse};
use crate::rules::{Mode, Policy};

/// A change to the request before it goes upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit {
    /// Remove every header of this name.
    Remove(String),
    /// Add a header (after any removal of the same name).
    Add(String, Vec<u8>),
    /// Replace `:path`.
    SetPath(Vec<u8>),
}

/// What the adapter does with the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Apply the edits, in order, and let the request on.
    Forward(Vec<HeaderEdit>),
    /// Answer the request with this response.
    Respond(LocalResponse),
}

/// How the request was classified, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A CORS preflight, let on without a credential.
    Preflight,
    /// A `none` path: let on, not checked.
    Unchecked,
    /// Let on with this identity.
    Allowed(Identity),
    /// Refused with this error.
    Denied(Denial),
    /// A browser sent to sign in (the refusal it replaced).
    Redirected(Denial),
}

/// The decision and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    pub outcome: Outcome,
    /// The configuration index of the rule that applied; `None` for the default mode.
    pub rule: Option<usize>,
}

/// The longest original URL carried to the login page; longer ones are cut to the site root.
const MAX_RETURN_URL: usize = 2048;

/// Decides what happens to a request, from its headers (pseudo-headers included) at unix time `now`.
pub fn decide<N, V>(config: &Config, headers: &[(N, V)], now: u64) -> Decision
where
    N: AsRef<str>,
    V: AsRef<[u8]>,
{
    let request = RequestView::new(headers, |name| config.identity_headers.is_spoof(name));
    let mut edits: Vec<HeaderEdit> = request
        .spoofed
        .iter()
        .map(|name| HeaderEdit::Remove((*name).to_owned()))
        .collect();
    if request.is_cors_preflight() {
        return Decision {
            action: Action::Forward(edits),
            outcome: Outcome::Preflight,
            rule: None,
        };
    }
    let Some(target) = request.target else {
        return refuse(config, &request, None, BadRequest::UnsafePath(PathError::Missing).into());
    };
    let (raw_path, query) = path::split_target(target);
    let readings = match path::readings(raw_path) {
        Ok(readings) => readings,
        Err(e) => return refuse(config, &request, None, BadRequest::UnsafePath(e).into()),
    };
    let policy = config.rules.policy_for_readings(request.method, &readings);
    let rule = policy.rule;
    let refuse_here = |denial: Denial| {
        let target = Target {
            normal_path: readings.first().map(String::as_str).unwrap_or("/"),
            query,
        };
        refuse(config, &request, Some((target, rule)), denial)
    };
    if policy.mode == Mode::None {
        return Decision {
            action: Action::Forward(edits),
            outcome: Outcome::Unchecked,
            rule,
        };
    }
    let locations = Locations {
        query_param: &config.token_query_param,
        cookie: &config.token_cookie,
    };
    let presented = match credentials::extract(&request, query, locations) {
        Ok(presented) => presented,
        Err(denial) => return refuse_here(denial),
    };
    let identity = match &presented {
        None if policy.mode == Mode::Optional => Identity::anonymous(),
        None => return refuse_here(Denial::MissingCredentials),
        Some(credential) => match authenticate(config, credential, now) {
            Ok(identity) => identity,
            Err(denial) => return refuse_here(denial),
        },
    };
    if !role_passes(&policy, &identity) {
        return refuse_here(Denial::PermissionDenied);
    }
    annotate(config, &identity, &mut edits);
    if let (Some(credential), false) = (&presented, config.forward_credentials) {
        strip_credential(config, credential, &request, raw_path, query, &mut edits);
    }
    Decision {
        action: Action::Forward(edits),
        outcome: Outcome::Allowed(identity),
        rule,
    }
}

impl From<BadRequest> for Denial {
    fn from(reason: BadRequest) -> Self {
        Denial::InvalidRequest(reason)
    }
}

fn role_passes(policy: &Policy, identity: &Identity) -> bool {
    policy.mode != Mode::Required || policy.allows_role(&identity.role)
}

/// Who a presented credential makes the caller.
fn authenticate(config: &Config, presented: &Presented<'_>, now: u64) -> Result<Identity, Denial> {
    match presented {
        Presented::Bearer { value, .. } => {
            if let Some(identity) = config.keys.identify(value.as_bytes()) {
                return Ok(identity);
            }
            if value.bytes().filter(|&b| b == b'.').count() != 2 {
                return Err(Denial::InvalidCredentials(BadCredential::Unknown));
            }
            let token = config
                .verifier
                .verify(value, now)
                .map_err(|e| Denial::InvalidCredentials(BadCredential::Token(e)))?;
            Ok(Identity {
                kind: CredentialKind::AccessToken,
                role: crate::identity::role::USER.to_owned(),
                user: Some(token.subject),
                name: None,
            })
        }
        Presented::Client { id, secret } => config
            .clients
            .authenticate(id, secret)
            .ok_or(Denial::InvalidCredentials(BadCredential::Client)),
    }
}

/// Sets the identity headers (client-sent ones were removed first).
fn annotate(config: &Config, identity: &Identity, edits: &mut Vec<HeaderEdit>) {
    let names = &config.identity_headers;
    let mut add = |name: &str, value: &str| {
        edits.push(HeaderEdit::Add(name.to_owned(), value.as_bytes().to_vec()))
    };
    add(&names.kind, identity.kind.as_str());
    add(&names.role, &identity.role);
    if let Some(user) = &identity.user {
        add(&names.user, user);
    }
    if let Some(name) = &identity.name {
        add(&names.name, name);
    }
}

/// Removes the credential that was used, so the upstream never sees it.
fn strip_credential(
    config: &Config,
    presented: &Presented<'_>,
    request: &RequestView<'_>,
    raw_path: &[u8],
    query: Option<&[u8]>,
    edits: &mut Vec<HeaderEdit>,
) {
    let drop_params: &[&str] = match presented {
        Presented::Bearer {
            source: Source::Header,
            ..
        } => {
            edits.push(HeaderEdit::Remove(names::AUTHORIZATION.to_owned()));
            return;
        }
        Presented::Bearer {
            source: Source::Cookie,
            ..
        } => {
            edits.push(HeaderEdit::Remove(names::COOKIE.to_owned()));
            for header in &request.cookies {
                if let Some(rest) = credentials::cookie_header_without(header, &config.token_cookie)
                {
                    edits.push(HeaderEdit::Add(names::COOKIE.to_owned(), rest));
                }
            }
            return;
        }
        Presented::Bearer {
            source: Source::Query,
            ..
        } => &[config.token_query_param.as_str()],
        Presented::Client { .. } => &[CLIENT_ID_PARAM, CLIENT_SECRET_PARAM],
    };
    let mut new_path = raw_path.to_vec();
    let rest = query.and_then(|q| {
        query::without(q, |name| drop_params.iter().any(|p| query::name_is(name, p)))
    });
    if let Some(rest) = rest {
        new_path.push(b'?');
        new_path.extend_from_slice(&rest);
    }
    edits.push(HeaderEdit::SetPath(new_path));
}

/// The parts of the target a redirect needs.
struct Target<'a> {
    normal_path: &'a str,
    query: Option<&'a [u8]>,
}

/// Refuses the request: a JSON error, or for a browser on a 401, a redirect to sign in.
fn refuse(
    config: &Config,
    request: &RequestView<'_>,
    target: Option<(Target<'_>, Option<usize>)>,
    denial: Denial,
) -> Decision {
    let rule = target.as_ref().and_then(|(_, rule)| *rule);
    if let (Some(login), Some((target, _))) = (&config.login, &target) {
        if denial.status() == 401 && is_browser_navigation(request) {
            let location = login_location(config, login, request, target);
            return Decision {
                action: Action::Respond(response::redirect(location)),
                outcome: Outcome::Redirected(denial),
                rule,
            };
        }
    }
    Decision {
        action: Action::Respond(response::error(denial, request.authority)),
        outcome: Outcome::Denied(denial),
        rule,
    }
}

/// A page load: `GET`/`HEAD`, accepting HTML, not marked as a script request.
fn is_browser_navigation(request: &RequestView<'_>) -> bool {
    let method_ok = request.method == b"GET" || request.method == b"HEAD";
    let wants_html = request.accept.is_some_and(|accept| {
        accept
            .windows(9)
            .any(|w| w.eq_ignore_ascii_case(b"text/html"))
    });
    let xhr = request
        .x_requested_with
        .is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"XMLHttpRequest"));
    method_ok && wants_html && !xhr
}

/// `<login_url>?<return_param>=<original URL>`, the URL rebuilt from its normalised path.
fn login_location(
    config: &Config,
    login: &crate::config::Login,
    request: &RequestView<'_>,
    target: &Target<'_>,
) -> String {
    let scheme = if request.scheme == b"http" { "http" } else { "https" };
    let authority = std::str::from_utf8(request.authority)
        .ok()
        .filter(|a| is_plain_authority(a));
    let site = match authority {
        Some(authority) => format!("{scheme}://{authority}"),
        None => String::new(),
    };
    let mut original = format!("{site}{}", target.normal_path).into_bytes();
    let credential_param = |name: &[u8]| {
        [
            config.token_query_param.as_str(),
            CLIENT_ID_PARAM,
            CLIENT_SECRET_PARAM,
        ]
        .iter()
        .any(|p| query::name_is(name, p))
    };
    if let Some(rest) = target.query.and_then(|q| query::without(q, credential_param)) {
        original.push(b'?');
        original.extend_from_slice(&rest);
    }
    if original.len() > MAX_RETURN_URL {
        original = format!("{site}/").into_bytes();
    }
    let separator = match login.url.as_bytes().last() {
        Some(b'?') | Some(b'&') => "",
        _ if login.url.contains('?') => "&",
        _ => "?",
    };
    format!(
        "{}{separator}{}={}",
        login.url,
        login.return_param,
        query::encode_component(&original)
    )
}

/// A host[:port] safe to put in a URL.
fn is_plain_authority(authority: &str) -> bool {
    !authority.is_empty()
        && authority.len() <= 255
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
}
