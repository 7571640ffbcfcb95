//! Sealed cookies: AES-256-GCM with a random 96-bit nonce, under keys named by a short `kid`
//! so that keys rotate (the first seals, every one opens). A sealed value is
//! `<kid>.<base64url(nonce | ciphertext | tag)>`; the cookie's name is authenticated with it
//! (a transaction cookie cannot be replayed as a session cookie), and so is its expiry,
//! written in the plaintext's first 8 bytes.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

use super::random;
use crate::verify::base64url;

/// The bytes of a key.
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
/// The longest `kid`.
pub const MAX_KID_LEN: usize = 16;

/// The keys that seal and open cookies; the first seals.
#[derive(Clone)]
pub struct Sealer {
    keys: Vec<(String, Aes256Gcm)>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field(
                "kids",
                &self.keys.iter().map(|(kid, _)| kid).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Why a set of keys is refused (the message never quotes a key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeysError {
    Empty,
    /// Entry `n` (from 0) is not `kid:key`, its `kid` is not 1 to 16 letters, digits, `-`
    /// or `_`, or repeats one before it.
    BadKid(usize),
    /// Entry `n`'s key is not 32 bytes in base64url.
    BadKey(usize),
}

impl std::fmt::Display for KeysError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeysError::Empty => f.write_str("holds no key; expected kid:key[,kid:key...]"),
            KeysError::BadKid(n) => write!(
                f,
                "entry {n} has no kid of 1 to {MAX_KID_LEN} letters, digits, '-' or '_' (or repeats one); expected kid:key"
            ),
            KeysError::BadKey(n) => write!(
                f,
                "entry {n}'s key is not {KEY_LEN} random bytes in base64url (43 characters)"
            ),
        }
    }
}

impl Sealer {
    /// Reads `kid:key[,kid:key...]` (keys in base64url, 32 bytes each; whitespace around
    /// entries ignored).
    pub fn parse(text: &str) -> Result<Sealer, KeysError> {
        let mut keys: Vec<(String, Aes256Gcm)> = Vec::new();
        for (n, entry) in text.split(',').map(str::trim).enumerate() {
            let (kid, key) = entry.split_once(':').ok_or(KeysError::BadKid(n))?;
            let kid_ok = !kid.is_empty()
                && kid.len() <= MAX_KID_LEN
                && kid
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && keys.iter().all(|(k, _)| k != kid);
            if !kid_ok {
                return Err(KeysError::BadKid(n));
            }
            let bytes = base64url::decode(key.as_bytes())
                .filter(|b| b.len() == KEY_LEN)
                .ok_or(KeysError::BadKey(n))?;
            let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| KeysError::BadKey(n))?;
            keys.push((kid.to_owned(), cipher));
        }
        if keys.is_empty() {
            return Err(KeysError::Empty);
        }
        Ok(Sealer { keys })
    }

    /// `plaintext` sealed for the cookie `name`, valid until unix time `expires`; `None`
    /// when the host gave no random bytes.
    pub fn seal(&self, name: &str, expires: u64, plaintext: &[u8]) -> Option<String> {
        let (kid, cipher) = self.keys.first()?;
        let nonce: [u8; NONCE_LEN] = random::bytes()?;
        let mut message = Vec::with_capacity(8 + plaintext.len());
        message.extend_from_slice(&expires.to_be_bytes());
        message.extend_from_slice(plaintext);
        let aad = associated(name, kid);
        let payload = Payload {
            msg: &message,
            aad: &aad,
        };
        let sealed = cipher.encrypt(&Nonce::from(nonce), payload).ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Some(format!("{kid}.{}", random::encode(&out)))
    }

    /// The plaintext of `value` sealed for the cookie `name`, when a key here opens it and
    /// it has not expired at unix time `now`.
    pub fn open(&self, name: &str, value: &[u8], now: u64) -> Option<Vec<u8>> {
        self.open_until(name, value, now)
            .map(|(plaintext, _)| plaintext)
    }

    /// [`Sealer::open`], with the unix time the seal expires at.
    pub fn open_until(&self, name: &str, value: &[u8], now: u64) -> Option<(Vec<u8>, u64)> {
        let value = std::str::from_utf8(value).ok()?;
        let (kid, body) = value.split_once('.')?;
        let (_, cipher) = self.keys.iter().find(|(k, _)| k == kid)?;
        let bytes = base64url::decode(body.as_bytes())?;
        let (nonce, sealed) = bytes.split_at_checked(NONCE_LEN)?;
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let aad = associated(name, kid);
        let payload = Payload {
            msg: sealed,
            aad: &aad,
        };
        let message = cipher.decrypt(&Nonce::from(nonce), payload).ok()?;
        let (expires, plaintext) = message.split_at_checked(8)?;
        let expires = u64::from_be_bytes(expires.try_into().ok()?);
        (now < expires).then(|| (plaintext.to_vec(), expires))
    }
}

