//! Minting, the cache, key rotation, the clock skew, lifetimes, refresh tokens and subjects.

use super::*;

#[test]
fn minting_caps_times_instead_of_overflowing() {
    let claims = claims_for("alice", "access", NOW, u64::MAX);
    assert_eq!(claims.expires_at.map(|t| t.as_secs()), Some(MAX_TIMESTAMP));
    let claims = claims_for("alice", "access", u64::MAX, 60);
    assert_eq!(claims.issued_at.map(|t| t.as_secs()), Some(MAX_TIMESTAMP));
}

#[test]
fn the_cache_answers_only_for_the_same_token() {
    let key = SigningKey::new(None, K);
    let v = verifier(vec![key.clone()]);
    let cache = &mut TokenCache::default();
    let t = token(&key, "alice", "access", NOW, 600);
    let first = v.verify(cache, &t, NOW).unwrap();
    assert!(!first.cached);
    let second = v.verify(cache, &t, NOW + 1).unwrap();
    assert!(second.cached);
    assert_eq!(second.subject, first.subject);
    // Expiry is still checked on a hit.
    assert_eq!(
        v.verify(cache, &t, NOW + 600 + 61),
        Err(TokenError::Expired)
    );
    // A different token (one character added) never hits.
    let mut forged = t.clone();
    forged.push('A');
    assert!(v.verify(cache, &forged, NOW).is_err());
    // Failures are not cached.
    let refresh = token(&key, "alice", "refresh", NOW, 600);
    assert!(v.verify(cache, &refresh, NOW).is_err());
    assert!(v.verify(cache, &refresh, NOW).is_err());
    assert_eq!(cache.len(), 1);
    v.sweep(cache, NOW + 10_000);
    assert_eq!(cache.len(), 0);
}

fn token(key: &SigningKey, sub: &str, kind: &str, iat: u64, ttl: u64) -> String {
    key.sign(claims_for(sub, kind, iat, ttl)).unwrap()
}

#[test]
fn key_rotation_by_kid() {
    let current = SigningKey::new(
        Some("2026-11".into()),
        b"current-secret-NfVMuakv93xHH8EkWLkm",
    );
    let old = SigningKey::new(
        Some("2026-10".into()),
        b"previous-secret-4TqrxYCoq6TBUrbbswc",
    );
    let anonymous_old = SigningKey::new(None, b"previous-secret-4TqrxYCoq6TBUrbbswc");
    let stranger = SigningKey::new(
        Some("2026-09".into()),
        b"retired-secret-ExbYww7XqmdQse9AzLCu",
    );
    let v = verifier(vec![current.clone(), old.clone()]);
    let now = NOW;
    assert!(v
        .verify(
            &mut TokenCache::default(),
            &token(&current, "u1", "access", now, 60),
            now
        )
        .is_ok());
    assert!(v
        .verify(
            &mut TokenCache::default(),
            &token(&old, "u1", "access", now, 60),
            now
        )
        .is_ok());
    // No kid: any configured secret may verify.
    assert!(v
        .verify(
            &mut TokenCache::default(),
            &token(&anonymous_old, "u1", "access", now, 60),
            now
        )
        .is_ok());
    // A kid that no secret has.
    assert_eq!(
        v.verify(
            &mut TokenCache::default(),
            &token(&stranger, "u1", "access", now, 60),
            now
        ),
        Err(TokenError::UnknownKeyId)
    );
    // A kid that exists, but the token was signed with another secret.
    let forged = SigningKey::new(
        Some("2026-11".into()),
        b"previous-secret-4TqrxYCoq6TBUrbbswc",
    );
    assert_eq!(
        v.verify(
            &mut TokenCache::default(),
            &token(&forged, "u1", "access", now, 60),
            now
        ),
        Err(TokenError::BadSignature)
    );
    // A retired secret, no longer configured, without kid.
    let retired = SigningKey::new(None, b"retired-secret-ExbYww7XqmdQse9AzLCu");
    assert_eq!(
        v.verify(
            &mut TokenCache::default(),
            &token(&retired, "u1", "access", now, 60),
            now
        ),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn clock_skew_applies_to_exp_and_nbf() {
    let key = SigningKey::new(None, K);
    let v = verifier(vec![key.clone()]);
    let now = NOW;
    // exp = now - 30: inside the 60 s skew.
    assert!(v
        .verify(
            &mut TokenCache::default(),
            &token(&key, "u", "access", now - 90, 60),
            now
        )
        .is_ok());
    // exp = now - 61: expired.
    assert_eq!(
        v.verify(
            &mut TokenCache::default(),
            &token(&key, "u", "access", now - 121, 60),
            now
        ),
        Err(TokenError::Expired)
    );
    let mut claims = claims_for("u", "access", now, 600);
    claims.invalid_before = Some(UnixTimeStamp::from_secs(now + 30));
    assert!(v
        .verify(
            &mut TokenCache::default(),
            &key.sign(claims.clone()).unwrap(),
            now
        )
        .is_ok());
    claims.invalid_before = Some(UnixTimeStamp::from_secs(now + 61));
    assert_eq!(
        v.verify(&mut TokenCache::default(), &key.sign(claims).unwrap(), now),
        Err(TokenError::NotYetValid)
    );
    let strict = TokenVerifier::new(vec![key.clone()], 0, None);
    assert_eq!(
        strict.verify(
            &mut TokenCache::default(),
            &token(&key, "u", "access", now - 61, 60),
            now
        ),
        Err(TokenError::Expired)
    );
}

#[test]
fn maximum_lifetime() {
    let key = SigningKey::new(None, K);
    let v = TokenVerifier::new(vec![key.clone()], 60, Some(3600));
    let now = NOW;
    assert!(v
        .verify(
            &mut TokenCache::default(),
            &token(&key, "u", "access", now, 3600),
            now
        )
        .is_ok());
    assert_eq!(
        v.verify(
            &mut TokenCache::default(),
            &token(&key, "u", "access", now, 3601),
            now
        ),
        Err(TokenError::LifetimeTooLong)
    );
    let no_start = sign_raw(
        r#"{"alg":"HS256"}"#,
        r#"{"sub":"u","token_type":"access","exp":1750000600}"#,
        K,
    );
    assert_eq!(
        v.verify(&mut TokenCache::default(), &no_start, now),
        Err(TokenError::LifetimeTooLong)
    );
    assert!(verifier(vec![key])
        .verify(&mut TokenCache::default(), &no_start, now)
        .is_ok());
}

#[test]
fn refresh_tokens_are_refused() {
    let key = SigningKey::new(None, K);
    let v = verifier(vec![key.clone()]);
    assert_eq!(
        v.verify(
            &mut TokenCache::default(),
            &token(&key, "u", "refresh", NOW, 60),
            NOW
        ),
        Err(TokenError::NotAccessToken)
    );
}

#[test]
fn no_secret_verifies_nothing() {
    let key = SigningKey::new(None, K);
    assert_eq!(
        verifier(vec![]).verify(
            &mut TokenCache::default(),
            &token(&key, "u", "access", NOW, 60),
            NOW
        ),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn subjects() {
    for ok in [
        "alice",
        "lUpa",
        "user@example.com",
        "a:b/c+d=e",
        &"x".repeat(256),
    ] {
        assert!(is_safe_subject(ok), "{ok}");
    }
    for bad in [
        "",
        " admin",
        "admin ",
        "a b",
        "alice, admin",
        "alice\r\nx: y",
        "alice\0",
        "ａｄｍｉｎ",
        "jose\u{301}",
        &"x".repeat(257),
    ] {
        assert!(!is_safe_subject(bad), "{bad:?}");
    }
}
