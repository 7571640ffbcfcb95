//! Refusing a request: the JSON error, or for a browser, the redirect to sign in.

use super::scrub::remove_credentials;
use super::{Decision, HeaderEdit, Outcome};
use crate::config::Config;
use crate::credential::spellings::{self, CredentialNames, Found};
use crate::denial::Denial;
use crate::oidc::config::Endpoints;
use crate::request::{path, query, RequestView};
use crate::response::{self, Login};

/// The longest original URL carried to the login page; longer ones are cut to the site root.
const MAX_RETURN_URL: usize = 2048;

/// Refuses the request: a JSON error, or for a browser on a 401, a redirect to sign in.
/// `normal_path` is the normalised path when there is one; `sign_in`: the provider's
/// endpoints, when sign-in is configured and they are known.
pub(super) fn refuse<'a>(
    (config, sign_in): (&Config, Option<&Endpoints>),
    request: &RequestView<'a>,
    normal_path: Option<&str>,
    rule: Option<usize>,
    denial: Denial,
    found: Option<Found>,
    now: &dyn Fn() -> u64,
) -> Decision<'a> {
    let (raw_path, query) = path::split_target(request.target.unwrap_or_default());
    let names = CredentialNames::new(super::locations(config));
    // The access log reads the request as the filter leaves it: no credential stays in it,
    // and no identity header a client wrote.
    let found = found.unwrap_or_else(|| spellings::find(names, raw_path, query, &request.cookies));
    let mut scrub: Vec<HeaderEdit<'a>> = request
        .spoofed
        .iter()
        .map(|name| HeaderEdit::Remove(name))
        .collect();
    remove_credentials(names, request, raw_path, query, &found, &mut scrub);
    let signs_in = config.login.is_some() || config.oidc.is_some();
    if let (true, Some(normal_path)) = (signs_in, normal_path) {
        if denial.status() == 401 && is_browser_navigation(request) {
            let clean = query::path_without_params(normal_path.as_bytes(), |n| names.path_param(n))
                .and_then(|p| String::from_utf8(p).ok());
            let normal_path = clean.as_deref().unwrap_or(normal_path);
            let (site, original) = original_url(names, request, normal_path, query);
            let response = match (&config.oidc, &config.login) {
                (Some(oidc), _) if !site.is_empty() => {
                    crate::oidc::start::sign_in((oidc, sign_in), &site, &original, now())
                }
                (_, Some(login)) => response::redirect(login_location(login, &original)),
                _ => response::error(denial, request.authority),
            };
            return Decision::respond(response, scrub, Outcome::Redirected(denial), rule);
        }
    }
    let response = response::error(denial, request.authority);
    Decision::respond(response, scrub, Outcome::Denied(denial), rule)
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

/// The site (`scheme://authority`, empty when the authority is not plain) and the original
/// URL, rebuilt from its normalised path without credential parameters.
fn original_url(
    names: CredentialNames<'_>,
    request: &RequestView<'_>,
    normal_path: &str,
    query: Option<&[u8]>,
) -> (String, String) {
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
    let original = String::from_utf8(original).unwrap_or_else(|_| format!("{site}/"));
    (site, original)
}

/// `<login_url>?<return_param>=<original URL>`.
fn login_location(login: &Login, original: &str) -> String {
    let separator = match login.url.as_bytes().last() {
        Some(b'?') | Some(b'&') => "",
        _ if login.url.contains('?') => "&",
        _ => "?",
    };
    format!(
        "{}{separator}{}={}",
        login.url,
        login.return_param,
        query::encode_component(original.as_bytes())
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
