//! Verification against the JWT catalogue (tests/data/jwt-vectors.tsv), RFC 7515 and jwt-simple.

use super::*;

/// The catalogue's test key.
const K: &[u8] = b"Hq3vXo9TzK7rWm2pLc8dNs5yFb4gJe6A";
/// The catalogue's injected clock.
const NOW: u64 = 1_750_000_000;
const VECTORS: &str = include_str!("../../../../tests/data/jwt-vectors.tsv");

fn verifier(keys: Vec<SigningKey>) -> TokenVerifier {
    TokenVerifier::new(keys, 60, None)
}

fn error_named(name: &str) -> TokenError {
    match name {
        "TooLong" => TokenError::TooLong,
        "Malformed" => TokenError::Malformed,
        "Algorithm" => TokenError::Algorithm,
        "CriticalHeader" => TokenError::CriticalHeader,
        "UnknownKeyId" => TokenError::UnknownKeyId,
        "BadSignature" => TokenError::BadSignature,
        "Expired" => TokenError::Expired,
        "NotYetValid" => TokenError::NotYetValid,
        "IssuedInFuture" => TokenError::IssuedInFuture,
        "MissingExpiry" => TokenError::MissingExpiry,
        "NotAccessToken" => TokenError::NotAccessToken,
        "BadSubject" => TokenError::BadSubject,
        "LifetimeTooLong" => TokenError::LifetimeTooLong,
        other => panic!("unknown expectation {other}"),
    }
}

fn unescape(token: &str) -> String {
    token
        .replace("\\r", "\r")
        .replace("\\n", "\n")
        .replace("\\t", "\t")
}

