//! The process's shared data (proxy-wasm's, for the native build): keys and values every
//! worker and the main thread read, written by compare-and-swap. The core keeps the issuers'
//! fetch records and keys and the revocation list here.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use tollgate_core::host::HostError;

/// A value and its compare-and-swap token (a write number, never 0).
struct Entry {
    value: Vec<u8>,
    cas: u32,
}

#[derive(Default)]
struct Store {
    entries: HashMap<String, Entry>,
    writes: u32,
}

static STORE: Mutex<Option<Store>> = Mutex::new(None);

fn store() -> MutexGuard<'static, Option<Store>> {
    // A panic while holding the lock left whole entries (each write is one insert).
    STORE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The value of `key` and its compare-and-swap token.
pub fn get(key: &str) -> (Option<Vec<u8>>, Option<u32>) {
    let guard = store();
    match guard.as_ref().and_then(|s| s.entries.get(key)) {
        Some(entry) => (Some(entry.value.clone()), Some(entry.cas)),
        None => (None, None),
    }
}

/// Writes `key`, unless it was written since `cas` was read (when given).
pub fn set(key: &str, value: &[u8], cas: Option<u32>) -> Result<(), HostError> {
    let mut guard = store();
    let store = guard.get_or_insert_with(Store::default);
    if let (Some(cas), Some(entry)) = (cas, store.entries.get(key)) {
        if cas != entry.cas {
            return Err(HostError("CasMismatch"));
        }
    }
    store.writes = store.writes.wrapping_add(1).max(1);
    let cas = store.writes;
    store.entries.insert(
        key.to_owned(),
        Entry {
            value: value.to_vec(),
            cas,
        },
    );
    Ok(())
}
