//! The decision: given the request headers and the time, what happens to the request.
//!
//! Pure: the adapter hands over the header list, applies the returned edits or sends the
//! returned response, and reports the outcome.

use std::borrow::Cow;
use std::rc::Rc;

use crate::config::Config;
use crate::credentials::{self, Locations, Presented};
use crate::denial::{BadCredential, BadRequest, Denial};
use crate::identity::Identity;
use crate::path::{self, PathError};
use crate::query;
use crate::request::{names, RequestView};
use crate::response::{self, LocalResponse};
use crate::rules::{Mode, Policy};
use crate::spellings::{self, CredentialNames as SpellingNames, Found};

/// A change to the request before it goes upstream. Names borrow from the configuration or
/// the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit<'a> {
    /// Remove every header of this name.
    Remove(&'a str),
    /// Replace every value of this header with one (an identity header the client also sent).
    Set(&'a str, Value),
    /// Add a header value (an identity header, or a `Cookie` rebuilt without the credential).
    Add(&'a str, Value),
    /// Replace `:path`.
    SetPath(Vec<u8>),
}

/// A header value: shared text (identity values) or bytes built for this request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Shared(Rc<str>),
    Bytes(Vec<u8>),
}

impl Value {
    /// The value's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Value::Shared(text) => text.as_bytes(),
            Value::Bytes(bytes) => bytes,
        }
    }
}

/// What the adapter does with the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<'a> {
    /// Apply the edits, in order, and let the request on.
    Forward(Vec<HeaderEdit<'a>>),
    /// Apply the edits, then answer the request with this response. The edits remove every
    /// credential (headers, cookies, `:path` parameters), so that access logs never record one.
    Respond(LocalResponse, Vec<HeaderEdit<'a>>),
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
pub struct Decision<'a> {
    pub action: Action<'a>,
    pub outcome: Outcome,
    /// The configuration index of the rule that applied; `None` for the default mode.
    pub rule: Option<usize>,
    /// For an access token: whether the cache of verified tokens answered.
    pub cache_hit: Option<bool>,
}

/// The longest original URL carried to the login page; longer ones are cut to the site root.
const MAX_RETURN_URL: usize = 2048;

/// Decides what happens to a request, from its headers (pseudo-headers included) at unix time
/// `now`, for a request whose headers end the stream (no body follows).
pub fn decide<'a, N, V>(config: &'a Config, headers: &'a [(N, V)], now: u64) -> Decision<'a>
where
    N: AsRef<str>,
    V: AsRef<[u8]>,
{
    decide_stream(config, headers, true, &|| now)
}

/// [`decide`], told whether the headers end the stream (`stream_ends` false: a body follows,
/// so the request is never a CORS preflight), with a clock read only when a token is checked
/// (in the filter, each reading is a call into the host).
pub fn decide_stream<'a, N, V>(
    config: &'a Config,
    headers: &'a [(N, V)],
    stream_ends: bool,
    now: &dyn Fn() -> u64,
) -> Decision<'a>
where
    N: AsRef<str>,
    V: AsRef<[u8]>,
{
    let request = RequestView::new(headers, |name| config.identity_headers.is_spoof(name));
    let mut edits: Vec<HeaderEdit<'a>> = Vec::with_capacity(request.spoofed.len() + 5);
    edits.extend(request.spoofed.iter().map(|name| HeaderEdit::Remove(name)));
    let Some(target) = request.target else {
        let denial = BadRequest::UnsafePath(PathError::Missing).into();
        return refuse(config, &request, None, None, denial, None);
    };
    let (raw_path, query) = path::split_target(target);
    let readings = match path::readings(raw_path) {
        Ok(readings) => readings,
        Err(e) => {
            return refuse(
                config,
                &request,
                None,
                None,
                BadRequest::UnsafePath(e).into(),
                None,
            )
        }
    };
    let names = SpellingNames::new(locations(config));
    // Where credentials sit: looked for on checked requests only (`none` paths stay untouched).
    let find = || spellings::find(names, raw_path, query, &request.cookies);
    let query_overrides = spellings::query_method_overrides(query);
    let refuse_at = |rule, denial: Denial, found: Option<Found>| {
        refuse(
            config,
            &request,
            Some(readings.first()),
            rule,
            denial,
            found,
        )
    };
    let hidden =
        |rule, found: Found| refuse_at(rule, BadRequest::UnreadCredential.into(), Some(found));
    if request.is_cors_preflight(stream_ends) && query_overrides.is_empty() {
        let found = find();
        if found.encoded_in_path {
            return hidden(None, found);
        }
        if !config.forward_credentials {
            remove_credentials(names, &request, raw_path, query, &found, &mut edits);
        }
        return Decision {
            action: Action::Forward(edits),
            outcome: Outcome::Preflight,
            rule: None,
            cache_hit: None,
        };
    }
    let Some(methods) = request.methods(&query_overrides) else {
        return refuse_at(None, BadRequest::MethodOverride.into(), None);
    };
    let methods: Vec<&[u8]> = methods.iter().map(Vec::as_slice).collect();
    let policy = config.rules.policy_for_request(&methods, readings.iter());
    let rule = policy.rule;
    if policy.mode == Mode::None {
        return Decision {
            action: Action::Forward(edits),
            outcome: Outcome::Unchecked,
            rule,
            cache_hit: None,
        };
    }
    let found = find();
    if found.encoded_in_path {
        return hidden(rule, found);
    }
    let refuse_here = |denial: Denial| refuse_at(rule, denial, Some(found));
    let presented = match credentials::extract(&request, query, names.at) {
        Ok(presented) => presented,
        Err(denial) => return refuse_here(denial),
    };
    if presented.is_some() && found.unread() {
        return refuse_here(BadRequest::UnreadCredential.into());
    }
    let mut cache_hit = None;
    let identity = match &presented {
        None if policy.mode == Mode::Optional => Identity::anonymous(),
        None => return refuse_here(Denial::MissingCredentials),
        Some(credential) => {
            let (result, hit) = authenticate(config, credential, now);
            cache_hit = hit;
            match result {
                Ok(identity) => identity,
                Err(denial) => {
                    return Decision {
                        cache_hit,
                        ..refuse_here(denial)
                    }
                }
            }
        }
    };
    if !role_passes(&policy, &identity) {
        return refuse_here(Denial::PermissionDenied);
    }
    annotate(config, &identity, &mut edits);
    if !config.forward_credentials {
        remove_credentials(names, &request, raw_path, query, &found, &mut edits);
    }
    Decision {
        action: Action::Forward(edits),
        outcome: Outcome::Allowed(identity),
        rule,
        cache_hit,
    }
}

