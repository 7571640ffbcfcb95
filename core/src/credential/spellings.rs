//! Credentials wherever a server behind Envoy might read one, and their removal.
//!
//! The filter reads a credential in one place and one spelling each (the token query parameter,
//! `client_id`/`client_secret`, the token cookie, all exactly as configured). Servers read more:
//! PHP turns `access.token`, `access token` and `access[token` into `access_token` and
//! `access_token[]` into an array of it, Rack and Node's `qs` read `access_token[]` too,
//! case-insensitive frameworks read `ACCESS_TOKEN`, some split queries on `;`, cookie parsers
//! trim `access_token ` and PHP decodes cookie names, and Java servlets and Spring read
//! `;access_token=` path parameters. These are *unread spellings*: the decision refuses a
//! request that carries one next to a credential it reads, and removes them (with every
//! credential it reads) before the upstream or the access log sees the request.

use crate::credential::{Locations, CLIENT_ID_PARAM, CLIENT_SECRET_PARAM};
use crate::request::query;

/// How a parameter or cookie name relates to a credential name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spelling {
    /// Exactly the name the filter reads.
    Read,
    /// Another spelling that some server reads as that name.
    Unread,
    /// Not a credential name.
    Other,
}

/// The credential names of a configuration.
#[derive(Debug, Clone, Copy)]
pub struct CredentialNames<'c> {
    pub at: Locations<'c>,
}

impl<'c> CredentialNames<'c> {
    pub fn new(at: Locations<'c>) -> Self {
        CredentialNames { at }
    }

    fn params(&self) -> [&'c str; 3] {
        [self.at.query_param, CLIENT_ID_PARAM, CLIENT_SECRET_PARAM]
    }

    /// How a raw (undecoded) query parameter name relates to the credential parameters. A
    /// parameter named like the token cookie counts too: PHP's `$_REQUEST` merges both.
    pub fn param(&self, raw: &[u8]) -> Spelling {
        let params = self.params();
        if params.iter().any(|p| query::name_is(raw, p)) {
            return Spelling::Read;
        }
        if params.iter().any(|p| loosely_named(raw, p)) || loosely_named(raw, self.at.cookie) {
            return Spelling::Unread;
        }
        Spelling::Other
    }

    /// How a raw cookie name relates to the token cookie. A cookie named like a credential
    /// parameter counts too: some frameworks merge cookies into the request parameters.
    pub fn cookie(&self, raw: &[u8]) -> Spelling {
        if raw == self.at.cookie.as_bytes() {
            return Spelling::Read;
        }
        let cookie = self.at.cookie;
        if loosely_named(raw, cookie) || self.params().iter().any(|p| loosely_named(raw, p)) {
            return Spelling::Unread;
        }
        Spelling::Other
    }

    /// Whether a raw `;` path parameter name is any spelling of a credential name.
    pub(crate) fn path_param(&self, raw: &[u8]) -> bool {
        self.param(raw) != Spelling::Other || self.cookie(raw) != Spelling::Other
    }
}

/// Whether `raw` reads as `expected` to some server: percent-decoded once or twice, leading
/// whitespace (and `+`, a space in forms) skipped, then in any case, with `+`, space, `.`, `-`
/// and `[` read as `_` (PHP's `access.token` and `access[token`), and after it only
/// whitespace, or a cut at `[` (`name[]`, `name[x]`) or a NUL. Reads `raw` as it goes, with
/// no copy, and stops at the first byte that cannot match: linear in `raw`, usually far less.
pub(crate) fn loosely_named(raw: &[u8], expected: &str) -> bool {
    // Decoding and trimming only ever shorten a name.
    if raw.len() < expected.len() {
        return false;
    }
    let bytes = || raw.iter().copied();
    reads_as(bytes(), expected)
        || (raw.contains(&b'%')
            && (reads_as(query::Decoded::new(bytes()), expected)
                || reads_as(query::Decoded::new(query::Decoded::new(bytes())), expected)))
}

/// [`loosely_named`] for one decoding of the name.
fn reads_as(name: impl Iterator<Item = u8>, expected: &str) -> bool {
    let fold = |b: u8| match b {
        b'+' | b' ' | b'.' | b'-' | b'[' => b'_',
        _ => b.to_ascii_lowercase(),
    };
    let mut name = name.skip_while(|b| b.is_ascii_whitespace() || *b == b'+');
    for e in expected.bytes() {
        match name.next() {
            Some(b) if b != 0 && fold(b) == fold(e) => {}
            _ => return false,
        }
    }
    for b in name {
        match b {
            b'[' | 0 => return true,
            _ if b.is_ascii_whitespace() || b == b'+' => {}
            _ => return false,
        }
    }
    true
}

