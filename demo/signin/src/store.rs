//! Sessions and revocations, in an SQLite database on disk.
//!
//! A sign-in starts a family. Each refresh token (by its `jti`) may be used once: using it
//! issues the next token of its family. A token used a second time means it was stolen (or
//! the client was), and the whole family is revoked (OAuth 2.0 Security BCP, refresh token
//! rotation), its live access tokens with it. Access tokens are remembered by `jti` too, so
//! that signing out with only an access token ends its session.
//!
//! Revocations are what the revocation feed serves (`docs/revocation-feed.md`): one token
//! by `jti` (or by digest), or every token of a subject issued before a time. Each has the
//! time after which nothing it covers can be valid; it is deleted then.
//!
//! Several service processes may share one database file: it is in WAL mode, a process
//! waits (busy timeout) rather than fails while another writes, and every write is one
//! `BEGIN IMMEDIATE` transaction, so that a refresh token is used once across all of them.
//! Revocation ids come from the database (`AUTOINCREMENT`); SQLite has one writer at a
//! time and a writer's ids are visible once it commits, so ids appear in order and every
//! process serves the same feed.
//!
//! A database has a random id, made with it; the feed's cursor is `<id>.<revocation id>`.
//! A cursor of another database (this one is new: the old file was lost or replaced) is
//! answered with every live entry, added to what the poller holds rather than replacing it:
//! revocations only ever add, so the poller keeps those of the lost database until they
//! expire. A write is refused when the file was removed or replaced while the service runs
//! (`durable.rs`).

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use tollgate_core::verify::revocation::{FeedEntry, FeedPage};

use crate::durable::OpenedFile;

mod failures;

/// How much the store keeps. Every operation costs the same whatever the store holds (each
/// is a few indexed look-ups).
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// The most sessions kept; a sign-in beyond it ends the oldest session (of anyone).
    pub sessions: usize,
    /// The most sessions of one account; its sign-in beyond it ends its own oldest session,
    /// so that one account cannot fill the store.
    pub per_account: usize,
    /// The most token ids remembered per session (the newest); an older refresh token is
    /// then refused as unknown rather than detected as reused, and an older access token is
    /// not revoked with its session (a client must refresh 128 times within one access
    /// token's lifetime for that to happen; revoking its subject still covers it).
    pub per_session_tokens: usize,
    /// The most entries one feed page carries; the next poll gets the rest.
    pub feed_page: usize,
    /// How long a subject revocation must last to cover every token issued before it: the
    /// longest access-token lifetime (`max_token_lifetime_seconds`) plus the filter's clock
    /// skew.
    pub subject_revocation_seconds: u64,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            sessions: 100_000,
            per_account: 20,
            per_session_tokens: 256,
            feed_page: 50_000,
            subject_revocation_seconds: 7200 + FILTER_SKEW,
        }
    }
}

/// The bytes of entries one feed page carries at most (the filter reads up to 8 MiB).
const FEED_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// How long after a token's `exp` the filter still accepts it (its default
/// `clock_skew_seconds`): a token's entry lives that much longer.
pub const FILTER_SKEW: u64 = 60;

/// How long an operation waits for another process's write to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a refresh token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Not issued here, expired, or its session ended.
    Unknown,
    /// Used before: its whole session is now revoked.
    Reused,
    /// The database failed (the message says how).
    Failed(String),
}

/// The database failed: what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "database: {}", self.0)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError(e.to_string())
    }
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        Refused::Failed(e.0)
    }
}

