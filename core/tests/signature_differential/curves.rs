//! ES256, ES384 and EdDSA: the catalogue signed with each test key, then signatures with a
//! bit flipped, of the wrong length, zero halves, the other `s` (n - s), DER-encoded.

use p256::ecdsa::signature::Signer as _;

use super::vectors::{unescape, STRICTER};
use super::*;

/// The orders of P-256 and P-384, big-endian.
const P256_ORDER: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
const P384_ORDER: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973";

fn pem(file: &str) -> String {
    std::fs::read_to_string(root().join("tests/data/issuer-keys").join(file)).unwrap()
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// `a - b` on big-endian numbers of one width (a >= b).
fn minus(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = a.to_vec();
    let mut borrow = 0i16;
    for i in (0..a.len()).rev() {
        let d = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = i16::from(d < 0);
        out[i] = (d + 256 * borrow) as u8;
    }
    out
}

/// Signs a signing input.
type SignFn = Box<dyn Fn(&str) -> Vec<u8>>;

/// A curve's signer: its public JWK and a signature of any signing input.
struct Curve {
    alg: &'static str,
    jwk: String,
    sign: SignFn,
    order: Option<Vec<u8>>,
}

fn curves() -> Vec<Curve> {
    let es256 = ES256KeyPair::from_pem(&pem("ec-p256.pem")).unwrap();
    let es384 = ES384KeyPair::from_pem(&pem("ec-p384.pem")).unwrap();
    let ed = Ed25519KeyPair::from_pem(&pem("ed25519.pem")).unwrap();
    vec![
        Curve {
            alg: "ES256",
            jwk: es256.public_key().to_jwk(),
            sign: Box::new(move |input| {
                let s: p256::ecdsa::Signature = es256.key_pair().as_ref().sign(input.as_bytes());
                s.to_bytes().to_vec()
            }),
            order: Some(hex(P256_ORDER)),
        },
        Curve {
            alg: "ES384",
            jwk: es384.public_key().to_jwk(),
            sign: Box::new(move |input| {
                let s: p384::ecdsa::Signature = es384.key_pair().as_ref().sign(input.as_bytes());
                s.to_bytes().to_vec()
            }),
            order: Some(hex(P384_ORDER)),
        },
        Curve {
            alg: "EdDSA",
            jwk: ed.public_key().to_jwk(),
            sign: Box::new(move |input| ed.key_pair().as_ref().sk.sign(input, None).to_vec()),
            order: None,
        },
    ]
}

#[test]
fn catalogue_vectors_decide_alike() {
    for curve in curves() {
        let mut accepted = 0;
        for line in VECTORS
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let fields: Vec<&str> = line.split('\t').collect();
            let (id, vector) = (fields[0], unescape(fields[4]));
            let mut parts = vector.splitn(3, '.');
            let (Some(header), Some(payload)) = (parts.next().and_then(unb64), parts.next()) else {
                continue;
            };
            let header = String::from_utf8_lossy(&header).replace("HS256", curve.alg);
            let input = format!("{}.{payload}", b64(header.as_bytes()));
            let signed = token(&input, &(curve.sign)(&input));
            let (a, b) = (
                ours(&curve.jwk, curve.alg, &signed),
                reference(&curve.jwk, curve.alg, &signed),
            );
            accepted += usize::from(a);
            if a != b {
                assert!(
                    !a,
                    "{} {id}: the filter accepts what jwt-simple refuses",
                    curve.alg
                );
                assert!(
                    STRICTER.iter().any(|(s, _)| *s == id),
                    "{} {id}: refused by the filter only",
                    curve.alg
                );
            }
        }
        assert!(accepted > 10, "{}: {accepted} accepted", curve.alg);
    }
}

#[test]
fn crafted_signatures_decide_alike() {
    for curve in curves() {
        let input = signing_input(&format!(r#"{{"alg":"{}"}}"#, curve.alg), CLAIMS);
        let signature = (curve.sign)(&input);
        assert!(same(
            &curve.jwk,
            curve.alg,
            &token(&input, &signature),
            curve.alg
        ));
        let half = signature.len() / 2;
        let mut cases = vec![
            ("one byte short", signature[1..].to_vec()),
            ("one byte long", [&signature[..], &[0]].concat()),
            ("leading zero added", [&[0][..], &signature].concat()),
            ("all zero", vec![0; signature.len()]),
            ("r zero", [&vec![0; half][..], &signature[half..]].concat()),
            ("s zero", [&signature[..half], &vec![0; half][..]].concat()),
            (
                "halves swapped",
                [&signature[half..], &signature[..half]].concat(),
            ),
            ("empty", Vec::new()),
        ];
        if let Some(order) = &curve.order {
            cases.push(("s = n", [&signature[..half], &order[..]].concat()));
            cases.push(("r = n", [&order[..], &signature[half..]].concat()));
            let der = {
                let (r, s) = (&signature[..half], &signature[half..]);
                let int = |x: &[u8]| {
                    let x = if x[0] & 0x80 != 0 {
                        [&[0][..], x].concat()
                    } else {
                        x.to_vec()
                    };
                    [&[0x02, x.len() as u8][..], &x].concat()
                };
                let body = [int(r), int(s)].concat();
                [&[0x30, body.len() as u8][..], &body].concat()
            };
            cases.push(("DER-encoded", der));
            // n - s verifies as s does (ECDSA's malleability): both take it alike.
            let other_s = [&signature[..half], &minus(order, &signature[half..])].concat();
            let (a, b) = (
                ours(&curve.jwk, curve.alg, &token(&input, &other_s)),
                reference(&curve.jwk, curve.alg, &token(&input, &other_s)),
            );
            assert_eq!(a, b, "{}: n - s", curve.alg);
        }
        for i in 0..signature.len() {
            let mut s = signature.clone();
            s[i] ^= 1 << (i % 8);
            cases.push(("a bit flipped", s));
        }
        for (case, s) in cases {
            assert!(!same(
                &curve.jwk,
                curve.alg,
                &token(&input, &s),
                &format!("{}: {case}", curve.alg)
            ));
        }
        // Another algorithm's key: refused.
        let other = if curve.alg == "ES256" {
            "ES384"
        } else {
            "ES256"
        };
        let other_curve = curves().into_iter().find(|c| c.alg == other).unwrap();
        assert!(!same(
            &other_curve.jwk,
            other,
            &token(&input, &signature),
            &format!("{} under {other}", curve.alg)
        ));
    }
}