/// Where the configuration reads credentials.
fn locations(config: &Config) -> Locations<'_> {
    Locations {
        query_param: &config.token_query_param,
        cookie: &config.token_cookie,
    }
}

/// A field of the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogField {
    Outcome,
    Type,
    Role,
    User,
    Name,
    Code,
    Rule,
}

impl LogField {
    /// The field's name.
    pub fn name(self) -> &'static str {
        match self {
            LogField::Outcome => "outcome",
            LogField::Type => "type",
            LogField::Role => "role",
            LogField::User => "user",
            LogField::Name => "name",
            LogField::Code => "code",
            LogField::Rule => "rule",
        }
    }

    /// The property the adapter sets (Envoy's filter state `wasm.<property>`).
    pub fn property(self) -> &'static str {
        match self {
            LogField::Outcome => "tollgate.outcome",
            LogField::Type => "tollgate.type",
            LogField::Role => "tollgate.role",
            LogField::User => "tollgate.user",
            LogField::Name => "tollgate.name",
            LogField::Code => "tollgate.code",
            LogField::Rule => "tollgate.rule",
        }
    }
}

impl Outcome {
    /// One word for logs and the access log.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Preflight => "preflight",
            Outcome::Unchecked => "unchecked",
            Outcome::Allowed(_) => "allowed",
            Outcome::Denied(_) => "denied",
            Outcome::Redirected(_) => "redirected",
        }
    }
}

impl Decision<'_> {
    /// Fields for Envoy's access log, set as filter state `wasm.tollgate.<field>`; only those
    /// with a value. Never a credential.
    pub fn log_fields(&self) -> Vec<(LogField, Cow<'_, str>)> {
        let mut fields = vec![(LogField::Outcome, Cow::Borrowed(self.outcome.label()))];
        match &self.outcome {
            Outcome::Allowed(identity) => {
                fields.push((LogField::Type, Cow::Borrowed(identity.kind.as_str())));
                fields.push((LogField::Role, Cow::Borrowed(&*identity.role)));
                if let Some(user) = &identity.user {
                    fields.push((LogField::User, Cow::Borrowed(&**user)));
                }
                if let Some(name) = &identity.name {
                    fields.push((LogField::Name, Cow::Borrowed(&**name)));
                }
            }
            Outcome::Denied(denial) | Outcome::Redirected(denial) => {
                fields.push((LogField::Code, Cow::Borrowed(denial.code())));
            }
            Outcome::Preflight | Outcome::Unchecked => {}
        }
        if !matches!(self.outcome, Outcome::Preflight) {
            fields.push((LogField::Rule, Cow::Owned(self.rule_label())));
        }
        fields
    }

    /// `rules[N]` for a configured rule, `default` for the default mode.
    pub fn rule_label(&self) -> String {
        match self.rule {
            Some(index) => format!("rules[{index}]"),
            None => "default".to_owned(),
        }
    }

    /// One line for the debug log: method, normalised path (never the query, which may hold
    /// a credential), outcome, rule and identity or reason.
    pub fn describe<N, V>(&self, headers: &[(N, V)]) -> String
    where
        N: AsRef<str>,
        V: AsRef<[u8]>,
    {
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.as_ref() == name)
                .map(|(_, v)| v.as_ref())
        };
        let method = String::from_utf8_lossy(header(names::METHOD).unwrap_or_default());
        let path = header(names::PATH)
            .map(|target| path::split_target(target).0)
            .and_then(|p| path::readings(p).ok().map(|r| elide_parameters(r.first())))
            .unwrap_or_else(|| "(unusable path)".to_owned());
        let mut line = format!("{} {method} {path}", self.outcome.label());
        for (field, value) in self.log_fields().iter().skip(1) {
            line.push_str(&format!(" {}={value}", field.name()));
        }
        if let Outcome::Denied(denial) | Outcome::Redirected(denial) = &self.outcome {
            line.push_str(&format!(" reason=\"{}\"", denial.message()));
        }
        line
    }
}

