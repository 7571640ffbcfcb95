//! What one Envoy worker keeps between requests. The filter's root context (one per worker
//! VM) owns it and lends it to each request's decision; a new configuration starts it empty.

use crate::config::Config;
use crate::verify::cache::TokenCache;

/// A worker's state.
#[derive(Debug, Default)]
pub struct WorkerState {
    /// Access tokens verified before.
    pub tokens: TokenCache,
}

impl WorkerState {
    /// Drops what expired by unix time `now` under `config`.
    pub fn sweep(&mut self, config: &Config, now: u64) {
        config.verifier.sweep(&mut self.tokens, now);
    }
}
