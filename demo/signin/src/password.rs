//! Passwords: Argon2id hashes in the configuration, checked off the request path's threads.

use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};

/// The Argon2id hash of `password` in PHC form, with a fresh random salt and the crate's
/// recommended parameters (19 MiB, 2 passes).
pub fn hash(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Why `hash` cannot be used as a stored password hash, if it cannot; never quotes it.
pub fn hash_problem(hash: &str) -> Option<&'static str> {
    match PasswordHash::new(hash) {
        Ok(parsed) if parsed.algorithm.as_str() == "argon2id" && parsed.hash.is_some() => None,
        Ok(_) => Some("is not an Argon2id hash"),
        Err(_) => Some("is not a PHC password hash string"),
    }
}

/// Whether `password` matches `hash` (a string [`hash_problem`] accepted).
pub fn verify(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_salted_argon2id_and_verify() {
        let a = hash("correct horse").unwrap();
        let b = hash("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert_eq!(hash_problem(&a), None);
        assert!(verify("correct horse", &a));
        assert!(!verify("correct horsE", &a));
        assert!(!verify("", &a));
    }

    #[test]
    fn other_strings_are_refused_as_hashes() {
        assert!(hash_problem("demo-password").is_some());
        assert!(hash_problem("").is_some());
        let argon2i = "$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$ZWRudnRrY2R0bW0";
        assert_eq!(hash_problem(argon2i), Some("is not an Argon2id hash"));
    }
}