/// `path` with the values of its `;` parameters left out, and cut at the first escape or `,`
/// (a client may put a credential in a parameter, or behind an encoded `?` or `;`).
fn elide_parameters(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let (mut in_parameter, mut in_value) = (false, false);
    for c in path.chars() {
        match c {
            '%' | ',' => {
                out.push('…');
                break;
            }
            '/' => (in_parameter, in_value) = (false, false),
            ';' => (in_parameter, in_value) = (true, false),
            '=' if in_parameter && !in_value => {
                in_value = true;
                out.push_str("=…");
                continue;
            }
            _ if in_value => continue,
            _ => {}
        }
        out.push(c);
    }
    out
}

impl From<BadRequest> for Denial {
    fn from(reason: BadRequest) -> Self {
        Denial::InvalidRequest(reason)
    }
}

fn role_passes(policy: &Policy, identity: &Identity) -> bool {
    policy.mode != Mode::Required || policy.allows_role(&identity.role)
}

/// Who a presented credential makes the caller, and whether the token cache answered.
///
/// A bearer value with two dots is a token; anything else is a key (the configuration refuses
/// keys with two dots, so the two never overlap).
fn authenticate(
    config: &Config,
    presented: &Presented<'_>,
    now: &dyn Fn() -> u64,
) -> (Result<Identity, Denial>, Option<bool>) {
    match presented {
        Presented::Bearer { value, .. } if is_token_shaped(value) => {
            match config.verifier.verify(value, now()) {
                Ok(token) => (Ok(Identity::user(token.subject)), Some(token.cached)),
                Err(e) => (
                    Err(Denial::InvalidCredentials(BadCredential::Token(e))),
                    Some(false),
                ),
            }
        }
        Presented::Bearer { value, .. } => (
            config
                .keys
                .identify(value.as_bytes())
                .ok_or(Denial::InvalidCredentials(BadCredential::Unknown)),
            None,
        ),
        Presented::Client { id, secret } => (
            config
                .clients
                .authenticate(id, secret)
                .ok_or(Denial::InvalidCredentials(BadCredential::Client)),
            None,
        ),
    }
}

/// A compact JWS has exactly two dots.
pub fn is_token_shaped(value: &str) -> bool {
    value.bytes().filter(|&b| b == b'.').count() == 2
}

/// Sets the identity headers: added when the client sent none of that name (the cheaper host
/// call), else replacing every value it sent (instead of removing them first).
fn annotate<'a>(config: &'a Config, identity: &Identity, edits: &mut Vec<HeaderEdit<'a>>) {
    let names = &config.identity_headers;
    let values = [
        (names.kind.as_str(), Some(identity.kind.label())),
        (names.role.as_str(), Some(Rc::clone(&identity.role))),
        (names.user.as_str(), identity.user.clone()),
        (names.name.as_str(), identity.name.clone()),
    ];
    for (name, value) in values {
        let Some(value) = value else {
            continue;
        };
        let sent = edits.len();
        edits.retain(|e| *e != HeaderEdit::Remove(name));
        let value = Value::Shared(value);
        edits.push(if edits.len() < sent {
            HeaderEdit::Set(name, value)
        } else {
            HeaderEdit::Add(name, value)
        });
    }
}

/// Removes every credential the request carries, used or not, in every spelling a server
/// might read, so the upstream never sees one; edits only what holds one.
fn remove_credentials<'a>(
    spelled: SpellingNames<'_>,
    request: &RequestView<'a>,
    raw_path: &[u8],
    query: Option<&[u8]>,
    found: &Found,
    edits: &mut Vec<HeaderEdit<'a>>,
) {
    if request.authorization_count > 0 {
        edits.push(HeaderEdit::Remove(names::AUTHORIZATION));
    }
    if found.cookie_credential {
        edits.push(HeaderEdit::Remove(names::COOKIE));
        for header in &request.cookies {
            if let Some(rest) = spellings::cookie_without_credentials(spelled, header) {
                edits.push(HeaderEdit::Add(names::COOKIE, Value::Bytes(rest)));
            }
        }
    }
    if let Some(target) = spellings::target_without_credentials(spelled, raw_path, query, found) {
        edits.push(HeaderEdit::SetPath(target));
    }
}

