//! The store, on a database in memory and on disk, alone and shared by two stores.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::*;
use tollgate_core::verify::revocation::{FeedEntry, FeedPage};

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