/// What a request carries besides the credential the filter reads.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// A query parameter (split on `&` or `;`) in an unread spelling.
    pub unread_param: bool,
    /// A cookie in an unread spelling (split on `;` or `,`).
    pub unread_cookie: bool,
    /// A `;` path parameter named like a credential.
    pub path_param: bool,
    /// Any query parameter that is a credential (read or not): the query must be rewritten.
    pub query_credential: bool,
    /// Any cookie that is a credential (read or not): the cookies must be rewritten.
    pub cookie_credential: bool,
    /// A credential behind an encoded separator in the path (`/feed%3Faccess_token=…`,
    /// `%253F`, `%3B`, `;x=1,access_token=…`): what a server that decodes the path and splits
    /// it again reads. It cannot be cut out without changing the path: the request is refused.
    pub encoded_in_path: bool,
}

impl Found {
    /// Whether something sits in a place or spelling the filter does not read.
    pub fn unread(&self) -> bool {
        self.unread_param || self.unread_cookie || self.path_param || self.encoded_in_path
    }
}

/// Looks for credentials in the path, the query and the cookies.
pub fn find(
    names: CredentialNames<'_>,
    raw_path: &[u8],
    query: Option<&[u8]>,
    cookies: &[&[u8]],
) -> Found {
    let mut found = Found::default();
    for param in query::params(query.unwrap_or_default()) {
        for (i, name) in semicolon_pairs(param.raw).enumerate() {
            match (names.param(name), i) {
                (Spelling::Read, 0) => found.query_credential = true,
                (Spelling::Other, _) => {}
                _ => {
                    found.query_credential = true;
                    found.unread_param = true;
                }
            }
        }
    }
    for header in cookies {
        for (name, as_read) in loose_cookie_names(header) {
            match (names.cookie(name), as_read) {
                (Spelling::Read, true) => found.cookie_credential = true,
                (Spelling::Other, _) => {}
                _ => {
                    found.cookie_credential = true;
                    found.unread_cookie = true;
                }
            }
        }
    }
    found.path_param = raw_path.contains(&b';')
        && query::path_without_params(raw_path, |n| names.path_param(n)).is_some();
    found.encoded_in_path = hidden_in_path(names, raw_path);
    found
}

/// Whether the path, decoded once or twice, holds a credential name after a `?`, `#`, `;`, `&`
/// or `,` (the raw `;` parameters are [`Found::path_param`]; this finds the encoded ones).
fn hidden_in_path(names: CredentialNames<'_>, raw_path: &[u8]) -> bool {
    if !raw_path.contains(&b'%') && !raw_path.contains(&b',') {
        return false;
    }
    let separates = |b: &u8| b"?#;&,".contains(b);
    let once: Vec<u8> = query::Decoded::new(raw_path.iter().copied()).collect();
    let twice: Vec<u8> = query::Decoded::new(once.iter().copied()).collect();
    [once, twice].iter().any(|decoded| {
        decoded
            .split(|b| separates(b) || *b == b'/')
            .skip(1)
            .any(|part| names.path_param(name_of(part)))
            && decoded.iter().any(separates)
    })
}

/// The name of the query parameter that frameworks read as a method override (Symfony,
/// Laravel, Rails, Express's `method-override`).
pub const METHOD_PARAM: &str = "_method";

/// The decoded values of every `_method` query parameter, in any spelling a server reads.
pub fn query_method_overrides(query: Option<&[u8]>) -> Vec<Vec<u8>> {
    let Some(query) = query else {
        return Vec::new();
    };
    query
        .split(|&b| b == b'&' || b == b';')
        .filter_map(|pair| {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (pair.get(..eq)?, pair.get(eq + 1..)?),
                None => (pair, &[][..]),
            };
            loosely_named(name, METHOD_PARAM).then(|| {
                let value: Vec<u8> = query::Decoded::new(value.iter().copied())
                    .map(|b| if b == b'+' { b' ' } else { b })
                    .collect();
                value.trim_ascii().to_vec()
            })
        })
        .collect()
}

/// Names of the query's pairs when both `&` and `;` separate them.
fn semicolon_pairs(query: &[u8]) -> impl Iterator<Item = &[u8]> {
    query
        .split(|&b| b == b'&' || b == b';')
        .filter(|p| !p.is_empty())
        .map(|p| p.split(|&b| b == b'=').next().unwrap_or_default())
}

/// Whitespace as Python's `str.split()` and JavaScript's `\\s` see it in a header read as
/// Latin-1 (the no-break space 0xA0 and next-line 0x85 among it).
fn is_loose_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | 0x0b | 0x0c | 0x1c..=0x1f | 0x85 | 0xa0)
}