/// Refuses the request: a JSON error, or for a browser on a 401, a redirect to sign in.
/// `normal_path` is the normalised path when there is one.
fn refuse<'a>(
    config: &Config,
    request: &RequestView<'a>,
    normal_path: Option<&str>,
    rule: Option<usize>,
    denial: Denial,
    found: Option<Found>,
) -> Decision<'a> {
    let (raw_path, query) = path::split_target(request.target.unwrap_or_default());
    let names = SpellingNames::new(locations(config));
    // The access log reads the request as the filter leaves it: no credential stays in it,
    // and no identity header a client wrote.
    let found = found.unwrap_or_else(|| spellings::find(names, raw_path, query, &request.cookies));
    let mut scrub: Vec<HeaderEdit<'a>> = request
        .spoofed
        .iter()
        .map(|name| HeaderEdit::Remove(name))
        .collect();
    remove_credentials(names, request, raw_path, query, &found, &mut scrub);
    if let (Some(login), Some(normal_path)) = (&config.login, normal_path) {
        if denial.status() == 401 && is_browser_navigation(request) {
            let clean = query::path_without_params(normal_path.as_bytes(), |n| names.path_param(n))
                .and_then(|p| String::from_utf8(p).ok());
            let normal_path = clean.as_deref().unwrap_or(normal_path);
            let location = login_location(names, login, request, normal_path, query);
            return Decision {
                action: Action::Respond(response::redirect(location), scrub),
                outcome: Outcome::Redirected(denial),
                rule,
                cache_hit: None,
            };
        }
    }
    Decision {
        action: Action::Respond(response::error(denial, request.authority), scrub),
        outcome: Outcome::Denied(denial),
        rule,
        cache_hit: None,
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
    names: SpellingNames<'_>,
    login: &crate::config::Login,
    request: &RequestView<'_>,
    normal_path: &str,
    query: Option<&[u8]>,
) -> String {
    let scheme = if request.scheme == b"http" {
        "http"
    } else {
        "https"
    };
    let authority = std::str::from_utf8(request.authority)
        .ok()
        .filter(|a| is_plain_authority(a));
    let site = match authority {
        Some(authority) => format!("{scheme}://{authority}"),
        None => String::new(),
    };
    let mut original = format!("{site}{normal_path}").into_bytes();
    let rest = query.and_then(|q| spellings::query_without_credentials(names, q));
    if let Some(rest) = rest {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::denial::BadCredential;
    use crate::token::{claims_for, sign_raw, SigningKey, TokenError};

    const K: &str = "Hq3vXo9TzK7rWm2pLc8dNs5yFb4gJe6A";
    const OLD: &str = "previous-secret-4TqrxYCoq6TBUrbbswc";
    const API_KEY: &str = "sk_test_4f9d2c7a8b1e6f3d0a5c9e2b7f4a1d8c";
    const PUBLISHABLE: &str = "pk_test_7c3e9a1f5b2d8e4a6c0f3b9d1e7a5c2f";
    const CLIENT_SECRET: &str = "cs_test_Zr4Qm8Vn2Lp6Xw1Ty9Hs3Kd7Bf5Gj0";
    const NOW: u64 = 1_750_000_000;

    fn config_with(extra: &str) -> &'static Config {
        let json = format!(
            r#"{{
            "secrets": [{{"kid": "current", "key": "{K}"}}, {{"kid": "old", "key": "{OLD}"}}],
            "api_keys": [{{"name": "backend", "key": "{API_KEY}"}}],
            "publishable_keys": [{{"name": "web", "key": "{PUBLISHABLE}"}}],
            "clients": [{{"client_id": "client-a", "client_secret": "{CLIENT_SECRET}", "role": "reporting"}}],
            "rules": [
                {{"prefix": "/public", "mode": "none"}},
                {{"path": "/login", "mode": "none"}},
                {{"path": "/healthz", "mode": "none"}},
                {{"prefix": "/feed", "mode": "optional"}},
                {{"prefix": "/admin", "mode": "required", "roles": ["admin"]}},
                {{"prefix": "/reports", "mode": "required", "roles": ["reporting", "admin"]}},
                {{"prefix": "/catalog", "mode": "required", "roles": ["user", "admin", "anonymous"]}},
                {{"prefix": "/orders", "mode": "none", "methods": ["GET"]}}
            ]{extra}
        }}"#
        );
        Box::leak(Box::new(Config::parse(json.as_bytes(), &|_| None).unwrap()))
    }

    fn config() -> &'static Config {
        config_with(
            r#", "login_url": "https://auth.example.com/login", "return_param": "return_to""#,
        )
    }

    fn token(sub: &str) -> String {
        SigningKey::new(Some("current".into()), K.as_bytes())
            .sign(claims_for(sub, "access", NOW - 60, 3600))
            .unwrap()
    }

    struct Req {
        headers: Vec<(String, Vec<u8>)>,
    }

    fn req(method: &str, target: &str) -> Req {
        Req {
            headers: vec![
                (":method".into(), method.as_bytes().to_vec()),
                (":path".into(), target.as_bytes().to_vec()),
                (":authority".into(), b"api.example.com".to_vec()),
                (":scheme".into(), b"https".to_vec()),
            ],
        }
    }

    fn get(target: &str) -> Req {
        req("GET", target)
    }

    impl Req {
        fn with(mut self, name: &str, value: impl AsRef<[u8]>) -> Req {
            self.headers.push((name.into(), value.as_ref().to_vec()));
            self
        }
        fn bearer(self, credential: &str) -> Req {
            self.with("authorization", format!("Bearer {credential}"))
        }
        fn browser(self) -> Req {
            self.with("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        }
        /// Decides (the request is leaked so the decision can borrow it for the test).
        fn run(self, config: &'static Config) -> Decision<'static> {
            let headers: &'static [(String, Vec<u8>)] = Box::leak(self.headers.into_boxed_slice());
            decide(config, headers, NOW)
        }
    }

    fn edits<'d>(d: &'d Decision<'_>) -> &'d [HeaderEdit<'d>] {
        match &d.action {
            Action::Forward(edits) => edits,
            Action::Respond(r, _) => panic!("responded {} {}", r.status, r.body),
        }
    }

    fn response<'d>(d: &'d Decision<'_>) -> &'d LocalResponse {
        match &d.action {
            Action::Respond(r, _) => r,
            Action::Forward(e) => panic!("forwarded with {e:?}"),
        }
    }

    /// The value an identity header (or the rebuilt cookie) is set to.
    fn added<'d>(d: &'d Decision<'_>, name: &str) -> Option<&'d str> {
        edits(d).iter().find_map(|e| match e {
            HeaderEdit::Set(n, v) | HeaderEdit::Add(n, v) if *n == name => {
                std::str::from_utf8(v.as_bytes()).ok()
            }
            _ => None,
        })
    }

    fn removed(d: &Decision, name: &str) -> bool {
        edits(d)
            .iter()
            .any(|e| matches!(e, HeaderEdit::Remove(n) if *n == name))
    }

    fn new_path(d: &Decision) -> Option<String> {
        edits(d).iter().find_map(|e| match e {
            HeaderEdit::SetPath(p) => Some(String::from_utf8_lossy(p).into_owned()),
            _ => None,
        })
    }

    fn code(d: &Decision) -> String {
        let r = response(d);
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        format!("{} {}", r.status, body["code"].as_str().unwrap())
    }

    #[test]
    fn access_token_on_a_required_path() {
        let c = config();
        let d = get("/api/x?page=2").bearer(&token("alice")).run(c);
        assert_eq!(added(&d, "x-auth-user"), Some("alice"));
        assert_eq!(added(&d, "x-auth-type"), Some("access_token"));
        assert_eq!(added(&d, "x-auth-role"), Some("user"));
        assert_eq!(added(&d, "x-auth-name"), None);
        assert!(removed(&d, "authorization"));
        assert_eq!(new_path(&d), None);
        assert!(matches!(d.outcome, Outcome::Allowed(_)));
    }

    #[test]
    fn missing_and_invalid_credentials() {
        let c = config();
        let d = get("/api/x").run(c);
        assert_eq!(code(&d), "401 MISSING_CREDENTIALS");
        assert_eq!(
            response(&d).header("www-authenticate"),
            Some("Bearer realm=\"api.example.com\"")
        );
        let cases: &[(&str, &str)] = &[
            ("Basic YWxpY2U6cGFzc3dvcmQ=", "401 INVALID_CREDENTIALS"),
            ("Bearer not-a-key-or-token", "401 INVALID_CREDENTIALS"),
            ("Bearer a.b.c", "401 INVALID_CREDENTIALS"),
            ("Bearer", "401 INVALID_CREDENTIALS"),
        ];
        for (header, expected) in cases {
            let d = get("/api/x").with("authorization", header).run(c);
            assert_eq!(&code(&d), expected, "{header}");
            assert!(response(&d)
                .header("www-authenticate")
                .unwrap()
                .contains("error=\"invalid_token\""));
        }
    }

    #[test]
    fn non_utf8_credential_is_invalid_not_a_crash() {
        let c = config();
        let d = get("/api/x")
            .with("authorization", b"Bearer \xc0\xa7\xc0\xa2")
            .with("user-agent", b"\xff\xfe")
            .run(c);
        assert_eq!(code(&d), "401 INVALID_CREDENTIALS");
        let d = get("/api/x").with("cookie", b"access_token=\xff").run(c);
        assert_eq!(code(&d), "401 INVALID_CREDENTIALS");
    }

    #[test]
    fn token_time_checks() {
        let c = config();
        let key = SigningKey::new(Some("current".into()), K.as_bytes());
        let expired = key
            .sign(claims_for("u", "access", NOW - 7200, 3600))
            .unwrap();
        let within_skew = key
            .sign(claims_for("u", "access", NOW - 3630, 3600))
            .unwrap();
        let mut future = claims_for("u", "access", NOW, 3600);
        future.invalid_before = Some(jwt_simple::prelude::UnixTimeStamp::from_secs(NOW + 600));
        let future = key.sign(future).unwrap();
        let refresh = key.sign(claims_for("u", "refresh", NOW, 3600)).unwrap();
        let d = get("/api").bearer(&expired).run(c);
        assert_eq!(code(&d), "401 TOKEN_EXPIRED");
        assert!(response(&d).body.contains("refresh"));
        assert!(matches!(
            get("/api").bearer(&within_skew).run(c).action,
            Action::Forward(_)
        ));
        assert_eq!(
            code(&get("/api").bearer(&future).run(c)),
            "401 INVALID_CREDENTIALS"
        );
        assert_eq!(
            code(&get("/api").bearer(&refresh).run(c)),
            "401 INVALID_CREDENTIALS"
        );
    }

    #[test]
    fn rotated_and_unknown_keys() {
        let c = config();
        let old = SigningKey::new(Some("old".into()), OLD.as_bytes())
            .sign(claims_for("bob", "access", NOW, 600))
            .unwrap();
        assert_eq!(
            added(&get("/api").bearer(&old).run(c), "x-auth-user"),
            Some("bob")
        );
        let unknown = SigningKey::new(Some("retired".into()), OLD.as_bytes())
            .sign(claims_for("bob", "access", NOW, 600))
            .unwrap();
        let d = get("/api").bearer(&unknown).run(c);
        assert_eq!(
            d.outcome,
            Outcome::Denied(Denial::InvalidCredentials(BadCredential::Token(
                TokenError::UnknownKeyId
            )))
        );
        let none_alg = sign_raw(
            r#"{"alg":"none"}"#,
            r#"{"sub":"eve","token_type":"access","exp":4102444800}"#,
            b"",
        );
        assert_eq!(
            code(&get("/api").bearer(&none_alg).run(c)),
            "401 INVALID_CREDENTIALS"
        );
    }

    #[test]
    fn each_mode() {
        let c = config();
        let t = token("alice");
        // none: never checked, even with a broken credential; nothing added or removed.
        let d = get("/public/x").bearer("garbage").run(c);
        assert_eq!(d.outcome, Outcome::Unchecked);
        assert!(edits(&d).is_empty());
        // optional: anonymous without a credential.
        let d = get("/feed/x").run(c);
        assert_eq!(added(&d, "x-auth-type"), Some("anonymous"));
        assert_eq!(added(&d, "x-auth-role"), Some("anonymous"));
        assert_eq!(added(&d, "x-auth-user"), None);
        // optional: annotated with a valid credential, 401 with an invalid one.
        assert_eq!(
            added(&get("/feed/x").bearer(&t).run(c), "x-auth-user"),
            Some("alice")
        );
        assert_eq!(
            code(&get("/feed/x").bearer("a.b.c").run(c)),
            "401 INVALID_CREDENTIALS"
        );
        // required.
        assert_eq!(code(&get("/elsewhere").run(c)), "401 MISSING_CREDENTIALS");
    }

    #[test]
    fn method_limited_rule() {
        let c = config();
        assert_eq!(get("/orders/1").run(c).outcome, Outcome::Unchecked);
        assert_eq!(
            code(&req("POST", "/orders/1").run(c)),
            "401 MISSING_CREDENTIALS"
        );
    }

    #[test]
    fn spoofed_identity_headers_are_stripped_everywhere() {
        let c = config();
        for target in ["/public/x", "/feed/x", "/api/x"] {
            let d = get(target)
                .with("x-auth-user", "admin")
                .with("x_auth_user", "admin")
                .with("x-auth-role", "admin")
                .with("X_Auth_Name", "root")
                .bearer(&token("alice"))
                .run(c);
            for name in ["x-auth-user", "x_auth_user", "x-auth-role", "X_Auth_Name"] {
                // Removed, or replaced by the filter's own value.
                let set = edits(&d)
                    .iter()
                    .any(|e| matches!(e, HeaderEdit::Set(n, _) if *n == name));
                assert!(removed(&d, name) || set, "{target} {name}");
            }
            let first_add = edits(&d)
                .iter()
                .position(|e| matches!(e, HeaderEdit::Set(..) | HeaderEdit::Add(..)));
            let last_remove = edits(&d).iter().rposition(
                |e| matches!(e, HeaderEdit::Remove(n) if n.to_ascii_lowercase().starts_with("x")),
            );
            if let (Some(add), Some(remove)) = (first_add, last_remove) {
                assert!(remove < add, "{target}: removals come first");
            }
        }
    }

    #[test]
    fn credential_removal_and_forwarding() {
        let c = config();
        let t = token("alice");
        let d = get(&format!("/api/x?a=1&access_token={t}&b=2")).run(c);
        assert_eq!(new_path(&d).as_deref(), Some("/api/x?a=1&b=2"));
        let d = get(&format!("/api/x?access_token={t}")).run(c);
        assert_eq!(new_path(&d).as_deref(), Some("/api/x"));
        let d = get("/api/x")
            .with("cookie", format!("theme=dark; access_token={t}; lang=en"))
            .run(c);
        assert!(removed(&d, "cookie"));
        assert_eq!(added(&d, "cookie"), Some("theme=dark; lang=en"));
        let forward = config_with(r#", "forward_credentials": true"#);
        let d = get(&format!("/api/x?access_token={t}")).run(forward);
        assert_eq!(new_path(&d), None);
        let d = get("/api/x").bearer(&t).run(forward);
        assert!(!removed(&d, "authorization"));
        assert_eq!(added(&d, "x-auth-user"), Some("alice"));
    }

    #[test]
    fn refusals_scrub_query_credentials_for_the_access_log() {
        let c = config();
        let d = get("/api/x?a=1&access_token=a.b.c&client_secret=s").run(c);
        match &d.action {
            Action::Respond(r, edits) => {
                assert_eq!(r.status, 400);
                assert_eq!(edits, &[HeaderEdit::SetPath(b"/api/x?a=1".to_vec())]);
            }
            other => panic!("{other:?}"),
        }
        let d = get("/api/x?a=1").run(c);
        assert!(matches!(&d.action, Action::Respond(_, edits) if edits.is_empty()));
        let d = get("/..?access_token=x").run(c);
        assert!(
            matches!(&d.action, Action::Respond(_, edits) if edits == &[HeaderEdit::SetPath(b"/..".to_vec())])
        );
        // A credential in a path parameter is no credential, and is kept out of logs too.
        let headers = get("/api/x;access_token=a.b.c;v=1/y?q=1").headers;
        let d = decide(c, &headers, NOW);
        match &d.action {
            Action::Respond(r, edits) => {
                assert_eq!(r.status, 401);
                assert_eq!(edits, &[HeaderEdit::SetPath(b"/api/x;v=1/y?q=1".to_vec())]);
            }
            other => panic!("{other:?}"),
        }
        let line = d.describe(&headers);
        assert!(
            !line.contains("a.b.c") && line.contains("/api/x;access_token=…;v=…/y"),
            "{line}"
        );
    }

    #[test]
    fn several_methods_and_repeats_are_bad_requests() {
        let c = config();
        let t = token("alice");
        let cases = [
            get(&format!("/api?access_token={t}")).bearer(&t),
            get(&format!("/api?access_token={t}&access_token={t}")),
            get("/api").bearer(&t).bearer(&t),
            get("/api?client_id=client-a"),
            get("/api").with("cookie", format!("access_token={t}; access_token={t}")),
        ];
        for r in cases {
            let d = r.run(c);
            assert_eq!(code(&d), "400 INVALID_REQUEST");
            assert!(response(&d)
                .header("www-authenticate")
                .unwrap()
                .contains("error=\"invalid_request\""));
        }
    }

    #[test]
    fn hostile_paths() {
        let c = config();
        let required = [
            "/public/../admin/users",
            "/public/%2e%2e/admin/users",
            "/public/.%2E/admin/users",
            "/public%2F..%2Fadmin/users",
            "/public/..%2Fadmin/users",
            "/public/..\\admin/users",
            "/public/..%5Cadmin/users",
            "/public/..;/admin/users",
            "//admin/users",
            "/%61dmin/users",
            "/publicity",
            "/login/../admin",
            "/login/x",
            "/healthz/",
        ];
        for target in required {
            assert_eq!(
                code(&get(target).run(c)),
                "401 MISSING_CREDENTIALS",
                "{target}"
            );
        }
        for target in [
            "/public",
            "/public/",
            "/public/a/../b",
            "/login?x=1",
            "/healthz?probe=1",
        ] {
            assert_eq!(get(target).run(c).outcome, Outcome::Unchecked, "{target}");
        }
        for target in [
            "/..",
            "/public/../..",
            "/a%zz",
            "/a%00b",
            "/%c0%af",
            "relative",
            "*",
        ] {
            assert_eq!(code(&get(target).run(c)), "400 INVALID_REQUEST", "{target}");
        }
        let no_path: Vec<(String, Vec<u8>)> = vec![(":method".into(), b"CONNECT".to_vec())];
        assert_eq!(code(&decide(c, &no_path, NOW)), "400 INVALID_REQUEST");
    }

    #[test]
    fn cors_preflight_passes_without_credentials() {
        let c = config();
        let d = req("OPTIONS", "/admin/x")
            .with("origin", "https://app.example.com")
            .with("access-control-request-method", "GET")
            .with("x-auth-user", "admin")
            .run(c);
        assert_eq!(d.outcome, Outcome::Preflight);
        assert_eq!(edits(&d), &[HeaderEdit::Remove("x-auth-user")]);
        let d = req("OPTIONS", "/admin/x")
            .with("origin", "https://app")
            .run(c);
        assert_eq!(code(&d), "401 MISSING_CREDENTIALS");
    }

    #[test]
    fn keys_clients_and_roles() {
        let c = config();
        let d = get("/admin/x").bearer(API_KEY).run(c);
        assert_eq!(added(&d, "x-auth-type"), Some("api_key"));
        assert_eq!(added(&d, "x-auth-role"), Some("admin"));
        assert_eq!(added(&d, "x-auth-name"), Some("backend"));
        let d = get("/admin/x").bearer(PUBLISHABLE).run(c);
        assert_eq!(code(&d), "403 PERMISSION_DENIED");
        assert!(response(&d)
            .header("www-authenticate")
            .unwrap()
            .contains("error=\"insufficient_scope\""));
        let d = get("/catalog/x").bearer(PUBLISHABLE).run(c);
        assert_eq!(added(&d, "x-auth-type"), Some("publishable_key"));
        assert_eq!(
            code(&get("/admin/x").bearer(&token("alice")).run(c)),
            "403 PERMISSION_DENIED"
        );
        let d = get(&format!(
            "/reports/q?client_id=client-a&client_secret={CLIENT_SECRET}&q=1"
        ))
        .run(c);
        assert_eq!(added(&d, "x-auth-type"), Some("client"));
        assert_eq!(added(&d, "x-auth-role"), Some("reporting"));
        assert_eq!(added(&d, "x-auth-name"), Some("client-a"));
        assert_eq!(new_path(&d).as_deref(), Some("/reports/q?q=1"));
        let wrong = code(&get("/reports/q?client_id=client-a&client_secret=nope").run(c));
        let unknown = code(&get("/reports/q?client_id=nobody&client_secret=nope").run(c));
        assert_eq!(wrong, "401 INVALID_CREDENTIALS");
        assert_eq!(
            response(&get("/reports/q?client_id=client-a&client_secret=nope").run(c)),
            response(&get("/reports/q?client_id=nobody&client_secret=nope").run(c))
        );
        assert_eq!(wrong, unknown);
    }

    #[test]
    fn browser_redirect() {
        let c = config();
        let d = get("/app/page?x=1").browser().run(c);
        let r = response(&d);
        assert_eq!(r.status, 302);
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert_eq!(
            r.header("location"),
            Some("https://auth.example.com/login?return_to=https%3A%2F%2Fapi.example.com%2Fapp%2Fpage%3Fx%3D1")
        );
        // Script requests, other methods and JSON clients get the 401.
        assert_eq!(
            response(
                &get("/app")
                    .browser()
                    .with("x-requested-with", "XMLHttpRequest")
                    .run(c)
            )
            .status,
            401
        );
        assert_eq!(response(&req("POST", "/app").browser().run(c)).status, 401);
        assert_eq!(
            response(&get("/app").with("accept", "application/json").run(c)).status,
            401
        );
        assert_eq!(response(&req("HEAD", "/app").browser().run(c)).status, 302);
        // An expired token in the query: redirected, without the token in the return URL.
        let expired = SigningKey::new(Some("current".into()), K.as_bytes())
            .sign(claims_for("u", "access", NOW - 7200, 60))
            .unwrap();
        let d = get(&format!("/app?access_token={expired}&x=1"))
            .browser()
            .run(c);
        assert_eq!(
            response(&d).header("location"),
            Some("https://auth.example.com/login?return_to=https%3A%2F%2Fapi.example.com%2Fapp%3Fx%3D1")
        );
        // 403 and 400 are never redirected.
        assert_eq!(
            response(&get("/admin").bearer(&token("a")).browser().run(c)).status,
            403
        );
        assert_eq!(response(&get("/..").browser().run(c)).status, 400);
    }

    #[test]
    fn redirect_never_becomes_an_open_redirect() {
        let c = config();
        let location = |target: &str| {
            response(&get(target).browser().run(c))
                .header("location")
                .unwrap()
                .to_string()
        };
        for (target, expected) in [
            ("//evil.example/x", "https%3A%2F%2Fapi.example.com%2Fevil.example%2Fx"),
            ("/\\evil.example", "https%3A%2F%2Fapi.example.com%2F%255Cevil.example"),
            ("/%2F%2Fevil.example", "https%3A%2F%2Fapi.example.com%2F%252F%252Fevil.example"),
            ("/app/%0d%0aSet-Cookie:%20x=y", ""),
            ("/p?x=1&return_to=https://evil.example", "https%3A%2F%2Fapi.example.com%2Fp%3Fx%3D1%26return_to%3Dhttps%3A%2F%2Fevil.example"),
        ] {
            if expected.is_empty() {
                assert_eq!(response(&get(target).browser().run(c)).status, 400, "{target}");
                continue;
            }
            assert_eq!(
                location(target),
                format!("https://auth.example.com/login?return_to={expected}"),
                "{target}"
            );
        }
        let hostile_host = get("/app").browser().run(config());
        assert!(response(&hostile_host).header("location").is_some());
        let mut r = get("/app").browser();
        r.headers[2].1 = b"evil.example\"><script>".to_vec();
        let d = r.run(c);
        assert_eq!(
            response(&d).header("location"),
            Some("https://auth.example.com/login?return_to=%2Fapp")
        );
    }

    #[test]
    fn login_url_with_query_and_path() {
        let c = config_with(r#", "login_url": "/login?tenant=acme""#);
        let d = get("/app").browser().with(":scheme", "http").run(c);
        let location = response(&d).header("location").unwrap();
        assert!(
            location.starts_with("/login?tenant=acme&redirect="),
            "{location}"
        );
    }
}

#[cfg(test)]
mod report_tests {
    use super::*;

    #[test]
    fn log_fields_and_description_never_hold_the_credential() {
        let config = Config::parse(
            br#"{"secrets":[{"key":"Hq3vXo9TzK7rWm2pLc8dNs5yFb4gJe6A"}],"rules":[{"prefix":"/public","mode":"none"}]}"#,
            &|_| None,
        )
        .unwrap();
        let token = crate::token::SigningKey::new(None, b"Hq3vXo9TzK7rWm2pLc8dNs5yFb4gJe6A")
            .sign(crate::token::claims_for(
                "alice",
                "access",
                1_750_000_000,
                60,
            ))
            .unwrap();
        let target = format!("/api/x?access_token={token}");
        let headers = vec![
            (":method".to_string(), b"GET".to_vec()),
            (":path".to_string(), target.into_bytes()),
        ];
        let d = decide(&config, &headers, 1_750_000_000);
        assert_eq!(
            d.log_fields(),
            vec![
                (LogField::Outcome, Cow::Borrowed("allowed")),
                (LogField::Type, "access_token".into()),
                (LogField::Role, "user".into()),
                (LogField::User, "alice".into()),
                (LogField::Rule, "default".into()),
            ]
        );
        let line = d.describe(&headers);
        assert_eq!(
            line,
            "allowed GET /api/x type=access_token role=user user=alice rule=default"
        );
        assert!(!line.contains(&token));

        let headers = vec![
            (":method".to_string(), b"GET".to_vec()),
            (":path".to_string(), b"/api/x?access_token=a.b.c".to_vec()),
        ];
        let d = decide(&config, &headers, 1_750_000_000);
        assert_eq!(
            d.log_fields(),
            vec![
                (LogField::Outcome, Cow::Borrowed("denied")),
                (LogField::Code, "INVALID_CREDENTIALS".into()),
                (LogField::Rule, "default".into()),
            ]
        );
        assert!(d
            .describe(&headers)
            .starts_with("denied GET /api/x code=INVALID_CREDENTIALS rule=default reason=\""));
        let headers = vec![
            (":method".to_string(), b"GET".to_vec()),
            (":path".to_string(), b"/public/x".to_vec()),
        ];
        let d = decide(&config, &headers, 1_750_000_000);
        assert_eq!(
            d.describe(&headers),
            "unchecked GET /public/x rule=rules[0]"
        );
    }
}
