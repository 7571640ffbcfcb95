//! The list of revoked tokens a worker checks tokens against, built from the feed's pages
//! ([`super::revocation`]), and the form in which the filter's workers share it.
//!
//! Pages are applied as a whole. A `reset` that spans several pages is staged: until its
//! last page arrives the old list stands, and the entries of both refuse; then the staged
//! entries replace it (a reset that interrupts another keeps the first one's entries with
//! the old list). The cursor of every page applied is kept, empty pages included.

use std::collections::HashMap;

use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize};

use super::revocation::{
    cursor_is_valid, digest_from_text, encode, FeedEntry, FeedError, FeedPage, TokenMarks,
    MAX_ENTRIES,
};

/// How long the list keeps its entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// The filter's clock skew: a token passes that long past its `exp`, so its entry stays
    /// that long past its `expires_at`.
    pub skew: u64,
    /// The longest token lifetime the filter accepts (`max_lifetime_seconds`): a subject's
    /// entry lasts at least that long past its `before`, whatever its `expires_at`.
    pub max_lifetime: u64,
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

/// Revoked tokens and subjects, each with the unix time after which its entry may leave.
#[derive(Debug, Clone, Default)]
struct Entries {
    /// Issuer scope, then jti → expiry.
    jtis: Scoped<u64>,
    /// Digest → expiry.
    digests: HashMap<[u8; 32], u64, FxBuildHasher>,
    /// Issuer scope, then subject → (revoked before, expiry).
    subjects: Scoped<(u64, u64)>,
}

impl Entries {
    fn len(&self) -> usize {
        scoped_len(&self.jtis) + self.digests.len() + scoped_len(&self.subjects)
    }

    /// Adds `entry` unless it left by `oldest` (now less the clock skew).
    fn insert(&mut self, entry: FeedEntry, oldest: u64, retention: Retention) {
        let issuer = scope(entry.issuer.as_deref());
        let mut expires_at = entry.expires_at;
        if let Some(before) = entry.before {
            expires_at = expires_at.max(before.saturating_add(retention.max_lifetime));
        }
        if expires_at < oldest {
            return;
        }
        if let Some(jti) = entry.jti {
            let at = scoped_entry(&mut self.jtis, issuer, jti);
            *at = (*at).max(expires_at);
        } else if let Some(digest) = entry.token_sha256.as_deref().and_then(digest_from_text) {
            let at = self.digests.entry(digest).or_default();
            *at = (*at).max(expires_at);
        } else if let (Some(subject), Some(before)) = (entry.subject, entry.before) {
            let at = scoped_entry(&mut self.subjects, issuer, subject);
            *at = (at.0.max(before), at.1.max(expires_at));
        }
    }

    /// Adds `other`'s entries, each with the later expiry of the two.
    fn merge(&mut self, other: Entries) {
        for (scope, jtis) in other.jtis {
            for (jti, at) in jtis {
                let kept = scoped_entry(&mut self.jtis, &scope, jti);
                *kept = (*kept).max(at);
            }
        }
        for (digest, at) in other.digests {
            let kept = self.digests.entry(digest).or_default();
            *kept = (*kept).max(at);
        }
        for (scope, subjects) in other.subjects {
            for (subject, (before, at)) in subjects {
                let kept = scoped_entry(&mut self.subjects, &scope, subject);
                *kept = (kept.0.max(before), kept.1.max(at));
            }
        }
    }

    fn prune(&mut self, oldest: u64) {
        scoped_retain(&mut self.jtis, |at| *at >= oldest);
        self.digests.retain(|_, at| *at >= oldest);
        scoped_retain(&mut self.subjects, |(_, at)| *at >= oldest);
    }

    fn revokes(&self, marks: &TokenMarks) -> bool {
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

    /// The entries in the feed's form.
    fn to_feed(&self) -> Vec<FeedEntry> {
        let issuer = |scope: &str| (!scope.is_empty()).then(|| scope.to_owned());
        let empty = FeedEntry {
            jti: None,
            token_sha256: None,
            subject: None,
            before: None,
            issuer: None,
            expires_at: 0,
        };
        let mut revoked: Vec<FeedEntry> = Vec::with_capacity(self.len());
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
        revoked
    }
}

/// The revoked tokens and subjects, with when each entry may leave.
#[derive(Debug, Clone, Default)]
pub struct RevocationList {
    applied: Entries,
    /// A reset's entries while its later pages are awaited.
    staged: Option<Entries>,
    /// The cursor of the last page applied; empty before the first.
    pub cursor: String,
}

/// The list as the filter's workers share it: a JSON text.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SharedList {
    cursor: String,
    revoked: Vec<FeedEntry>,
    /// The entries of a reset whose last page has not arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    staged: Option<Vec<FeedEntry>>,
}

