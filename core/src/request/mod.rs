//! One pass over the request headers: the parts the decision reads.

pub mod form;
pub mod host;
mod malformed;
pub mod path;
pub mod query;

pub use malformed::BadRequest;

/// Header names as Envoy hands them over (lower case).
pub mod names {
    pub const METHOD: &str = ":method";
    pub const PATH: &str = ":path";
    pub const AUTHORITY: &str = ":authority";
    /// A `host` header beside `:authority` (HTTP/2 clients may send both).
    pub const HOST: &str = "host";
    pub const SCHEME: &str = ":scheme";
    pub const AUTHORIZATION: &str = "authorization";
    pub const COOKIE: &str = "cookie";
    pub const ORIGIN: &str = "origin";
    pub const ACCESS_CONTROL_REQUEST_METHOD: &str = "access-control-request-method";
    pub const ACCEPT: &str = "accept";
    pub const X_REQUESTED_WITH: &str = "x-requested-with";
    pub const CONTENT_LENGTH: &str = "content-length";
    pub const TRANSFER_ENCODING: &str = "transfer-encoding";
    pub const CONTENT_TYPE: &str = "content-type";
    pub const CONTENT_ENCODING: &str = "content-encoding";
    /// Headers that ask a server to serve the request as another method.
    pub const METHOD_OVERRIDES: [&str; 3] = [
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
    ];
}

/// The most method overrides a request may carry; more is refused.
pub const MAX_METHOD_OVERRIDES: usize = 4;

/// The headers of one request that matter to the filter, borrowed from the header list.
#[derive(Debug, Default)]
pub struct RequestView<'a> {
    pub method: &'a [u8],
    /// `None` for a request without `:path` (such as CONNECT).
    pub target: Option<&'a [u8]>,
    pub authority: &'a [u8],
    pub scheme: &'a [u8],
    /// The first `Authorization` value.
    pub authorization: Option<&'a [u8]>,
    /// A browser session's access token ([`Session::token`]).
    pub session_token: Option<&'a str>,
    /// How many `Authorization` headers there are.
    pub authorization_count: usize,
    /// Every `Cookie` value, in order (HTTP/2 may send several).
    pub cookies: Vec<&'a [u8]>,
    /// The first `Origin` value.
    pub origin: Option<&'a [u8]>,
    /// The first `Access-Control-Request-Method` value.
    pub access_control_request_method: Option<&'a [u8]>,
    /// Whether the headers announce a body (`Content-Length` other than 0, or
    /// `Transfer-Encoding`); the adapter also knows whether the stream ends with them.
    pub announces_body: bool,
    /// Every `Content-Type` value, in order.
    pub content_types: Vec<&'a [u8]>,
    /// Every `Content-Encoding` value, in order.
    pub content_encodings: Vec<&'a [u8]>,
    /// Values of the method override headers, in order.
    pub method_overrides: Vec<&'a [u8]>,
    pub accept: Option<&'a [u8]>,
    pub x_requested_with: Option<&'a [u8]>,
    /// Names of client-sent headers that spell an identity header: they are removed.
    pub spoofed: Vec<&'a str>,
    /// The configured token headers (`token_headers`, other than `authorization`) the request
    /// carries, and headers that spell one without being it (`x_access_token`: a server may
    /// read them, the filter does not): each name once, in order.
    pub token_headers: Vec<SentTokenHeader<'a>>,
}

/// What a browser session puts in place of a request's `Cookie` headers and `Authorization`:
/// sign-in read them, and the decision reads the request through this.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Session<'a> {
    /// The session's access token, in the place of an `Authorization: Bearer`; already
    /// checked as a bearer credential (`oidc::session::is_sign_in_token`).
    pub token: Option<&'a str>,
    /// The `Cookie` header without the filter's cookies (none: no cookie is left).
    pub cookie: Option<&'a [u8]>,
}

/// A header that carries a token or key (`token_headers`), after `prefix` when one is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHeader {
    /// Lower case, as Envoy hands names over.
    pub name: String,
    /// Compared in any ASCII case, like the Bearer scheme.
    pub prefix: Option<String>,
}

/// A header that is a token header, or spells one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentTokenHeader<'a> {
    /// The index of the source it is; `None` for a spelling of one.
    pub source: Option<usize>,
    pub name: &'a str,
    /// The first value.
    pub value: &'a [u8],
    /// Whether the name came more than once.
    pub repeated: bool,
}

