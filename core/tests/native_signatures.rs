//! The native module's signature checks (AWS-LC, feature `native-crypto`) against jwt-simple,
//! the reference: every key kind AWS-LC takes (RS256, RS384, RS512, ES256, ES384), valid
//! tokens and crafted ones (signatures of 0, 1, n-1, n, n+1, one byte short or long, a
//! leading zero added or removed, every bit of a signature flipped in turn, bit flips in the
//! header and the payload, another hash, another key), headers jwt-simple refuses or accepts
//! (`crit`, `typ`, `salt`, fields of the wrong type, a missing `alg`) and payloads it cannot
//! read: the native module accepts exactly the tokens jwt-simple accepts that the project's
//! reading of a JWS (`jws::signed`, stricter: no `crit` or `salt` at all) lets through.

// With feature `native-crypto` only (`make unit` runs it so: its core-native step).
#![cfg(feature = "native-crypto")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as lc, EcdsaKeyPair, RsaKeyPair};
use jwt_simple::prelude::*;
use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Decoder, Encoder};
use serde_json::json;
use tollgate_core::verify::jwks::{Algorithm, KeySet, PublicKey};
use tollgate_core::verify::jws;

const NOW: u64 = 1_800_000_000;

fn pem(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../tests/data/issuer-keys/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn b64(bytes: &[u8]) -> String {
    Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap()
}

/// Signs the given bytes.
type Sign = Box<dyn Fn(&[u8]) -> Vec<u8>>;
/// jwt-simple's verification of a token.
type Reference = Box<dyn Fn(&str) -> bool>;

/// A signer of any header and payload, and the project's key for it.
struct Signer {
    alg: &'static str,
    sign: Sign,
    key: PublicKey,
    /// jwt-simple's verification of a token with this key.
    reference: Reference,
    /// The RSA modulus (for the crafted signatures around it).
    modulus: Option<Vec<u8>>,
}

fn options() -> Option<VerificationOptions> {
    Some(VerificationOptions {
        artificial_time: Some(Duration::from_secs(NOW)),
        time_tolerance: Some(Duration::from_secs(NOW)),
        accept_future: true,
        max_token_length: Some(tollgate_core::verify::MAX_CREDENTIAL_LEN),
        ..VerificationOptions::default()
    })
}

/// The project's key loaded from `jwk` for `alg`.
fn loaded(jwk: &str, alg: &str) -> PublicKey {
    let mut jwk: serde_json::Value = serde_json::from_str(jwk).unwrap();
    jwk["kid"] = json!("k");
    jwk["alg"] = json!(alg);
    let set = KeySet::parse(
        json!({"keys": [jwk]}).to_string().as_bytes(),
        &[Algorithm::parse(alg).unwrap()],
    )
    .unwrap();
    let key = set.keys.into_iter().next().unwrap();
    assert!(key.checked_natively(), "{alg} is checked by AWS-LC");
    key
}

fn rsa(alg: &'static str) -> Signer {
    let pair = RS256KeyPair::from_pem(&pem("rsa-2048.pem")).unwrap();
    let public = pair.public_key();
    let der = pair.to_der().unwrap();
    let lc_pair = RsaKeyPair::from_pkcs8(&der)
        .or_else(|_| RsaKeyPair::from_der(&der))
        .unwrap();
    let encoding: &'static dyn lc::RsaEncoding = match alg {
        "RS256" => &lc::RSA_PKCS1_SHA256,
        "RS384" => &lc::RSA_PKCS1_SHA384,
        _ => &lc::RSA_PKCS1_SHA512,
    };
    let pem_public = public.to_pem().unwrap();
    let reference: Reference = match alg {
        "RS256" => {
            let k = RS256PublicKey::from_pem(&pem_public).unwrap();
            Box::new(move |t| k.verify_token::<NoCustomClaims>(t, options()).is_ok())
        }
        "RS384" => {
            let k = RS384PublicKey::from_pem(&pem_public).unwrap();
            Box::new(move |t| k.verify_token::<NoCustomClaims>(t, options()).is_ok())
        }
        _ => {
            let k = RS512PublicKey::from_pem(&pem_public).unwrap();
            Box::new(move |t| k.verify_token::<NoCustomClaims>(t, options()).is_ok())
        }
    };
    Signer {
        alg,
        sign: Box::new(move |data| {
            let mut signature = vec![0; lc_pair.public_modulus_len()];
            lc_pair
                .sign(encoding, &SystemRandom::new(), data, &mut signature)
                .unwrap();
            signature
        }),
        key: loaded(&public.to_jwk(), alg),
        reference,
        modulus: Some(public.to_components().n),
    }
}

