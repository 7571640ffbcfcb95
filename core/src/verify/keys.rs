//! API keys, publishable keys and client secrets, compared as SHA-256 digests in constant time.
//!
//! Only digests are kept after configuration; comparing digests of equal size means neither
//! the content nor the length of a configured key leaks through timing.

use std::rc::Rc;

use subtle::ConstantTimeEq;

use crate::identity::{role, CredentialKind, Identity, Roles};

type Digest = [u8; 32];

fn digest(bytes: &[u8]) -> Digest {
    hmac_sha256::Hash::hash(bytes)
}

/// Equality of two digests that takes the same time wherever they differ.
fn digests_equal(a: &Digest, b: &Digest) -> bool {
    a.ct_eq(b).into()
}

/// A configured key: its digest and who it makes the caller.
#[derive(Debug, Clone)]
struct KeyEntry {
    digest: Digest,
    kind: CredentialKind,
    role: Roles,
    name: Rc<str>,
}

/// Every API key and publishable key.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: Vec<KeyEntry>,
}

impl KeyRing {
    /// Adds a key; `kind` is [`CredentialKind::ApiKey`] or [`CredentialKind::PublishableKey`].
    pub(crate) fn add(&mut self, kind: CredentialKind, name: &str, key: &[u8]) {
        let role = match kind {
            CredentialKind::ApiKey => Roles::one(role::ADMIN),
            _ => Roles::one(role::ANONYMOUS),
        };
        self.keys.push(KeyEntry {
            digest: digest(key),
            kind,
            role,
            name: Rc::from(name),
        });
    }

    /// Whether a key with this value is already configured.
    pub fn contains(&self, key: &[u8]) -> bool {
        let d = digest(key);
        self.keys.iter().any(|k| digests_equal(&k.digest, &d))
    }

    /// The number of keys of `kind`.
    pub fn count(&self, kind: CredentialKind) -> usize {
        self.keys.iter().filter(|k| k.kind == kind).count()
    }

    /// The identity of `presented` if it is a configured key; every key is compared.
    pub fn identify(&self, presented: &[u8]) -> Option<Identity> {
        if self.keys.is_empty() {
            return None;
        }
        let d = digest(presented);
        let mut found = None;
        for key in &self.keys {
            if digests_equal(&key.digest, &d) {
                found = Some(key);
            }
        }
        found.map(|k| Identity {
            kind: k.kind,
            role: k.role.clone(),
            user: None,
            name: Some(Rc::clone(&k.name)),
            claims: None,
        })
    }
}

/// A configured client.
#[derive(Debug, Clone)]
struct ClientEntry {
    id: Rc<str>,
    secret: Digest,
    role: Roles,
}

/// Every configured client.
#[derive(Debug, Clone)]
pub struct ClientRegistry {
    clients: Vec<ClientEntry>,
    /// Compared against when the `client_id` is unknown, so that case takes the same time.
    decoy: Digest,
}

impl Default for ClientRegistry {
    fn default() -> Self {
        ClientRegistry {
            clients: Vec::new(),
            decoy: digest(b"tollgate: no such client"),
        }
    }
}

impl ClientRegistry {
    /// Adds a client.
    pub(crate) fn add(&mut self, id: &str, secret: &[u8], role: &str) {
        self.clients.push(ClientEntry {
            id: Rc::from(id),
            secret: digest(secret),
            role: Roles::one(role),
        });
    }

    /// Whether a client with this id is configured.
    pub fn contains(&self, id: &str) -> bool {
        self.clients.iter().any(|c| &*c.id == id)
    }

    /// The number of clients.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether no client is configured.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// The roles clients carry.
    pub fn roles(&self) -> impl Iterator<Item = &str> {
        self.clients.iter().map(|c| c.role.as_str())
    }

    /// The client's identity when `secret` is its secret; an unknown id fails the same way.
    pub fn authenticate(&self, id: &[u8], secret: &[u8]) -> Option<Identity> {
        let client = self.clients.iter().find(|c| c.id.as_bytes() == id);
        let expected = client.map_or(&self.decoy, |c| &c.secret);
        let matches = digests_equal(expected, &digest(secret));
        match client {
            Some(c) if matches => Some(Identity {
                kind: CredentialKind::Client,
                role: c.role.clone(),
                user: None,
                name: Some(Rc::clone(&c.id)),
                claims: None,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET_KEY: &str = "sk_test_4f9d2c7a8b1e6f3d0a5c9e2b7f4a1d8c";
    const PUBLISHABLE: &str = "pk_test_7c3e9a1f5b2d8e4a6c0f3b9d1e7a5c2f";

    fn ring() -> KeyRing {
        let mut ring = KeyRing::default();
        ring.add(CredentialKind::ApiKey, "backend", SECRET_KEY.as_bytes());
        ring.add(
            CredentialKind::PublishableKey,
            "web",
            PUBLISHABLE.as_bytes(),
        );
        ring
    }

    #[test]
    fn identifies_configured_keys() {
        let ring = ring();
        let api = ring.identify(SECRET_KEY.as_bytes()).unwrap();
        assert_eq!(
            (api.kind, &*api.role, api.name.as_deref()),
            (CredentialKind::ApiKey, "admin", Some("backend"))
        );
        let pk = ring.identify(PUBLISHABLE.as_bytes()).unwrap();
        assert_eq!(
            (pk.kind, &*pk.role, pk.name.as_deref()),
            (CredentialKind::PublishableKey, "anonymous", Some("web"))
        );
    }

    #[test]
    fn near_misses_are_unknown() {
        let ring = ring();
        for near in [
            "sk_test_4f9d2c7a8b1e6f3d0a5c9e2b7f4a1d8d",
            "sk_test_4f9d2c7a8b1e6f3d0a5c9e2b7f4a1d8c0",
            "sk_test_4f9d2c7a8b1e6f3d0a5c9e2b7f4a1d8",
            "SK_TEST_4F9D2C7A8B1E6F3D0A5C9E2B7F4A1D8C",
            "",
        ] {
            assert!(ring.identify(near.as_bytes()).is_none(), "{near}");
        }
    }

    #[test]
    fn clients_authenticate_by_id_and_secret() {
        let mut clients = ClientRegistry::default();
        clients.add(
            "client-a",
            b"cs_test_Zr4Qm8Vn2Lp6Xw1Ty9Hs3Kd7Bf5Gj0",
            "reporting",
        );
        clients.add(
            "client-b",
            b"cs_test_other_secret_value_0123456789",
            "admin",
        );
        let a = clients
            .authenticate(b"client-a", b"cs_test_Zr4Qm8Vn2Lp6Xw1Ty9Hs3Kd7Bf5Gj0")
            .unwrap();
        assert_eq!(
            (a.kind, &*a.role, a.name.as_deref()),
            (CredentialKind::Client, "reporting", Some("client-a"))
        );
        assert!(clients
            .authenticate(b"client-a", b"cs_test_other_secret_value_0123456789")
            .is_none());
        assert!(clients.authenticate(b"nonexistent", b"x").is_none());
        assert!(clients.authenticate(b"client-a", b"").is_none());
    }
}
