//! tollgate's decision core: what happens to a request, from its headers, with no host in it.
//!
//! The modules follow a request through the filter:
//!
//! 1. [`request`]: one pass over the headers; the path's readings ([`request::path`]) and the
//!    query ([`request::query`]).
//! 2. [`rules`]: the rule and mode that apply to every reading and method.
//! 3. [`credential`]: where the one credential sits, in every spelling a server reads
//!    ([`credential::spellings`]).
//! 4. [`verify`]: access tokens (JWS, the master secrets, the issuers' keys and claims, the
//!    verified-token cache), API keys and clients.
//! 5. [`identity`]: who the credential makes the caller.
//! 6. [`decision`]: the flow that ties these together, and the edits or response it returns;
//!    it tells each step to a [`decision::Trace`] when asked (`tollgate explain`).
//! 7. [`denial`] and [`response`]: why a request is refused, and the answer the client gets.
//! 8. [`oidc`]: browser sign-in through an OpenID provider (the redirect, the callback's
//!    checks and code exchange, the sealed session cookies read as an access token).
//!
//! At the edges: [`config`] (parsed and validated whole before any request), [`worker`] (the
//! state one Envoy worker keeps between requests), [`fetch`] (when an issuer's keys are
//! fetched, and by which worker), [`feed_poll`] (the revocation feed's polls, and the list
//! every worker installs), [`host`] (what the proxy-wasm adapter asks of its host, so the
//! request path is tested here with a fake host), [`lifecycle`] (what a worker's root context
//! does: key fetches, feed polls, held requests, counters, against [`lifecycle::RootHost`])
//! and [`metrics`].
//!
//! This crate does not depend on proxy-wasm: the filter crate at the repository's root is
//! the only code that calls the host.

pub mod request;

pub mod rules;

pub mod credential;

pub mod verify;

pub mod identity;

pub mod decision;

pub mod denial;
pub mod response;

pub mod config;
pub mod feed_poll;
pub mod fetch;
pub mod held;
pub mod host;
pub mod lifecycle;
pub mod metrics;
pub mod oidc;
pub mod worker;

/// The crate version, logged when a configuration loads.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
