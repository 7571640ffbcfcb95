//! Brute-force protection: failed sign-ins counted per account and per client address in
//! fixed windows; past the limit, attempts are refused (429) until the window ends.
//!
//! An account is counted under its username exactly as typed, the form the user lookup
//! compares (usernames are case-sensitive): failures as `DEMO` do not lock `demo` out.
//! Each attempt is counted (reserved) before its password is checked, so that parallel
//! attempts cannot run more checks than the limit; a success gives its reservation back.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use crate::settings::SignInLimits;

/// The most counters kept; beyond it, finished windows are dropped first.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: u64,
    failures: u32,
}

/// Counts failed sign-ins.
#[derive(Debug)]
pub struct Limiter {
    limits: SignInLimits,
    windows: Mutex<HashMap<Key, Window>>,
}

impl Limiter {
    pub fn new(limits: SignInLimits) -> Limiter {
        Limiter {
            limits,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// The counters a sign-in counts against: its account, and its address (an IPv6
    /// address by its /64, which one client usually holds whole).
    fn keys(account: &str, address: IpAddr) -> [(Key, bool); 2] {
        let address = match address {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
            v4 => v4,
        };
        [
            (Key::Account(account.to_owned()), true),
            (Key::Address(address), false),
        ]
    }

    /// Reserves one attempt for `account` from `address`, counted as a failure until
    /// [`Limiter::succeeded`] gives it back; `Err(seconds)` when either must wait that long
    /// before trying again (then nothing is counted).
    pub fn reserve(&self, account: &str, address: IpAddr, now: u64) -> Result<(), u64> {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let window = self.limits.window_seconds;
        let keys = Self::keys(account, address);
        let mut wait = 0;
        for (key, is_account) in &keys {
            let limit = self.limit(*is_account);
            if let Some(w) = windows.get(key) {
                let ends = w.start.saturating_add(window);
                if w.failures >= limit && ends > now {
                    wait = wait.max(ends - now);
                }
            }
        }
        if wait > 0 {
            return Err(wait);
        }
        if windows.len() >= MAX_ENTRIES {
            windows.retain(|_, w| w.start.saturating_add(window) > now);
        }
        for (key, _) in keys {
            let w = windows.entry(key).or_insert(Window {
                start: now,
                failures: 0,
            });
            if w.start.saturating_add(window) <= now {
                *w = Window {
                    start: now,
                    failures: 0,
                };
            }
            w.failures = w.failures.saturating_add(1);
        }
        Ok(())
    }

    /// A successful sign-in: its account's failures are cleared, and its address's
    /// reservation given back (the address's earlier failures stay counted).
    pub fn succeeded(&self, account: &str, address: IpAddr) {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let [(account, _), (address, _)] = Self::keys(account, address);
        windows.remove(&account);
        if let Some(w) = windows.get_mut(&address) {
            w.failures = w.failures.saturating_sub(1);
        }
    }

    fn limit(&self, is_account: bool) -> u32 {
        if is_account {
            self.limits.per_account
        } else {
            self.limits.per_address
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn limiter() -> Limiter {
        Limiter::new(SignInLimits {
            per_account: 3,
            per_address: 5,
            window_seconds: 60,
        })
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn an_account_is_locked_after_its_limit_until_the_window_ends() {
        let l = limiter();
        for i in 0..3 {
            assert_eq!(l.reserve("demo", ip(i), NOW), Ok(()));
        }
        assert_eq!(l.reserve("demo", ip(9), NOW + 10), Err(50));
        assert_eq!(l.reserve("other", ip(9), NOW + 10), Ok(()));
        assert_eq!(l.reserve("demo", ip(9), NOW + 60), Ok(()));
    }

    #[test]
    fn an_address_is_locked_after_its_limit_whatever_the_account() {
        let l = limiter();
        for i in 0..5 {
            l.reserve(&format!("user{i}"), ip(1), NOW).unwrap();
        }
        assert_eq!(l.reserve("fresh", ip(1), NOW), Err(60));
        assert_eq!(l.reserve("fresh", ip(2), NOW), Ok(()));
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64() {
        let l = limiter();
        for i in 0..5u16 {
            let address = IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, i]);
            l.reserve(&format!("user{i}"), address, NOW).unwrap();
        }
        let same_64 = IpAddr::from([0x2001, 0xdb8, 0, 1, 0xffff, 0, 0, 9]);
        assert_eq!(l.reserve("fresh", same_64, NOW), Err(60));
        let other_64 = IpAddr::from([0x2001, 0xdb8, 0, 2, 0, 0, 0, 1]);
        assert_eq!(l.reserve("fresh", other_64, NOW), Ok(()));
    }

    #[test]
    fn success_clears_the_account() {
        let l = limiter();
        l.reserve("demo", ip(1), NOW).unwrap();
        l.reserve("demo", ip(1), NOW).unwrap();
        l.reserve("demo", ip(1), NOW).unwrap();
        l.succeeded("demo", ip(1));
        l.reserve("demo", ip(1), NOW).unwrap();
        l.reserve("demo", ip(1), NOW).unwrap();
        assert_eq!(l.reserve("demo", ip(1), NOW), Ok(()));
    }

    #[test]
    fn another_spelling_of_an_account_does_not_lock_it_out() {
        let l = limiter();
        for i in 0..3 {
            l.reserve("DEMO", ip(i), NOW).unwrap();
        }
        assert_eq!(l.reserve("DEMO", ip(9), NOW), Err(60));
        assert_eq!(l.reserve("Demo", ip(9), NOW), Ok(()));
        assert_eq!(l.reserve("demo", ip(9), NOW), Ok(()));
    }

    #[test]
    fn an_attempt_is_counted_before_its_check_and_a_success_gives_it_back() {
        let l = limiter();
        for _ in 0..3 {
            l.reserve("demo", ip(1), NOW).unwrap();
        }
        assert_eq!(l.reserve("demo", ip(2), NOW), Err(60), "3 checks in flight");
        let l = limiter();
        for _ in 0..10 {
            l.reserve("demo", ip(1), NOW).unwrap();
            l.succeeded("demo", ip(1));
        }
        assert_eq!(
            l.reserve("other", ip(1), NOW),
            Ok(()),
            "successes are not failures"
        );
    }
}
