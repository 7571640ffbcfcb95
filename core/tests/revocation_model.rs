//! The revocation feed's poller ([`tollgate_core::feed_poll`]) against a model: a fake feed
//! that pages, resets over several pages, restarts (every cursor then gets a reset), leaves
//! gaps (empty pages that say more follows), fails, gives back the cursor it was asked,
//! goes back to a cursor asked before in cycles, answers slowly or after the poll's lease ran out; two Envoy processes of 1 or 2 workers
//! each (the second started later) share nothing but the feed. Random runs from fixed seeds.
//!
//! The oracle, checked on every worker after every tick:
//! - an entry the Envoy applied refuses until no token it covers can be valid (its
//!   `expires_at`, or for a subject its `before` plus `max_lifetime_seconds`, plus the
//!   clock skew), whatever pages came since;
//! - once the feed has answered well for a while, every live entry it served a poll period
//!   ago refuses, and the list is fresh;
//! - a token nothing revokes passes.

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::rc::Rc;

use serde_json::json;
use tollgate_core::config::RevocationFeed;
use tollgate_core::feed_poll::{FeedPoller, Outcome, SharedFeed};
use tollgate_core::fetch::{FetchRecord, FETCH_TIMEOUT_MS};
use tollgate_core::verify::revocation::TokenMarks;
use tollgate_core::worker::Revocations;
use tollgate_testkit::rng::Rng;

const SKEW: u64 = 5;
const MAX_LIFETIME: u64 = 40;
const POLL_SECONDS: u64 = 1;
const TICK_MS: u64 = 100;
const STEPS: u64 = 600;
const SEEDS: u64 = 200;
const START_MS: u64 = 1_700_000_000_000;
/// The latest a worker reads an answer: the call's timeout and a busy worker's delay.
const MAX_LATE_MS: u64 = FETCH_TIMEOUT_MS + BUSY_MS;
const BUSY_MS: u64 = 4_000;

/// One revocation the feed holds: a token by `jti`, or a subject's tokens before a time.
#[derive(Debug, Clone)]
struct Item {
    name: String,
    subject_before: Option<u64>,
    expires_at: u64,
    added_ms: u64,
}

impl Item {
    /// Until when (unix seconds, excluded) the filter must refuse what it covers.
    fn must_refuse_until(&self) -> u64 {
        let lasts = match self.subject_before {
            Some(before) => self.expires_at.max(before + MAX_LIFETIME),
            None => self.expires_at,
        };
        lasts + SKEW
    }

    fn marks(&self) -> TokenMarks {
        match self.subject_before {
            Some(before) => marks(&self.name, None, before - 1),
            None => marks("someone", Some(&self.name), 0),
        }
    }

    fn entry(&self) -> serde_json::Value {
        match self.subject_before {
            Some(before) => {
                json!({"subject": self.name, "before": before, "expires_at": self.expires_at})
            }
            None => json!({"jti": self.name, "expires_at": self.expires_at}),
        }
    }
}

fn marks(subject: &str, jti: Option<&str>, issued_at: u64) -> TokenMarks {
    TokenMarks {
        issuer: None,
        subject: Rc::from(subject),
        jti: jti.map(Rc::from),
        issued_at: Some(issued_at),
        digest: TokenMarks::digest_of(&format!("{subject}.{jti:?}")),
    }
}

/// The fake feed: positions (a gap is a position without an entry); a cursor is
/// `<epoch>-<position>`, and a cursor of another epoch gets a reset.
struct Provider {
    epoch: u64,
    positions: Vec<Option<Item>>,
    page_size: usize,
    added: u64,
}

impl Provider {
    /// Drops what no token can need any more (the feed may, at `must_refuse_until`): a gap.
    fn expire(&mut self, now_s: u64) {
        for position in &mut self.positions {
            if position
                .as_ref()
                .is_some_and(|i| i.must_refuse_until() < now_s)
            {
                *position = None;
            }
        }
    }

    /// A restart: positions compacted, every cursor given before gets a reset.
    fn restart(&mut self) {
        self.positions.retain(Option::is_some);
        self.epoch += 1;
    }

    fn live(&self) -> impl Iterator<Item = &Item> {
        self.positions.iter().flatten()
    }

    /// The page for `cursor` (empty: none): its body and the items it carries.
    fn page(&self, cursor: &str) -> (serde_json::Value, Vec<Item>) {
        let seen = cursor.split_once('-').and_then(|(e, n)| {
            (e.parse::<u64>().ok()? == self.epoch).then_some(n.parse::<usize>().ok()?)
        });
        let (reset, from) = match seen {
            Some(n) if n <= self.positions.len() => (false, n),
            _ => (true, 0),
        };
        let to = self.positions.len().min(from + self.page_size);
        let items: Vec<Item> = self.positions[from..to].iter().flatten().cloned().collect();
        let page = json!({
            "cursor": format!("{}-{to}", self.epoch),
            "reset": reset,
            "more": to < self.positions.len(),
            "revoked": items.iter().map(Item::entry).collect::<Vec<_>>(),
        });
        (page, items)
    }
}