fn ec(alg: &'static str) -> Signer {
    let (der, jwk, pem_public, signing) = if alg == "ES256" {
        let pair = ES256KeyPair::from_pem(&pem("ec-p256.pem")).unwrap();
        let public = pair.public_key();
        (
            pair.to_der().unwrap(),
            public.to_jwk(),
            public.to_pem().unwrap(),
            &lc::ECDSA_P256_SHA256_FIXED_SIGNING,
        )
    } else {
        let pair = ES384KeyPair::from_pem(&pem("ec-p384.pem")).unwrap();
        let public = pair.public_key();
        (
            pair.to_der().unwrap(),
            public.to_jwk(),
            public.to_pem().unwrap(),
            &lc::ECDSA_P384_SHA384_FIXED_SIGNING,
        )
    };
    let lc_pair = EcdsaKeyPair::from_pkcs8(signing, &der).unwrap();
    let reference: Reference = if alg == "ES256" {
        let k = ES256PublicKey::from_pem(&pem_public).unwrap();
        Box::new(move |t| k.verify_token::<NoCustomClaims>(t, options()).is_ok())
    } else {
        let k = ES384PublicKey::from_pem(&pem_public).unwrap();
        Box::new(move |t| k.verify_token::<NoCustomClaims>(t, options()).is_ok())
    };
    Signer {
        alg,
        sign: Box::new(move |data| {
            lc_pair
                .sign(&SystemRandom::new(), data)
                .unwrap()
                .as_ref()
                .to_vec()
        }),
        key: loaded(&jwk, alg),
        reference,
        modulus: None,
    }
}

fn signers() -> Vec<Signer> {
    vec![
        rsa("RS256"),
        rsa("RS384"),
        rsa("RS512"),
        ec("ES256"),
        ec("ES384"),
    ]
}

/// `header.payload.signature` with the given parts.
fn token(header: &str, payload: &str, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.as_bytes()),
        b64(payload.as_bytes()),
        b64(signature)
    )
}

fn signed(signer: &Signer, header: &str, payload: &str) -> String {
    let data = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    format!("{data}.{}", b64(&(signer.sign)(data.as_bytes())))
}

const PAYLOAD: &str = r#"{"iss":"https://idp.example.com","sub":"svc","aud":"orders","exp":1900000000,"iat":1700000000}"#;

