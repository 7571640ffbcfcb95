//! The request's host, read strictly: only a plain host name (or an IP literal) is a host.

use super::names;

/// The host of a request from its headers (pseudo-headers included): its one `:authority`
/// (HTTP/1.1's `Host` as Envoy gives it), without port, ASCII lower-cased, one trailing dot
/// removed. `None` when it is missing, repeated, at odds with a `host` header, or anything but
/// a host name or IP literal with an optional port: userinfo, a second trailing dot,
/// percent-encoding, bytes outside ASCII, whitespace, commas (Envoy joins repeated `Host`
/// headers with one). Two passes over the headers, made only when rules name hosts.
pub fn of_headers<N, V>(headers: &[(N, V)]) -> Option<String>
where
    N: AsRef<str>,
    V: AsRef<[u8]>,
{
    let named = |wanted: &'static str| {
        headers
            .iter()
            .filter(move |(name, _)| name.as_ref() == wanted)
            .map(|(_, value)| value.as_ref())
    };
    let mut authorities = named(names::AUTHORITY);
    let (Some(authority), None) = (authorities.next(), authorities.next()) else {
        return None;
    };
    let host = name_of(authority)?;
    // A `host` header beside `:authority` is read by some servers instead: it must agree.
    for other in named(names::HOST) {
        if name_of(other)? != host {
            return None;
        }
    }
    Some(host)
}

/// The host name of one authority value, normalised; `None` when it is not one.
fn name_of(authority: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(authority).ok()?;
    if let Some(literal) = text.strip_prefix('[') {
        let (address, rest) = literal.split_once(']')?;
        let plain = !address.is_empty()
            && address
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        return (plain && is_port_or_nothing(rest))
            .then(|| format!("[{}]", address.to_ascii_lowercase()));
    }
    let (name, rest) = match text.rfind(':') {
        Some(at) => (text.get(..at)?, text.get(at..)?),
        None => (text, ""),
    };
    if !is_port_or_nothing(rest) {
        return None;
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let lower = name.to_ascii_lowercase();
    is_host_name(&lower).then_some(lower)
}

/// Nothing, or `:` and 1 to 5 digits.
fn is_port_or_nothing(rest: &str) -> bool {
    match rest.strip_prefix(':') {
        None => rest.is_empty(),
        Some(port) => (1..=5).contains(&port.len()) && port.bytes().all(|b| b.is_ascii_digit()),
    }
}

/// A host name as the filter reads one: dot-separated labels of lower-case ASCII letters,
/// digits, `-` and `_`, each 1 to 63 bytes, at most 253 in all. Internationalised names are
/// written in punycode (`xn--`).
pub fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(authorities: &[&[u8]], hosts: &[&[u8]]) -> Option<String> {
        let mut headers: Vec<(&str, &[u8])> = Vec::new();
        headers.extend(authorities.iter().map(|a| (":authority", *a)));
        headers.extend(hosts.iter().map(|h| ("host", *h)));
        of_headers(&headers)
    }

    fn host(authority: &str) -> Option<String> {
        read(&[authority.as_bytes()], &[])
    }

    #[test]
    fn plain_hosts_are_normalised() {
        assert_eq!(host("api.example.com").as_deref(), Some("api.example.com"));
        assert_eq!(host("API.Example.COM").as_deref(), Some("api.example.com"));
        assert_eq!(host("api.example.com.").as_deref(), Some("api.example.com"));
        assert_eq!(
            host("api.example.com:8443").as_deref(),
            Some("api.example.com")
        );
        assert_eq!(
            host("api.example.com.:80").as_deref(),
            Some("api.example.com")
        );
        assert_eq!(host("[::1]:8080").as_deref(), Some("[::1]"));
        assert_eq!(host("[FE80::1]").as_deref(), Some("[fe80::1]"));
        assert_eq!(host("10.0.0.1:80").as_deref(), Some("10.0.0.1"));
        assert_eq!(
            host("xn--bcher-kva.example").as_deref(),
            Some("xn--bcher-kva.example")
        );
    }

    #[test]
    fn anything_else_is_no_host() {
        for bad in [
            "",
            "api.example.com..",
            ".api.example.com",
            "api..example.com",
            "api.example.com:",
            "api.example.com:123456",
            "api.example.com:80:80",
            "api.example.com:http",
            "user@api.example.com",
            "api.example.com@evil.example",
            "api%2eexample.com",
            "api.example.com ",
            " api.example.com",
            "api.example.com\t",
            "api.example.com,other.example.com",
            "bücher.example",
            "аpi.example.com", // Cyrillic а
            "api.example.com/x",
            "http://api.example.com",
            "[::1",
            "[::1]x",
            "[::1%eth0]",
            "[]",
            "::1",
        ] {
            assert_eq!(host(bad), None, "{bad:?}");
        }
        assert_eq!(read(&[b"\xffapi"], &[]), None);
    }

    #[test]
    fn one_authority_and_agreeing_host_headers() {
        let a: &[u8] = b"api.example.com";
        assert_eq!(read(&[], &[]), None, "missing");
        assert_eq!(read(&[a, a], &[]), None, "repeated");
        assert!(read(&[a], &[b"API.example.com:443"]).is_some());
        assert_eq!(read(&[a], &[b"other.example.com"]), None);
        assert_eq!(read(&[a], &[a, b"other.example.com"]), None);
        assert_eq!(read(&[a], &[b"a b"]), None);
    }
}
