//! Answers the filter gives itself: JSON errors with `WWW-Authenticate`, and login redirects.

use crate::denial::Denial;

/// A response sent by the filter instead of forwarding the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    pub status: u32,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl LocalResponse {
    /// The value of header `name`, if set.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The realm of the challenge: the request's authority when it is a plain host[:port].
fn realm(authority: &[u8]) -> &str {
    let plain = !authority.is_empty()
        && authority.len() <= 255
        && authority
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b));
    match std::str::from_utf8(authority) {
        Ok(text) if plain => text,
        _ => "api",
    }
}

/// The JSON error for `denial`, with its RFC 6750 challenge.
pub fn error(denial: Denial, authority: &[u8]) -> LocalResponse {
    let mut challenge = format!("Bearer realm=\"{}\"", realm(authority));
    if let Some(error) = denial.bearer_error() {
        challenge.push_str(&format!(
            ", error=\"{error}\", error_description=\"{}\"",
            denial.message()
        ));
    }
    // Codes and messages are fixed ASCII without quotes or backslashes (tested), so the JSON
    // needs no escaping.
    let body = format!(
        "{{\"code\":\"{}\",\"message\":\"{}\"}}",
        denial.code().as_str(),
        denial.message()
    );
    // A 503 is no challenge: the credential may be good; the client is told when to retry.
    let (name, value) = if denial.status() == 503 {
        ("retry-after", RETRY_AFTER_SECONDS.to_owned())
    } else {
        ("www-authenticate", challenge)
    };
    LocalResponse {
        status: denial.status(),
        headers: vec![
            ("content-type", "application/json".to_owned()),
            (name, value),
            ("cache-control", "no-store".to_owned()),
        ],
        body,
    }
}

/// `Retry-After` of a 503 `KEYS_UNAVAILABLE`, in seconds: about when a failed key fetch is
/// tried again.
pub const RETRY_AFTER_SECONDS: &str = "5";

/// 503 `FILTER_UNAVAILABLE`: the host refused a header change the decision needed (setting
/// an identity header, removing a credential), so the request is not let on.
pub fn unavailable() -> LocalResponse {
    LocalResponse {
        status: 503,
        headers: vec![
            ("content-type", "application/json".to_owned()),
            ("retry-after", RETRY_AFTER_SECONDS.to_owned()),
            ("cache-control", "no-store".to_owned()),
        ],
        body: format!("{{\"code\":\"{UNAVAILABLE_CODE}\",\"message\":\"The request could not be checked; try again.\"}}"),
    }
}

/// The code of [`unavailable`].
pub const UNAVAILABLE_CODE: &str = "FILTER_UNAVAILABLE";

/// `302 Found` to `location`, never cached.
pub fn redirect(location: String) -> LocalResponse {
    LocalResponse {
        status: 302,
        headers: vec![
            ("location", location),
            ("cache-control", "no-store".to_owned()),
        ],
        body: String::new(),
    }
}

/// Where browsers are sent to sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// `login_url` as configured.
    pub url: String,
    /// The query parameter that carries the original URL.
    pub return_param: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::denial::{BadCredential, BadRequest};
    use crate::verify::token::TokenError;

    #[test]
    fn missing_credentials_challenge_has_no_error() {
        let r = error(Denial::MissingCredentials, b"api.example.com");
        assert_eq!(r.status, 401);
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"api.example.com\"")
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["code"], "MISSING_CREDENTIALS");
        assert!(body["message"].as_str().unwrap().contains("Bearer"));
    }

    #[test]
    fn invalid_credentials_challenge_describes_the_error() {
        let r = error(
            Denial::InvalidCredentials(BadCredential::Token(TokenError::Expired)),
            b"localhost:10000",
        );
        assert_eq!(r.status, 401);
        let challenge = r.header("www-authenticate").unwrap();
        assert!(challenge.starts_with(
            "Bearer realm=\"localhost:10000\", error=\"invalid_token\", error_description=\""
        ));
        assert!(r.body.contains("TOKEN_EXPIRED"));
    }

    #[test]
    fn bad_request_and_forbidden_challenges() {
        let r = error(Denial::InvalidRequest(BadRequest::SeveralMethods), b"h");
        assert_eq!(r.status, 400);
        assert!(r
            .header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_request\""));
        let r = error(Denial::PermissionDenied, b"h");
        assert_eq!(r.status, 403);
        assert!(r
            .header("www-authenticate")
            .unwrap()
            .contains("error=\"insufficient_scope\""));
    }

    #[test]
    fn hostile_authority_never_reaches_the_challenge() {
        for authority in [
            &b"evil\"; error=\"x"[..],
            b"a\r\nset-cookie: x",
            b"\xff",
            b"",
            b"a/b?c",
        ] {
            let r = error(Denial::MissingCredentials, authority);
            assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"api\""));
        }
    }
}
