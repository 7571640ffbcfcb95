//! Finding the one credential a request carries, and refusing requests that carry several.

mod bearer;
pub mod form;
mod multipart;
pub mod spellings;
mod token_headers;
#[cfg(test)]
mod token_headers_tests;

use std::borrow::Cow;

use crate::denial::{BadCredential, BadRequest, Denial};
use crate::request::query::{self, name_is};
use crate::request::RequestView;
pub use crate::request::TokenHeader;
pub(crate) use bearer::is_b64token;
pub use bearer::is_bearer_credential;
use bearer::{bearer_from_header, checked_bearer};

/// Query parameter names of client credentials.
pub const CLIENT_ID_PARAM: &str = "client_id";
pub const CLIENT_SECRET_PARAM: &str = "client_secret";

/// Where a bearer credential (token or key) was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Header,
    Query,
    Cookie,
}

impl Source {
    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Header => "header",
            Source::Query => "query",
            Source::Cookie => "cookie",
        }
    }
}

/// The credential a request presents, not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented<'a> {
    /// A token or key: `Authorization: Bearer`, the token query parameter or the token cookie.
    Bearer { value: Cow<'a, str>, source: Source },
    /// `client_id` and `client_secret` query parameters, decoded.
    Client { id: Vec<u8>, secret: Vec<u8> },
}

/// The names under which credentials travel.
#[derive(Debug, Clone, Copy)]
pub struct Locations<'c> {
    pub query_param: &'c str,
    pub cookie: &'c str,
}

/// The credential of a request, `None` when it sends none, or why it is refused.
pub fn extract<'a>(
    request: &RequestView<'a>,
    query: Option<&'a [u8]>,
    at: Locations<'_>,
) -> Result<Option<Presented<'a>>, Denial> {
    extract_with(request, query, at, &[])
}

/// [`extract`], reading the token headers `sources` too (each one a method of its own).
pub fn extract_with<'a>(
    request: &RequestView<'a>,
    query: Option<&'a [u8]>,
    at: Locations<'_>,
    sources: &[TokenHeader],
) -> Result<Option<Presented<'a>>, Denial> {
    if request.authorization_count > 1 {
        return Err(Denial::InvalidRequest(BadRequest::RepeatedAuthorization));
    }
    let header = request.authorization;
    // Envoy joins repeated headers with ", "; no single credential holds a comma.
    if header.is_some_and(|h| h.contains(&b',')) {
        return Err(Denial::InvalidRequest(BadRequest::RepeatedAuthorization));
    }
    let token_header = token_headers::find(request)?;
    let found = QueryCredentials::find(query.unwrap_or_default(), at.query_param)?;
    let client = found.client_id.is_some() || found.client_secret.is_some();
    let session = request.session_token;
    let methods = usize::from(header.is_some())
        + usize::from(session.is_some())
        + usize::from(token_header.is_some())
        + usize::from(found.token.is_some())
        + usize::from(client);
    if methods > 1 {
        return Err(Denial::InvalidRequest(BadRequest::SeveralMethods));
    }
    if let Some(value) = session {
        // Checked when the session was set or its cookie opened (`Session::token`).
        return Ok(Some(Presented::Bearer {
            value: Cow::Borrowed(value),
            source: Source::Header,
        }));
    }
    if let Some(value) = header {
        if !sources.is_empty() {
            if let Some(credential) = token_headers::authorization_prefixed(sources, value) {
                return Ok(Some(Presented::Bearer {
                    value: checked_bearer(Cow::Borrowed(credential))?,
                    source: Source::Header,
                }));
            }
        }
        return bearer_from_header(value).map(Some);
    }
    if let Some((index, value)) = token_header {
        return token_headers::credential(sources, index, value).map(Some);
    }
    if let Some(raw) = found.token {
        let decoded = query::percent_decode(raw)
            .ok_or(Denial::InvalidCredentials(BadCredential::BadCharacters))?;
        let value = checked_bearer(Cow::Owned(decoded))?;
        return Ok(Some(Presented::Bearer {
            value,
            source: Source::Query,
        }));
    }
    match (found.client_id, found.client_secret) {
        (Some(id), Some(secret)) => {
            let bad = Denial::InvalidCredentials(BadCredential::Client);
            let id = query::percent_decode(id).ok_or(bad)?;
            let secret = query::percent_decode(secret).ok_or(bad)?;
            return Ok(Some(Presented::Client { id, secret }));
        }
        (Some(_), None) => return Err(Denial::InvalidRequest(BadRequest::LoneClientId)),
        (None, Some(_)) => return Err(Denial::InvalidRequest(BadRequest::LoneClientSecret)),
        (None, None) => {}
    }
    match token_cookie(&request.cookies, at.cookie)? {
        Some(value) => Ok(Some(Presented::Bearer {
            value: checked_bearer(Cow::Borrowed(value))?,
            source: Source::Cookie,
        })),
        None => Ok(None),
    }
}

