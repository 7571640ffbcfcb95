//! Revoked tokens: the list a revocation feed serves, and whether a verified token is on it.
//!
//! The feed (its format is in `docs/revocation-feed.md`) names tokens by `jti` or by the
//! SHA-256 of their `header.payload` text (so that re-encoding the signature cannot revive
//! one), and subjects whose tokens issued before a time are all revoked, for the master
//! secrets' tokens or for one issuer's. Every entry carries the time after which no token it
//! covers can still be valid; the list drops it then, so it stays bounded.

use std::collections::HashMap;

use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize};

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
    /// The entries are the whole list (the previous one is dropped).
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
    /// Reads and checks a feed answer (at most [`MAX_FEED_BYTES`]).
    pub fn parse(body: &[u8]) -> Result<FeedPage, FeedError> {
        if body.len() > MAX_FEED_BYTES {
            return Err(FeedError::TooLarge);
        }
        FeedPage::parse_shared(body)
    }

    /// Reads and checks the list as the filter's workers share it (a page that may hold the
    /// list of many feed answers: no bound on its size but that on its entries).
    pub fn parse_shared(body: &[u8]) -> Result<FeedPage, FeedError> {
        let page: FeedPage = serde_json::from_slice(body).map_err(|_| FeedError::Malformed)?;
        if page.cursor.len() > MAX_TEXT
            || !page
                .cursor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
        {
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

impl FeedEntry {
    /// Exactly one of a `jti`, a digest or a subject with `before`; bounded texts.
    fn is_well_formed(&self) -> bool {
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

fn digest_from_text(text: &str) -> Option<[u8; 32]> {
    let bytes = crate::verify::base64url::decode(text.as_bytes())?;
    bytes.try_into().ok()
}

/// The issuer part of a key: the issuer's name, or empty for the master secrets.
fn scope(issuer: Option<&str>) -> &str {
    issuer.unwrap_or_default()
}

/// Entries by issuer scope, then by name: looked up with borrowed texts, no allocation per
/// request.
type Scoped<V> = HashMap<String, HashMap<String, V, FxBuildHasher>, FxBuildHasher>;

fn scoped_get<'m, V>(map: &'m Scoped<V>, scope: &str, name: &str) -> Option<&'m V> {
    map.get(scope)?.get(name)
}

fn scoped_entry<'m, V: Default>(map: &'m mut Scoped<V>, scope: &str, name: String) -> &'m mut V {
    map.entry(scope.to_owned())
        .or_default()
        .entry(name)
        .or_default()
}

fn scoped_len<V>(map: &Scoped<V>) -> usize {
    map.values().map(HashMap::len).sum()
}

fn scoped_retain<V>(map: &mut Scoped<V>, keep: impl Fn(&V) -> bool) {
    for names in map.values_mut() {
        names.retain(|_, v| keep(v));
    }
    map.retain(|_, names| !names.is_empty());
}

/// The revoked tokens and subjects, with when each entry may leave.
#[derive(Debug, Clone, Default)]
pub struct RevocationList {
    /// Issuer scope, then jti → expiry.
    jtis: Scoped<u64>,
    /// Digest → expiry.
    digests: HashMap<[u8; 32], u64, FxBuildHasher>,
    /// Issuer scope, then subject → (revoked before, expiry).
    subjects: Scoped<(u64, u64)>,
    /// The cursor of the last page applied.
    pub cursor: String,
}

