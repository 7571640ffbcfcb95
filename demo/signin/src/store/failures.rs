//! Failed sign-ins, counted in the database: every process on the file shares the counts,
//! so that two instances allow no more guesses than one. Each count lives in a fixed window
//! from its first failure; rows whose window has ended are deleted as others are written.

use rusqlite::{params, OptionalExtension};

use super::{db_time, unix_time, Store, Stored};

/// What to do with the counts read: count one more failure under every key, or not, or
/// refuse (nothing is counted).
pub type Decision<T> = Result<bool, T>;

impl Store {
    /// Reads the failures counted under each of `keys` in a window of `window` seconds at
    /// `now` (0 when none) and when that window ends; `decide` says whether to count one
    /// more under every key. One write transaction: a decision sees every count of every
    /// process, including attempts still being checked.
    pub fn count_failures<T>(
        &self,
        keys: &[String],
        window: u64,
        now: u64,
        decide: impl FnOnce(&[(u32, u64)]) -> Decision<T>,
    ) -> Stored<Result<(), T>> {
        self.write(|tx| {
            let ended = db_time(now.saturating_sub(window));
            tx.execute("DELETE FROM failures WHERE start <= ?1", [ended])?;
            let mut counts = Vec::with_capacity(keys.len());
            for key in keys {
                let found: Option<(i64, i64)> = tx
                    .query_row(
                        "SELECT start, count FROM failures WHERE key = ?1",
                        [key],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                counts.push(match found {
                    Some((start, n)) => (
                        u32::try_from(n).unwrap_or(u32::MAX),
                        unix_time(start).saturating_add(window),
                    ),
                    None => (0, now.saturating_add(window)),
                });
            }
            match decide(&counts) {
                Err(refused) => Ok(Err(refused)),
                Ok(false) => Ok(Ok(())),
                Ok(true) => {
                    for key in keys {
                        tx.execute(
                            "INSERT INTO failures (key, start, count) VALUES (?1, ?2, 1) \
                             ON CONFLICT (key) DO UPDATE SET count = count + 1",
                            params![key, db_time(now)],
                        )?;
                    }
                    Ok(Ok(()))
                }
            }
        })
    }

    /// Forgets the failures under `forget`, and gives one back under each of `give_back`.
    pub fn forgive_failures(&self, forget: &[String], give_back: &[String]) -> Stored<()> {
        self.write(|tx| {
            for key in forget {
                tx.execute("DELETE FROM failures WHERE key = ?1", [key])?;
            }
            for key in give_back {
                tx.execute(
                    "UPDATE failures SET count = MAX(count - 1, 0) WHERE key = ?1",
                    [key],
                )?;
            }
            Ok(())
        })
    }

    /// How many failure counts are kept.
    #[cfg(test)]
    pub fn failure_rows(&self) -> usize {
        let db = self
            .db
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        db.query_row("SELECT COUNT(*) FROM failures", [], |r| r.get::<_, i64>(0))
            .map_or(0, super::count)
    }
}