/// The credential parameters of a query, each seen at most once.
#[derive(Debug, Default)]
struct QueryCredentials<'a> {
    token: Option<&'a [u8]>,
    client_id: Option<&'a [u8]>,
    client_secret: Option<&'a [u8]>,
}

impl<'a> QueryCredentials<'a> {
    fn find(query: &'a [u8], token_param: &str) -> Result<Self, Denial> {
        let mut found = QueryCredentials::default();
        for param in query::params(query) {
            let slot = if name_is(param.name, token_param) {
                &mut found.token
            } else if name_is(param.name, CLIENT_ID_PARAM) {
                &mut found.client_id
            } else if name_is(param.name, CLIENT_SECRET_PARAM) {
                &mut found.client_secret
            } else {
                continue;
            };
            if slot.replace(param.value).is_some() {
                return Err(Denial::InvalidRequest(BadRequest::RepeatedParameter));
            }
        }
        Ok(found)
    }
}

/// The value of the token cookie across every `Cookie` header; two of them is a 400.
fn token_cookie<'a>(cookies: &[&'a [u8]], name: &str) -> Result<Option<&'a [u8]>, Denial> {
    let mut found = None;
    for header in cookies {
        for pair in cookie_pairs(header) {
            if pair.0 == name.as_bytes() && found.replace(pair.1).is_some() {
                return Err(Denial::InvalidRequest(BadRequest::RepeatedCookie));
            }
        }
    }
    Ok(found)
}

