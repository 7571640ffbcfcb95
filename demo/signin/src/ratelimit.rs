//! Brute-force protection: failed sign-ins counted in fixed windows, per account from one
//! client address, per address, and per account from every address.
//!
//! - An account from one address: past `per_account` failures, that address is refused for
//!   that account (429) until the window ends.
//! - An address: past `per_address` failures (any accounts), it is refused.
//! - An account from every address: past `account_budget` failures, only addresses that have
//!   not failed on it in the window may still try it (one guess each). Nobody can lock an
//!   owner out: an address that has not failed on the account is never refused for it, and
//!   the owner's right password works from there.
//!
//! An account is counted under a digest of its username exactly as typed, the form the user
//! lookup compares (usernames are case-sensitive): failures as `DEMO` do not count for
//! `demo`. Each attempt is counted (reserved) before its password is checked, so that
//! parallel attempts cannot run more checks than the limits; a success gives its
//! reservation back. Addresses are compared as IPv4 when they are IPv4-mapped IPv6
//! (`::ffff:a.b.c.d`, as a dual-stack listener sees IPv4 clients), an IPv6 address by its
//! /64. The counters are per process: instances sharing a database each count their own.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use crate::settings::SignInLimits;

/// The most counters kept; beyond it, finished windows are dropped first, then the
/// per-(account, address) counters (the address and account counters still hold).
const MAX_ENTRIES: usize = 200_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Pair([u8; 32], IpAddr),
    Address(IpAddr),
    Account([u8; 32]),
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

/// The address a client is compared and counted by: IPv4 for an IPv4-mapped IPv6 address.
pub fn canonical(address: IpAddr) -> IpAddr {
    address.to_canonical()
}

/// The block one client usually holds whole: an IPv4 address, or an IPv6 /64.
pub fn client_block(address: IpAddr) -> IpAddr {
    match canonical(address) {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        v4 => v4,
    }
}

