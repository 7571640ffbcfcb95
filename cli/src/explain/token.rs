//! A presented token's parts as read, for the user: its header and claims (never its
//! signature), with times against now.

use tollgate_core::verify::jws;

/// The token's header and claims as read, and its signature's length, with times against
/// `now`.
pub(super) fn parts(token: &str, now: u64) -> Vec<String> {
    let Some(parts) = jws::split(token) else {
        return vec!["not three base64url parts".to_owned()];
    };
    let mut said = Vec::new();
    let mut buffer = Vec::new();
    match jws::parse_header(parts.header, &mut buffer) {
        Some(header) => said.push(format!(
            "header: alg {}, kid {}",
            header.alg,
            header.kid.as_deref().map_or(
                "(none: every key of the algorithm is tried)".to_owned(),
                |k| format!("{k:?} (only the key with this kid is tried)")
            )
        )),
        None => said.push("header: not base64url JSON of a JOSE header".to_owned()),
    }
    let mut buffer = Vec::new();
    match jws::parse_claims(parts.payload, &mut buffer) {
        Some(claims) => {
            let when = |t: Option<u64>| match t {
                None => "absent".to_owned(),
                Some(t) if t >= now => format!("{t} (in {} s)", t - now),
                Some(t) => format!("{t} ({} s ago)", now - t),
            };
            said.push(format!(
                "claims: sub {}, token_type {}, iat {}, nbf {}, exp {}",
                claims
                    .sub
                    .as_deref()
                    .map_or("absent".to_owned(), |s| format!("{s:?}")),
                claims
                    .token_type
                    .as_deref()
                    .map_or("absent".to_owned(), |s| format!("{s:?}")),
                when(claims.iat),
                when(claims.nbf),
                when(claims.exp)
            ));
        }
        None => said.push("claims: not base64url JSON of the claims".to_owned()),
    }
    said.push(format!(
        "signature: {} bytes of base64url (not shown)",
        parts.signature.len()
    ));
    said
}
