//! The poller against a shared store in memory.

use super::*;
use crate::fetch::LEASE_MS;

#[derive(Default)]
struct Store {
    record: FetchRecord,
    cas: u32,
    list: Option<Vec<u8>>,
    overflowed: bool,
    /// Lists written.
    writes: usize,
}

impl SharedFeed for Store {
    fn record(&self) -> (FetchRecord, Option<u32>) {
        (self.record, Some(self.cas))
    }
    fn write_record(&mut self, record: &FetchRecord, cas: Option<u32>) -> bool {
        let ok = cas == Some(self.cas);
        if ok {
            self.record = *record;
            self.cas += 1;
        }
        ok
    }
    fn list(&self) -> Option<Vec<u8>> {
        self.list.clone()
    }
    fn write_list(&mut self, list: &[u8]) {
        self.list = Some(list.to_vec());
        self.writes += 1;
    }
    fn overflowed(&self) -> bool {
        self.overflowed
    }
    fn set_overflowed(&mut self, overflowed: bool) {
        self.overflowed = overflowed;
    }
}

fn feed() -> RevocationFeed {
    RevocationFeed {
        cluster: "feed".into(),
        path: "/r".into(),
        authority: "feed".into(),
        poll_seconds: 1,
        fail_closed_after: None,
        max_lifetime: 3600,
    }
}

const T: u64 = 1_700_000_000_000;

#[test]
fn an_answer_after_its_lease_ran_out_is_dropped() {
    let mut store = Store::default();
    let (mut a, mut b) = (FeedPoller::new(&feed(), 0), FeedPoller::new(&feed(), 0));
    let (mut wa, mut wb) = (Revocations::default(), Revocations::default());
    assert_eq!(a.tick(&mut store, &mut wa, T).poll.as_deref(), Some("/r"));
    assert_eq!(
        b.tick(&mut store, &mut wb, T).poll,
        None,
        "one poll per process"
    );
    // A's answer is late: its lease runs out, B polls and applies a newer list.
    let later = T + LEASE_MS;
    assert!(b.tick(&mut store, &mut wb, later).poll.is_some());
    let newer = br#"{"cursor":"2","reset":true,"revoked":[{"jti":"new","expires_at":1800000000}]}"#;
    let applied = b.answered(&mut store, &mut wb, Ok(newer), later);
    assert!(matches!(applied, Outcome::Applied { .. }), "{applied:?}");
    let old = br#"{"cursor":"1","reset":true,"revoked":[]}"#;
    assert_eq!(
        a.answered(&mut store, &mut wa, Ok(old), later + 1),
        Outcome::Stale
    );
    a.sync(&store, &mut wa, later + 2);
    assert_eq!(wa.list.cursor, "2");
    assert_eq!(store.record.version, 1);
}

#[test]
fn an_empty_page_that_says_more_moves_the_cursor_and_the_next_poll_is_due_at_once() {
    let mut store = Store::default();
    let mut poller = FeedPoller::new(&feed(), 0);
    let mut worker = Revocations::default();
    assert!(poller.tick(&mut store, &mut worker, T).poll.is_some());
    let empty = br#"{"cursor":"5","more":true,"revoked":[]}"#;
    poller.answered(&mut store, &mut worker, Ok(empty), T + 10);
    assert_eq!(worker.list.cursor, "5");
    let next = poller.tick(&mut store, &mut worker, T + 100).poll;
    assert_eq!(next.as_deref(), Some("/r?cursor=5"));
    // The same cursor again with more: refused, not asked again at once.
    let stuck = br#"{"cursor":"5","more":true,"revoked":[]}"#;
    let outcome = poller.answered(&mut store, &mut worker, Ok(stuck), T + 110);
    assert!(matches!(outcome, Outcome::Failed { .. }), "{outcome:?}");
    assert_eq!(poller.tick(&mut store, &mut worker, T + 200).poll, None);
}