pub type Stored<T> = Result<T, StoreError>;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS families (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    expires INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS families_by_subject ON families (subject, seq);
CREATE TABLE IF NOT EXISTS tokens (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    jti TEXT NOT NULL UNIQUE,
    family TEXT NOT NULL,
    refresh INTEGER NOT NULL,
    used INTEGER NOT NULL DEFAULT 0,
    expires INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_by_family ON tokens (family, seq);
CREATE TABLE IF NOT EXISTS revocations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    jti TEXT UNIQUE,
    token_sha256 TEXT UNIQUE,
    subject TEXT,
    before INTEGER,
    expires_at INTEGER NOT NULL,
    owner TEXT
);
CREATE INDEX IF NOT EXISTS revocations_by_expiry ON revocations (expires_at);
CREATE INDEX IF NOT EXISTS revocations_by_subject ON revocations (subject);
CREATE INDEX IF NOT EXISTS revocations_by_owner ON revocations (owner);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS failures (
    key TEXT PRIMARY KEY,
    start INTEGER NOT NULL,
    count INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS failures_by_start ON failures (start);
";

/// The most live entries that revoke single tokens of one subject (its own revocations,
/// logouts): beyond, they fold into one entry that revokes every token of the subject issued
/// until now, and its sessions end. A user revoking token after token cannot grow the feed
/// without bound (and past what the filter holds).
pub const OWN_ENTRIES: i64 = 64;

/// The sessions and revocations, in one database that other processes may share.
#[derive(Debug)]
pub struct Store {
    db: Mutex<Connection>,
    caps: Caps,
    /// The database's random id, the first part of the feed's cursors.
    database_id: String,
    /// The file opened (none in memory): writes are refused once it is gone.
    file: Option<OpenedFile>,
}

impl Store {
    /// Opens (or creates) the database at `path` (`:memory:` for one that lives as long as
    /// this store), creating its directory.
    pub fn open(path: &str, caps: Caps) -> Stored<Store> {
        if path != ":memory:" {
            if let Some(dir) = std::path::Path::new(path).parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| StoreError(format!("cannot create {}: {e}", dir.display())))?;
                }
            }
        }
        let in_memory = path == ":memory:";
        let existed = in_memory || std::path::Path::new(path).exists();
        let db = Connection::open(path)?;
        db.busy_timeout(BUSY_TIMEOUT)?;
        if path != ":memory:" {
            let mode: String = db.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError(format!("{path}: WAL mode refused ({mode})")));
            }
        }
        // Schema changes take the write lock: a second process starting at the same time
        // waits for the first.
        let mut db = db;
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // A database of an earlier version lacks `owner`: added (the error when it has it is
        // the expected one).
        let _ = tx.execute("ALTER TABLE revocations ADD COLUMN owner TEXT", []);
        tx.execute_batch(SCHEMA)?;
        let made = crate::random::token_id().ok_or(StoreError("no randomness".into()))?;
        tx.execute(
            "INSERT OR IGNORE INTO meta (name, value) VALUES ('database_id', ?1)",
            [made],
        )?;
        let database_id: String = tx.query_row(
            "SELECT value FROM meta WHERE name = 'database_id'",
            [],
            |r| r.get(0),
        )?;
        tx.commit()?;
        if !existed {
            eprintln!(
                "tollgate-signin: made a new, empty database at {path}: revocations of an \
                 earlier database are not in it (Envoys that hold them keep them)"
            );
        }
        let file = if in_memory {
            None
        } else {
            Some(OpenedFile::new(path).map_err(|e| StoreError(format!("{path}: {e}")))?)
        };
        Ok(Store {
            db: Mutex::new(db),
            caps,
            database_id,
            file,
        })
    }

    /// Runs `work` in one write transaction.
    /// Refused when the database file was removed or replaced since it was opened.
    fn write<T>(&self, work: impl FnOnce(&Transaction<'_>) -> Stored<T>) -> Stored<T> {
        let mut db = self.db.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(problem) = self.file.as_ref().and_then(OpenedFile::problem) {
            return Err(StoreError(format!("{problem}: nothing is written")));
        }
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let result = work(&tx)?;
        tx.commit()?;
        Ok(result)
    }

    /// Starts session `family` for `subject` at `now`, ending the subject's oldest session when
    /// it has [`Caps::per_account`], and the oldest of all when the store holds
    /// [`Caps::sessions`]. An ended session's live access tokens are revoked, as at logout.
    pub fn begin(&self, family: &str, subject: &str, expires: u64, now: u64) -> Stored<()> {
        let caps = self.caps;
        let revoke_at = Some((now, caps.subject_revocation_seconds));
        self.write(|tx| {
            let mine: i64 = tx.query_row(
                "SELECT COUNT(*) FROM families WHERE subject = ?1",
                [subject],
                |r| r.get(0),
            )?;
            if count(mine) >= caps.per_account.max(1) {
                let oldest: Option<String> = tx
                    .query_row(
                        "SELECT id FROM families WHERE subject = ?1 ORDER BY seq LIMIT 1",
                        [subject],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(oldest) = oldest {
                    end_family(tx, &oldest, revoke_at)?;
                }
            }
            let all: i64 = tx.query_row("SELECT COUNT(*) FROM families", [], |r| r.get(0))?;
            if count(all) >= caps.sessions.max(1) {
                let oldest: Option<String> = tx
                    .query_row("SELECT id FROM families ORDER BY seq LIMIT 1", [], |r| {
                        r.get(0)
                    })
                    .optional()?;
                if let Some(oldest) = oldest {
                    end_family(tx, &oldest, revoke_at)?;
                }
            }
            end_family(tx, family, None)?;
            tx.execute(
                "INSERT INTO families (id, subject, expires) VALUES (?1, ?2, ?3)",
                params![family, subject, db_time(expires)],
            )?;
            Ok(())
        })
    }

    /// Records a token of `family` (refresh or access) by its `jti`; the family's oldest
    /// token is forgotten beyond [`Caps::per_session_tokens`]. `false` when the session has
    /// ended (a logout or a reuse raced this refresh): the token must not be handed out, as
    /// nothing could revoke it.
    pub fn add_token(&self, family: &str, jti: &str, refresh: bool, expires: u64) -> Stored<bool> {
        let cap = self.caps.per_session_tokens.max(1);
        self.write(|tx| {
            let updated = tx.execute(
                "UPDATE families SET expires = MAX(expires, ?2) WHERE id = ?1",
                params![family, db_time(expires)],
            )?;
            if updated == 0 {
                return Ok(false);
            }
            tx.execute(
                "INSERT OR REPLACE INTO tokens (jti, family, refresh, expires) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![jti, family, refresh, db_time(expires)],
            )?;
            tx.execute(
                "DELETE FROM tokens WHERE family = ?1 AND seq NOT IN \
                 (SELECT seq FROM tokens WHERE family = ?1 ORDER BY seq DESC LIMIT ?2)",
                params![family, i64::try_from(cap).unwrap_or(i64::MAX)],
            )?;
            Ok(true)
        })
    }

    /// Uses refresh token `jti`: its family and subject when it is live and unused. A second
    /// use ends the family and revokes its live access tokens.
    pub fn use_refresh(&self, jti: &str, now: u64) -> Result<(String, String), Refused> {
        let outcome = self.write(|tx| {
            let token: Option<(String, bool, bool, i64)> = tx
                .query_row(
                    "SELECT family, refresh, used, expires FROM tokens WHERE jti = ?1",
                    [jti],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let Some((family, refresh, used, expires)) = token else {
                return Ok(Err(Refused::Unknown));
            };
            if !refresh || expires < db_time(now) {
                return Ok(Err(Refused::Unknown));
            }
            if used {
                end_family(
                    tx,
                    &family,
                    Some((now, self.caps.subject_revocation_seconds)),
                )?;
                return Ok(Err(Refused::Reused));
            }
            tx.execute("UPDATE tokens SET used = 1 WHERE jti = ?1", [jti])?;
            let subject: Option<String> = tx
                .query_row(
                    "SELECT subject FROM families WHERE id = ?1 AND expires >= ?2",
                    params![family, db_time(now)],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(subject.map(|s| (family, s)).ok_or(Refused::Unknown))
        });
        outcome?
    }

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

    /// Whether session `family` is live.
    #[cfg(test)]
    pub fn is_live(&self, family: &str, now: u64) -> bool {
        let db = self.db.lock().unwrap_or_else(PoisonError::into_inner);
        db.query_row(
            "SELECT COUNT(*) FROM families WHERE id = ?1 AND expires >= ?2",
            params![family, db_time(now)],
            |r| r.get::<_, i64>(0),
        )
        .is_ok_and(|n| n > 0)
    }

    /// How many sessions, token ids and revocations (live or not) are kept.
    #[cfg(test)]
    pub fn sizes(&self) -> (usize, usize, usize) {
        let db = self.db.lock().unwrap_or_else(PoisonError::into_inner);
        let rows = |table: &str| {
            db.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| {
                r.get::<_, i64>(0)
            })
            .map_or(0, count)
        };
        (rows("families"), rows("tokens"), rows("revocations"))
    }
}

/// Ends session `family` and forgets its tokens; with `revoke_at`, its access tokens still
/// live then are revoked first (until their expiry plus [`FILTER_SKEW`]). Whether there was
/// one.
fn end_family(tx: &Transaction<'_>, family: &str, revoke_at: Option<(u64, u64)>) -> Stored<bool> {
    if let Some((now, lasting)) = revoke_at {
        prune(tx, now)?;
        let live: Vec<(String, i64)> = {
            let mut q = tx.prepare(
                "SELECT jti, expires FROM tokens WHERE family = ?1 AND refresh = 0 \
                 AND expires >= ?2",
            )?;
            let rows = q.query_map(params![family, db_time(now)], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        let subject: Option<String> = tx
            .query_row(
                "SELECT subject FROM families WHERE id = ?1",
                [family],
                |r| r.get(0),
            )
            .optional()?;
        let tokens: Vec<(OwnToken<'_>, u64)> = live
            .iter()
            .map(|(jti, expires)| {
                (
                    OwnToken::Jti(jti),
                    unix_time(*expires).saturating_add(FILTER_SKEW),
                )
            })
            .collect();
        match subject {
            Some(subject) => revoke_owned(tx, &subject, &tokens, now, lasting)?,
            None => {
                for (token, expires_at) in &tokens {
                    if let OwnToken::Jti(jti) = token {
                        insert_jti(tx, jti, *expires_at)?;
                    }
                }
            }
        }
    }
    tx.execute("DELETE FROM tokens WHERE family = ?1", [family])?;
    let ended = tx.execute("DELETE FROM families WHERE id = ?1", [family])?;
    Ok(ended > 0)
}

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
fn revoke_owned(
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

/// Revokes `jti` until `expires_at`. A later expiry replaces the entry under a new id, so
/// that the feed, which sends what comes after a cursor, sends the change too.
fn insert_jti(tx: &Transaction<'_>, jti: &str, expires_at: u64) -> Stored<()> {
    tx.execute(
        "DELETE FROM revocations WHERE jti = ?1 AND expires_at < ?2",
        params![jti, db_time(expires_at)],
    )?;
    tx.execute(
        "INSERT OR IGNORE INTO revocations (jti, expires_at) VALUES (?1, ?2)",
        params![jti, db_time(expires_at)],
    )?;
    Ok(())
}

/// Deletes the entries nothing can need after `now`.
fn prune(tx: &Transaction<'_>, now: u64) -> Stored<()> {
    tx.execute(
        "DELETE FROM revocations WHERE expires_at < ?1",
        [db_time(now)],
    )?;
    Ok(())
}

/// Unix seconds as SQLite stores them (signed 64 bits; later times are clamped).
fn db_time(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

fn unix_time(t: i64) -> u64 {
    u64::try_from(t).unwrap_or(0)
}

fn count(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

#[cfg(test)]
pub mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn memory() -> Store {
        Store::open(":memory:", Caps::default()).unwrap()
    }

    /// A database file in a directory of its own, removed when dropped.
    pub struct TempDb(pub std::path::PathBuf);

    impl TempDb {
        pub fn new(name: &str) -> TempDb {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "tollgate-signin-{}-{}-{name}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::SeqCst)
            ));
            TempDb(dir.join("nested").join("signin.db"))
        }

        pub fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent().and_then(|p| p.parent()) {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    fn session(store: &Store) {
        store.begin("f1", "lUpa", NOW + 100, NOW).unwrap();
        store.add_token("f1", "r1", true, NOW + 100).unwrap();
        store.add_token("f1", "a1", false, NOW + 10).unwrap();
    }

    /// The revocation id a cursor names.
    pub fn seq(cursor: &str) -> u64 {
        cursor.rsplit('.').next().unwrap().parse().unwrap()
    }

    fn jtis(page: &FeedPage) -> Vec<&str> {
        page.revoked
            .iter()
            .filter_map(|e| e.jti.as_deref())
            .collect()
    }

    /// The page as the filter reads it.
    fn parsed(page: &FeedPage) -> FeedPage {
        FeedPage::parse(serde_json::to_string(page).unwrap().as_bytes()).unwrap()
    }

    #[test]
    fn a_refresh_token_works_once_and_its_reuse_revokes_the_family() {
        let store = memory();
        session(&store);
        assert_eq!(
            store.use_refresh("r1", NOW),
            Ok(("f1".into(), "lUpa".into()))
        );
        store.add_token("f1", "r2", true, NOW + 100).unwrap();
        assert_eq!(store.use_refresh("r1", NOW), Err(Refused::Reused));
        assert!(!store.is_live("f1", NOW));
        assert_eq!(store.use_refresh("r2", NOW), Err(Refused::Unknown));
        // Its live access token is revoked with it.
        assert_eq!(jtis(&store.feed(None, NOW).unwrap()), ["a1"]);
    }

    #[test]
    fn access_tokens_and_unknown_ids_are_not_refresh_tokens() {
        let store = memory();
        session(&store);
        assert_eq!(store.use_refresh("a1", NOW), Err(Refused::Unknown));
        assert_eq!(store.use_refresh("nope", NOW), Err(Refused::Unknown));
        assert_eq!(store.use_refresh("r1", NOW + 101), Err(Refused::Unknown));
    }

    #[test]
    fn signing_out_with_an_access_token_ends_the_session() {
        let store = memory();
        session(&store);
        assert!(store.revoke_session_of("a1", NOW).unwrap());
        assert_eq!(store.use_refresh("r1", NOW), Err(Refused::Unknown));
        assert!(!store.revoke_session_of("a1", NOW).unwrap());
        let page = store.feed(None, NOW).unwrap();
        assert_eq!(jtis(&page), ["a1"]);
        assert_eq!(page.revoked[0].expires_at, NOW + 10 + FILTER_SKEW);
    }

    #[test]
    fn one_account_cannot_fill_the_store_and_a_full_store_ends_the_oldest_session() {
        let store = Store::open(
            ":memory:",
            Caps {
                sessions: 10,
                per_account: 3,
                per_session_tokens: 8,
                ..Caps::default()
            },
        )
        .unwrap();
        for i in 0..100 {
            store
                .begin(&format!("m{i}"), "mallory", NOW + 100, NOW)
                .unwrap();
        }
        assert_eq!(store.sizes().0, 3, "one account holds at most its cap");
        assert!(store.is_live("m99", NOW) && store.is_live("m97", NOW));
        assert!(!store.is_live("m96", NOW), "its oldest session ended");
        for i in 0..20 {
            store
                .begin(&format!("u{i}"), &format!("user{i}"), NOW + 100, NOW)
                .unwrap();
            assert!(store.is_live(&format!("u{i}"), NOW), "sign-in {i} refused");
        }
        assert_eq!(store.sizes().0, 10);
        assert!(!store.is_live("u9", NOW) && store.is_live("u10", NOW));
    }

    #[test]
    fn endless_refreshes_keep_a_bounded_index_and_recent_reuse_is_still_caught() {
        let store = memory();
        store.begin("f1", "lUpa", NOW + 100, NOW).unwrap();
        store.add_token("f1", "r0", true, NOW + 100).unwrap();
        for i in 1..=20_000 {
            assert!(
                store.use_refresh(&format!("r{}", i - 1), NOW).is_ok(),
                "{i}"
            );
            store
                .add_token("f1", &format!("a{i}"), false, NOW + 10)
                .unwrap();
            store
                .add_token("f1", &format!("r{i}"), true, NOW + 100)
                .unwrap();
        }
        let (_, tokens, _) = store.sizes();
        assert!(
            tokens <= Caps::default().per_session_tokens,
            "{tokens} token ids kept"
        );
        assert_eq!(store.use_refresh("r19999", NOW), Err(Refused::Reused));
        assert!(!store.is_live("f1", NOW));
        let (families, tokens, revoked) = store.sizes();
        assert_eq!((families, tokens), (0, 0));
        // The 128 access tokens still remembered are more than one subject may hold: one
        // entry revokes every token of the subject instead.
        assert_eq!(revoked, 1, "the access tokens still remembered, folded");
        assert_eq!(store.use_refresh("r20000", NOW), Err(Refused::Unknown));
    }

    #[test]
    fn the_feed_resets_then_follows_its_cursor_and_live_entries_only() {
        let store = memory();
        let empty = parsed(&store.feed(None, NOW).unwrap());
        assert_eq!((seq(&empty.cursor), empty.reset), (0, true));
        assert!(empty.revoked.is_empty());
        store.revoke_jti("j1", NOW + 100, NOW).unwrap();
        store.revoke_jti("j2", NOW + 10, NOW).unwrap();
        store.revoke_jti("old", NOW - 1, NOW).unwrap();
        let first = parsed(&store.feed(None, NOW).unwrap());
        assert!(first.reset);
        assert_eq!(jtis(&first), ["j1", "j2"]);
        let cursor = first.cursor.clone();
        let none = parsed(&store.feed(Some(&cursor), NOW).unwrap());
        assert!(!none.reset && none.revoked.is_empty());
        assert_eq!(none.cursor, first.cursor, "the cursor asked");
        store
            .revoke_subject("lUpa", NOW + 1, NOW + 960, NOW)
            .unwrap();
        let next = parsed(&store.feed(Some(&cursor), NOW).unwrap());
        assert!(!next.reset);
        assert_eq!(
            next.revoked,
            [FeedEntry {
                jti: None,
                token_sha256: None,
                subject: Some("lUpa".into()),
                before: Some(NOW + 1),
                issuer: None,
                expires_at: NOW + 960,
            }]
        );
        assert!(seq(&next.cursor) > seq(&cursor));
        // Expired entries leave the feed, and the table once something is written.
        let later = parsed(&store.feed(None, NOW + 11).unwrap());
        assert_eq!(later.revoked.len(), 2, "{later:?}");
        assert_eq!(jtis(&later), ["j1"]);
        store.revoke_jti("j3", NOW + 2000, NOW + 1000).unwrap();
        assert_eq!(store.sizes().2, 1);
        // A cursor of another database (this one replaced it) gets every live entry, to
        // add to what the poller holds: not a reset, which would drop the earlier ones.
        for foreign in ["AnotherDatabaseId00000.1", "1000000", "garbled"] {
            let page = store.feed(Some(foreign), NOW + 1000).unwrap();
            assert!(!page.reset, "{foreign}");
            assert_eq!(jtis(&page), ["j3"]);
            assert_eq!(
                page.cursor,
                format!("{}.{}", store.database_id, seq(&page.cursor))
            );
        }
        // A plain number, as cursors were before they named their database, is this one's.
        assert!(store
            .feed(Some("4"), NOW + 1000)
            .unwrap()
            .revoked
            .is_empty());
    }

    #[test]
    fn a_page_is_bounded_and_the_next_poll_gets_the_rest() {
        let store = Store::open(
            ":memory:",
            Caps {
                feed_page: 3,
                ..Caps::default()
            },
        )
        .unwrap();
        for i in 0..7 {
            store.revoke_jti(&format!("j{i}"), NOW + 100, NOW).unwrap();
        }
        let mut page = store.feed(None, NOW).unwrap();
        let mut seen = jtis(&page)
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>();
        assert!(page.reset && seen.len() == 3);
        assert!(page.more, "a full page says more may follow");
        while page.more {
            page = store.feed(Some(&page.cursor), NOW).unwrap();
            assert!(!page.reset);
            seen.extend(jtis(&page).iter().map(|s| s.to_string()));
        }
        assert_eq!(seen, (0..7).map(|i| format!("j{i}")).collect::<Vec<_>>());
    }

    #[test]
    fn revoking_a_subject_ends_its_sessions_and_replaces_what_it_covers() {
        let store = memory();
        session(&store);
        store.begin("f2", "other", NOW + 100, NOW).unwrap();
        store.revoke_subject("lUpa", NOW, NOW + 960, NOW).unwrap();
        assert_eq!(
            store.revoke_subject("lUpa", NOW + 5, NOW + 965, NOW + 5),
            Ok(0)
        );
        assert_eq!(store.use_refresh("r1", NOW), Err(Refused::Unknown));
        assert!(store.is_live("f2", NOW));
        let page = store.feed(None, NOW + 5).unwrap();
        assert_eq!(page.revoked.len(), 1, "the older entry is covered");
        assert_eq!(page.revoked[0].before, Some(NOW + 5));
        assert!(store.subject_revoked("lUpa", NOW + 4, NOW + 5).unwrap());
        assert!(!store.subject_revoked("lUpa", NOW + 5, NOW + 5).unwrap());
        assert!(!store.subject_revoked("other", NOW, NOW + 5).unwrap());
    }

    #[test]
    fn two_stores_on_one_file_share_sessions_revocations_and_ids() {
        let db = TempDb::new("shared");
        let a = Store::open(db.path(), Caps::default()).unwrap();
        let b = Store::open(db.path(), Caps::default()).unwrap();
        session(&a);
        a.revoke_jti("from-a", NOW + 100, NOW).unwrap();
        b.revoke_jti("from-b", NOW + 100, NOW).unwrap();
        a.revoke_jti("from-a-again", NOW + 100, NOW).unwrap();
        let (pa, pb) = (a.feed(None, NOW).unwrap(), b.feed(None, NOW).unwrap());
        assert_eq!(pa, pb);
        assert_eq!(jtis(&pa), ["from-a", "from-b", "from-a-again"]);
        // A refresh token is used once across both.
        assert!(b.use_refresh("r1", NOW).is_ok());
        assert_eq!(a.use_refresh("r1", NOW), Err(Refused::Reused));
        assert!(!b.is_live("f1", NOW));
    }

    #[test]
    fn two_stores_writing_at_once_wait_for_each_other() {
        let db = TempDb::new("busy");
        let stores = [
            Store::open(db.path(), Caps::default()).unwrap(),
            Store::open(db.path(), Caps::default()).unwrap(),
        ];
        std::thread::scope(|scope| {
            for (n, store) in stores.iter().enumerate() {
                scope.spawn(move || {
                    for i in 0..200 {
                        store
                            .revoke_jti(&format!("{n}-{i}"), NOW + 100, NOW)
                            .unwrap();
                    }
                });
            }
        });
        let page = stores[1].feed(None, NOW).unwrap();
        assert_eq!(page.revoked.len(), 400);
        assert_eq!(seq(&page.cursor), 400);
    }

    #[test]
    fn a_reopened_database_keeps_everything() {
        let db = TempDb::new("restart");
        let before = {
            let store = Store::open(db.path(), Caps::default()).unwrap();
            session(&store);
            store.revoke_jti("j1", NOW + 100, NOW).unwrap();
            store.revoke_subject("s", NOW, NOW + 960, NOW).unwrap();
            store.feed(None, NOW).unwrap()
        };
        let store = Store::open(db.path(), Caps::default()).unwrap();
        assert_eq!(store.feed(None, NOW).unwrap(), before);
        assert_eq!(seq(&before.cursor), 2);
        assert!(store.use_refresh("r1", NOW).is_ok(), "the session is kept");
        store.revoke_jti("j2", NOW + 100, NOW).unwrap();
        assert_eq!(
            jtis(&store.feed(Some(&before.cursor), NOW).unwrap()),
            ["j2"]
        );
    }

    #[test]
    fn writes_are_refused_once_the_file_is_removed_or_replaced() {
        let db = TempDb::new("removed");
        let store = Store::open(db.path(), Caps::default()).unwrap();
        store.revoke_jti("j1", NOW + 100, NOW).unwrap();
        std::fs::remove_file(db.path()).unwrap();
        let refused = store.revoke_jti("j2", NOW + 100, NOW).unwrap_err();
        assert!(refused.0.contains("removed"), "{refused}");
        assert!(store.begin("f1", "lUpa", NOW + 100, NOW).is_err());
        // A new file by that name is another database: still refused.
        let replaced = Store::open(db.path(), Caps::default()).unwrap();
        assert!(store.revoke_jti("j2", NOW + 100, NOW).is_err());
        replaced.revoke_jti("j3", NOW + 100, NOW).unwrap();
    }

    #[test]
    fn a_subject_revoking_token_after_token_folds_into_one_entry() {
        let store = memory();
        store.begin("f1", "mallory", NOW + 1000, NOW).unwrap();
        for i in 0..OWN_ENTRIES {
            store
                .revoke_own("mallory", OwnToken::Jti(&format!("m{i}")), NOW + 100, NOW)
                .unwrap();
        }
        let page = store.feed(None, NOW).unwrap();
        assert_eq!(page.revoked.len(), usize::try_from(OWN_ENTRIES).unwrap());
        store
            .revoke_own("mallory", OwnToken::Jti("one-more"), NOW + 100, NOW)
            .unwrap();
        let page = store.feed(None, NOW).unwrap();
        assert_eq!(page.revoked.len(), 1, "{page:?}");
        assert_eq!(page.revoked[0].subject.as_deref(), Some("mallory"));
        assert_eq!(page.revoked[0].before, Some(NOW + 1));
        // It lasts as long as any token of the subject issued until now, not only the
        // revoked ones (these expired sooner).
        assert_eq!(
            page.revoked[0].expires_at,
            NOW + Caps::default().subject_revocation_seconds
        );
        assert!(!store.is_live("f1", NOW), "its sessions end");
        // Another subject is untouched by mallory's count.
        store
            .revoke_own("alice", OwnToken::Jti("a1"), NOW + 900, NOW)
            .unwrap();
        assert_eq!(store.feed(None, NOW).unwrap().revoked.len(), 2);
    }

    #[test]
    fn a_token_of_a_session_that_ended_is_not_recorded() {
        let store = memory();
        store.begin("f1", "lUpa", NOW + 100, NOW).unwrap();
        assert!(store.add_token("f1", "a1", false, NOW + 10).unwrap());
        assert!(store.revoke_session_of("a1", NOW).unwrap());
        assert!(!store.add_token("f1", "a2", false, NOW + 10).unwrap());
    }

    #[test]
    fn a_revocation_extended_comes_again_in_the_feed() {
        let store = memory();
        store.revoke_jti("x", NOW + 30, NOW).unwrap();
        let first = store.feed(None, NOW).unwrap();
        store.revoke_jti("x", NOW + 86_400, NOW).unwrap();
        let after = store.feed(Some(&first.cursor), NOW).unwrap();
        assert_eq!(after.revoked.len(), 1, "{after:?}");
        assert_eq!(after.revoked[0].expires_at, NOW + 86_400);
        // A shorter expiry changes nothing.
        store.revoke_jti("x", NOW + 10, NOW).unwrap();
        let again = store.feed(Some(&after.cursor), NOW).unwrap();
        assert!(again.revoked.is_empty());
    }
}
