//! Revoked tokens: the list a revocation feed serves, and whether a verified token is on it.
//!
//! The feed (its format is in `docs/revocation-feed.md`) names tokens by `jti` or by the
//! SHA-256 of their `header.payload` text (so that re-encoding the signature cannot revive
//! one), and subjects whose tokens issued before a time are all revoked, for the master
//! secrets' tokens or for one issuer's. Every entry carries the time after which no token it
//! covers can still be valid; the list drops it then, so it stays bounded.

use serde::{Deserialize, Serialize};

pub use super::revocation_list::{Retention, RevocationList};

/// The largest feed answer read, in bytes.
pub const MAX_FEED_BYTES: usize = 8 * 1024 * 1024;
/// The most entries the list holds; a feed beyond it is refused whole.
pub const MAX_ENTRIES: usize = 200_000;
/// The longest cursor, `jti`, subject or issuer name accepted in the feed, in bytes.
const MAX_TEXT: usize = 256;

/// How verified tokens meet the revocation list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevocationCheck {
    /// Refuse tokens (503) once the list is this many seconds old.
    pub fail_closed_after: Option<u64>,
}

/// What identifies one verified token against the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenMarks {
    /// The issuer's configured name; `None` for the master secrets' tokens.
    pub issuer: Option<std::rc::Rc<str>>,
    pub subject: std::rc::Rc<str>,
    pub jti: Option<std::rc::Rc<str>>,
    pub issued_at: Option<u64>,
    /// SHA-256 of the token's `header.payload` text.
    pub digest: [u8; 32],
}

impl TokenMarks {
    /// The digest the feed names a token by: SHA-256 of its signing input.
    pub fn digest_of(signing_input: &str) -> [u8; 32] {
        hmac_sha256::Hash::hash(signing_input.as_bytes())
    }
}

/// One entry of the feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedEntry {
    /// The `jti` of one token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// base64url (no padding) of SHA-256 of one token's `header.payload`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
    /// Every token of this subject issued before `before`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
    /// The issuer's configured name; absent for the master secrets' tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Unix time after which no token this entry covers can be valid.
    pub expires_at: u64,
}

/// A feed answer: entries after the cursor asked with, or the whole list when `reset`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedPage {
    /// What to send as `cursor` next time.
    pub cursor: String,
    /// The entries are the whole list: with the reset's later pages (`more`), they replace
    /// the filter's list once its last page has arrived.
    #[serde(default)]
    pub reset: bool,
    /// More entries follow: the filter asks again at once, with this page's cursor, and its
    /// list is not fresh until the last page.
    #[serde(default, skip_serializing_if = "is_false")]
    pub more: bool,
    pub revoked: Vec<FeedEntry>,
}

/// Why a feed answer is not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedError {
    TooLarge,
    /// Not a feed page, or an entry that names no token or names two ways at once.
    Malformed,
    TooManyEntries,
}

impl std::fmt::Display for FeedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FeedError::TooLarge => "the answer is larger than 8 MiB",
            FeedError::Malformed => "the answer is not a revocation feed page",
            FeedError::TooManyEntries => "the list would hold more than 200000 entries",
        })
    }
}

impl FeedPage {
    /// Reads and checks a feed answer (at most [`MAX_FEED_BYTES`]): a malformed page (a
    /// cursor the format does not allow, an empty one included) is refused whole.
    pub fn parse(body: &[u8]) -> Result<FeedPage, FeedError> {
        if body.len() > MAX_FEED_BYTES {
            return Err(FeedError::TooLarge);
        }
        let page: FeedPage = serde_json::from_slice(body).map_err(|_| FeedError::Malformed)?;
        if !cursor_is_valid(&page.cursor) {
            return Err(FeedError::Malformed);
        }
        if page.revoked.len() > MAX_ENTRIES {
            return Err(FeedError::TooManyEntries);
        }
        if !page.revoked.iter().all(FeedEntry::is_well_formed) {
            return Err(FeedError::Malformed);
        }
        Ok(page)
    }
}

/// 1 to 256 letters, digits, `-`, `_`, `.` or `~` (sent back as a query parameter as is).
pub(super) fn cursor_is_valid(cursor: &str) -> bool {
    !cursor.is_empty()
        && cursor.len() <= MAX_TEXT
        && cursor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
}

