//! `tollgate check` on an Envoy configuration: the routes whose string prefix lets traffic
//! past a rule are warned about, and the check still passes (exit 0).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{env_file, scratch, tollgate, ENVOY_VARS};

#[test]
fn string_prefixes_beside_segment_rules_are_warned_about() {
    let run = tollgate(&[
        "check",
        "--config",
        "cli/tests/data/envoy-string-prefix.yaml",
    ]);
    assert_eq!(run.status, 0, "{}", run.all());
    let warnings = run.warnings();
    assert_eq!(warnings.len(), 2, "{}", run.stdout);
    assert!(
        warnings[0].starts_with(
            "warning: route \"orders\" of virtual host \"api\": prefix \"/api\" is a string prefix"
        ) && warnings[0].contains("prefix_rewrite")
            && warnings[0].contains("path_separated_prefix: \"/api\""),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[1].starts_with("warning: route \"admin\"") && warnings[1].contains("/Admin"),
        "{}",
        warnings[1]
    );
    let notes: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("note: "))
        .collect();
    assert_eq!(notes.len(), 1, "{}", run.stdout);
    assert!(notes[0].contains("case_sensitive: false"), "{}", notes[0]);
}

#[test]
fn the_shipped_example_has_no_route_warning() {
    let dir = scratch("check-routes");
    let (env, _) = env_file(&dir, &ENVOY_VARS);
    let run = tollgate(&[
        "check",
        "--config",
        "envoy/envoy.yaml",
        "--env-file",
        env.to_str().unwrap(),
    ]);
    assert_eq!(run.status, 0, "{}", run.all());
    assert!(run.stdout.contains("configured:"), "{}", run.stdout);
    assert!(!run.stdout.contains("warning:"), "{}", run.stdout);
}
