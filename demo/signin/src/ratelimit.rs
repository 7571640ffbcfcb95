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
//! /64. The counters are kept in the database (`store/failures.rs`), shared by every
//! instance on the file: two instances allow no more guesses than one.

use std::net::IpAddr;

use crate::settings::SignInLimits;
use crate::store::{Store, Stored};

/// Counts failed sign-ins (in the database: see `store/failures.rs`).
#[derive(Debug)]
pub struct Limiter {
    limits: SignInLimits,
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

fn address_key(address: IpAddr) -> String {
    format!("address {}", client_block(address))
}

impl Limiter {
    pub fn new(limits: SignInLimits) -> Limiter {
        Limiter { limits }
    }

    /// The counters of a sign-in: (account, address), address, account.
    fn keys(account: &str, address: IpAddr) -> [String; 3] {
        let account = crate::random::encode(&hmac_sha256::Hash::hash(account.as_bytes()));
        let block = client_block(address);
        [
            format!("pair {account} {block}"),
            address_key(address),
            format!("account {account}"),
        ]
    }

    /// Reserves one attempt for `account` from `address`, counted as a failure until
    /// [`Limiter::succeeded`] gives it back; `Err(seconds)` when it must wait that long
    /// before trying again (then nothing is counted).
    pub fn reserve(
        &self,
        store: &Store,
        account: &str,
        address: IpAddr,
        now: u64,
    ) -> Stored<Result<(), u64>> {
        let limits = &self.limits;
        let keys = Self::keys(account, address);
        store.count_failures(&keys, limits.window_seconds, now, |counts| {
            let [pair, by_address, by_account] = [0, 1, 2].map(|i| {
                counts
                    .get(i)
                    .copied()
                    .unwrap_or((u32::MAX, now.saturating_add(1)))
            });
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
            match wait {
                Some(wait) => Err(wait),
                None => Ok(true),
            }
        })
    }

    /// A successful sign-in: the failures of its account from its address are cleared, and
    /// the reservation given back to the address and the account (their earlier failures
    /// stay counted: an owner signing in does not renew an attacker's budget).
    pub fn succeeded(&self, store: &Store, account: &str, address: IpAddr) -> Stored<()> {
        let [pair, by_address, by_account] = Self::keys(account, address);
        store.forgive_failures(&[pair], &[by_address, by_account])
    }

    /// Whether `address` may try an admin key now; `Err(seconds)` when it must wait. A wrong
    /// key is counted with [`Limiter::admin_failed`], against the address's sign-in limit.
    pub fn admin_allowed(
        &self,
        store: &Store,
        address: IpAddr,
        now: u64,
    ) -> Stored<Result<(), u64>> {
        let limit = self.limits.per_address;
        let keys = [address_key(address)];
        store.count_failures(
            &keys,
            self.limits.window_seconds,
            now,
            |counts| match counts.first() {
                Some(&(failures, ends)) if failures >= limit => {
                    Err(ends.saturating_sub(now).max(1))
                }
                _ => Ok(false),
            },
        )
    }

    /// A wrong admin key from `address`.
    pub fn admin_failed(&self, store: &Store, address: IpAddr, now: u64) -> Stored<()> {
        let keys = [address_key(address)];
        let window = self.limits.window_seconds;
        store
            .count_failures::<()>(&keys, window, now, |_| Ok(true))
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const NOW: u64 = 1_800_000_000;

    /// A limiter on a database of its own; every call must reach the database.
    struct Counted(Limiter, Store);

    impl Counted {
        fn reserve(&self, account: &str, address: IpAddr, now: u64) -> Result<(), u64> {
            self.0.reserve(&self.1, account, address, now).unwrap()
        }

        fn succeeded(&self, account: &str, address: IpAddr) {
            self.0.succeeded(&self.1, account, address).unwrap();
        }

        fn admin_allowed(&self, address: IpAddr, now: u64) -> Result<(), u64> {
            self.0.admin_allowed(&self.1, address, now).unwrap()
        }

        fn admin_failed(&self, address: IpAddr, now: u64) {
            self.0.admin_failed(&self.1, address, now).unwrap();
        }
    }

    fn limiter() -> Counted {
        let limits = SignInLimits {
            per_account: 3,
            per_address: 5,
            account_budget: 10,
            window_seconds: 60,
        };
        let store = Store::open(":memory:", crate::store::Caps::default()).unwrap();
        Counted(Limiter::new(limits), store)
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

    #[test]
    fn two_processes_on_one_database_share_the_counts() {
        let db = crate::store::tests::TempDb::new("failures");
        let limits = SignInLimits {
            per_account: 3,
            ..SignInLimits::default()
        };
        let open = || Store::open(db.path(), crate::store::Caps::default()).unwrap();
        let (a, b) = (open(), open());
        let l = Limiter::new(limits);
        for store in [&a, &b, &a] {
            assert_eq!(l.reserve(store, "demo", ip(1), NOW).unwrap(), Ok(()));
        }
        assert_eq!(l.reserve(&b, "demo", ip(1), NOW).unwrap(), Err(900));
        // Ended windows are deleted as others are written.
        l.reserve(&a, "other", ip(2), NOW + 900).unwrap().unwrap();
        assert_eq!(a.failure_rows(), 3);
    }
}