impl Limiter {
    pub fn new(limits: SignInLimits) -> Limiter {
        Limiter {
            limits,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// The counters of a sign-in: (account, address), address, account.
    fn keys(account: &str, address: IpAddr) -> [Key; 3] {
        let account = hmac_sha256::Hash::hash(account.as_bytes());
        let address = client_block(address);
        [
            Key::Pair(account, address),
            Key::Address(address),
            Key::Account(account),
        ]
    }

    /// The failures counted under `key` in its window at `now`, and when that window ends.
    fn current(windows: &HashMap<Key, Window>, key: &Key, window: u64, now: u64) -> (u32, u64) {
        match windows.get(key) {
            Some(w) if w.start.saturating_add(window) > now => {
                (w.failures, w.start.saturating_add(window))
            }
            _ => (0, now.saturating_add(window)),
        }
    }

    /// Reserves one attempt for `account` from `address`, counted as a failure until
    /// [`Limiter::succeeded`] gives it back; `Err(seconds)` when it must wait that long
    /// before trying again (then nothing is counted).
    pub fn reserve(&self, account: &str, address: IpAddr, now: u64) -> Result<(), u64> {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let window = self.limits.window_seconds;
        let keys = Self::keys(account, address);
        let [pair, by_address, by_account] =
            keys.map(|key| Self::current(&windows, &key, window, now));
        let limits = &self.limits;
        let refused = [
            (pair.0 >= limits.per_account, pair.1),
            (by_address.0 >= limits.per_address, by_address.1),
            // Past the account's budget, only an address that has not failed on it may try.
            (
                by_account.0 >= limits.account_budget && pair.0 > 0,
                by_account.1,
            ),
        ];
        let wait = refused
            .iter()
            .filter(|(refused, _)| *refused)
            .map(|(_, ends)| ends.saturating_sub(now).max(1))
            .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        if windows.len() >= MAX_ENTRIES {
            windows.retain(|_, w| w.start.saturating_add(window) > now);
        }
        if windows.len() >= MAX_ENTRIES {
            windows.retain(|key, _| !matches!(key, Key::Pair(..)));
        }
        for key in keys {
            bump(&mut windows, key, window, now);
        }
        Ok(())
    }

    /// A successful sign-in: the failures of its account from its address are cleared, and
    /// the reservation given back to the address and the account (their earlier failures
    /// stay counted: an owner signing in does not renew an attacker's budget).
    pub fn succeeded(&self, account: &str, address: IpAddr) {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let [pair, by_address, by_account] = Self::keys(account, address);
        windows.remove(&pair);
        for key in [by_address, by_account] {
            if let Some(w) = windows.get_mut(&key) {
                w.failures = w.failures.saturating_sub(1);
            }
        }
    }

    /// Whether `address` may try an admin key now; `Err(seconds)` when it must wait. A wrong
    /// key is counted with [`Limiter::admin_failed`], against the address's sign-in limit.
    pub fn admin_allowed(&self, address: IpAddr, now: u64) -> Result<(), u64> {
        let windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let window = self.limits.window_seconds;
        let key = Key::Address(client_block(address));
        let (failures, ends) = Self::current(&windows, &key, window, now);
        if failures >= self.limits.per_address {
            return Err(ends.saturating_sub(now).max(1));
        }
        Ok(())
    }

    /// A wrong admin key from `address`.
    pub fn admin_failed(&self, address: IpAddr, now: u64) {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let window = self.limits.window_seconds;
        if windows.len() >= MAX_ENTRIES {
            windows.retain(|_, w| w.start.saturating_add(window) > now);
        }
        bump(
            &mut windows,
            Key::Address(client_block(address)),
            window,
            now,
        );
    }
}

/// Counts one failure under `key` (in a new window when its window has ended).
fn bump(windows: &mut HashMap<Key, Window>, key: Key, window: u64, now: u64) {
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

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn limiter() -> Limiter {
        Limiter::new(SignInLimits {
            per_account: 3,
            per_address: 5,
            account_budget: 10,
            window_seconds: 60,
        })
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn an_account_is_refused_to_one_address_after_its_limit_until_the_window_ends() {
        let l = limiter();
        for _ in 0..3 {
            assert_eq!(l.reserve("demo", ip(1), NOW), Ok(()));
        }
        assert_eq!(l.reserve("demo", ip(1), NOW + 10), Err(50));
        assert_eq!(l.reserve("other", ip(1), NOW + 10), Ok(()));
        assert_eq!(
            l.reserve("demo", ip(2), NOW + 10),
            Ok(()),
            "another address"
        );
        assert_eq!(l.reserve("demo", ip(1), NOW + 60), Ok(()));
    }

    #[test]
    fn guesses_from_many_addresses_never_lock_out_an_address_that_has_not_failed() {
        let l = limiter();
        for i in 0..40 {
            let _ = l.reserve("demo", ip(i), NOW);
        }
        // Past the budget, an address that failed on the account is refused for it...
        assert_eq!(l.reserve("demo", ip(0), NOW + 1), Err(59));
        assert_eq!(l.reserve("demo", ip(39), NOW + 1), Err(59));
        // ...and one that has not may try, and sign in.
        assert_eq!(l.reserve("demo", ip(200), NOW + 1), Ok(()));
        l.succeeded("demo", ip(200));
        assert_eq!(l.reserve("demo", ip(200), NOW + 2), Ok(()));
        l.succeeded("demo", ip(200));
        // The owner's success does not renew the budget for the guessing addresses.
        assert_eq!(l.reserve("demo", ip(11), NOW + 2), Err(58));
    }

    #[test]
    fn an_address_is_refused_after_its_limit_whatever_the_account() {
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
    fn ipv4_mapped_clients_are_counted_as_their_ipv4_address() {
        let l = limiter();
        let mapped =
            |last: u8| IpAddr::from(std::net::Ipv4Addr::new(10, 0, 0, last).to_ipv6_mapped());
        for i in 0..5 {
            l.reserve(&format!("user{i}"), mapped(1), NOW).unwrap();
        }
        assert_eq!(l.reserve("fresh", mapped(1), NOW), Err(60));
        assert_eq!(l.reserve("fresh", ip(1), NOW), Err(60), "the same client");
        // Another IPv4 client is not in the same /64.
        assert_eq!(l.reserve("fresh", mapped(2), NOW), Ok(()));
        assert_eq!(client_block(mapped(7)), ip(7));
    }

    #[test]
    fn success_clears_the_account_from_that_address() {
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
        for _ in 0..3 {
            l.reserve("DEMO", ip(1), NOW).unwrap();
        }
        assert_eq!(l.reserve("DEMO", ip(1), NOW), Err(60));
        assert_eq!(l.reserve("Demo", ip(1), NOW), Ok(()));
        assert_eq!(l.reserve("demo", ip(1), NOW), Ok(()));
    }

    #[test]
    fn an_attempt_is_counted_before_its_check_and_a_success_gives_it_back() {
        let l = limiter();
        for _ in 0..3 {
            l.reserve("demo", ip(1), NOW).unwrap();
        }
        assert_eq!(l.reserve("demo", ip(1), NOW), Err(60), "3 checks in flight");
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

    #[test]
    fn wrong_admin_keys_count_against_the_address() {
        let l = limiter();
        for _ in 0..5 {
            assert_eq!(l.admin_allowed(ip(1), NOW), Ok(()));
            l.admin_failed(ip(1), NOW);
        }
        assert_eq!(l.admin_allowed(ip(1), NOW + 1), Err(59));
        assert_eq!(l.admin_allowed(ip(2), NOW + 1), Ok(()));
        assert_eq!(l.reserve("demo", ip(1), NOW + 1), Err(59));
    }
}
