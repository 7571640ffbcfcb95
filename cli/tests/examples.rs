//! The example cases files pass against the configurations they are written for.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{env_file, scratch, tollgate, ENVOY_VARS, ISTIO_VARS};

fn passes(label: &str, config: &str, cases: &str, vars: &[(&str, &str)]) {
    let dir = scratch(label);
    let (env, secrets) = env_file(&dir, vars);
    let env = env.to_str().unwrap();
    let check = tollgate(&["check", "--config", config, "--env-file", env]);
    assert_eq!(check.status, 0, "{}", check.all());
    let run = tollgate(&["test", "--config", config, "--env-file", env, cases]);
    assert_eq!(run.status, 0, "{}", run.all());
    assert!(run.stdout.contains(" passed, 0 failed"), "{}", run.stdout);
    assert!(!run.stdout.contains("FAIL"), "{}", run.stdout);
    for secret in &secrets {
        assert!(
            !run.all().contains(secret.as_str()),
            "a secret is in the output"
        );
    }
}

#[test]
fn envoy_example_cases_pass() {
    passes(
        "envoy",
        "envoy/envoy.yaml",
        "envoy/envoy.cases.yaml",
        &ENVOY_VARS,
    );
}

#[test]
fn istio_example_cases_pass() {
    passes(
        "istio",
        "envoy/istio/wasmplugin.yaml",
        "envoy/istio/wasmplugin.cases.yaml",
        &ISTIO_VARS,
    );
}
