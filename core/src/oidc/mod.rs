//! Browser sign-in through the operator's OpenID provider: the authorization-code flow with
//! PKCE (`S256`), sessions in sealed cookies, refresh and logout.
//!
//! - [`config`]: the `oidc` key, checked whole.
//! - [`seal`] and [`random`]: the cookies' AEAD, and random states, nonces and verifiers.
//! - [`start`]: a browser without a session sent to the provider.
//! - [`flow`]: the callback, logout, and the session cookie read as an access token.
//! - [`id_token`], [`provider_call`], [`session`], [`cookies`], [`page`]: their parts.

pub mod config;
pub mod cookies;
pub mod discovery;
pub mod events;
pub mod flow;
pub mod id_token;
pub mod opened;
pub mod page;
pub mod provider_call;
pub mod random;
pub mod refresh;
pub mod renewed;
pub mod seal;
pub mod session;
pub mod start;

pub use config::Oidc;
pub use events::SignInEvent;