/// The name of a `name=value` pair (all of it when there is no `=`).
fn name_of(pair: &[u8]) -> &[u8] {
    pair.split(|&b| b == b'=').next().unwrap_or_default()
}

/// Names of a `Cookie` header's pairs when `;`, `,` or whitespace separate them (Python's
/// `SimpleCookie`, behind aiohttp and Bottle, splits on whitespace too), each with whether
/// the filter itself reads a pair there (after a `;`, leading whitespace trimmed).
fn loose_cookie_names(header: &[u8]) -> impl Iterator<Item = (&[u8], bool)> {
    header.split(|&b| b == b';').flat_map(|pair| {
        let pair = pair.trim_ascii_start();
        let read = std::iter::once((name_of(pair), true));
        let others = pair
            .split(|&b| b == b',' || is_loose_space(b))
            .skip(1)
            .map(move |part| (name_of(part), false));
        read.chain(others)
            .filter(|(name, _)| !name.trim_ascii().is_empty())
    })
}

/// The query without any credential parameter, read or unread (pairs split on `&`; a pair
/// that hides a credential behind a `;` goes whole). `None` when nothing is left.
pub(crate) fn query_without_credentials(
    names: CredentialNames<'_>,
    query: &[u8],
) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(query.len());
    for param in query::params(query) {
        let hides = semicolon_pairs(param.raw).any(|n| names.param(n) != Spelling::Other);
        if hides {
            continue;
        }
        if !out.is_empty() {
            out.push(b'&');
        }
        out.extend_from_slice(param.raw);
    }
    (!out.is_empty()).then_some(out)
}

/// A `Cookie` header without any credential cookie (a pair that hides one behind a `,` goes
/// whole); `None` when nothing is left.
pub(crate) fn cookie_without_credentials(
    names: CredentialNames<'_>,
    header: &[u8],
) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(header.len());
    for pair in header.split(|&b| b == b';') {
        let trimmed = pair.trim_ascii();
        let hides = loose_cookie_names(trimmed).any(|(n, _)| names.cookie(n) != Spelling::Other);
        if trimmed.is_empty() || hides {
            continue;
        }
        if !out.is_empty() {
            out.extend_from_slice(b"; ");
        }
        out.extend_from_slice(trimmed);
    }
    (!out.is_empty()).then_some(out)
}

