//! Revocations: of a session, of one token, of a subject's own tokens, of every token of a
//! subject; and the feed that serves them, after a cursor.

use std::sync::PoisonError;

use rusqlite::{params, OptionalExtension, Transaction};
use tollgate_core::verify::revocation::{FeedEntry, FeedPage};

use super::{
    db_time, end_family, insert_jti, prune, unix_time, Store, Stored, FEED_PAGE_BYTES, OWN_ENTRIES,
};

/// A token of a subject, as the feed names it.
#[derive(Debug, Clone, Copy)]
pub enum OwnToken<'t> {
    Jti(&'t str),
    /// base64url of the SHA-256 of its `header.payload`.
    Digest(&'t str),
}

/// Revokes `tokens` of `subject`, each until its expiry, marked as the subject's; when that
/// would hold more than [`OWN_ENTRIES`] live entries of the subject, one subject entry
/// (every token issued until now) replaces them and the subject's sessions end.
pub(super) fn revoke_owned(
    tx: &Transaction<'_>,
    subject: &str,
    tokens: &[(OwnToken<'_>, u64)],
    now: u64,
    lasting: u64,
) -> Stored<()> {
    let held: i64 = tx.query_row(
        "SELECT COUNT(*) FROM revocations WHERE owner = ?1",
        [subject],
        |r| r.get(0),
    )?;
    let adding = i64::try_from(tokens.len()).unwrap_or(i64::MAX);
    if held.saturating_add(adding) > OWN_ENTRIES {
        let latest: Option<i64> = tx.query_row(
            "SELECT MAX(expires_at) FROM revocations WHERE owner = ?1",
            [subject],
            |r| r.get(0),
        )?;
        // It covers every token of the subject issued until now, not only those revoked.
        let expires_at = tokens
            .iter()
            .map(|(_, e)| *e)
            .chain(latest.map(unix_time))
            .chain([now.saturating_add(lasting)])
            .max()
            .unwrap_or(now);
        let before = now.saturating_add(1);
        tx.execute(
            "DELETE FROM revocations WHERE subject = ?1 AND before <= ?2 AND expires_at <= ?3",
            params![subject, db_time(before), db_time(expires_at)],
        )?;
        tx.execute(
            "INSERT INTO revocations (subject, before, expires_at) VALUES (?1, ?2, ?3)",
            params![subject, db_time(before), db_time(expires_at)],
        )?;
        tx.execute("DELETE FROM revocations WHERE owner = ?1", [subject])?;
        let families: Vec<String> = {
            let mut q = tx.prepare("SELECT id FROM families WHERE subject = ?1")?;
            let rows = q.query_map([subject], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        for family in &families {
            tx.execute("DELETE FROM tokens WHERE family = ?1", [family])?;
            tx.execute("DELETE FROM families WHERE id = ?1", [family])?;
        }
        eprintln!(
            "tollgate-signin: a subject revoked more than {OWN_ENTRIES} of its tokens: all of them are revoked"
        );
        return Ok(());
    }
    for (token, expires_at) in tokens {
        let (column, value) = match token {
            OwnToken::Jti(jti) => ("jti", *jti),
            OwnToken::Digest(digest) => ("token_sha256", *digest),
        };
        tx.execute(
            &format!("DELETE FROM revocations WHERE {column} = ?1 AND expires_at < ?2"),
            params![value, db_time(*expires_at)],
        )?;
        tx.execute(
            &format!(
                "INSERT OR IGNORE INTO revocations ({column}, expires_at, owner) VALUES (?1, ?2, ?3)"
            ),
            params![value, db_time(*expires_at), subject],
        )?;
    }
    Ok(())
}

impl Store {
    /// Ends the session token `jti` belongs to, revoking its access tokens still live at
    /// `now`; whether there was one.
    pub fn revoke_session_of(&self, jti: &str, now: u64) -> Stored<bool> {
        self.write(|tx| {
            let family: Option<String> = tx
                .query_row("SELECT family FROM tokens WHERE jti = ?1", [jti], |r| {
                    r.get(0)
                })
                .optional()?;
            match family {
                Some(family) => end_family(
                    tx,
                    &family,
                    Some((now, self.caps.subject_revocation_seconds)),
                ),
                None => Ok(false),
            }
        })
    }

    /// Revokes one token by its `jti` until `expires_at` (its `exp`); nothing when it has
    /// expired already.
    pub fn revoke_jti(&self, jti: &str, expires_at: u64, now: u64) -> Stored<()> {
        self.write(|tx| {
            prune(tx, now)?;
            if expires_at >= now {
                insert_jti(tx, jti, expires_at)?;
            }
            Ok(())
        })
    }

    /// Revokes one token of `subject` (by `jti`, or else by the SHA-256 of its
    /// `header.payload`) until `expires_at`; past [`OWN_ENTRIES`] live entries of the
    /// subject, every token of the subject issued until now instead.
    pub fn revoke_own(
        &self,
        subject: &str,
        token: OwnToken<'_>,
        expires_at: u64,
        now: u64,
    ) -> Stored<()> {
        self.write(|tx| {
            prune(tx, now)?;
            if expires_at >= now {
                let lasting = self.caps.subject_revocation_seconds;
                revoke_owned(tx, subject, &[(token, expires_at)], now, lasting)?;
            }
            Ok(())
        })
    }

    /// Revokes every token of `subject` issued before `before`, until `expires_at`, and ends
    /// all of its sessions; how many ended. An older entry of the subject that the new one
    /// covers (earlier `before`, earlier expiry) is dropped.
    pub fn revoke_subject(
        &self,
        subject: &str,
        before: u64,
        expires_at: u64,
        now: u64,
    ) -> Stored<usize> {
        self.write(|tx| {
            prune(tx, now)?;
            tx.execute(
                "DELETE FROM revocations WHERE subject = ?1 AND before <= ?2 \
                 AND expires_at <= ?3",
                params![subject, db_time(before), db_time(expires_at)],
            )?;
            tx.execute(
                "INSERT INTO revocations (subject, before, expires_at) VALUES (?1, ?2, ?3)",
                params![subject, db_time(before), db_time(expires_at)],
            )?;
            let families: Vec<String> = {
                let mut q = tx.prepare("SELECT id FROM families WHERE subject = ?1")?;
                let rows = q.query_map([subject], |r| r.get(0))?;
                rows.collect::<Result<_, _>>()?
            };
            for family in &families {
                end_family(tx, family, None)?;
            }
            Ok(families.len())
        })
    }

    /// Whether a live entry revokes `subject`'s tokens issued at `issued_at`.
    pub fn subject_revoked(&self, subject: &str, issued_at: u64, now: u64) -> Stored<bool> {
        let db = self.db.lock().unwrap_or_else(PoisonError::into_inner);
        let found: Option<i64> = db
            .query_row(
                "SELECT id FROM revocations WHERE subject = ?1 AND before > ?2 \
                 AND expires_at >= ?3 LIMIT 1",
                params![subject, db_time(issued_at), db_time(now)],
                |r| r.get(0),
            )
            .optional()?;
        Ok(found.is_some())
    }

    /// The revocation id a poller's `cursor` names in this database: `None` for a cursor of
    /// another database (a plain number, as cursors were before they named their database,
    /// counts as this one's when it is not beyond every id).
    fn position(&self, cursor: &str, highest: i64) -> Option<i64> {
        let (database, id) = match cursor.split_once('.') {
            Some((database, id)) => (Some(database), id),
            None => (None, cursor),
        };
        let id = id
            .parse::<i64>()
            .ok()
            .filter(|id| (0..=highest).contains(id))?;
        match database {
            Some(database) if database != self.database_id => None,
            _ => Some(id),
        }
    }

    /// A page of the feed at `now`: with no cursor, every live entry (`reset`); after a
    /// cursor of this database, the live entries added since; after another's, every live
    /// entry, not as a reset (added to what the poller holds). At most [`Caps::feed_page`]
    /// entries and [`FEED_PAGE_BYTES`]; the page's cursor names its last entry (or the
    /// position asked).
    pub fn feed(&self, cursor: Option<&str>, now: u64) -> Stored<FeedPage> {
        let db = self.db.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = db.unchecked_transaction()?;
        let highest: i64 = tx
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'revocations'",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        let after = cursor.and_then(|c| self.position(c, highest)).unwrap_or(0);
        let mut q = tx.prepare(
            "SELECT id, jti, token_sha256, subject, before, expires_at FROM revocations \
             WHERE id > ?1 AND expires_at >= ?2 ORDER BY id LIMIT ?3",
        )?;
        let limit = i64::try_from(self.caps.feed_page.max(1)).unwrap_or(i64::MAX);
        let mut rows = q.query(params![after, db_time(now), limit])?;
        let mut revoked = Vec::new();
        let mut last = after;
        let mut bytes = 0usize;
        let mut more = false;
        while let Some(row) = rows.next()? {
            let entry = FeedEntry {
                jti: row.get(1)?,
                token_sha256: row.get(2)?,
                subject: row.get(3)?,
                before: row.get::<_, Option<i64>>(4)?.map(unix_time),
                issuer: None,
                expires_at: unix_time(row.get(5)?),
            };
            bytes += serde_json::to_string(&entry).map_or(0, |t| t.len() + 1);
            if bytes > FEED_PAGE_BYTES {
                more = true;
                break;
            }
            revoked.push(entry);
            last = row.get(0)?;
        }
        // A full page: there may be more after it (the filter asks again at once).
        more |= revoked.len() >= self.caps.feed_page.max(1);
        Ok(FeedPage {
            cursor: format!("{}.{last}", self.database_id),
            reset: cursor.is_none(),
            more,
            revoked,
        })
    }
}
