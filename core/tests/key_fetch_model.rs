//! A model of the issuer-key fetcher, run against an oracle: the core's timing and lease
//! ([`FetchRecord`]) and held-request policy ([`Waiting`]) drive two simulated workers that
//! share one record, facing a fake provider that rotates keys (adding, or dropping the old
//! ones), fails, answers slowly (past the timeout, too) and answers what it had when asked
//! (a slow answer can be older than a rotation). Requests carry tokens signed with keys the
//! provider published. Random sequences with fixed seeds, hundreds of runs.
//!
//! What must hold:
//! - a token of a key published before the request, and still published, is never refused
//!   once a fetch that started after its publication completed before the request came;
//! - when the provider answers well and quickly, a token of a key published before the
//!   request is refused only if an unknown-kid fetch started in the 30 s before it came (a
//!   rotation never fails a request otherwise);
//! - unknown-kid fetches are at least 30 s apart; one fetch runs at a time;
//! - the version moves only when the stored keys change.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::BTreeSet;

use tollgate_core::fetch::{
    FetchReason, FetchRecord, FETCH_TIMEOUT_MS, MAX_WAIT_MS, UNKNOWN_KID_INTERVAL_MS,
};
use tollgate_core::held::Waiting;
use tollgate_core::verify::issuer::KeysNeeded;
use tollgate_testkit::rng::Rng;

const REFRESH_MS: u64 = 20_000;
const TICK_MS: u64 = 100;
const WORKERS: usize = 2;

type Keys = BTreeSet<u32>;

/// The provider: its keys with when each was published, and how it answers now.
struct Provider {
    published: Vec<(u32, u64)>,
    dropped: BTreeSet<u32>,
    next_kid: u32,
    failing: bool,
    /// The latency of an answer, milliseconds (beyond the timeout: no answer).
    latency: u64,
}

impl Provider {
    fn keys(&self) -> Keys {
        self.published
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| !self.dropped.contains(k))
            .collect()
    }
    fn published_at(&self, kid: u32) -> u64 {
        self.published.iter().find(|(k, _)| *k == kid).unwrap().1
    }
}

struct Fetch {
    started: u64,
    reason: FetchReason,
    /// When the answer comes, and what it is (the keys the provider had when asked).
    at: u64,
    answer: Option<Keys>,
}

struct Held {
    kid: u32,
    waiting: Waiting,
}

#[derive(Default)]
struct Worker {
    installed: Option<(u64, Keys)>,
    held: Vec<Held>,
    fetch: Option<Fetch>,
}

impl Worker {
    fn version(&self) -> u64 {
        self.installed.as_ref().map_or(0, |(v, _)| *v)
    }
    /// A request's decision with the keys installed: accepted, or what it waits for.
    fn decide(&self, kid: u32) -> Result<(), KeysNeeded> {
        match &self.installed {
            None => Err(KeysNeeded::NeverFetched),
            Some((_, keys)) if keys.contains(&kid) => Ok(()),
            Some(_) => Err(KeysNeeded::UnknownKid),
        }
    }
}

/// What happened to one request.
struct Verdict {
    kid: u32,
    arrived: u64,
    accepted: bool,
}

struct World {
    rng: Rng,
    now: u64,
    provider: Provider,
    record: FetchRecord,
    stored: Keys,
    workers: Vec<Worker>,
    /// Good fetches: (started, completed).
    good: Vec<(u64, u64)>,
    unknown_kid_starts: Vec<u64>,
    verdicts: Vec<Verdict>,
    /// Whether the provider only ever answers well and quickly in this run.
    healthy: bool,
}

impl World {
    fn new(seed: u64) -> World {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let healthy = rng.chance(50);
        let now = 1_000_000;
        World {
            rng,
            now,
            provider: Provider {
                published: vec![(1, now - 1)],
                dropped: BTreeSet::new(),
                next_kid: 2,
                failing: false,
                latency: 20,
            },
            record: FetchRecord::default(),
            stored: Keys::new(),
            workers: (0..WORKERS).map(|_| Worker::default()).collect(),
            good: Vec::new(),
            unknown_kid_starts: Vec::new(),
            verdicts: Vec::new(),
            healthy,
        }
    }

    fn finish(&mut self, verdict: Verdict) {
        self.verdicts.push(verdict);
    }

    /// Decides a request (new or held) on worker `w`: accepted, refused, or held.
    fn handle(&mut self, w: usize, kid: u32, arrived: u64, before: Option<Waiting>) {
        let worker = &self.workers[w];
        let why = match worker.decide(kid) {
            Ok(()) => {
                return self.finish(Verdict {
                    kid,
                    arrived,
                    accepted: true,
                })
            }
            Err(why) => why,
        };
        let waiting = Waiting {
            why,
            since: arrived,
            deadline: before.map_or(arrived + MAX_WAIT_MS, |b| b.deadline),
            seen: worker.version(),
        };
        if waiting.ready(&self.record, worker.version(), self.now) {
            self.finish(Verdict {
                kid,
                arrived,
                accepted: false,
            });
        } else {
            self.workers[w].held.push(Held { kid, waiting });
        }
    }

    fn install(&mut self, w: usize) {
        if self.record.version > self.workers[w].version() {
            self.workers[w].installed = Some((self.record.version, self.stored.clone()));
        }
    }

