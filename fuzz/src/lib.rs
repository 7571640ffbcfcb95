//! Fuzz targets for every entry point that takes outside bytes; the properties they check
//! live in `properties.rs`, shared with the corpus replay in `tests/fuzz_corpus.rs`.

pub mod properties;
