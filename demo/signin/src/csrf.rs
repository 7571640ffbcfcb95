//! Login CSRF: a form post must come from this site (`Origin`, `Sec-Fetch-Site`) and carry
//! the token of a form this service served (a signed double-submit cookie).
//!
//! The login page sets a random nonce in an `HttpOnly; SameSite=Strict` cookie and puts
//! HMAC(key, nonce) in the form; another site can neither read the cookie nor compute the
//! token.

use crate::random;

/// The cookie holding the form nonce, scoped to the login page.
pub const COOKIE: &str = "login_csrf";
/// The hidden form field holding the token.
pub const FIELD: &str = "csrf_token";

/// Issues and checks form tokens.
pub struct Csrf {
    key: [u8; 32],
}

impl Csrf {
    /// Tokens keyed from the master key (so every instance of the service accepts them).
    pub fn new(master_key: &[u8]) -> Csrf {
        Csrf {
            key: hmac_sha256::HMAC::mac(b"tollgate-signin login csrf v1", master_key),
        }
    }

    /// A new nonce (for the cookie) and its form token.
    pub fn issue(&self) -> Option<(String, String)> {
        let nonce = random::token_id()?;
        let token = self.token_for(&nonce);
        Some((nonce, token))
    }

    /// The form token of an existing nonce.
    pub fn token_for(&self, nonce: &str) -> String {
        random::encode(&hmac_sha256::HMAC::mac(nonce.as_bytes(), self.key))
    }

    /// Whether `token` (from the form) belongs to `nonce` (from the cookie).
    pub fn check(&self, nonce: Option<&str>, token: Option<&str>) -> bool {
        let (Some(nonce), Some(token)) = (nonce, token) else {
            return false;
        };
        let expected = hmac_sha256::Hash::hash(self.token_for(nonce).as_bytes());
        let given = hmac_sha256::Hash::hash(token.as_bytes());
        !nonce.is_empty() && expected == given
    }
}

/// Whether a state-changing request comes from this site: its `Origin` is the host it was
/// sent to or a trusted host; without `Origin` (or with an opaque `null` one),
/// `Sec-Fetch-Site` is `same-origin` or `none`. Clients that send neither (curl, servers)
/// pass.
pub fn from_this_site(
    origin: Option<&str>,
    fetch_site: Option<&str>,
    host: Option<&str>,
    trusted_hosts: &[String],
) -> bool {
    if origin == Some("null") {
        return matches!(fetch_site, Some("same-origin" | "none"));
    }
    if let Some(origin) = origin {
        let authority = match origin.split_once("://") {
            Some(("http" | "https", authority)) => authority,
            _ => return false,
        };
        let same = |h: &str| !h.is_empty() && h.eq_ignore_ascii_case(authority);
        return host.is_some_and(same) || trusted_hosts.iter().any(|h| same(h));
    }
    match fetch_site {
        Some(site) => site == "same-origin" || site == "none",
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_tokens_belong_to_their_nonce() {
        let csrf = Csrf::new(b"master-key-for-tests-0123456789abcdef");
        let (nonce, token) = csrf.issue().unwrap();
        assert!(csrf.check(Some(&nonce), Some(&token)));
        let (other, _) = csrf.issue().unwrap();
        assert!(!csrf.check(Some(&other), Some(&token)));
        assert!(!csrf.check(None, Some(&token)));
        assert!(!csrf.check(Some(&nonce), None));
        assert!(!csrf.check(Some(""), Some(&csrf.token_for(""))));
        let elsewhere = Csrf::new(b"another-master-key-0123456789abcdefgh");
        assert!(!elsewhere.check(Some(&nonce), Some(&token)));
    }

    #[test]
    fn only_this_site_may_post() {
        let trusted = vec!["app.example.com".to_string()];
        let host = Some("127.0.0.1:10000");
        let ok = |origin, site| from_this_site(origin, site, host, &trusted);
        assert!(ok(Some("http://127.0.0.1:10000"), Some("same-origin")));
        assert!(ok(Some("https://app.example.com"), Some("same-site")));
        assert!(ok(None, Some("same-origin")));
        assert!(ok(None, Some("none")));
        assert!(ok(None, None));
        assert!(!ok(Some("http://evil.example"), Some("cross-site")));
        assert!(!ok(Some("null"), None));
        assert!(!ok(Some("null"), Some("cross-site")));
        assert!(ok(Some("null"), Some("same-origin")));
        assert!(!ok(Some("http://127.0.0.1:10001"), None));
        assert!(!ok(None, Some("cross-site")));
        assert!(!ok(None, Some("same-site")));
        assert!(!from_this_site(Some("http://"), None, Some(""), &[]));
    }
}