impl FeedEntry {
    /// Exactly one of a `jti`, a digest or a subject with `before`; bounded texts.
    pub(super) fn is_well_formed(&self) -> bool {
        let short = |t: &Option<String>| {
            t.as_ref()
                .is_none_or(|t| !t.is_empty() && t.len() <= MAX_TEXT)
        };
        let kinds = [
            self.jti.is_some(),
            self.token_sha256.is_some(),
            self.subject.is_some(),
        ];
        kinds.iter().filter(|k| **k).count() == 1
            && self.subject.is_some() == self.before.is_some()
            && short(&self.jti)
            && short(&self.subject)
            && short(&self.issuer)
            && self
                .token_sha256
                .as_ref()
                .is_none_or(|d| digest_from_text(d).is_some())
    }
}

fn is_false(value: &bool) -> bool {
    !value
}

pub(super) fn digest_from_text(text: &str) -> Option<[u8; 32]> {
    let bytes = crate::verify::base64url::decode(text.as_bytes())?;
    bytes.try_into().ok()
}

/// base64url without padding.
pub fn encode(bytes: &[u8]) -> String {
    use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Encoder};
    Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    fn marks(issuer: Option<&str>, sub: &str, jti: Option<&str>, iat: Option<u64>) -> TokenMarks {
        TokenMarks {
            issuer: issuer.map(Rc::from),
            subject: Rc::from(sub),
            jti: jti.map(Rc::from),
            issued_at: iat,
            digest: TokenMarks::digest_of(&format!("{sub}.{jti:?}")),
        }
    }

    fn page(json: &str) -> FeedPage {
        FeedPage::parse(json.as_bytes()).unwrap()
    }

    fn keep(skew: u64) -> Retention {
        Retention {
            skew,
            max_lifetime: 0,
        }
    }

    #[test]
    fn tokens_and_subjects_are_revoked_in_their_issuer_only() {
        let mut list = RevocationList::default();
        list.apply(
            page(
                r#"{"cursor":"7","revoked":[
                {"jti":"a1","expires_at":2000},
                {"jti":"b1","issuer":"idp","expires_at":2000},
                {"subject":"alice","before":1500,"expires_at":2000},
                {"subject":"bob","issuer":"idp","before":1500,"expires_at":2000}]}"#,
            ),
            1000,
            keep(0),
        )
        .unwrap();
        assert_eq!(list.cursor, "7");
        assert!(list.revokes(&marks(None, "x", Some("a1"), Some(1))));
        assert!(!list.revokes(&marks(Some("idp"), "x", Some("a1"), Some(1))));
        assert!(list.revokes(&marks(Some("idp"), "x", Some("b1"), Some(1))));
        assert!(list.revokes(&marks(None, "alice", None, Some(1499))));
        assert!(
            !list.revokes(&marks(None, "alice", None, Some(1500))),
            "issued after"
        );
        assert!(
            list.revokes(&marks(None, "alice", None, None)),
            "no iat: revoked"
        );
        assert!(!list.revokes(&marks(Some("idp"), "alice", None, Some(1))));
        assert!(list.revokes(&marks(Some("idp"), "bob", None, Some(1))));
    }

    #[test]
    fn a_digest_revokes_the_token_however_its_signature_is_written() {
        let token_marks = marks(None, "x", None, Some(1));
        let mut list = RevocationList::default();
        let entry = format!(
            r#"{{"cursor":"1","revoked":[{{"token_sha256":"{}","expires_at":2000}}]}}"#,
            encode(&token_marks.digest)
        );
        list.apply(page(&entry), 1000, keep(0)).unwrap();
        assert!(list.revokes(&token_marks));
    }

    #[test]
    fn expired_entries_leave_and_a_reset_replaces_the_list() {
        let mut list = RevocationList::default();
        list.apply(
            page(r#"{"cursor":"1","revoked":[{"jti":"a","expires_at":1100},{"jti":"b","expires_at":900}]}"#),
            1000, keep(0))
        .unwrap();
        assert_eq!(list.len(), 1);
        list.prune(1101);
        assert!(list.is_empty());
        list.apply(
            page(r#"{"cursor":"2","revoked":[{"jti":"c","expires_at":5000}]}"#),
            1000,
            keep(0),
        )
        .unwrap();
        list.apply(
            page(r#"{"cursor":"3","reset":true,"revoked":[]}"#),
            1000,
            keep(0),
        )
        .unwrap();
        assert!(list.is_empty());
        assert_eq!(list.cursor, "3");
    }

    #[test]
    fn an_entry_stays_for_the_clock_skew_past_its_expiry() {
        let mut list = RevocationList::default();
        list.apply(
            page(r#"{"cursor":"1","revoked":[{"jti":"a","expires_at":900}]}"#),
            1000,
            keep(300),
        )
        .unwrap();
        assert!(list.revokes(&marks(None, "x", Some("a"), Some(1))));
        list.apply(page(r#"{"cursor":"2","revoked":[]}"#), 1201, keep(300))
            .unwrap();
        assert!(list.is_empty());
    }

    #[test]
    fn malformed_pages_are_refused_whole() {
        for bad in [
            "",
            "[]",
            r#"{"cursor":"1"}"#,
            r#"{"cursor":"1","revoked":[{"expires_at":1}]}"#,
            r#"{"cursor":"1","revoked":[{"jti":"a","subject":"b","before":1,"expires_at":1}]}"#,
            r#"{"cursor":"1","revoked":[{"subject":"b","expires_at":1}]}"#,
            r#"{"cursor":"1","revoked":[{"token_sha256":"short","expires_at":1}]}"#,
            r#"{"cursor":"a b","revoked":[]}"#,
            r#"{"cursor":"","revoked":[]}"#,
            r#"{"cursor":"1","revoked":[],"extra":1}"#,
        ] {
            assert!(FeedPage::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_shared_form_round_trips() {
        let mut list = RevocationList::default();
        list.apply(
            page(
                r#"{"cursor":"9","revoked":[{"jti":"a","issuer":"idp","expires_at":3000},
                {"subject":"s","before":10,"expires_at":3000},
                {"token_sha256":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","expires_at":3000}]}"#,
            ),
            1000,
            keep(0),
        )
        .unwrap();
        list.apply(
            page(r#"{"cursor":"10","reset":true,"more":true,"revoked":[{"jti":"b","expires_at":3000}]}"#),
            1000,
            keep(0),
        )
        .unwrap();
        let copy =
            RevocationList::from_shared_bytes(&list.to_shared_bytes(), 1000, keep(0)).unwrap();
        assert_eq!(copy.len(), 4);
        assert_eq!(copy.cursor, "10");
        assert!(copy.is_staging());
        assert!(copy.revokes(&marks(Some("idp"), "z", Some("a"), Some(1))));
        assert!(copy.revokes(&marks(None, "z", Some("b"), Some(1))));
        for bad in [&b"{}"[..], b"[]", br#"{"cursor":"a b","revoked":[]}"#] {
            assert!(RevocationList::from_shared_bytes(bad, 1000, keep(0)).is_err());
        }
    }

    #[test]
    fn a_reset_over_several_pages_replaces_the_list_at_its_last_page() {
        let mut list = RevocationList::default();
        list.apply(
            page(r#"{"cursor":"1","revoked":[{"jti":"old","expires_at":3000},{"jti":"both","expires_at":3000}]}"#),
            1000,
            keep(0),
        )
        .unwrap();
        list.apply(
            page(r#"{"cursor":"2","reset":true,"more":true,"revoked":[{"jti":"new","expires_at":3000}]}"#),
            1000,
            keep(0),
        )
        .unwrap();
        let jti = |j: &str| marks(None, "x", Some(j), Some(1));
        for j in ["old", "both", "new"] {
            assert!(list.revokes(&jti(j)), "{j} while the reset is staged");
        }
        list.apply(
            page(r#"{"cursor":"3","more":true,"revoked":[]}"#),
            1000,
            keep(0),
        )
        .unwrap();
        assert_eq!(list.cursor, "3", "an empty page's cursor is kept");
        assert!(list.revokes(&jti("old")));
        list.apply(
            page(r#"{"cursor":"4","revoked":[{"jti":"both","expires_at":3000}]}"#),
            1000,
            keep(0),
        )
        .unwrap();
        assert!(!list.is_staging());
        assert!(!list.revokes(&jti("old")), "replaced at the last page");
        assert!(list.revokes(&jti("both")) && list.revokes(&jti("new")));
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn a_subject_entry_lasts_max_lifetime_past_its_time() {
        let retention = Retention {
            skew: 60,
            max_lifetime: 7200,
        };
        let mut list = RevocationList::default();
        list.apply(
            page(r#"{"cursor":"1","revoked":[{"subject":"s","before":1000,"expires_at":1001}]}"#),
            5000,
            retention,
        )
        .unwrap();
        assert!(list.revokes(&marks(None, "s", None, Some(999))));
        list.prune(1000 + 7200 - 1);
        assert_eq!(list.len(), 1);
        list.prune(1000 + 7200 + 1);
        assert!(list.is_empty());
    }
}