impl RevocationList {
    /// How many entries it holds (a staged reset's included).
    pub fn len(&self) -> usize {
        self.applied.len() + self.staged.as_ref().map_or(0, Entries::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a reset waits for its later pages.
    pub fn is_staging(&self) -> bool {
        self.staged.is_some()
    }

    /// Applies a page at unix time `now`. A reset starts a staged list, which replaces the
    /// list at the reset's last page (the page without `more`); until then the pages go to
    /// it and both refuse. Entries leave `retention.skew` past their expiry.
    pub fn apply(
        &mut self,
        page: FeedPage,
        now: u64,
        retention: Retention,
    ) -> Result<(), FeedError> {
        let oldest = now.saturating_sub(retention.skew);
        if page.reset {
            // A reset that interrupts another: the first one's entries keep refusing with the
            // list until the new one is whole.
            if let Some(interrupted) = self.staged.replace(Entries::default()) {
                self.applied.merge(interrupted);
            }
        }
        let target = match &mut self.staged {
            Some(staged) => staged,
            None => &mut self.applied,
        };
        for entry in page.revoked {
            target.insert(entry, oldest, retention);
        }
        if !page.more {
            if let Some(staged) = self.staged.take() {
                self.applied = staged;
            }
        }
        self.cursor = page.cursor;
        self.prune(oldest);
        if self.len() > MAX_ENTRIES {
            return Err(FeedError::TooManyEntries);
        }
        Ok(())
    }

    /// Drops the entries whose expiry passed by `oldest`.
    pub fn prune(&mut self, oldest: u64) {
        self.applied.prune(oldest);
        if let Some(staged) = &mut self.staged {
            staged.prune(oldest);
        }
    }

    /// Whether the token `marks` describes is revoked: its `jti` (of its issuer), its digest,
    /// or its subject (of its issuer) revoked after it was issued. A token without `iat`
    /// cannot prove it came after a subject's revocation, so it is revoked with it.
    pub fn revokes(&self, marks: &TokenMarks) -> bool {
        !self.is_empty()
            && (self.applied.revokes(marks)
                || self.staged.as_ref().is_some_and(|s| s.revokes(marks)))
    }

    /// The list in the form workers share.
    pub fn to_shared_bytes(&self) -> Vec<u8> {
        let shared = SharedList {
            cursor: self.cursor.clone(),
            revoked: self.applied.to_feed(),
            staged: self.staged.as_ref().map(Entries::to_feed),
        };
        serde_json::to_vec(&shared).unwrap_or_default()
    }

    /// The list another worker shared, at unix time `now`.
    pub fn from_shared_bytes(
        bytes: &[u8],
        now: u64,
        retention: Retention,
    ) -> Result<RevocationList, FeedError> {
        let shared: SharedList = serde_json::from_slice(bytes).map_err(|_| FeedError::Malformed)?;
        let entries = shared.revoked.len() + shared.staged.as_ref().map_or(0, Vec::len);
        if entries > MAX_ENTRIES {
            return Err(FeedError::TooManyEntries);
        }
        let well_formed = shared
            .revoked
            .iter()
            .chain(shared.staged.iter().flatten())
            .all(FeedEntry::is_well_formed);
        if !well_formed || !(shared.cursor.is_empty() || cursor_is_valid(&shared.cursor)) {
            return Err(FeedError::Malformed);
        }
        let oldest = now.saturating_sub(retention.skew);
        let mut list = RevocationList {
            cursor: shared.cursor,
            ..RevocationList::default()
        };
        for entry in shared.revoked {
            list.applied.insert(entry, oldest, retention);
        }
        if let Some(staged) = shared.staged {
            let mut entries = Entries::default();
            for entry in staged {
                entries.insert(entry, oldest, retention);
            }
            list.staged = Some(entries);
        }
        Ok(list)
    }
}
