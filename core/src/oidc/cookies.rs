//! The sign-in cookies: their names (`__Host-` prefixed when secure), their `Set-Cookie`
//! lines, and reading them from the request's `Cookie` headers.

use super::config::Oidc;

/// What a cookie of the filter holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jar {
    /// The sign-in under way: state, nonce, PKCE verifier, return URL.
    Transaction,
    /// The session's access token.
    Session,
    /// The session's refresh token and ID token.
    Refresh,
}

impl Jar {
    pub const ALL: [Jar; 3] = [Jar::Transaction, Jar::Session, Jar::Refresh];

    fn base(self) -> &'static str {
        match self {
            Jar::Transaction => "tollgate-signin",
            Jar::Session => "tollgate-session",
            Jar::Refresh => "tollgate-refresh",
        }
    }

    /// The cookie's name under `oidc`.
    pub fn name(self, oidc: &Oidc) -> &'static str {
        match (oidc.cookie_secure, self) {
            (true, Jar::Transaction) => "__Host-tollgate-signin",
            (true, Jar::Session) => "__Host-tollgate-session",
            (true, Jar::Refresh) => "__Host-tollgate-refresh",
            (false, jar) => jar.base(),
        }
    }
}

/// The most bytes of one `Set-Cookie` value browsers keep (RFC 6265 section 6.1).
pub const MAX_COOKIE: usize = 4096;

/// `Set-Cookie` for `jar` holding `value` for `max_age` seconds; `None` when it is over
/// [`MAX_COOKIE`].
pub fn set(oidc: &Oidc, jar: Jar, value: &str, max_age: u64) -> Option<String> {
    let line = format!(
        "{}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        jar.name(oidc),
        if oidc.cookie_secure { "; Secure" } else { "" }
    );
    (line.len() <= MAX_COOKIE).then_some(line)
}

/// `Set-Cookie` that removes `jar`.
pub fn clear(oidc: &Oidc, jar: Jar) -> String {
    format!(
        "{}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{}",
        jar.name(oidc),
        if oidc.cookie_secure { "; Secure" } else { "" }
    )
}

/// The value of the cookie `name` in the `Cookie` headers `cookies`, trimmed; none when the
/// name comes more than once (a cookie tossed in from a sibling host, or set under another
/// path, beside the filter's own: which one is the filter's cannot be told, and servers
/// disagree on which they read).
pub fn find<'c>(cookies: &[&'c [u8]], name: &str) -> Option<&'c [u8]> {
    let mut named = pairs(cookies).filter(|(n, _)| *n == name.as_bytes());
    let (_, value) = named.next()?;
    named.next().is_none().then_some(value)
}

/// Every `name=value` of the `Cookie` headers, trimmed (a piece without `=` is a name).
fn pairs<'a, 'c>(cookies: &'a [&'c [u8]]) -> impl Iterator<Item = (&'c [u8], &'c [u8])> + 'a {
    cookies
        .iter()
        .flat_map(|header| pieces(header).map(|piece| name_and_value(piece.trim_ascii())))
}

/// The `;`-separated pieces of one `Cookie` header (found with memchr: a session's cookies
/// are kilobytes, read on every request).
fn pieces(header: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(header);
    std::iter::from_fn(move || {
        let text = rest?;
        match memchr::memchr(b';', text) {
            Some(at) => {
                let (piece, after) = text.split_at(at);
                rest = after.get(1..);
                Some(piece)
            }
            None => rest.take(),
        }
    })
}

/// Whether the `Cookie` headers hold a cookie of the filter (any spelling of its names a
/// server might read: any case, either prefix).
pub fn any_of_ours(cookies: &[&[u8]]) -> bool {
    pairs(cookies).any(|(name, _)| is_ours(name))
}

/// Whether a cookie named `name` is one of the filter's, in any spelling a server might read
/// (any case, either prefix).
pub fn is_ours(name: &[u8]) -> bool {
    let base = match name.split_at_checked(7) {
        Some((prefix, rest)) if prefix.eq_ignore_ascii_case(b"__host-") => rest,
        _ => name,
    };
    Jar::ALL
        .iter()
        .any(|jar| base.eq_ignore_ascii_case(jar.base().as_bytes()))
}

/// The `Cookie` header without the filter's cookies (`None` when nothing is left).
pub fn without_ours(cookies: &[&[u8]]) -> Option<Vec<u8>> {
    // Any two of the filter's names: each is dropped as one of the filter's cookies anyway.
    let (session, refresh) = (Jar::Session.base(), Jar::Refresh.base());
    read(cookies, session, refresh).others
}

