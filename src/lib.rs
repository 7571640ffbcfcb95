//! tollgate: an authentication filter for Envoy, built as a proxy-wasm module.
//!
//! Everything but [`filter`] is pure decision logic that knows nothing of proxy-wasm and is
//! tested natively; `filter` is the thin adapter that talks to the host.

pub mod adapter;
pub mod base64url;
pub mod config;
pub mod credentials;
pub mod decision;
pub mod denial;
pub mod fxhash;
pub mod identity;
pub mod jws;
pub mod key_material;
pub mod keys;
pub mod metrics;
pub mod path;
pub mod query;
pub mod request;
pub mod response;
pub mod rules;
pub mod spellings;
pub mod token;
pub mod token_cache;

#[cfg(target_arch = "wasm32")]
pub mod filter;

/// The crate version, logged when a configuration loads.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
