//! tollgate's test fixtures, one home for the core's native tests (`core/tests/`), the
//! filter's end-to-end tests (`tests/`) and the command's (`cli/tests/`): the keys of the
//! test configurations, the hostile-input table read into typed rows ([`table`]), its
//! configurations, placeholders and escapes, what a row's request met ([`seen`]), the test
//! request ([`request`]), a seeded generator ([`rng`]), and the core's names the tests use
//! ([`prelude`]).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

pub mod conditions;
pub mod provider;
pub mod request;
pub mod rng;
pub mod seen;
pub mod table;

/// What most test files need: the crate under test's names (the one place the tests name
/// its module paths), the fixtures and the test request.
pub mod prelude {
    pub use crate::request::Request;
    pub use crate::{expand_table, now, root, unescape, CS, CSB, K, LOGIN, NOW, PK, SK};
    pub use tollgate_core::config::Config;
    pub use tollgate_core::decision::{decide, Action};
    pub use tollgate_core::request::{path, query};
    pub use tollgate_core::rules::Mode;
    pub use tollgate_core::verify::base64url;
    pub use tollgate_core::verify::token::{claims_for, sign_raw, SigningKey};
    pub use tollgate_core::worker::WorkerState;
    pub use tollgate_core::{host, metrics};
}

// The test fixtures: keys and secrets every test file uses.

/// The catalogue's HS256 test secret (the master key of the test configurations).
pub const K: &str = "Hq3vXo9TzK7rWm2pLc8dNs5yFb4gJe6A";
/// The API key (`server`).
pub const SK: &str = "sk_test_4f9d2c7a8b1e6f3d0a5c9e2b7f4a1d8c";
/// The publishable key (`web`).
pub const PK: &str = "pk_test_7c3e9a1f5b2d8e4a6c0f3b9d1e7a5c2f";
/// client-a's secret.
pub const CS: &str = "cs_test_Zr4Qm8Vn2Lp6Xw1Ty9Hs3Kd7Bf5Gj0";
/// client-b's secret.
pub const CSB: &str = "cs_test_other_client_secret_nVjh9XxeUpEHicLzXKhcCtEzmn39";
/// The login page of the configurations that redirect browsers.
pub const LOGIN: &str = "https://auth.example.com/login";

/// A fixed clock (unix seconds, 2027-01-15) for tests that mint and check tokens.
pub const NOW: u64 = 1_800_000_000;

/// The repository's root (the tables, the fuzz corpus, the docs, the examples).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The clock, in unix seconds.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The hostile table's escapes (`\r \n \t \\ \xHH`) as the bytes they stand for.
pub fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            match bytes[i + 1] {
                b'r' => out.push(b'\r'),
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'\\' => out.push(b'\\'),
                b'x' => {
                    let hex = std::str::from_utf8(&bytes[i + 2..i + 4]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 2;
                }
                other => panic!("unknown escape \\{}", char::from(other)),
            }
            i += 2;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// The hostile table's text as bytes: `<X*N>` is X repeated N times, another `<name>` is what
/// `placeholder` gives for it (kept as written when it gives nothing), then [`unescape`].
pub fn expand_table(text: &str, placeholder: impl Fn(&str) -> Option<String>) -> Vec<u8> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else {
            out.push('<');
            rest = after;
            continue;
        };
        let inner = &after[..close];
        let repeated = inner
            .rsplit_once('*')
            .and_then(|(u, n)| Some(u.repeat(n.parse::<usize>().ok()?)));
        match repeated.or_else(|| placeholder(inner)) {
            Some(value) => out.push_str(&value),
            None => {
                out.push('<');
                out.push_str(inner);
                out.push('>');
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    unescape(&out)
}
