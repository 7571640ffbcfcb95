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

use crate::durable::OpenedFile;

mod failures;
mod revocations;

use revocations::revoke_owned;
pub use revocations::OwnToken;

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
pub mod tests;
