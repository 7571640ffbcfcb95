//! Log lines through Envoy's `dynamic_modules` logger (`--component-log-level
//! dynamic_modules:debug`, or `POST /logging?dynamic_modules=debug` on the admin endpoint).
#![allow(unsafe_code)]

use crate::abi::{self, ModuleBuffer};
use tollgate_core::lifecycle::Level;

pub fn line(level: u32, text: &str) {
    // SAFETY: the buffer is read during the call only.
    unsafe { abi::envoy_dynamic_module_callback_log(level, ModuleBuffer::of(text.as_bytes())) }
}

pub fn at(level: Level, text: &str) {
    line(
        match level {
            Level::Info => abi::LOG_INFO,
            Level::Warn => abi::LOG_WARN,
            Level::Error => abi::LOG_ERROR,
        },
        text,
    );
}

/// Whether debug lines are written now (Envoy's level can change at run time).
pub fn debug_enabled() -> bool {
    // SAFETY: no arguments but the level.
    unsafe { abi::envoy_dynamic_module_callback_log_enabled(abi::LOG_DEBUG) }
}