#[test]
fn a_name_repeated_at_any_depth_is_refused() {
    let v = verifier(vec![SigningKey::new(None, K)]);
    let base = r#""sub":"a","token_type":"access","exp":4102444800"#;
    for repeated in [
        format!(r#"{{{base},"unknown":1,"unknown":2}}"#),
        format!(r#"{{{base},"scope":"a","\u0073cope":"b"}}"#),
        format!(r#"{{{base},"a":{{"b":1,"b":2}}}}"#),
    ] {
        let token = sign_raw(r#"{"alg":"HS256"}"#, &repeated, K);
        assert_eq!(
            v.verify_typed(&token, "access", NOW).map(|_| ()),
            Err(TokenError::Malformed),
            "{repeated}"
        );
    }
}

#[test]
fn catalogue_vectors() {
    let v = verifier(vec![SigningKey::new(None, K)]);
    let mut count = 0;
    for line in VECTORS.lines().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (id, expected, token) = (cols[0], cols[1], unescape(cols[4]));
        let got = v.verify(&mut TokenCache::default(), &token, NOW);
        match expected.strip_prefix("ok:") {
            Some(sub) => assert_eq!(got.as_ref().map(|t| &*t.subject), Ok(sub), "{id}"),
            None => assert_eq!(got, Err(error_named(expected)), "{id}"),
        }
        count += 1;
    }
    assert_eq!(count, 97);
}

#[test]
fn catalogue_recipes() {
    let v = verifier(vec![SigningKey::new(None, K)]);
    let header = r#"{"alg":"HS256","typ":"JWT"}"#;
    // J16j: a 10 KiB subject.
    let payload = format!(
        r#"{{"sub":"{}","token_type":"access","exp":4102444800}}"#,
        "a".repeat(10240)
    );
    assert_eq!(
        v.verify(
            &mut TokenCache::default(),
            &sign_raw(header, &payload, K),
            NOW
        ),
        Err(TokenError::TooLong)
    );
    // J18b: a header nested 3000 deep, signed with a wrong key.
    let deep = format!(
        r#"{{"alg":"HS256","x":{}{}}}"#,
        "[".repeat(3000),
        "]".repeat(3000)
    );
    let j01_payload = r#"{"sub":"alice","token_type":"access","exp":4102444800,"nbf":1700000000,"iat":1700000000}"#;
    assert!(v
        .verify(
            &mut TokenCache::default(),
            &sign_raw(&deep, j01_payload, b"wrong"),
            NOW
        )
        .is_err());
    // J18c: a header segment over 8192 characters.
    let big_header = format!(r#"{{"alg":"HS256","x":"{}"}}"#, "A".repeat(7000));
    assert_eq!(
        v.verify(
            &mut TokenCache::default(),
            &sign_raw(&big_header, j01_payload, K),
            NOW
        ),
        Err(TokenError::TooLong)
    );
    // J18d: a valid token of about 8.9 KB.
    let fat = format!(
        r#"{{"sub":"alice","token_type":"access","exp":4102444800,"x":"{}"}}"#,
        "A".repeat(6500)
    );
    assert_eq!(
        v.verify(&mut TokenCache::default(), &sign_raw(header, &fat, K), NOW),
        Err(TokenError::TooLong)
    );
    // A token just under the cap passes.
    let near = format!(
        r#"{{"sub":"alice","token_type":"access","exp":4102444800,"x":"{}"}}"#,
        "A".repeat(5900)
    );
    let token = sign_raw(header, &near, K);
    assert!(token.len() <= MAX_CREDENTIAL_LEN);
    assert!(v.verify(&mut TokenCache::default(), &token, NOW).is_ok());
}

#[test]
fn rfc7515_appendix_a1() {
    let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Decoder};
    let key = Base64UrlSafeNoPadding::decode_to_vec(
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
        None,
    )
    .unwrap();
    let v = verifier(vec![SigningKey::new(None, &key)]);
    assert_eq!(
        v.verify(&mut TokenCache::default(), token, NOW),
        Err(TokenError::Expired)
    );
    assert_eq!(
        v.verify(&mut TokenCache::default(), token, 1_300_819_380 + 61),
        Err(TokenError::Expired)
    );
    // Authentic and unexpired, but no token_type and no sub: still refused.
    assert_eq!(
        v.verify(&mut TokenCache::default(), token, 1_300_819_000),
        Err(TokenError::NotAccessToken)
    );
    // The k string itself is not the key.
    let v = verifier(vec![SigningKey::new(
        None,
        b"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
    )]);
    assert_eq!(
        v.verify(&mut TokenCache::default(), token, 1_300_819_000),
        Err(TokenError::BadSignature)
    );
}

/// The reference: jwt-simple's verification with the options the filter used before it
/// verified tokens itself, then the same claim checks. Returns the subject when accepted.
fn reference_verify(keys: &[(Option<&str>, &[u8])], token: &str, now: u64) -> Option<String> {
    if token.len() > MAX_CREDENTIAL_LEN || token.split('.').count() != 3 {
        return None;
    }
    let metadata = Token::decode_metadata(token).ok()?;
    if metadata.algorithm() != "HS256" || metadata.critical().is_some() {
        return None;
    }
    let kid = metadata.key_id();
    let options = VerificationOptions {
        time_tolerance: Some(Duration::from_secs(60)),
        max_token_length: Some(MAX_CREDENTIAL_LEN),
        artificial_time: Some(UnixTimeStamp::from_secs(now)),
        ..Default::default()
    };
    for (key_kid, secret) in keys {
        if kid.is_some() && kid != *key_kid {
            continue;
        }
        let Ok(claims) =
            HS256Key::from_bytes(secret).verify_token::<AccessClaims>(token, Some(options.clone()))
        else {
            continue;
        };
        claims.expires_at?;
        if claims.custom.token_type.as_deref() != Some("access") {
            return None;
        }
        let sub = claims.subject?;
        return is_safe_subject(&sub).then_some(sub);
    }
    None
}

/// Payloads that exercise the claim parser: types, duplicates, escapes, numbers.
fn payload_variants() -> Vec<String> {
    let mut out = Vec::new();
    let values = [
        r#""alice""#,
        r#""""#,
        "123",
        "null",
        "true",
        "[]",
        "{}",
        r#"["alice"]"#,
        r#""al\u0069ce""#,
        r#""\uff41dmin""#,
        r#""a,b""#,
        r#"" a""#,
        r#""\ud800""#,
    ];
    for sub in values {
        out.push(format!(
            r#"{{"sub":{sub},"token_type":"access","exp":4102444800}}"#
        ));
    }
    let numbers = [
        "4102444800",
        "4102444800.9",
        "4.1e9",
        "1e10",
        "-1",
        "-1.0",
        "0",
        "1e400",
        "18446744073709551616",
        "\"4102444800\"",
        "null",
        "true",
        "[4102444800]",
        "1750000030",
        "1749999900",
        "1e-3",
        "-0",
        "4102444800e0",
    ];
    for n in numbers {
        out.push(format!(r#"{{"sub":"a","token_type":"access","exp":{n}}}"#));
        out.push(format!(
            r#"{{"sub":"a","token_type":"access","exp":4102444800,"nbf":{n}}}"#
        ));
        out.push(format!(
            r#"{{"sub":"a","token_type":"access","exp":4102444800,"iat":{n}}}"#
        ));
    }
    for tt in [
        r#""access""#,
        r#""refresh""#,
        r#""Access""#,
        "1",
        "null",
        r#""acc\u0065ss""#,
    ] {
        out.push(format!(
            r#"{{"sub":"a","token_type":{tt},"exp":4102444800}}"#
        ));
    }
    for extra in [
        r#","aud":"x""#,
        r#","aud":["x","y"]"#,
        r#","aud":5"#,
        r#","aud":[5]"#,
        r#","iss":1"#,
        r#","iss":"i""#,
        r#","jti":{}"#,
        r#","nonce":"n""#,
        r#","nonce":[]"#,
        r#","x":{"y":[1,{"z":null}]}"#,
        r#","sub":"b""#,
        r#","exp":1"#,
        r#","token_type":"access""#,
        r#","unknown":1,"unknown":2"#,
    ] {
        out.push(format!(
            r#"{{"sub":"a","token_type":"access","exp":4102444800{extra}}}"#
        ));
    }
    for raw in [
        "[]",
        "null",
        r#""x""#,
        "{}",
        r#"{"sub":"a","token_type":"access","exp":4102444800"#,
        r#" {"sub":"a","token_type":"access","exp":4102444800} "#,
        r#"{"sub":"a","token_type":"access","exp":4102444800}x"#,
    ] {
        out.push(raw.to_string());
    }
    out
}

#[test]
fn agrees_with_jwt_simple() {
    // Accepted here implies accepted by jwt-simple with the same subject; the only tokens
    // jwt-simple accepts and this refuses are the documented stricter cases.
    let second: &[u8] = b"second-secret-XGNMqcm6B2GmjLe8bPVS";
    let keys: [(Option<&str>, &[u8]); 2] = [(Some("k1"), K), (Some("k2"), second)];
    let v = verifier(
        keys.iter()
            .map(|(kid, secret)| SigningKey::new(kid.map(String::from), secret))
            .collect(),
    );
    let headers = [
        r#"{"alg":"HS256"}"#,
        r#"{"alg":"HS256","kid":"k1"}"#,
        r#"{"alg":"HS256","kid":"k2"}"#,
        r#"{"alg":"HS256","kid":"k3"}"#,
        r#"{"alg":"HS256","typ":"JWT"}"#,
        r#"{"alg":"HS256","typ":"at+jwt"}"#,
        r#"{"alg":"HS256","typ":"JOSE"}"#,
        r#"{"alg":"HS256","crit":[]}"#,
        r#"{"alg":"HS256","crit":["exp"]}"#,
        r#"{"alg":"HS256","crit":null}"#,
        r#"{"alg":"HS256","jwk":{}}"#,
        r#"{"alg":"HS256","x5c":"a"}"#,
        r#"{"alg":"HS256","kid":null}"#,
        r#"{"alg":"HS256","alg":"HS256"}"#,
        r#"{"alg":"none"}"#,
        r#"{"alg":"HS\u0032\u0035\u0036"}"#,
        r#"{"alg":"HS256","cty":5}"#,
        r#"{"alg":"HS256","salt":"AAAA"}"#,
        r#"[]"#,
        r#"{"alg":"HS256","zip":"DEF"}"#,
    ];
    let stricter = |header: &str| {
        header.contains(r#""crit":[]"#)
            || header.contains(r#""crit":null"#)
            || header.contains("salt")
    };
    let mut tokens: Vec<(String, bool)> = Vec::new();
    for header in headers {
        for payload in payload_variants() {
            // The contract refuses a name repeated at any depth; jwt-simple keeps the last
            // of two names it does not read.
            let repeats = crate::verify::claims::parse_strict(payload.as_bytes()).is_none();
            for (_, secret) in &keys {
                tokens.push((
                    sign_raw(header, &payload, secret),
                    stricter(header) || repeats,
                ));
            }
        }
    }
    for line in VECTORS.lines().filter(|l| !l.starts_with('#')) {
        // The contract refuses `crit` in any form; jwt-simple accepts `"crit": null`.
        let stricter = line.starts_with("J08e\t");
        tokens.push((unescape(line.split('\t').nth(4).unwrap()), stricter));
    }
    let mut accepted = 0;
    for (token, may_be_stricter) in &tokens {
        let ours = v
            .verify_typed(token, "access", NOW)
            .ok()
            .map(|t| t.subject.to_string());
        let theirs = reference_verify(&keys, token, NOW);
        match (&ours, &theirs) {
            (Some(a), Some(b)) => assert_eq!(a, b, "{token}"),
            (Some(_), None) => panic!("accepted what jwt-simple refuses: {token}"),
            (None, Some(_)) => {
                assert!(*may_be_stricter, "refused what jwt-simple accepts: {token}")
            }
            (None, None) => {}
        }
        accepted += usize::from(ours.is_some());
    }
    assert!(accepted > 50, "{accepted} of {}", tokens.len());
}

mod lifetimes;