#[test]
fn a_shared_list_no_worker_can_read_is_replaced_by_the_next_poll() {
    // (A list stored by another version of the filter, say.)
    let mut store = Store {
        record: FetchRecord {
            version: 3,
            ..FetchRecord::default()
        },
        list: Some(b"{\"cursor\":\"1\",\"reset\":true,\"revoked\":[]}".to_vec()),
        ..Store::default()
    };
    let mut poller = FeedPoller::new(&feed(), 0);
    let mut worker = Revocations::default();
    let tick = poller.tick(&mut store, &mut worker, T);
    assert!(tick.unreadable);
    assert_eq!(tick.poll.as_deref(), Some("/r"));
    let page = br#"{"cursor":"7","reset":true,"revoked":[{"jti":"a","expires_at":1800000000}]}"#;
    poller.answered(&mut store, &mut worker, Ok(page), T + 10);
    assert_eq!((worker.version, worker.list.len()), (4, 1));
    let mut other = Revocations::default();
    poller.sync(&store, &mut other, T + 20);
    assert_eq!((other.version, other.list.cursor.as_str()), (4, "7"));
}

/// A page saying more with `cursor` and one jti entry named `jti`.
fn page(cursor: &str, jti: &str) -> Vec<u8> {
    format!(r#"{{"cursor":"{cursor}","more":true,"revoked":[{{"jti":"{jti}","expires_at":1800000000}}]}}"#)
        .into_bytes()
}

#[test]
fn a_run_that_comes_back_to_a_cursor_it_asked_fails_and_waits_a_period() {
    let mut store = Store::default();
    let mut poller = FeedPoller::new(&feed(), 0);
    let mut worker = Revocations::default();
    let mut now = T;
    let mut polls = Vec::new();
    // a -> b -> a -> b ...: the feed answers every cursor with the other one.
    while now < T + 3_000 {
        if let Some(path) = poller.tick(&mut store, &mut worker, now).poll {
            let next = if path.ends_with("=a") { "b" } else { "a" };
            let body = page(next, &format!("j{}", polls.len()));
            poller.answered(&mut store, &mut worker, Ok(&body), now + 5);
            polls.push(path);
        }
        now += 100;
    }
    // Each period: the run asks the first page, a, b, then fails at a again.
    assert!(polls.len() <= 9, "{polls:?}");
    assert_eq!(worker.list.cursor, "b", "from the last cursor applied");
    assert!(store.record.failures > 0);
    let mut other = Revocations::default();
    poller.sync(&store, &mut other, now);
    assert_eq!(other.list.cursor, "b", "the pages applied are shared");
}

#[test]
fn a_run_follows_at_most_max_pages() {
    let mut store = Store::default();
    let mut poller = FeedPoller::new(&feed(), 0);
    let mut worker = Revocations::default();
    let mut now = T;
    let mut pages = 0;
    let outcome = loop {
        let path = poller.tick(&mut store, &mut worker, now).poll;
        assert!(path.is_some(), "every page is followed at once");
        let body = format!(r#"{{"cursor":"c{pages}","more":true,"revoked":[]}}"#);
        let outcome = poller.answered(&mut store, &mut worker, Ok(body.as_bytes()), now);
        if !matches!(outcome, Outcome::Applied { .. }) {
            break outcome;
        }
        pages += 1;
        now += 1;
    };
    assert!(matches!(outcome, Outcome::Failed { .. }), "{outcome:?}");
    assert_eq!(pages, MAX_PAGES_PER_RUN - 1);
    assert_eq!(poller.tick(&mut store, &mut worker, now + 1).poll, None);
}

#[test]
fn a_run_of_many_pages_shares_the_list_a_few_times_and_whole_at_its_end() {
    let mut store = Store::default();
    let (mut a, mut b) = (FeedPoller::new(&feed(), 0), FeedPoller::new(&feed(), 0));
    let (mut wa, mut wb) = (Revocations::default(), Revocations::default());
    let mut now = T;
    for n in 0..300 {
        assert!(a.tick(&mut store, &mut wa, now).poll.is_some());
        assert!(
            b.tick(&mut store, &mut wb, now).poll.is_none(),
            "the run is a's"
        );
        let mut body = page(&format!("c{n}"), &format!("j{n}"));
        if n == 299 {
            body = br#"{"cursor":"end","revoked":[]}"#.to_vec();
        }
        a.answered(&mut store, &mut wa, Ok(&body), now + 5);
        now += 10;
    }
    // 3 s of pages: shared once a second and at the end, not once a page.
    assert!(store.writes <= 4, "{} lists written", store.writes);
    b.sync(&store, &mut wb, now);
    assert_eq!((wb.list.len(), wb.list.cursor.as_str()), (299, "end"));
    assert_eq!(wb.version, wa.version);
    assert_eq!(wb.fresh_at, wa.fresh_at);
}
