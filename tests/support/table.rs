//! The hostile-input table (`tests/data/security-cases.tsv`), read by the testkit crate, and
//! its rows as requests of this harness.

pub use tollgate_testkit::table::*;

use super::Request;

/// A row's request as a request of the harness.
pub trait Build {
    /// The request, with `expand` turning the table's text into bytes.
    fn build(&self, expand: impl Fn(&str) -> Vec<u8>) -> Request;
}

impl Build for RequestText {
    fn build(&self, expand: impl Fn(&str) -> Vec<u8>) -> Request {
        let (target, headers) = self.expanded(expand);
        headers.into_iter().fold(
            Request::new(&self.method, target),
            |request, (name, value)| request.header(&name, value),
        )
    }
}
