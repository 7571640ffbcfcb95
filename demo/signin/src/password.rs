//! Passwords: Argon2id hashes in the configuration, checked off the request path's threads.
//!
//! A check needs Argon2's 19 MiB of memory. It comes from a pool of at most [`MEMORY_SETS`]
//! sets, made once and reused: allocating it per check left the allocator holding freed
//! sets per thread (400 failed sign-ins grew the process from 8 MiB to 1 GiB).

use std::sync::{Condvar, Mutex, PoisonError};

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, PasswordHasher, Version};

/// How many checks run at once at most (the server admits four requests at once); more wait
/// for a set of memory.
pub const MEMORY_SETS: usize = 4;

/// Argon2's working memory, reused between checks.
struct Pool {
    free: Mutex<(Vec<Vec<Block>>, usize)>,
    returned: Condvar,
}

static POOL: Pool = Pool {
    free: Mutex::new((Vec::new(), 0)),
    returned: Condvar::new(),
};

impl Pool {
    /// Runs `work` with a set of `blocks` blocks: a free one, a new one while fewer than
    /// [`MEMORY_SETS`] exist, or the next one returned.
    fn with<T>(&self, blocks: usize, work: impl FnOnce(&mut [Block]) -> T) -> T {
        let mut memory = {
            let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                if let Some(memory) = free.0.pop() {
                    break memory;
                }
                if free.1 < MEMORY_SETS {
                    free.1 += 1;
                    break Vec::new();
                }
                free = self
                    .returned
                    .wait(free)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        memory.resize(blocks, Block::default());
        let result = work(&mut memory);
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        free.0.push(memory);
        self.returned.notify_one();
        result
    }

    /// How many sets were made.
    #[cfg(test)]
    fn made(&self) -> usize {
        self.free.lock().unwrap_or_else(PoisonError::into_inner).1
    }
}

/// The Argon2id hash of `password` in PHC form, with a fresh random salt and the crate's
/// recommended parameters (19 MiB, 2 passes).
pub fn hash(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Why `hash` cannot be used as a stored password hash, if it cannot; never quotes it.
/// Parameters other than those [`hash`] uses are refused: a weaker hash answers faster than an
/// unknown user's sign-in (checked against a [`hash`] of this service), a stronger one slower,
/// and either tells who has an account; a weaker one is also cheaper to crack, and a huge
/// memory cost lets one sign-in attempt allocate gigabytes.
pub fn hash_problem(hash: &str) -> Option<&'static str> {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return Some("is not a PHC password hash string");
    };
    if parsed.algorithm.as_str() != "argon2id" || parsed.hash.is_none() {
        return Some("is not an Argon2id hash");
    }
    let Ok(params) = Params::try_from(&parsed) else {
        return Some("has unreadable Argon2 parameters");
    };
    if params.m_cost() < Params::DEFAULT_M_COST || params.t_cost() < Params::DEFAULT_T_COST {
        return Some(
            "has weaker Argon2 parameters than this service uses (it needs at least m=19456 \
             and t=2)",
        );
    }
    let own = (
        Params::DEFAULT_M_COST,
        Params::DEFAULT_T_COST,
        Params::DEFAULT_P_COST,
    );
    if (params.m_cost(), params.t_cost(), params.p_cost()) != own {
        return Some(
            "has other Argon2 parameters than this service uses (m=19456, t=2, p=1: make it \
             with `tollgate-signin hash-password`); a different cost makes its sign-in time \
             tell that the account exists",
        );
    }
    if parsed.version.is_some_and(|v| v != 0x13) {
        return Some("is not an Argon2 version 19 hash");
    }
    None
}

/// Whether `password` matches `hash` (a string [`hash_problem`] accepted).
pub fn verify(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let blocks = params.block_count();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut computed = vec![0u8; expected.len()];
    let done = POOL.with(blocks, |memory| {
        argon2.hash_password_into_with_memory(password.as_bytes(), salt, &mut computed, memory)
    });
    done.is_ok() && subtle::ConstantTimeEq::ct_eq(&computed[..], expected.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_salted_argon2id_and_verify() {
        let a = hash("correct horse").unwrap();
        let b = hash("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert_eq!(hash_problem(&a), None);
        assert!(verify("correct horse", &a));
        assert!(!verify("correct horsE", &a));
        assert!(!verify("", &a));
    }

    #[test]
    fn checks_at_once_reuse_a_bounded_pool_of_memory() {
        let hashed = hash("correct horse").unwrap();
        std::thread::scope(|scope| {
            for _ in 0..3 * MEMORY_SETS {
                scope.spawn(|| {
                    for _ in 0..2 {
                        assert!(verify("correct horse", &hashed));
                        assert!(!verify("wrong horse", &hashed));
                    }
                });
            }
        });
        assert!(POOL.made() <= MEMORY_SETS, "{} sets made", POOL.made());
    }

    #[test]
    fn other_strings_are_refused_as_hashes() {
        assert!(hash_problem("demo-password").is_some());
        assert!(hash_problem("").is_some());
        let argon2i = "$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$ZWRudnRrY2R0bW0";
        assert_eq!(hash_problem(argon2i), Some("is not an Argon2id hash"));
    }

    #[test]
    fn hashes_weaker_than_the_services_own_are_refused() {
        // The same password, salt and output length; only the parameters differ.
        let weak = [
            "$argon2id$v=19$m=8,t=1,p=1$OrSSSYkdk89x5cyJiV7JLg$dftFGOlIG7pqOP2GlnbK2rFr2fuq73sBlPuA2o9RWUQ",
            "$argon2id$v=19$m=19456,t=1,p=1$OrSSSYkdk89x5cyJiV7JLg$dftFGOlIG7pqOP2GlnbK2rFr2fuq73sBlPuA2o9RWUQ",
            "$argon2id$v=19$m=4096,t=2,p=1$OrSSSYkdk89x5cyJiV7JLg$dftFGOlIG7pqOP2GlnbK2rFr2fuq73sBlPuA2o9RWUQ",
        ];
        for hash in weak {
            let problem = hash_problem(hash).unwrap_or_default();
            assert!(
                problem.contains("weaker Argon2 parameters"),
                "{hash}: {problem:?}"
            );
        }
        // Stronger is refused too (an outside attack found it): its sign-in answers slower than
        // an unknown user's, and a huge memory cost lets one attempt allocate gigabytes.
        for other in [
            "$argon2id$v=19$m=65536,t=3,p=4$OrSSSYkdk89x5cyJiV7JLg$dftFGOlIG7pqOP2GlnbK2rFr2fuq73sBlPuA2o9RWUQ",
            "$argon2id$v=19$m=4194304,t=100,p=1$OrSSSYkdk89x5cyJiV7JLg$dftFGOlIG7pqOP2GlnbK2rFr2fuq73sBlPuA2o9RWUQ",
            "$argon2id$v=16$m=19456,t=2,p=1$OrSSSYkdk89x5cyJiV7JLg$dftFGOlIG7pqOP2GlnbK2rFr2fuq73sBlPuA2o9RWUQ",
        ] {
            assert!(hash_problem(other).is_some(), "{other}");
        }
        assert_eq!(hash_problem(&hash("a password").unwrap()), None);
    }
}
