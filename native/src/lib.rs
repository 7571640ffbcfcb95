//! tollgate as a native Envoy dynamic module (`libtollgate_native.so`, Envoy 1.40, ABI
//! v0.2.0): the same decision core as the `.wasm` ([`tollgate_core`]), behind a second thin
//! adapter over Envoy's C ABI, declared by hand ([`abi`]).
//!
//! The `.wasm` runs one VM per worker; so does this module, in its own way: each worker
//! thread keeps its own core [`tollgate_core::lifecycle::Filter`] ([`worker`]), the main thread
//! keeps one per configuration that fetches issuers' keys and polls the revocation feed for
//! the process ([`main_thread`], woken by [`ticker`]), and what they share goes through the
//! process's shared data ([`shared`]), as in proxy-wasm. Every hook is [`guard`]ed.

mod abi;
mod config;
mod guard;
mod hooks;
mod log;
mod main_thread;
mod metrics;
mod shared;
mod stream;
mod ticker;
mod unused_hooks;
mod worker;

use std::time::{SystemTime, UNIX_EPOCH};

/// The clock, in unix milliseconds.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