/// One Envoy process's shared data.
#[derive(Default)]
struct Shared {
    record: FetchRecord,
    cas: u32,
    list: Option<Vec<u8>>,
    overflowed: bool,
}

impl SharedFeed for Shared {
    fn record(&self) -> (FetchRecord, Option<u32>) {
        (self.record, Some(self.cas))
    }

    fn write_record(&mut self, record: &FetchRecord, cas: Option<u32>) -> bool {
        if cas.is_some_and(|c| c != self.cas) {
            return false;
        }
        self.record = *record;
        self.cas += 1;
        true
    }

    fn list(&self) -> Option<Vec<u8>> {
        self.list.clone()
    }

    fn write_list(&mut self, list: &[u8]) {
        self.list = Some(list.to_vec());
    }

    fn overflowed(&self) -> bool {
        self.overflowed
    }

    fn set_overflowed(&mut self, overflowed: bool) {
        self.overflowed = overflowed;
    }
}

/// An answer on its way: when the worker reads it, what it is, the items it carries.
struct Pending {
    at_ms: u64,
    answer: Result<Vec<u8>, String>,
    items: Vec<Item>,
}

struct Worker {
    poller: FeedPoller,
    state: Revocations,
    pending: Option<Pending>,
    /// Items this worker applied and has not shared yet (a run shares its pages at its end
    /// or once a second): owed by this worker only, until it installs another list.
    unshared: HashMap<String, Item>,
    /// The cursor asked before the last one (for the feed that answers in cycles).
    asked_before: String,
    asked: String,
}

struct Envoy {
    shared: Shared,
    workers: Vec<Worker>,
    /// Every item some page applied here carried: it refuses until its time.
    applied: HashMap<String, Item>,
    /// When the last poll whose answer may be faulty or late was sent.
    stormy_poll_ms: u64,
}

fn feed_config() -> RevocationFeed {
    RevocationFeed {
        cluster: "feed".into(),
        path: "/revocations".into(),
        authority: "feed".into(),
        poll_seconds: POLL_SECONDS,
        fail_closed_after: None,
        max_lifetime: MAX_LIFETIME,
    }
}

impl Envoy {
    fn start(workers: u64, now_ms: u64) -> Envoy {
        let mut envoy = Envoy {
            shared: Shared::default(),
            workers: Vec::new(),
            applied: HashMap::new(),
            stormy_poll_ms: now_ms,
        };
        for _ in 0..workers {
            let mut state = Revocations {
                fresh_at: now_ms / 1000,
                ..Revocations::default()
            };
            let poller = FeedPoller::new(&feed_config(), SKEW);
            poller.sync(&envoy.shared, &mut state, now_ms);
            envoy.workers.push(Worker {
                poller,
                state,
                pending: None,
                unshared: HashMap::new(),
                asked_before: String::new(),
                asked: String::new(),
            });
        }
        envoy
    }
}

/// What can go wrong with one poll, drawn while the feed is not calm.
fn answer_to(
    rng: &mut Rng,
    provider: &Provider,
    cursor: &str,
    asked_before: &str,
    now_ms: u64,
    calm: bool,
) -> Pending {
    let (mut page, items) = provider.page(cursor);
    let fault = if calm { 100 } else { rng.below(100) };
    let answer = match fault {
        0..=5 => Err("answered status 500".to_owned()),
        6..=8 => Ok(b"<html>not a feed</html>".to_vec()),
        9..=10 => {
            page["cursor"] = json!("");
            Ok(page.to_string().into_bytes())
        }
        11..=13 if !cursor.is_empty() => {
            page["cursor"] = json!(cursor);
            page["more"] = json!(true);
            Ok(page.to_string().into_bytes())
        }
        // A cycle: back to the cursor asked before this one, saying more follows.
        14..=16 if !asked_before.is_empty() => {
            page["cursor"] = json!(asked_before);
            page["more"] = json!(true);
            Ok(page.to_string().into_bytes())
        }
        _ => Ok(page.to_string().into_bytes()),
    };
    let latency = if calm {
        rng.below(300)
    } else if rng.chance(10) {
        rng.below(9_000)
    } else {
        rng.below(600)
    };
    let (at_ms, answer) = if latency > FETCH_TIMEOUT_MS {
        (FETCH_TIMEOUT_MS, Err("no answer".to_owned()))
    } else {
        (latency, answer)
    };
    // The worker may be busy when its answer comes: after the lease ran out, sometimes.
    let busy = if !calm && rng.chance(20) {
        rng.below(BUSY_MS)
    } else {
        0
    };
    Pending {
        at_ms: now_ms + at_ms + busy,
        answer,
        items,
    }
}