    fn release_ready(&mut self, w: usize) {
        let (record, now) = (self.record, self.now);
        let version = self.workers[w].version();
        let (ready, waiting): (Vec<Held>, Vec<Held>) = std::mem::take(&mut self.workers[w].held)
            .into_iter()
            .partition(|h| h.waiting.ready(&record, version, now));
        self.workers[w].held = waiting;
        for held in ready {
            let may_wait = now < held.waiting.deadline;
            if may_wait {
                self.handle(w, held.kid, held.waiting.since, Some(held.waiting));
            } else {
                let accepted = self.workers[w].decide(held.kid).is_ok();
                let arrived = held.waiting.since;
                self.finish(Verdict {
                    kid: held.kid,
                    arrived,
                    accepted,
                });
            }
        }
    }

    fn tick(&mut self, w: usize) {
        self.install(w);
        let (record, now) = (self.record, self.now);
        let version = self.workers[w].version();
        let kid_wanted = self.workers[w]
            .held
            .iter()
            .any(|h| h.waiting.wants_kid_fetch(&record, version, now));
        if let Some(reason) = record.due(now, REFRESH_MS, kid_wanted) {
            assert!(
                self.workers.iter().all(|w| w.fetch.is_none()),
                "one fetch at a time"
            );
            self.record = record.leased(now, reason);
            if reason == FetchReason::UnknownKid {
                if let Some(last) = self.unknown_kid_starts.last() {
                    assert!(
                        now >= last + UNKNOWN_KID_INTERVAL_MS,
                        "unknown-kid fetches spaced"
                    );
                }
                self.unknown_kid_starts.push(now);
            }
            let latency = self.provider.latency;
            let answer = (!self.provider.failing && latency < FETCH_TIMEOUT_MS)
                .then(|| self.provider.keys());
            self.workers[w].fetch = Some(Fetch {
                started: now,
                reason,
                at: now + latency.min(FETCH_TIMEOUT_MS),
                answer,
            });
        }
        self.release_ready(w);
    }

    fn answer(&mut self, w: usize) {
        let Some(fetch) = self.workers[w].fetch.take() else {
            return;
        };
        let _ = fetch.reason;
        match fetch.answer {
            Some(keys) => {
                let worker = &self.workers[w];
                let same = self.record.version == worker.version()
                    && worker.installed.as_ref().is_some_and(|(_, k)| *k == keys);
                let before = self.record.version;
                self.record = self.record.fetched(self.now, fetch.started, !same);
                if self.record.version != before {
                    assert!(
                        before == 0 || keys != self.stored,
                        "the same keys bumped the version"
                    );
                    self.stored = keys;
                }
                self.good.push((fetch.started, self.now));
                self.install(w);
            }
            None => self.record = self.record.failed(),
        }
        self.release_ready(w);
    }

    fn provider_changes(&mut self) {
        let roll = self.rng.below(1000);
        let now = self.now;
        let p = &mut self.provider;
        if roll < 4 {
            // A rotation: a new key, the old ones kept or dropped.
            if self.rng.chance(30) {
                let keys = p.keys();
                p.dropped.extend(keys);
            }
            p.published.push((p.next_kid, now));
            p.next_kid += 1;
        } else if roll < 6 && !self.healthy {
            p.failing = !p.failing;
        } else if roll < 9 {
            p.latency = if self.healthy {
                self.rng.below(800)
            } else {
                self.rng.below(7_000)
            };
        }
    }

    fn step(&mut self) {
        self.now += 1 + self.rng.below(40);
        self.provider_changes();
        for w in 0..WORKERS {
            if self.workers[w]
                .fetch
                .as_ref()
                .is_some_and(|f| f.at <= self.now)
            {
                self.answer(w);
            }
        }
        // Ticks every 100 ms, each worker on its own phase.
        for w in 0..WORKERS {
            if (self.now / TICK_MS) % WORKERS as u64 == w as u64 && self.rng.chance(40) {
                self.tick(w);
            }
        }
        if self.rng.chance(30) {
            let keys = self.provider.keys();
            let kid = *keys
                .iter()
                .nth(self.rng.below(keys.len() as u64) as usize)
                .unwrap();
            let w = self.rng.below(WORKERS as u64) as usize;
            self.handle(w, kid, self.now, None);
        }
    }

    fn check(&self) {
        for v in &self.verdicts {
            if v.accepted {
                continue;
            }
            let published = self.provider.published_at(v.kid);
            let fetched_since = self
                .good
                .iter()
                .any(|(started, done)| *started >= published && *done < v.arrived);
            // A key dropped later may be refused: only keys still published are owed.
            let still = !self.provider.dropped.contains(&v.kid);
            assert!(
                !(still && fetched_since),
                "kid {} published at {published}, fetched since, refused at {}",
                v.kid,
                v.arrived
            );
            if self.healthy && still && published < v.arrived {
                let spent = self
                    .unknown_kid_starts
                    .iter()
                    .any(|s| *s < v.arrived && v.arrived < s + UNKNOWN_KID_INTERVAL_MS);
                assert!(
                    spent,
                    "kid {} published at {published} refused at {} with the unknown-kid fetch unspent",
                    v.kid, v.arrived
                );
            }
        }
    }
}

#[test]
fn the_key_fetcher_keeps_its_promises_under_random_provider_behaviour() {
    let mut requests = 0;
    let mut refused = 0;
    for seed in 0..300 {
        let mut world = World::new(seed);
        for _ in 0..6_000 {
            world.step();
        }
        world.check();
        requests += world.verdicts.len();
        refused += world.verdicts.iter().filter(|v| !v.accepted).count();
    }
    // The runs exercised something: many requests, some refused (failing providers).
    assert!(requests > 100_000, "{requests}");
    assert!(refused > 0);
}