/// What a request's `Cookie` headers hold of a session, read in one pass.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SessionCookies<'c> {
    /// Whether a cookie of the filter comes, in any spelling ([`is_ours`]).
    pub any_of_ours: bool,
    /// The session cookie's value (as [`find`] reads it).
    pub session: Option<&'c [u8]>,
    /// The refresh cookie's value (as [`find`] reads it).
    pub refresh: Option<&'c [u8]>,
    /// The `Cookie` header without the filter's cookies (as [`without_ours`]).
    pub others: Option<Vec<u8>>,
}

/// The session and refresh cookies, named `session` and `refresh`, and the rest of the
/// `Cookie` headers: one pass, each byte read a bounded number of times (a session's cookies
/// are kilobytes, read on every request).
pub fn read<'c>(cookies: &[&'c [u8]], session: &str, refresh: &str) -> SessionCookies<'c> {
    let mut read = SessionCookies::default();
    let (mut sessions, mut refreshes) = (0, 0);
    let mut others = Vec::with_capacity(cookies.iter().map(|header| header.len()).sum());
    for header in cookies {
        for piece in pieces(header) {
            let trimmed = piece.trim_ascii();
            let (name, value) = name_and_value(trimmed);
            if trimmed.is_empty() {
                continue;
            }
            // The names as the filter sets them first: comparing in any case costs more.
            if name == session.as_bytes() {
                sessions += 1;
                read.session = Some(value);
            } else if name == refresh.as_bytes() {
                refreshes += 1;
                read.refresh = Some(value);
            } else if !is_ours(name) {
                if !others.is_empty() {
                    others.extend_from_slice(b"; ");
                }
                others.extend_from_slice(trimmed);
                continue;
            }
            read.any_of_ours = true;
        }
    }
    // A name that comes twice reads as none (see [`find`]).
    read.session = read.session.filter(|_| sessions == 1);
    read.refresh = read.refresh.filter(|_| refreshes == 1);
    read.others = (!others.is_empty()).then_some(others);
    read
}

/// The trimmed name and value of one trimmed `name=value` piece (without `=`: a name).
fn name_and_value(piece: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(b'=', piece) {
        Some(at) => {
            let (name, value) = piece.split_at(at);
            (
                name.trim_ascii(),
                value.get(1..).unwrap_or_default().trim_ascii(),
            )
        }
        None => (piece, &b""[..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_name_sent_twice_reads_as_none() {
        let tossed: [&[u8]; 1] = [b"tollgate-session=mallory; a=1; tollgate-session=alice"];
        assert_eq!(find(&tossed, "tollgate-session"), None);
        let split: [&[u8]; 2] = [b"tollgate-session=mallory", b"tollgate-session=alice"];
        assert_eq!(find(&split, "tollgate-session"), None);
        assert_eq!(find(&split[..1], "tollgate-session"), Some(&b"mallory"[..]));
    }

    #[test]
    fn one_pass_reads_as_find_and_without_ours() {
        let (session, refresh) = ("tollgate-session", "tollgate-refresh");
        let cases: [&[&[u8]]; 5] = [
            &[b"a=1; tollgate-session=s ; b=2", b"tollgate-refresh=r;c"],
            &[b"tollgate-session=s; TOLLGATE-SESSION=t; x"],
            &[
                b"tollgate-session=s",
                b"tollgate-session=t; tollgate-refresh=r",
            ],
            &[b"__Host-tollgate-session=h; tollgate-signin=x; =v"],
            &[b"theme=dark", b""],
        ];
        for headers in cases {
            let read = read(headers, session, refresh);
            assert_eq!(read.session, find(headers, session), "{headers:?}");
            assert_eq!(read.refresh, find(headers, refresh), "{headers:?}");
            assert_eq!(read.any_of_ours, any_of_ours(headers), "{headers:?}");
            assert_eq!(read.others, without_ours(headers), "{headers:?}");
        }
        let read = read(cases[2], session, refresh);
        assert_eq!((read.session, read.refresh), (None, Some(&b"r"[..])));
        assert_eq!(without_ours(cases[3]).unwrap(), b"=v");
    }

    #[test]
    fn finds_and_strips_our_cookies() {
        let headers: [&[u8]; 2] = [
            b"a=1; tollgate-session=xyz ; b=2",
            b"__HOST-Tollgate-Refresh=r;c",
        ];
        assert_eq!(find(&headers, "tollgate-session"), Some(&b"xyz"[..]));
        assert_eq!(find(&headers, "b"), Some(&b"2"[..]));
        assert!(any_of_ours(&headers));
        assert_eq!(without_ours(&headers).unwrap(), b"a=1; b=2; c");
        assert_eq!(without_ours(&[b"tollgate-signin=x"]), None);
        assert_eq!(without_ours(&[b"=x; a"]).unwrap(), b"=x; a");
        assert!(!any_of_ours(&[b"tollgate-sessions=1"]));
    }
}