fn run(seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut provider = Provider {
        epoch: 1,
        positions: Vec::new(),
        page_size: 1 + rng.below(6) as usize,
        added: 0,
    };
    let mut envoys = vec![Envoy::start(1 + rng.below(2), START_MS)];
    let second_at = rng.below(STEPS / 2);
    let mut calm_since: Option<u64> = None;
    for step in 0..STEPS {
        let now_ms = START_MS + step * TICK_MS;
        let now_s = now_ms / 1000;
        if step == second_at {
            envoys.push(Envoy::start(1 + rng.below(2), now_ms));
        }
        // Calm and stormy phases alternate.
        if rng.chance(1) {
            calm_since = match calm_since {
                Some(_) => None,
                None => Some(now_ms),
            };
        }
        let calm = calm_since.is_some();
        // The feed changes.
        if rng.chance(6) {
            provider.added += 1;
            let name = format!("r{}", provider.added);
            let item = if rng.chance(30) {
                Item {
                    name,
                    subject_before: Some(now_s),
                    expires_at: now_s + rng.below(10),
                    added_ms: now_ms,
                }
            } else {
                Item {
                    name,
                    subject_before: None,
                    expires_at: now_s + 1 + rng.below(30),
                    added_ms: now_ms,
                }
            };
            provider.positions.push(Some(item));
        }
        if rng.chance(3) {
            provider.positions.push(None);
        }
        provider.expire(now_s);
        if !calm && rng.chance(3) {
            provider.restart();
        }
        for envoy in &mut envoys {
            // Answers, then every worker's tick.
            for worker in &mut envoy.workers {
                if worker.pending.as_ref().is_some_and(|p| p.at_ms <= now_ms) {
                    let pending = worker.pending.take().unwrap();
                    let version = envoy.shared.record.version;
                    let outcome = worker.poller.answered(
                        &mut envoy.shared,
                        &mut worker.state,
                        pending.answer.as_deref().map_err(Clone::clone),
                        now_ms,
                    );
                    if matches!(outcome, Outcome::Applied { .. }) {
                        for item in pending.items {
                            worker.unshared.insert(item.name.clone(), item);
                        }
                    }
                    if envoy.shared.record.version > version {
                        envoy.applied.extend(worker.unshared.drain());
                    }
                }
            }
            for worker in &mut envoy.workers {
                let tick = worker
                    .poller
                    .tick(&mut envoy.shared, &mut worker.state, now_ms);
                if tick.installed.is_some() {
                    worker.unshared.clear();
                }
                if let Some(path) = tick.poll {
                    let cursor = path.split_once("?cursor=").map_or("", |(_, c)| c);
                    worker.asked_before = std::mem::replace(&mut worker.asked, cursor.to_owned());
                    let back = &worker.asked_before;
                    worker.pending =
                        Some(answer_to(&mut rng, &provider, cursor, back, now_ms, calm));
                    if !calm {
                        envoy.stormy_poll_ms = now_ms;
                    }
                }
            }
            for worker in &mut envoy.workers {
                let synced = worker.poller.sync(&envoy.shared, &mut worker.state, now_ms);
                if synced.installed.is_some() {
                    worker.unshared.clear();
                }
            }
        }
        for envoy in &mut envoys {
            envoy
                .applied
                .retain(|_, item| now_s < item.must_refuse_until());
        }
        check(seed, step, &envoys, &provider, now_ms, calm_since);
    }
}

fn check(
    seed: u64,
    step: u64,
    envoys: &[Envoy],
    provider: &Provider,
    now_ms: u64,
    calm_since: Option<u64>,
) {
    let now_s = now_ms / 1000;
    for (e, envoy) in envoys.iter().enumerate() {
        // Calm for 3 s, and the last stormy answer read (at most its timeout and a busy
        // worker's delay) long enough ago for a reset's pages (each a tick and an answer).
        let pages = (provider.positions.len() / provider.page_size) as u64 + 1;
        let settled = calm_since.is_some_and(|since| {
            now_ms >= since + 3_000
                && now_ms >= envoy.stormy_poll_ms + MAX_LATE_MS + 3_000 + pages * 400
        });
        for (w, worker) in envoy.workers.iter().enumerate() {
            let at = format!("seed {seed}, step {step}, Envoy {e}, worker {w}");
            let list = &worker.state.list;
            for item in envoy.applied.values().chain(worker.unshared.values()) {
                if now_s < item.must_refuse_until() {
                    assert!(list.revokes(&item.marks()), "{at}: applied {item:?} passes");
                }
            }
            assert!(!list.revokes(&marks("nobody", Some("never"), 0)), "{at}");
            if settled {
                for item in provider.live() {
                    if item.added_ms + 2_500 <= now_ms && now_s < item.must_refuse_until() {
                        assert!(list.revokes(&item.marks()), "{at}: served {item:?} passes");
                    }
                }
                assert!(
                    worker.state.fresh_at + POLL_SECONDS + 2 >= now_s,
                    "{at}: the list is {} s old; {:?}, version {}, polling {}, pending at {:?}",
                    now_s - worker.state.fresh_at,
                    envoy.shared.record,
                    worker.state.version,
                    worker.poller.polling(),
                    worker
                        .pending
                        .as_ref()
                        .map(|p| (p.at_ms - START_MS, p.answer.is_ok()))
                );
            }
        }
    }
}

#[test]
fn every_revocation_the_oracle_holds_refuses_at_every_step() {
    for seed in 1..=SEEDS {
        run(seed);
    }
}
