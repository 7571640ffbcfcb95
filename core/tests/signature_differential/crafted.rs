//! Signatures crafted on the 2048-bit test key: integers at the modulus' edges, wrong
//! lengths, bit flips, other hashes and other spellings of the encoded message.

use super::*;

const HEADER: &str = r#"{"alg":"RS256","typ":"JWT"}"#;

#[test]
fn crafting_is_sound() {
    let key = Key::from_pem("rsa-2048.pem");
    let input = signing_input(HEADER, CLAIMS);
    let signed = RS256KeyPair::from_pem(
        &std::fs::read_to_string(root().join("tests/data/issuer-keys/rsa-2048.pem")).unwrap(),
    )
    .unwrap()
    .sign(JWTClaims {
        custom: NoCustomClaims {},
        ..Claims::create(Duration::from_hours(1))
    })
    .unwrap();
    assert!(same(&key.jwk, "RS256", &signed, "jwt-simple's own token"));
    assert!(same(
        &key.jwk,
        "RS256",
        &token(&input, &key.rs256(&input)),
        "crafted"
    ));
}

#[test]
fn integers_at_the_edges_of_the_modulus() {
    let key = Key::from_pem("rsa-2048.pem");
    let input = signing_input(HEADER, CLAIMS);
    let zero = vec![0; key.k()];
    let one = plus(&zero, 1);
    let n = key.n.clone();
    for (case, s) in [
        ("s = 0", zero),
        ("s = 1", one),
        ("s = n - 1", plus(&n, -1)),
        ("s = n", n.clone()),
        ("s = n + 1", plus(&n, 1)),
        ("s = all ones", vec![0xff; key.k()]),
        ("empty", Vec::new()),
    ] {
        assert!(!same(&key.jwk, "RS256", &token(&input, &s), case));
    }
}