/// The request target without credential path parameters and query parameters; `None`
/// when it holds none.
pub(crate) fn target_without_credentials(
    names: CredentialNames<'_>,
    raw_path: &[u8],
    query: Option<&[u8]>,
    found: &Found,
) -> Option<Vec<u8>> {
    if !found.path_param && !found.query_credential && !found.encoded_in_path {
        return None;
    }
    let path = match (found.encoded_in_path, found.path_param) {
        // The request is refused; what the access log keeps ends where encoding begins.
        (true, _) => {
            let cut = raw_path
                .iter()
                .position(|&b| b == b'%' || b == b';' || b == b',')
                .unwrap_or(raw_path.len());
            Some(raw_path.get(..cut).unwrap_or(raw_path).to_vec())
        }
        (false, true) => query::path_without_params(raw_path, |n| names.path_param(n)),
        (false, false) => None,
    };
    let mut target = path.unwrap_or_else(|| raw_path.to_vec());
    let rest = match query {
        Some(q) if found.query_credential => query_without_credentials(names, q),
        Some(q) => Some(q.to_vec()),
        None => None,
    };
    if let Some(rest) = rest {
        target.push(b'?');
        target.extend_from_slice(&rest);
    }
    Some(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: Locations<'static> = Locations {
        query_param: "access_token",
        cookie: "session",
    };

    fn names() -> CredentialNames<'static> {
        CredentialNames::new(AT)
    }

    #[test]
    fn parameter_spellings() {
        let cases: &[(&str, Spelling)] = &[
            ("access_token", Spelling::Read),
            ("%61ccess_token", Spelling::Read),
            ("client_secret", Spelling::Read),
            ("ACCESS_TOKEN", Spelling::Unread),
            ("Access_Token", Spelling::Unread),
            ("access_token[]", Spelling::Unread),
            ("access_token%5B%5D", Spelling::Unread),
            ("access_token[x]", Spelling::Unread),
            ("access.token", Spelling::Unread),
            ("access+token", Spelling::Unread),
            ("access%20token", Spelling::Unread),
            ("access[token", Spelling::Unread),
            ("%20access_token", Spelling::Unread),
            ("access-token", Spelling::Unread),
            ("access_token%00x", Spelling::Unread),
            ("+access_token", Spelling::Unread),
            ("access_token+", Spelling::Unread),
            ("access_token%5Bx%5D", Spelling::Unread),
            ("access%255ftoken", Spelling::Unread),
            ("CLIENT_SECRET", Spelling::Unread),
            ("client.id", Spelling::Unread),
            ("access_tokens", Spelling::Other),
            ("SESSION", Spelling::Unread),
            ("session", Spelling::Unread),
            ("token", Spelling::Other),
            ("page", Spelling::Other),
        ];
        for (name, expected) in cases {
            assert_eq!(names().param(name.as_bytes()), *expected, "{name}");
        }
    }

    #[test]
    fn cookie_spellings() {
        let cases: &[(&str, Spelling)] = &[
            ("session", Spelling::Read),
            ("session ", Spelling::Unread),
            (" session", Spelling::Unread),
            ("SESSION", Spelling::Unread),
            ("%73ession", Spelling::Unread),
            ("session[]", Spelling::Unread),
            ("access_token", Spelling::Unread),
            ("client_secret", Spelling::Unread),
            ("theme", Spelling::Other),
            ("sessions", Spelling::Other),
        ];
        for (name, expected) in cases {
            assert_eq!(names().cookie(name.as_bytes()), *expected, "{name}");
        }
    }

    #[test]
    fn finds_what_servers_would_read() {
        let find = |path: &str, query: Option<&str>, cookie: &str| {
            let cookies: Vec<&[u8]> = match cookie {
                "" => vec![],
                c => vec![c.as_bytes()],
            };
            find(names(), path.as_bytes(), query.map(str::as_bytes), &cookies)
        };
        assert!(!find("/a", Some("x=1&y=2"), "theme=dark").unread());
        assert!(find("/a", Some("x=1;ACCESS_TOKEN=t"), "").unread_param);
        assert!(find("/a", Some("x=1;access_token=t"), "").unread_param);
        assert!(!find("/a", Some("x=1&access_token=t"), "").unread());
        assert!(find("/a", None, "session =t").unread_cookie);
        assert!(find("/a", None, "theme=x, session=t").cookie_credential);
        assert!(find("/a", None, "theme=x session=t").unread_cookie);
        assert!(find("/a", None, "theme=x\tsession=t").unread_cookie);
        assert!(!find("/a", None, "theme=dark mode").unread());
        for separated in [
            &b"x=1\xa0session=t"[..],
            b"x=1\x85session=t",
            b"x=1\x0bsession=t",
        ] {
            let found = super::find(names(), b"/a", None, &[separated]);
            assert!(found.unread_cookie, "{separated:?}");
        }
        assert!(find("/a;access_token=t/b", None, "").path_param);
        assert!(find("/a;ACCESS_TOKEN=t", None, "").path_param);
        assert!(!find("/a;jsessionid=1", None, "").path_param);
        for hidden in [
            "/feed%3Faccess_token=k",
            "/feed%253Faccess_token%253Dk",
            "/feed%3Baccess_token=k",
            "/a/x;access_token%3Dk",
            "/a/x;x=1,access_token=k",
            "/feed%3Fclient_id=job%26client_secret=s",
            "/feed%23access_token=k",
        ] {
            assert!(find(hidden, None, "").encoded_in_path, "{hidden}");
        }
        for plain in [
            "/feed%3Fq=1",
            "/a%2Fb",
            "/a,b",
            "/access_token",
            "/x%3Bv=access_token",
        ] {
            assert!(!find(plain, None, "").encoded_in_path, "{plain}");
        }
    }

    #[test]
    fn removes_every_spelling() {
        let q = b"a=1&ACCESS_TOKEN=x&access_token[]=y&b=2&c=3;client_secret=z&access_token=t";
        assert_eq!(
            query_without_credentials(names(), q).as_deref(),
            Some(&b"a=1&b=2"[..])
        );
        assert_eq!(query_without_credentials(names(), b"access_token=t"), None);
        let c = b"theme=dark; session=t; session =u; x=1, session=v; lang=en";
        assert_eq!(
            cookie_without_credentials(names(), c).as_deref(),
            Some(&b"theme=dark; lang=en"[..])
        );
        let found = find(names(), b"/a;access_token=t/b", Some(b"q=1"), &[]);
        assert_eq!(
            target_without_credentials(names(), b"/a;access_token=t/b", Some(b"q=1"), &found)
                .as_deref(),
            Some(&b"/a/b?q=1"[..])
        );
    }

    #[test]
    fn padding_does_not_hide_a_name() {
        let padded = format!("{}access_token", "%20".repeat(10_000));
        assert_eq!(names().param(padded.as_bytes()), Spelling::Unread);
    }
}