/// `name=value` pairs of one `Cookie` header, whitespace around each pair removed.
pub(crate) fn cookie_pairs(header: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    header.split(|&b| b == b';').filter_map(|pair| {
        let pair = pair.trim_ascii();
        let eq = pair.iter().position(|&b| b == b'=')?;
        Some((pair.get(..eq)?, pair.get(eq + 1..)?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::MAX_CREDENTIAL_LEN;

    const AT: Locations<'static> = Locations {
        query_param: "access_token",
        cookie: "access_token",
    };

    fn view<'a>(auth: &[&'a [u8]], cookies: &[&'a [u8]]) -> RequestView<'a> {
        RequestView {
            authorization: auth.first().copied(),
            authorization_count: auth.len(),
            cookies: cookies.to_vec(),
            ..Default::default()
        }
    }

    type Extracted<'a> = Result<Option<Presented<'a>>, Denial>;

    fn run<'a>(
        auth: &[&'a [u8]],
        query: Option<&'a str>,
        cookies: &[&'a [u8]],
    ) -> Result<Option<Presented<'a>>, Denial> {
        extract(&view(auth, cookies), query.map(str::as_bytes), AT)
    }

    fn bearer(value: &str, source: Source) -> Result<Option<Presented<'_>>, Denial> {
        Ok(Some(Presented::Bearer {
            value: Cow::Borrowed(value),
            source,
        }))
    }

    fn bad(reason: BadCredential) -> Result<Option<Presented<'static>>, Denial> {
        Err(Denial::InvalidCredentials(reason))
    }

    fn bad_request(reason: BadRequest) -> Result<Option<Presented<'static>>, Denial> {
        Err(Denial::InvalidRequest(reason))
    }

    #[test]
    fn nothing_is_none() {
        assert_eq!(run(&[], None, &[]), Ok(None));
        assert_eq!(run(&[], Some("a=1"), &[b"theme=dark"]), Ok(None));
        assert_eq!(run(&[], Some("Access_Token=x"), &[]), Ok(None));
    }

    #[test]
    fn authorization_header() {
        let cases: &[(&[u8], Extracted)] = &[
            (b"Bearer abc.def.ghi", bearer("abc.def.ghi", Source::Header)),
            (b"bearer abc", bearer("abc", Source::Header)),
            (b"BEARER abc", bearer("abc", Source::Header)),
            (b"bEaReR abc", bearer("abc", Source::Header)),
            (b"Bearer  abc", bearer("abc", Source::Header)),
            (
                b"Bearer sk_test+/x==",
                bearer("sk_test+/x==", Source::Header),
            ),
            (b"Bearer", bad(BadCredential::Empty)),
            (b"Bearer ", bad(BadCredential::Empty)),
            (b"", bad(BadCredential::NotBearer)),
            (b"abc.def.ghi", bad(BadCredential::NotBearer)),
            (b"Basic YWxpY2U6cGFzc3dvcmQ=", bad(BadCredential::NotBearer)),
            (b"Token abc", bad(BadCredential::NotBearer)),
            (b"Bearer: abc", bad(BadCredential::NotBearer)),
            (b"Bearer\tabc", bad(BadCredential::NotBearer)),
            (b"Bearer \tabc", bad(BadCredential::BadCharacters)),
            (b"Bearer Bearer abc", bad(BadCredential::BadCharacters)),
            (
                b"Bearer a, Bearer b",
                bad_request(BadRequest::RepeatedAuthorization),
            ),
            (b"Bearer a=b", bad(BadCredential::BadCharacters)),
            (b"Bearer =", bad(BadCredential::BadCharacters)),
            (
                b"Bearer \xc0\xa7\xc0\xa2",
                bad(BadCredential::BadCharacters),
            ),
            (b"Bearer abc\r\n", bad(BadCredential::BadCharacters)),
            (b"\xff\xfe", bad(BadCredential::NotBearer)),
        ];
        for (header, expected) in cases {
            assert_eq!(
                &run(&[header], None, &[]),
                expected,
                "{}",
                String::from_utf8_lossy(header)
            );
        }
    }

    #[test]
    fn credential_length_is_capped_before_parsing() {
        let long = format!("Bearer {}", "A".repeat(MAX_CREDENTIAL_LEN + 1));
        assert_eq!(
            run(&[long.as_bytes()], None, &[]),
            bad(BadCredential::TooLong)
        );
        let at_cap = format!("Bearer {}", "A".repeat(MAX_CREDENTIAL_LEN));
        assert!(run(&[at_cap.as_bytes()], None, &[]).is_ok());
        let long_bytes = [b"Bearer ".as_slice(), &[0xff; MAX_CREDENTIAL_LEN + 1]].concat();
        assert_eq!(run(&[&long_bytes], None, &[]), bad(BadCredential::TooLong));
        let query = format!("access_token={}", "A".repeat(MAX_CREDENTIAL_LEN + 1));
        assert_eq!(run(&[], Some(&query), &[]), bad(BadCredential::TooLong));
    }

    #[test]
    fn query_token() {
        let owned = |v: &str| {
            Ok(Some(Presented::Bearer {
                value: Cow::Owned(v.to_string()),
                source: Source::Query,
            }))
        };
        assert_eq!(run(&[], Some("access_token=abc&page=2"), &[]), owned("abc"));
        assert_eq!(run(&[], Some("access_token=%65yJ"), &[]), owned("eyJ"));
        assert_eq!(run(&[], Some("access%5Ftoken=abc"), &[]), owned("abc"));
        assert_eq!(
            run(&[], Some("access_token=%2565yJ"), &[]),
            bad(BadCredential::BadCharacters)
        );
        assert_eq!(
            run(&[], Some("access_token="), &[]),
            bad(BadCredential::Empty)
        );
        assert_eq!(
            run(&[], Some("access_token"), &[]),
            bad(BadCredential::Empty)
        );
        assert_eq!(
            run(&[], Some("access_token=%zz"), &[]),
            bad(BadCredential::BadCharacters)
        );
        assert_eq!(
            run(&[], Some("access_token=a&access_token=b"), &[]),
            bad_request(BadRequest::RepeatedParameter)
        );
        assert_eq!(
            run(&[], Some("access_token=a&access%5Ftoken=a"), &[]),
            bad_request(BadRequest::RepeatedParameter)
        );
    }

    #[test]
    fn one_method_per_request() {
        assert_eq!(
            run(&[b"Bearer a"], Some("access_token=a"), &[]),
            bad_request(BadRequest::SeveralMethods)
        );
        assert_eq!(
            run(&[b"Bearer a"], Some("client_id=c&client_secret=s"), &[]),
            bad_request(BadRequest::SeveralMethods)
        );
        assert_eq!(
            run(&[], Some("access_token=a&client_id=c&client_secret=s"), &[]),
            bad_request(BadRequest::SeveralMethods)
        );
        assert_eq!(
            run(&[b"Bearer a", b"Bearer b"], None, &[]),
            bad_request(BadRequest::RepeatedAuthorization)
        );
        assert_eq!(
            run(&[b"Basic x"], Some("access_token=a"), &[]),
            bad_request(BadRequest::SeveralMethods)
        );
    }

    #[test]
    fn client_credentials() {
        assert_eq!(
            run(&[], Some("client_id=client-a&client_secret=s%2Bx&q=1"), &[]),
            Ok(Some(Presented::Client {
                id: b"client-a".to_vec(),
                secret: b"s+x".to_vec()
            }))
        );
        assert_eq!(
            run(&[], Some("client_id=client-a"), &[]),
            bad_request(BadRequest::LoneClientId)
        );
        assert_eq!(
            run(&[], Some("client_secret=s"), &[]),
            bad_request(BadRequest::LoneClientSecret)
        );
        assert_eq!(
            run(&[], Some("client_id=a&client_id=b&client_secret=s"), &[]),
            bad_request(BadRequest::RepeatedParameter)
        );
        assert_eq!(
            run(&[], Some("client_id=a&client_secret=%"), &[]),
            bad(BadCredential::Client)
        );
    }

    #[test]
    fn cookie_is_read_only_without_other_methods() {
        assert_eq!(
            run(&[], None, &[b"theme=dark; access_token=abc"]),
            bearer("abc", Source::Cookie)
        );
        assert_eq!(
            run(&[], None, &[b"theme=dark", b"access_token=abc"]),
            bearer("abc", Source::Cookie)
        );
        assert_eq!(
            run(&[], None, &[b"access_token=abc;"]),
            bearer("abc", Source::Cookie)
        );
        assert_eq!(
            run(&[b"Bearer hdr"], None, &[b"access_token=abc"]),
            bearer("hdr", Source::Header)
        );
        assert_eq!(
            run(&[], None, &[b"access_token=a; access_token=b"]),
            bad_request(BadRequest::RepeatedCookie)
        );
        assert_eq!(
            run(&[], None, &[b"access_token=a", b"access_token=a"]),
            bad_request(BadRequest::RepeatedCookie)
        );
        assert_eq!(run(&[], None, &[b"Access_Token=a"]), Ok(None));
        assert_eq!(run(&[], None, &[b"access_token =a"]), Ok(None));
        assert_eq!(
            run(&[], None, &[b"access_token=\"abc\""]),
            bad(BadCredential::BadCharacters)
        );
        assert_eq!(
            run(&[], None, &[b"access_token=\xff"]),
            bad(BadCredential::BadCharacters)
        );
        assert_eq!(
            run(&[], None, &[b"access_token="]),
            bad(BadCredential::Empty)
        );
    }

    #[test]
    fn b64token_grammar() {
        for ok in ["a", "abc.def.ghi", "a-b_c~d+e/f", "abc==", "x="] {
            assert!(is_b64token(ok.as_bytes()), "{ok}");
        }
        for bad in ["", "=", "a=b", "a b", "a,b", "a\"b", "é"] {
            assert!(!is_b64token(bad.as_bytes()), "{bad}");
        }
    }
}
