//! Login CSRF: a form post must come from this site (`Origin`, `Sec-Fetch-Site`) and carry
//! the token of a form this service served (a signed double-submit cookie).
//!
//! The login page sets a nonce in an `HttpOnly; SameSite=Strict` cookie and puts a token in
//! the form: the time the page was served and HMAC(key, nonce, time). The nonce is issued by
//! the service (random, with its own MAC: a nonce a client chose is replaced), and a token is
//! accepted for [`FORM_LIFETIME`] after its time. Another site can neither read the cookie
//! nor compute a token.

use crate::random;

/// The cookie holding the form nonce, scoped to the login page.
pub const COOKIE: &str = "login_csrf";
/// The hidden form field holding the token.
pub const FIELD: &str = "csrf_token";
/// How long a form may be posted after it was served (the cookie's `Max-Age`).
pub const FORM_LIFETIME: u64 = 3600;
/// How far ahead of this service's clock a token's time may be (another instance's clock).
const AHEAD: u64 = 60;

/// Issues and checks form tokens.
pub struct Csrf {
    key: [u8; 32],
}

impl Csrf {
    /// Tokens keyed from the master key (so every instance of the service accepts them).
    pub fn new(master_key: &[u8]) -> Csrf {
        Csrf {
            key: hmac_sha256::HMAC::mac(b"tollgate-signin login csrf v2", master_key),
        }
    }

    fn mac(&self, parts: &[&[u8]]) -> String {
        let mut mac = hmac_sha256::HMAC::new(self.key);
        for part in parts {
            mac.update((part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        random::encode(&mac.finalize())
    }

    /// A new nonce (for the cookie): random, and its MAC.
    pub fn issue(&self) -> Option<String> {
        let random = random::token_id()?;
        let mac = self.mac(&[b"nonce", random.as_bytes()]);
        Some(format!("{random}.{mac}"))
    }

    /// Whether `nonce` was issued by this service (any instance of it).
    pub fn is_issued(&self, nonce: &str) -> bool {
        let Some((random, mac)) = nonce.split_once('.') else {
            return false;
        };
        !random.is_empty() && equal(&self.mac(&[b"nonce", random.as_bytes()]), mac)
    }

    /// The form token of `nonce` for a page served at `now`.
    pub fn token_for(&self, nonce: &str, now: u64) -> String {
        let time = now.to_string();
        let mac = self.mac(&[b"form", nonce.as_bytes(), time.as_bytes()]);
        format!("{time}.{mac}")
    }

    /// Whether `token` (from the form) belongs to `nonce` (from the cookie), which this
    /// service issued, and was made at most [`FORM_LIFETIME`] before `now`.
    pub fn check(&self, nonce: Option<&str>, token: Option<&str>, now: u64) -> bool {
        let (Some(nonce), Some(token)) = (nonce, token) else {
            return false;
        };
        let Some((time, mac)) = token.split_once('.') else {
            return false;
        };
        let Ok(made) = time.parse::<u64>() else {
            return false;
        };
        let fresh = made <= now.saturating_add(AHEAD) && now <= made.saturating_add(FORM_LIFETIME);
        let expected = self.mac(&[b"form", nonce.as_bytes(), time.as_bytes()]);
        fresh && self.is_issued(nonce) && equal(&expected, mac)
    }
}

/// Equality that takes the same time wherever two strings differ (compared as digests).
fn equal(a: &str, b: &str) -> bool {
    let (a, b) = (
        hmac_sha256::Hash::hash(a.as_bytes()),
        hmac_sha256::Hash::hash(b.as_bytes()),
    );
    subtle::ConstantTimeEq::ct_eq(&a[..], &b[..]).into()
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

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn form_tokens_belong_to_their_nonce() {
        let csrf = Csrf::new(b"master-key-for-tests-0123456789abcdef");
        let nonce = csrf.issue().unwrap();
        let token = csrf.token_for(&nonce, NOW);
        assert!(csrf.check(Some(&nonce), Some(&token), NOW));
        let other = csrf.issue().unwrap();
        assert!(!csrf.check(Some(&other), Some(&token), NOW));
        assert!(!csrf.check(None, Some(&token), NOW));
        assert!(!csrf.check(Some(&nonce), None, NOW));
        assert!(!csrf.check(Some(""), Some(&csrf.token_for("", NOW)), NOW));
        let elsewhere = Csrf::new(b"another-master-key-0123456789abcdefgh");
        assert!(!elsewhere.check(Some(&nonce), Some(&token), NOW));
    }

    #[test]
    fn a_form_token_expires_and_a_nonce_must_be_issued_here() {
        let csrf = Csrf::new(b"master-key-for-tests-0123456789abcdef");
        let nonce = csrf.issue().unwrap();
        let token = csrf.token_for(&nonce, NOW);
        assert!(csrf.check(Some(&nonce), Some(&token), NOW + FORM_LIFETIME));
        assert!(!csrf.check(Some(&nonce), Some(&token), NOW + FORM_LIFETIME + 1));
        assert!(
            !csrf.check(Some(&nonce), Some(&token), NOW - AHEAD - 1),
            "from the future"
        );
        // The time cannot be changed without the MAC.
        let (_, mac) = token.split_once('.').unwrap();
        let moved = format!("{}.{mac}", NOW + 7200);
        assert!(!csrf.check(Some(&nonce), Some(&moved), NOW + 7200));
        // A nonce a client chose is not one of this service's, whatever its token.
        let chosen = "AAAAAAAAAAAAAAAAAAAAAA";
        assert!(!csrf.is_issued(chosen));
        assert!(!csrf.check(Some(chosen), Some(&csrf.token_for(chosen, NOW)), NOW));
        let forged = format!("{chosen}.{}", "A".repeat(43));
        assert!(!csrf.check(Some(&forged), Some(&csrf.token_for(&forged, NOW)), NOW));
        assert!(csrf.is_issued(&nonce));
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
