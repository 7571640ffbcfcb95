//! A key set that names one `kid` many times (copies of one key, or several keys): a token
//! is tried against at most two keys, whatever its `kid`, so a forged token costs at most two
//! signature checks however the provider's key set is shaped.

use super::*;
use tollgate_core::verify::jwks::Algorithm;

/// `jwk` with `kid` and, when `marked`, without its `alg` member: the same key written
/// another way (it then loads into every RSA algorithm).
fn keyed(mut jwk: Value, kid: &str, marked: bool) -> Value {
    jwk["kid"] = json!(kid);
    if marked {
        jwk.as_object_mut().unwrap().remove("alg");
    }
    jwk
}

#[test]
fn copies_of_one_key_are_one_key() {
    let jwk = keyed(signer("RS256", "k1").jwk, "k1", false);
    let copies: Vec<Value> = (0..64).map(|_| jwk.clone()).collect();
    let document = json!({ "keys": copies }).to_string();
    let set = KeySet::parse(
        document.as_bytes(),
        &tollgate_core::verify::jwks::Algorithm::ALL,
    )
    .unwrap();
    assert_eq!(set.keys.len(), 1, "64 copies of one key load as one");
}

#[test]
fn a_token_is_tried_against_two_keys_of_its_kid_at_most() {
    let signing = signer("RS256", "k1");
    let other = signer("RS256-other", "k1").jwk;
    // Two writings of another key, then the key that signed: the signer is the third.
    let keys = vec![
        keyed(other.clone(), "k1", false),
        keyed(other, "k1", true),
        keyed(signing.jwk.clone(), "k1", false),
    ];
    let document = json!({ "keys": keys.clone() }).to_string();
    let set = KeySet::parse(document.as_bytes(), &[Algorithm::RS256]).unwrap();
    assert_eq!(set.keys.len(), 3);
    let config = config_with(inline_issuer(json!({ "keys": keys })));
    let token = (signing.sign)(claims(json!({})));
    let (status, code, _) = ask(&config, &mut WorkerState::default(), &token);
    assert_eq!(
        (status, code.as_deref()),
        (401, Some("INVALID_CREDENTIALS"))
    );
    // First or second among the keys of its kid, it verifies.
    let keys = vec![
        keyed(signing.jwk.clone(), "k1", false),
        keyed(signer("RS256-other", "k1").jwk, "k1", false),
    ];
    let config = config_with(inline_issuer(json!({ "keys": keys })));
    let (status, _, _) = ask(&config, &mut WorkerState::default(), &token);
    assert_eq!(status, 200);
}
