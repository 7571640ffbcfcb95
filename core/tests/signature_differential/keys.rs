//! The keys each path accepts: modulus sizes and public exponents, from a JWK and from bare
//! components, and tokens of every accepted size.

use super::*;

/// Whether jwt-simple's policy takes the key of `n` and `e`, and whether ours does.
fn both_take(n: &[u8], e: &[u8]) -> (bool, bool) {
    let theirs = RS256PublicKey::from_components(n, e).is_ok();
    let ours = RsaVerifier::new(n, e, Algorithm::RS256).is_some();
    (ours, theirs)
}

#[test]
fn modulus_sizes_and_exponents() {
    let n2048 = Key::from_pem("rsa-2048.pem").n;
    let jwk1024: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/data/issuer-keys/rsa-1024.public.jwk.json"))
            .unwrap(),
    )
    .unwrap();
    let n1024 = unb64(jwk1024["n"].as_str().unwrap()).unwrap();
    let huge_e = [&[0x01][..], &[0u8; 255], &[0x01]].concat();
    let mut n4097 = vec![0x01];
    n4097.extend(vec![0xffu8; 512]);
    let mut n2047 = n2048.clone();
    n2047[0] = 0x7f;
    let mut even = n2048.clone();
    *even.last_mut().unwrap() &= 0xfe;
    for (case, n, e, taken) in [
        ("2048 bits, 65537", n2048.clone(), vec![1, 0, 1], true),
        (
            "65537 with a leading zero",
            n2048.clone(),
            vec![0, 1, 0, 1],
            true,
        ),
        (
            "modulus with a leading zero",
            [&[0][..], &n2048].concat(),
            vec![1, 0, 1],
            true,
        ),
        ("e = 3", n2048.clone(), vec![3], false),
        ("e = 65539", n2048.clone(), vec![1, 0, 3], false),
        ("e = 2^2048 + 1", n2048.clone(), huge_e, false),
        ("1024 bits", n1024, vec![1, 0, 1], false),
        ("2047 bits", n2047, vec![1, 0, 1], false),
        ("4097 bits", n4097, vec![1, 0, 1], false),
        ("even modulus", even, vec![1, 0, 1], false),
        ("empty modulus", Vec::new(), vec![1, 0, 1], false),
    ] {
        assert_eq!(both_take(&n, &e), (taken, taken), "{case}");
    }
    // From a JWK: jwt-simple's import, then ours.
    let with_e = |e: &str| format!(r#"{{"kty":"RSA","n":"{}","e":"{e}"}}"#, b64(&n2048));
    for (e, taken) in [
        ("AQAB", true),
        ("Aw", false),
        ("AAEAAQ", false),
        ("AQAD", false),
    ] {
        let jwks = format!(r#"{{"keys":[{}]}}"#, with_e(e));
        let set = KeySet::parse(jwks.as_bytes(), &[Algorithm::RS256]).unwrap();
        assert_eq!(set.keys.len(), usize::from(taken), "e {e}");
        assert_eq!(RS256PublicKey::from_jwk(&with_e(e)).is_ok(), taken, "e {e}");
    }
    let weak = serde_json::to_string(&jwk1024).unwrap();
    let set = KeySet::parse(
        format!(r#"{{"keys":[{weak}]}}"#).as_bytes(),
        &[Algorithm::RS256],
    );
    assert!(set.unwrap().keys.is_empty(), "a 1024-bit key is skipped");
}

#[test]
fn every_accepted_size_verifies_the_same() {
    for file in ["rsa-2048.pem", "rsa-3072.pem", "rsa-4096.pem"] {
        let key = Key::from_pem(file);
        let input = signing_input(r#"{"alg":"RS256"}"#, CLAIMS);
        let signature = key.rs256(&input);
        assert!(same(&key.jwk, "RS256", &token(&input, &signature), file));
        for i in [0, signature.len() / 2, signature.len() - 1] {
            let mut s = signature.clone();
            s[i] ^= 0x80;
            assert!(!same(
                &key.jwk,
                "RS256",
                &token(&input, &s),
                &format!("{file}, byte {i}")
            ));
        }
        let other = Key::from_pem("rsa-other.pem");
        assert!(!same(
            &other.jwk,
            "RS256",
            &token(&input, &signature),
            &format!("{file}, another key")
        ));
    }
}
