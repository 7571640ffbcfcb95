//! The JWT catalogue (tests/data/jwt-vectors.tsv) as RS256 tokens: each vector's header (with
//! `HS256` read as `RS256`) and payload, signed with the test key, and each vector as it is.

use super::*;

/// Vectors the filter refuses and jwt-simple accepts, and why: the strict reading wins.
pub const STRICTER: [(&str, &str); 4] = [
    (
        "J08b",
        "crit [] is refused in any form; jwt-simple refuses a non-empty list only",
    ),
    ("J08e", "crit null, the same"),
    (
        "J12b",
        "a repeated token_type is refused; jwt-simple does not read token_type",
    ),
    ("J15e", "a token_type that is not a string, the same"),
];

pub fn unescape(token: &str) -> String {
    token
        .replace("\\r", "\r")
        .replace("\\n", "\n")
        .replace("\\t", "\t")
}

/// The vector's header and payload with `HS256` read as `RS256`, signed with `key`.
fn as_rs256(key: &Key, vector: &str) -> Option<String> {
    let mut parts = vector.splitn(3, '.');
    let header = unb64(parts.next()?)?;
    let payload = parts.next()?;
    let text = String::from_utf8_lossy(&header).replace("HS256", "RS256");
    if text.as_bytes() != header.as_slice() && !String::from_utf8_lossy(&header).contains("HS256") {
        return None;
    }
    let input = format!("{}.{payload}", b64(text.as_bytes()));
    Some(token(&input, &key.rs256(&input)))
}

#[test]
fn catalogue_vectors_decide_alike() {
    let key = Key::from_pem("rsa-2048.pem");
    let mut stricter = Vec::new();
    let mut accepted = 0;
    for line in VECTORS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let fields: Vec<&str> = line.split('\t').collect();
        let (id, vector) = (fields[0], unescape(fields[4]));
        let mut tokens = vec![(format!("{id} as it is"), vector.clone())];
        if let Some(signed) = as_rs256(&key, &vector) {
            tokens.push((format!("{id} signed RS256"), signed));
        }
        for (case, t) in tokens {
            let (a, b) = (
                ours(&key.jwk, "RS256", &t),
                reference(&key.jwk, "RS256", &t),
            );
            accepted += usize::from(a);
            if a != b {
                assert!(!a, "{case}: the filter accepts what jwt-simple refuses");
                stricter.push(case);
            }
        }
    }
    let expected: Vec<String> = STRICTER
        .iter()
        .map(|(id, _)| format!("{id} signed RS256"))
        .collect();
    assert_eq!(
        stricter, expected,
        "vectors where the filter is stricter than jwt-simple"
    );
    assert!(
        accepted > 10,
        "{accepted} vectors accepted: the signing is sound"
    );
}