impl RevocationList {
    /// How many entries it holds.
    pub fn len(&self) -> usize {
        scoped_len(&self.jtis) + self.digests.len() + scoped_len(&self.subjects)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies a page at unix time `now`: a reset replaces the list; entries `skew` seconds
    /// past their expiry are dropped, and so are those of the list (a token passes until its
    /// `exp` plus the filter's clock skew, so its entry stays that long).
    pub fn apply(&mut self, page: FeedPage, now: u64, skew: u64) -> Result<(), FeedError> {
        let now = now.saturating_sub(skew);
        if page.reset {
            *self = RevocationList::default();
        }
        for entry in page.revoked {
            if entry.expires_at < now {
                continue;
            }
            let issuer = scope(entry.issuer.as_deref());
            if let Some(jti) = entry.jti {
                let at = scoped_entry(&mut self.jtis, issuer, jti);
                *at = (*at).max(entry.expires_at);
            } else if let Some(digest) = entry.token_sha256.as_deref().and_then(digest_from_text) {
                let at = self.digests.entry(digest).or_default();
                *at = (*at).max(entry.expires_at);
            } else if let (Some(subject), Some(before)) = (entry.subject, entry.before) {
                let at = scoped_entry(&mut self.subjects, issuer, subject);
                *at = (at.0.max(before), at.1.max(entry.expires_at));
            }
        }
        self.cursor = page.cursor;
        self.prune(now);
        if self.len() > MAX_ENTRIES {
            return Err(FeedError::TooManyEntries);
        }
        Ok(())
    }

    /// Drops the entries whose expiry passed.
    pub fn prune(&mut self, now: u64) {
        scoped_retain(&mut self.jtis, |at| *at >= now);
        self.digests.retain(|_, at| *at >= now);
        scoped_retain(&mut self.subjects, |(_, at)| *at >= now);
    }

    /// Whether the token `marks` describes is revoked: its `jti` (of its issuer), its digest,
    /// or its subject (of its issuer) revoked after it was issued. A token without `iat`
    /// cannot prove it came after a subject's revocation, so it is revoked with it.
    pub fn revokes(&self, marks: &TokenMarks) -> bool {
        if self.is_empty() {
            return false;
        }
        if self.digests.contains_key(&marks.digest) {
            return true;
        }
        let issuer = scope(marks.issuer.as_deref());
        if let Some(jti) = &marks.jti {
            if scoped_get(&self.jtis, issuer, jti).is_some() {
                return true;
            }
        }
        match scoped_get(&self.subjects, issuer, &marks.subject) {
            Some((before, _)) => marks.issued_at.is_none_or(|iat| iat < *before),
            None => false,
        }
    }

    /// The list as the JSON of one feed page (`reset`): the form workers share.
    pub fn to_shared_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.to_page()).unwrap_or_default()
    }

    /// The list as one feed page (`reset`), the form the filter shares between workers.
    pub fn to_page(&self) -> FeedPage {
        let issuer = |scope: &str| (!scope.is_empty()).then(|| scope.to_owned());
        let mut revoked: Vec<FeedEntry> = Vec::with_capacity(self.len());
        let empty = FeedEntry {
            jti: None,
            token_sha256: None,
            subject: None,
            before: None,
            issuer: None,
            expires_at: 0,
        };
        for (scope, jtis) in &self.jtis {
            for (jti, at) in jtis {
                revoked.push(FeedEntry {
                    jti: Some(jti.clone()),
                    issuer: issuer(scope),
                    expires_at: *at,
                    ..empty.clone()
                });
            }
        }
        for (digest, at) in &self.digests {
            revoked.push(FeedEntry {
                token_sha256: Some(encode(digest)),
                expires_at: *at,
                ..empty.clone()
            });
        }
        for (scope, subjects) in &self.subjects {
            for (subject, (before, at)) in subjects {
                revoked.push(FeedEntry {
                    subject: Some(subject.clone()),
                    before: Some(*before),
                    issuer: issuer(scope),
                    expires_at: *at,
                    ..empty.clone()
                });
            }
        }
        FeedPage {
            cursor: self.cursor.clone(),
            reset: true,
            more: false,
            revoked,
        }
    }
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
            0,
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
        list.apply(page(&entry), 1000, 0).unwrap();
        assert!(list.revokes(&token_marks));
    }

    #[test]
    fn expired_entries_leave_and_a_reset_replaces_the_list() {
        let mut list = RevocationList::default();
        list.apply(
            page(r#"{"cursor":"1","revoked":[{"jti":"a","expires_at":1100},{"jti":"b","expires_at":900}]}"#),
            1000,
            0,
        )
        .unwrap();
        assert_eq!(list.len(), 1);
        list.prune(1101);
        assert!(list.is_empty());
        list.apply(
            page(r#"{"cursor":"2","revoked":[{"jti":"c","expires_at":5000}]}"#),
            1000,
            0,
        )
        .unwrap();
        list.apply(page(r#"{"cursor":"3","reset":true,"revoked":[]}"#), 1000, 0)
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
            300,
        )
        .unwrap();
        assert!(list.revokes(&marks(None, "x", Some("a"), Some(1))));
        list.apply(page(r#"{"cursor":"2","revoked":[]}"#), 1201, 300)
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
            0,
        )
        .unwrap();
        let text = serde_json::to_vec(&list.to_page()).unwrap();
        let mut copy = RevocationList::default();
        copy.apply(FeedPage::parse(&text).unwrap(), 1000, 0)
            .unwrap();
        assert_eq!(copy.len(), 3);
        assert_eq!(copy.cursor, "9");
        assert!(copy.revokes(&marks(Some("idp"), "z", Some("a"), Some(1))));
    }
}