impl<'a> RequestView<'a> {
    /// Reads `headers` once; `is_identity_header` tells which names to strip.
    pub fn new<N, V>(headers: &'a [(N, V)], is_identity_header: impl Fn(&str) -> bool) -> Self
    where
        N: AsRef<str>,
        V: AsRef<[u8]>,
    {
        RequestView::read(headers, is_identity_header, &[])
    }

    /// [`RequestView::read`] of a request in a browser session, when `session` is given: its
    /// `Cookie` headers and access token are the session's.
    pub fn read_in_session<N, V>(
        headers: &'a [(N, V)],
        session: Option<Session<'a>>,
        is_identity_header: impl Fn(&str) -> bool,
        sources: &[TokenHeader],
    ) -> Self
    where
        N: AsRef<str>,
        V: AsRef<[u8]>,
    {
        let without_cookies = session.is_some();
        let mut view =
            RequestView::read_each(headers, without_cookies, is_identity_header, sources);
        if let Some(session) = session {
            view.cookies.extend(session.cookie);
            view.session_token = session.token;
        }
        view
    }

    /// [`RequestView::new`], also reading the token headers `sources`.
    pub fn read<N, V>(
        headers: &'a [(N, V)],
        is_identity_header: impl Fn(&str) -> bool,
        sources: &[TokenHeader],
    ) -> Self
    where
        N: AsRef<str>,
        V: AsRef<[u8]>,
    {
        RequestView::read_each(headers, false, is_identity_header, sources)
    }

    /// [`RequestView::read`], without the `Cookie` headers when `without_cookies` (one body
    /// for both: the decision is the bulk of the `.wasm`).
    fn read_each<N, V>(
        headers: &'a [(N, V)],
        without_cookies: bool,
        is_identity_header: impl Fn(&str) -> bool,
        sources: &[TokenHeader],
    ) -> Self
    where
        N: AsRef<str>,
        V: AsRef<[u8]>,
    {
        let mut view = RequestView::default();
        for (name, value) in headers {
            let (name, value) = (name.as_ref(), value.as_ref());
            match name {
                names::COOKIE if without_cookies => {}
                names::METHOD => view.method = value,
                names::PATH => view.target = Some(value),
                names::AUTHORITY => view.authority = value,
                names::SCHEME => view.scheme = value,
                names::AUTHORIZATION => {
                    view.authorization = view.authorization.or(Some(value));
                    view.authorization_count += 1;
                }
                names::COOKIE => view.cookies.push(value),
                names::ORIGIN => view.origin = view.origin.or(Some(value)),
                names::ACCESS_CONTROL_REQUEST_METHOD => {
                    view.access_control_request_method =
                        view.access_control_request_method.or(Some(value))
                }
                names::CONTENT_LENGTH => {
                    view.announces_body |= value.trim_ascii() != b"0";
                }
                names::TRANSFER_ENCODING => view.announces_body = true,
                names::CONTENT_TYPE => view.content_types.push(value),
                names::CONTENT_ENCODING => view.content_encodings.push(value),
                // More than the most allowed is refused: the count is all that matters then.
                _ if is_method_override(name) => view.method_overrides.push(value),
                names::ACCEPT => view.accept = Some(value),
                names::X_REQUESTED_WITH => view.x_requested_with = Some(value),
                _ if !sources.is_empty() && view.read_token_header(sources, name, value) => {}
                _ if is_identity_header(name) && !view.spoofed.contains(&name) => {
                    view.spoofed.push(name)
                }
                _ => {}
            }
        }
        view
    }

    /// Notes header `name` when it is one of the token headers `sources`, or spells one.
    fn read_token_header(
        &mut self,
        sources: &[TokenHeader],
        name: &'a str,
        value: &'a [u8],
    ) -> bool {
        let found = sources.iter().enumerate().find_map(|(index, source)| {
            if name == source.name {
                Some(Some(index))
            } else {
                spells_header(name, &source.name).then_some(None)
            }
        });
        let Some(source) = found else {
            return false;
        };
        // Each name is kept once (a repeat only marks it): the list stays as short as the
        // spellings of the sources, however many headers the request sends.
        match self.token_headers.iter_mut().find(|sent| sent.name == name) {
            Some(sent) => sent.repeated = true,
            None => self.token_headers.push(SentTokenHeader {
                source,
                name,
                value,
                repeated: false,
            }),
        }
        true
    }

    /// A CORS preflight: `OPTIONS`, a non-empty `Origin`, an `Access-Control-Request-Method`
    /// that is a method token, no body and no method override. Anything else named `OPTIONS`
    /// is an ordinary request. (The caller also requires a path that can be normalised.)
    pub fn is_cors_preflight(&self, stream_ends: bool) -> bool {
        self.method == b"OPTIONS"
            && self.origin.is_some_and(|o| !o.trim_ascii().is_empty())
            && self
                .access_control_request_method
                .is_some_and(|m| is_method_token(m.trim_ascii()))
            && !self.announces_body
            && stream_ends
            && self.method_overrides.is_empty()
    }

    /// Every method the request may be served as: the wire method, its upper-case spelling,
    /// and each override (as sent and upper-cased), headers first, then `query_overrides`
    /// (the `_method` query parameters). `None` when an override is not a method token or
    /// there are more than [`MAX_METHOD_OVERRIDES`].
    pub fn methods(&self, query_overrides: &[Vec<u8>]) -> Option<Vec<Vec<u8>>> {
        let count = self.method_overrides.len() + query_overrides.len();
        if count > MAX_METHOD_OVERRIDES {
            return None;
        }
        let mut methods: Vec<Vec<u8>> = Vec::with_capacity(2 + 2 * count);
        let overrides = self
            .method_overrides
            .iter()
            .copied()
            .chain(query_overrides.iter().map(Vec::as_slice));
        for method in std::iter::once(self.method).chain(overrides) {
            let method = method.trim_ascii();
            if !is_method_token(method) {
                return None;
            }
            for spelling in [method.to_vec(), method.to_ascii_uppercase()] {
                if !methods.contains(&spelling) {
                    methods.push(spelling);
                }
            }
        }
        Some(methods)
    }
}

/// An RFC 9110 method token of at most 32 characters.
pub(crate) fn is_method_token(method: &[u8]) -> bool {
    !method.is_empty()
        && method.len() <= 32
        && method
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether header `name` spells `canonical` (lower case, with `-`), ignoring case and reading
/// `_` and `.` as `-` (CGI, PHP and WSGI servers turn all three into `_`).
pub(crate) fn spells_header(name: &str, canonical: &str) -> bool {
    name.len() == canonical.len()
        && name.bytes().zip(canonical.bytes()).all(|(n, c)| {
            let n = match n {
                b'_' | b'.' => b'-',
                _ => n.to_ascii_lowercase(),
            };
            n == c
        })
}

/// Whether header `name` is a method override in any spelling.
pub(crate) fn is_method_override(name: &str) -> bool {
    names::METHOD_OVERRIDES
        .iter()
        .any(|o| spells_header(name, o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pseudo_headers_and_repeats() {
        let headers: Vec<(String, Vec<u8>)> = vec![
            (":method".into(), b"OPTIONS".to_vec()),
            (":path".into(), b"/a?b".to_vec()),
            (":authority".into(), b"api.example.com".to_vec()),
            (":scheme".into(), b"https".to_vec()),
            ("authorization".into(), b"Bearer a".to_vec()),
            ("authorization".into(), b"Bearer b".to_vec()),
            ("cookie".into(), b"a=1".to_vec()),
            ("cookie".into(), b"b=2".to_vec()),
            ("origin".into(), b"https://app".to_vec()),
            ("access-control-request-method".into(), b"GET".to_vec()),
            ("x-auth-user".into(), b"admin".to_vec()),
            ("x_auth_user".into(), b"admin".to_vec()),
            ("x-auth-user".into(), b"root".to_vec()),
        ];
        let view = RequestView::new(&headers, |n| spells_header(n, "x-auth-user"));
        assert_eq!(view.method, b"OPTIONS");
        assert_eq!(view.target, Some(&b"/a?b"[..]));
        assert_eq!(view.authorization, Some(&b"Bearer a"[..]));
        assert_eq!(view.authorization_count, 2);
        assert_eq!(view.cookies.len(), 2);
        assert!(view.is_cors_preflight(true));
        assert!(!view.is_cors_preflight(false), "a body follows");
        assert_eq!(view.spoofed, vec!["x-auth-user", "x_auth_user"]);
    }

    #[test]
    fn header_spellings() {
        assert!(spells_header("X_Auth_User", "x-auth-user"));
        assert!(spells_header("x-auth_user", "x-auth-user"));
        assert!(spells_header("x-auth-user", "x-auth-user"));
        assert!(spells_header("X.Auth.User", "x-auth-user"));
        assert!(is_method_override("X_HTTP_Method_Override"));
        assert!(is_method_override("x.http.method"));
        assert!(!is_method_override("x-http-methods"));
        assert!(!spells_header("x-auth-users", "x-auth-user"));
        assert!(!spells_header("x-auth-usex", "x-auth-user"));
    }
}
