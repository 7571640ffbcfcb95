//! One request as Envoy hands it to the filter: pseudo-headers, then the others in order with
//! lower-case names, each value without the leading and trailing SP and HTAB Envoy strips
//! (RFC 9110 optional whitespace).

use crate::error::CliError;

/// The `:authority` of a request that sends no `Host`.
pub const DEFAULT_HOST: &str = "localhost";

/// The header list the decision reads: `:method`, `:path` (none for an empty target, as for a
/// CONNECT), `:authority` (the first `Host`, or [`DEFAULT_HOST`]), `:scheme` http, then every
/// other header. Every value loses its leading and trailing SP and HTAB ([`envoy_value`]).
pub fn headers(method: &str, target: &str, headers: &[(String, String)]) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![(":method".to_owned(), method.as_bytes().to_vec())];
    if !target.is_empty() {
        out.push((":path".to_owned(), target.as_bytes().to_vec()));
    }
    let host = headers
        .iter()
        .position(|(n, _)| n.eq_ignore_ascii_case("host"));
    let authority = host
        .and_then(|i| headers.get(i))
        .map_or(DEFAULT_HOST, |(_, v)| v.as_str());
    out.push((":authority".to_owned(), envoy_value(authority)));
    out.push((":scheme".to_owned(), b"http".to_vec()));
    out.extend(
        headers
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != host)
            .map(|(_, (n, v))| (n.to_ascii_lowercase(), envoy_value(v))),
    );
    out
}

/// A header value as Envoy hands it to the filter: without leading and trailing SP and HTAB.
fn envoy_value(value: &str) -> Vec<u8> {
    value.trim_matches([' ', '\t']).as_bytes().to_vec()
}

/// `Name: value` (as `curl -H` takes it) as a pair; the value's leading and trailing SP and
/// HTAB are dropped, as Envoy drops them.
pub fn header_line(line: &str) -> Result<(String, String), CliError> {
    let (name, value) = line
        .split_once(':')
        .filter(|(name, _)| !name.trim().is_empty())
        .ok_or_else(|| {
            CliError::input(format!(
                "a -H argument of {} bytes has no ':' after a name: expected 'Name: value' (not shown: it may hold a credential)",
                line.len()
            ))
        })?;
    Ok((
        name.trim().to_owned(),
        value.trim_matches([' ', '\t']).to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn host_becomes_the_authority() {
        let list = headers(
            "GET",
            "/a",
            &[
                ("Host".into(), "h.example".into()),
                ("X-A".into(), "1".into()),
            ],
        );
        let names: Vec<&str> = list.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, [":method", ":path", ":authority", ":scheme", "x-a"]);
        assert_eq!(list.get(2).unwrap().1, b"h.example");
        assert_eq!(
            header_line("Accept:  x").unwrap(),
            ("Accept".into(), "x".into())
        );
        assert!(header_line("nocolon").is_err());
    }

    #[test]
    fn values_lose_the_blanks_envoy_strips() {
        assert_eq!(
            header_line("Authorization: Bearer t \t").unwrap(),
            ("Authorization".into(), "Bearer t".into())
        );
        let list = headers(
            "GET",
            "/a",
            &[
                ("Host".into(), " h.example\t".into()),
                ("Authorization".into(), "\t Bearer  t  ".into()),
                ("X-Empty".into(), " \t ".into()),
            ],
        );
        let values: Vec<&[u8]> = list.iter().skip(2).map(|(_, v)| v.as_slice()).collect();
        assert_eq!(values, [&b"h.example"[..], b"http", b"Bearer  t", b""]);
    }
}