#[test]
fn lengths_and_leading_zeros() {
    let key = Key::from_pem("rsa-2048.pem");
    // A signature whose first byte is zero: one in 256 claim sets gives one.
    let (input, signature) = (0..4096)
        .map(|jti| {
            let input = signing_input(
                HEADER,
                &CLAIMS.replace(r#""jti":"0""#, &format!(r#""jti":"{jti}""#)),
            );
            let signature = key.rs256(&input);
            (input, signature)
        })
        .find(|(_, s)| s[0] == 0)
        .unwrap();
    assert!(same(
        &key.jwk,
        "RS256",
        &token(&input, &signature),
        "leading zero kept"
    ));
    let short = &signature[..signature.len() - 1];
    let long = [&signature[..], &[0]].concat();
    for (case, s) in [
        ("leading zero removed", signature[1..].to_vec()),
        ("leading zero added", [&[0][..], &signature].concat()),
        ("one byte short", short.to_vec()),
        ("one byte long", long),
    ] {
        assert!(!same(&key.jwk, "RS256", &token(&input, &s), case));
    }
}

#[test]
fn a_bit_flipped_anywhere_is_refused() {
    let key = Key::from_pem("rsa-2048.pem");
    let input = signing_input(HEADER, CLAIMS);
    let signature = key.rs256(&input);
    for i in 0..signature.len() {
        let mut s = signature.clone();
        s[i] ^= 1 << (i % 8);
        assert!(!same(
            &key.jwk,
            "RS256",
            &token(&input, &s),
            &format!("signature byte {i}")
        ));
    }
    for (part, text) in [("header", HEADER), ("payload", CLAIMS)] {
        for i in 0..text.len() {
            let mut bytes = text.as_bytes().to_vec();
            bytes[i] ^= 1 << (i % 8);
            let (h, p) = if part == "header" {
                (b64(&bytes), b64(CLAIMS.as_bytes()))
            } else {
                (b64(HEADER.as_bytes()), b64(&bytes))
            };
            let flipped = format!("{h}.{p}.{}", b64(&signature));
            assert!(!same(
                &key.jwk,
                "RS256",
                &flipped,
                &format!("{part} byte {i}")
            ));
        }
    }
}

#[test]
fn other_hashes_and_spellings_of_the_encoded_message() {
    let key = Key::from_pem("rsa-2048.pem");
    let input = signing_input(HEADER, CLAIMS);
    let h256 = Sha256::digest(&input).to_vec();
    let h384 = Sha384::digest(&input).to_vec();
    let h512 = Sha512::digest(&input).to_vec();
    let t = [DI_SHA256, &h256].concat();
    let mut block_type_2 = key.em(&t);
    block_type_2[1] = 0x02;
    let mut fe_in_padding = key.em(&t);
    fe_in_padding[5] = 0xfe;
    let mut no_separator = key.em(&t);
    no_separator[key.k() - t.len() - 1] = 0xff;
    let trailing = key.em(&[&t[..], &[0]].concat());
    for (case, em) in [
        (
            "DigestInfo without NULL",
            key.em(&[DI_SHA256_NO_NULL, &h256].concat()),
        ),
        (
            "SHA-384 DigestInfo and hash",
            key.em(&[DI_SHA384, &h384].concat()),
        ),
        (
            "SHA-512 DigestInfo and hash",
            key.em(&[DI_SHA512, &h512].concat()),
        ),
        (
            "SHA-384 DigestInfo, SHA-256 hash",
            key.em(&[DI_SHA384, &h256].concat()),
        ),
        ("bare hash, no DigestInfo", key.em(&h256)),
        ("block type 2", block_type_2),
        ("0xFE in the padding", fe_in_padding),
        ("no zero separator", no_separator),
        ("a byte after the hash", trailing),
        ("padding shortened to 7 bytes", {
            let mut em = vec![0x00, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00];
            em.extend_from_slice(&t);
            fixed(&em, key.k())
        }),
    ] {
        assert!(!same(
            &key.jwk,
            "RS256",
            &token(&input, &key.raw(&em)),
            case
        ));
    }
    // A correct RS384 (RS512) token: refused by a key loaded for RS256, accepted by its own.
    for (alg, t) in [
        ("RS384", [DI_SHA384, &h384].concat()),
        ("RS512", [DI_SHA512, &h512].concat()),
    ] {
        let input = signing_input(&HEADER.replace("RS256", alg), CLAIMS);
        let hashed = match alg {
            "RS384" => Sha384::digest(&input).to_vec(),
            _ => Sha512::digest(&input).to_vec(),
        };
        let t = [&t[..t.len() - hashed.len()], &hashed].concat();
        let tok = token(&input, &key.raw(&key.em(&t)));
        assert!(same(&key.jwk, alg, &tok, &format!("{alg} with its key")));
        assert!(!same(
            &key.jwk,
            "RS256",
            &tok,
            &format!("{alg} token, RS256 key")
        ));
        // The same signature under a header that says RS256.
        let relabelled = format!(
            "{}.{}",
            signing_input(HEADER, CLAIMS),
            tok.rsplit('.').next().unwrap()
        );
        assert!(!same(
            &key.jwk,
            "RS256",
            &relabelled,
            &format!("{alg} signature, RS256 header")
        ));
    }
}

#[test]
fn pss_salts_and_hashes() {
    let key = Key::from_pem("rsa-2048.pem");
    for alg in ["PS256", "PS384", "PS512"] {
        let input = signing_input(&HEADER.replace("RS256", alg), CLAIMS);
        let (good, zero_salt, long_salt) = match alg {
            "PS256" => (
                key.pss::<Sha256>(&input, 32),
                key.pss::<Sha256>(&input, 0),
                key.pss::<Sha256>(&input, 64),
            ),
            "PS384" => (
                key.pss::<Sha384>(&input, 48),
                key.pss::<Sha384>(&input, 0),
                key.pss::<Sha384>(&input, 64),
            ),
            _ => (
                key.pss::<Sha512>(&input, 64),
                key.pss::<Sha512>(&input, 0),
                key.pss::<Sha512>(&input, 32),
            ),
        };
        assert!(same(
            &key.jwk,
            alg,
            &token(&input, &good),
            &format!("{alg}, salt as long as the hash")
        ));
        for (case, s) in [("salt 0", zero_salt), ("salt of another length", long_salt)] {
            assert!(!same(
                &key.jwk,
                alg,
                &token(&input, &s),
                &format!("{alg}, {case}")
            ));
        }
        let mut flipped = good.clone();
        flipped[100] ^= 4;
        assert!(!same(
            &key.jwk,
            alg,
            &token(&input, &flipped),
            &format!("{alg}, flipped")
        ));
        // A PSS signature is no PKCS#1 v1.5 one, and the reverse.
        let rs = format!("{}.{}", signing_input(HEADER, CLAIMS), b64(&good));
        assert!(!same(
            &key.jwk,
            "RS256",
            &rs,
            &format!("{alg} signature as RS256")
        ));
    }
    let input = signing_input(&HEADER.replace("RS256", "PS256"), CLAIMS);
    assert!(!same(
        &key.jwk,
        "PS256",
        &token(&input, &key.rs256(&input)),
        "RS256 signature as PS256"
    ));
}