/// Every crafted token for `signer`.
fn crafted(signer: &Signer) -> Vec<String> {
    let header = format!(r#"{{"alg":"{}","typ":"JWT","kid":"k"}}"#, signer.alg);
    let good = signed(signer, &header, PAYLOAD);
    let mut tokens = vec![good.clone()];
    let parts: Vec<&str> = good.split('.').collect();
    let signature = Base64UrlSafeNoPadding::decode_to_vec(parts[2], None).unwrap();
    let with_signature = |s: &[u8]| format!("{}.{}.{}", parts[0], parts[1], b64(s));
    // Signatures around the modulus, of other lengths, with a zero byte more or less.
    let len = signature.len();
    let mut candidates: Vec<Vec<u8>> = vec![
        vec![0; len],
        [vec![0; len - 1], vec![1]].concat(),
        signature[..len - 1].to_vec(),
        [signature.clone(), vec![0]].concat(),
        [vec![0], signature.clone()].concat(),
        Vec::new(),
        vec![0xff; len],
    ];
    if let Some(n) = &signer.modulus {
        let add = |n: &[u8], delta: i32| {
            let mut out = n.to_vec();
            let mut carry = delta;
            for byte in out.iter_mut().rev() {
                let v = i32::from(*byte) + carry;
                *byte = v.rem_euclid(256) as u8;
                carry = v.div_euclid(256);
                if carry == 0 {
                    break;
                }
            }
            out
        };
        candidates.extend([add(n, -1), n.clone(), add(n, 1)]);
    }
    if signature[0] == 0 {
        candidates.push(signature[1..].to_vec());
    }
    for bit in 0..len * 8 {
        let mut flipped = signature.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        candidates.push(flipped);
    }
    tokens.extend(candidates.iter().map(|s| with_signature(s)));
    // Bit flips in the signed header and payload (base64 text), signature kept.
    for part in 0..2 {
        for at in 0..parts[part].len() {
            let mut text: Vec<u8> = parts[part].as_bytes().to_vec();
            text[at] = if text[at] == b'A' { b'B' } else { b'A' };
            let mut edited: Vec<String> = parts.iter().map(|p| (*p).to_owned()).collect();
            edited[part] = String::from_utf8(text).unwrap();
            tokens.push(edited.join("."));
        }
    }
    // Headers, each signed: what jwt-simple accepts and refuses.
    let alg = signer.alg;
    let headers = [
        format!(r#"{{"alg":"{alg}"}}"#),
        format!(r#"{{"alg":"{alg}","crit":[]}}"#),
        format!(r#"{{"alg":"{alg}","crit":["exp"]}}"#),
        format!(r#"{{"alg":"{alg}","typ":"at+jwt"}}"#),
        format!(r#"{{"alg":"{alg}","typ":"jwt"}}"#),
        format!(r#"{{"alg":"{alg}","typ":"JOSE"}}"#),
        format!(r#"{{"alg":"{alg}","typ":null}}"#),
        format!(r#"{{"alg":"{alg}","kid":5}}"#),
        format!(r#"{{"alg":"{alg}","salt":"!!"}}"#),
        format!(r#"{{"alg":"{alg}","salt":"AAAA"}}"#),
        format!(r#"{{"alg":"{alg}","x5c":"x"}}"#),
        format!(r#"{{"alg":"{alg}","jwk":{{"kty":"RSA"}}}}"#),
        format!(r#"{{"alg":"{alg}","alg":"{alg}"}}"#),
        format!(r#"{{"alg":"{}"}}"#, alg.to_lowercase()),
        r#"{"alg":"none"}"#.to_owned(),
        r#"{"alg":"HS256"}"#.to_owned(),
        r#"{"typ":"JWT"}"#.to_owned(),
        format!(r#"{{"alg":"{alg}"}} "#),
        "[]".to_owned(),
        "not json".to_owned(),
    ];
    for header in &headers {
        tokens.push(signed(signer, header, PAYLOAD));
    }
    // Payloads, each signed.
    let payloads = [
        "{}",
        r#"{"exp":"soon"}"#,
        r#"{"aud":5}"#,
        r#"{"sub":"a","sub":"b"}"#,
        "[]",
        "null",
        "not json",
        "",
    ];
    for payload in payloads {
        tokens.push(signed(signer, &header, payload));
    }
    // Shapes: parts missing or extra, padding, another algorithm's signature.
    tokens.extend([
        format!("{}.{}", parts[0], parts[1]),
        format!("{good}."),
        format!("{good}.x"),
        format!("{}=", good),
        format!("{}.{}.", parts[0], parts[1]),
        token(&header, PAYLOAD, &[]),
        "a".repeat(9000),
    ]);
    tokens
}

#[test]
fn aws_lc_answers_as_jwt_simple_does_for_every_crafted_token() {
    let signers = signers();
    let mut checked = 0;
    let mut accepted = 0;
    for signer in &signers {
        for token in crafted(signer) {
            let read = jws::signed(&token, signer.alg).is_some();
            let reference = (signer.reference)(&token) && read;
            let native = signer.key.verifies(&token);
            assert_eq!(native, reference, "{}: {token}", signer.alg);
            checked += 1;
            accepted += usize::from(native);
        }
        // Another key kind's tokens are refused by both.
        for other in signers.iter().filter(|o| o.alg != signer.alg) {
            let header = format!(r#"{{"alg":"{}"}}"#, other.alg);
            let token = signed(other, &header, PAYLOAD);
            assert!(!signer.key.verifies(&token));
            assert!(!(signer.reference)(&token));
        }
    }
    assert!(checked > 5_000, "{checked} tokens");
    // Each signer's good token and the headers and payloads jwt-simple accepts.
    assert!(accepted >= 5 * 7, "{accepted} accepted");
}
