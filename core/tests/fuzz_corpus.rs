//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the same property
//! checks the fuzz targets run, so every input a fuzzer once found interesting keeps passing.

// Tests may panic: a failure is the point.
#![allow(clippy::panic, clippy::unwrap_used, clippy::indexing_slicing)]

#[path = "../../fuzz/src/properties.rs"]
mod properties;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = tollgate_testkit::root().join("fuzz/corpus").join(target);
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.map(|e| e.path()).unwrap_or_else(|e| panic!("{e}"));
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{target}: {} fails", path.display());
        inputs += 1;
    }
    assert!(inputs > 0, "{target}: empty corpus");
}

#[test]
fn config_corpus() {
    replay("config", properties::check_config);
}

#[test]
fn path_corpus() {
    replay("path", properties::check_path);
}

#[test]
fn token_corpus() {
    replay("token", properties::check_token);
}

#[test]
fn extract_corpus() {
    replay("extract", properties::check_extract);
}

#[test]
fn decision_corpus() {
    replay("decision", properties::check_decision);
}

#[test]
fn request_corpus() {
    replay("request", properties::check_request);
}
