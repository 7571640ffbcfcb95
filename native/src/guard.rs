//! No panic leaves a hook: a panic unwinding into Envoy would end the process. Each hook runs
//! inside [`guarded`]; a panic is logged (once per process, with its code location only: no
//! request data reaches a panic message) and counted, and the hook fails closed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::abi;
use crate::log;

/// Panics caught since the process started (`tollgate.panicked` counts them per
/// configuration).
pub static PANICS: AtomicU64 = AtomicU64::new(0);
static LOGGED: AtomicBool = AtomicBool::new(false);
/// Where the last panic happened, written by the panic hook.
static LOCATION: Mutex<String> = Mutex::new(String::new());

/// Records a panic's location instead of printing its message.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if let Ok(mut last) = LOCATION.lock() {
            *last = location;
        }
    }));
}

/// Runs `hook`; on a panic, logs it (the first one only), counts it and returns
/// `failed()`.
pub fn guarded<T>(hook: impl FnOnce() -> T, failed: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(hook)) {
        Ok(value) => value,
        Err(_) => {
            PANICS.fetch_add(1, Ordering::Relaxed);
            if !LOGGED.swap(true, Ordering::Relaxed) {
                let location = LOCATION.lock().map(|l| l.clone()).unwrap_or_default();
                log::line(
                    abi::LOG_CRITICAL,
                    &format!(
                        "tollgate {}: panic at {location}: the request fails closed (logged once; tollgate.panicked counts them)",
                        tollgate_core::VERSION
                    ),
                );
            }
            catch_unwind(AssertUnwindSafe(failed)).unwrap_or_else(|_| std::process::abort())
        }
    }
}