/// What is authenticated beside the plaintext: the cookie's name and the key's `kid`.
fn associated(name: &str, kid: &str) -> Vec<u8> {
    format!("tollgate-seal-v1\0{name}\0{kid}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "a:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    const B: &str = "b:HxwdHh8QERITFBUWFxgZGhscHR4fEBESExQVFhcYGRo";

    #[test]
    fn round_trip_and_expiry() {
        let sealer = Sealer::parse(A).unwrap();
        let sealed = sealer.seal("session", 100, b"token").unwrap();
        assert!(sealed.starts_with("a."));
        assert!(!sealed.contains("token"));
        assert_eq!(
            sealer.open("session", sealed.as_bytes(), 99).unwrap(),
            b"token"
        );
        assert_eq!(sealer.open("session", sealed.as_bytes(), 100), None);
        // Two seals of one value differ (random nonces).
        assert_ne!(sealed, sealer.seal("session", 100, b"token").unwrap());
    }

    #[test]
    fn tampered_renamed_or_foreign_values_do_not_open() {
        let sealer = Sealer::parse(A).unwrap();
        let sealed = sealer.seal("session", 100, b"token").unwrap();
        let mut bytes = sealed.clone().into_bytes();
        let last = bytes.len() - 3;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(sealer.open("session", &bytes, 1), None);
        assert_eq!(sealer.open("tx", sealed.as_bytes(), 1), None);
        let other = Sealer::parse(&B.replace("b:", "a:")).unwrap();
        assert_eq!(other.open("session", sealed.as_bytes(), 1), None);
        for junk in [&b""[..], b"a.", b"a", b"zz.AAAA", b"\xff.x", b"a.!!"] {
            assert_eq!(sealer.open("session", junk, 1), None);
        }
    }

    #[test]
    fn rotated_keys_open_old_values_and_seal_with_the_first() {
        let old = Sealer::parse(A).unwrap();
        let sealed = old.seal("session", 100, b"token").unwrap();
        let rotated = Sealer::parse(&format!("{B}, {A}")).unwrap();
        assert_eq!(
            rotated.open("session", sealed.as_bytes(), 1).unwrap(),
            b"token"
        );
        assert!(rotated
            .seal("session", 100, b"x")
            .unwrap()
            .starts_with("b."));
        let retired = Sealer::parse(B).unwrap();
        assert_eq!(retired.open("session", sealed.as_bytes(), 1), None);
    }

    #[test]
    fn bad_keys_are_refused_without_quoting_them() {
        assert_eq!(Sealer::parse("").unwrap_err(), KeysError::BadKid(0));
        assert_eq!(Sealer::parse("AAECAwQF").unwrap_err(), KeysError::BadKid(0));
        assert_eq!(
            Sealer::parse("a:AAECAwQF").unwrap_err(),
            KeysError::BadKey(0)
        );
        assert_eq!(
            Sealer::parse(&format!("{A},{A}")).unwrap_err(),
            KeysError::BadKid(1)
        );
        let e = Sealer::parse("a:AAECAwQFsecretsecret")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secret"), "{e}");
    }
}
