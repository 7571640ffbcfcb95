//! The command line as users expect it of a command: `--help` and `--version`, and an unknown
//! option, a missing value or an option of another command refused with exit 2 and the usage
//! text; `check` prints the warnings the filter logs and still exits 0.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{scratch, tollgate, Run};

/// A usage error: exit 2, clap's message naming `what`, and the command's usage line.
fn assert_usage_error(run: &Run, what: &str, usage: &str) {
    assert_eq!(run.status, 2, "{}", run.all());
    assert!(run.stderr.contains(what), "{}", run.all());
    assert!(
        run.stderr.contains(&format!("Usage: tollgate {usage}")),
        "{}",
        run.all()
    );
    assert!(run.stdout.is_empty(), "{}", run.all());
}

#[test]
fn help_lists_each_commands_own_options() {
    let top = tollgate(&["--help"]);
    assert_eq!(top.status, 0, "{}", top.all());
    for command in ["explain", "test", "check"] {
        assert!(top.stdout.contains(command), "{}", top.stdout);
    }
    assert!(top.stdout.contains("Exit status"), "{}", top.stdout);

    let check = tollgate(&["check", "--help"]);
    assert_eq!(check.status, 0, "{}", check.all());
    assert!(check.stdout.contains("--config <FILE>"), "{}", check.stdout);
    // Options of the other commands are not offered.
    for other in ["--now", "--json", "--header"] {
        assert!(!check.stdout.contains(other), "{other}: {}", check.stdout);
    }
    let explain = tollgate(&["help", "explain"]);
    assert_eq!(explain.status, 0, "{}", explain.all());
    for option in ["--now <UNIX>", "--json", "-H, --header"] {
        assert!(
            explain.stdout.contains(option),
            "{option}: {}",
            explain.stdout
        );
    }

    // No command at all: the help, as an error.
    let nothing = tollgate(&[]);
    assert_eq!(nothing.status, 2, "{}", nothing.all());
    assert!(
        nothing.stderr.contains("Usage: tollgate"),
        "{}",
        nothing.all()
    );
}

#[test]
fn version_is_the_cores() {
    for flag in ["--version", "-V"] {
        let run = tollgate(&[flag]);
        assert_eq!(run.status, 0, "{}", run.all());
        assert_eq!(
            run.stdout.trim(),
            format!("tollgate {}", tollgate_core::VERSION)
        );
    }
}

#[test]
fn unknown_options_and_missing_values_are_usage_errors() {
    let envoy = ["--config", "envoy/envoy.yaml"];
    assert_usage_error(
        &tollgate(&["check", envoy[0], envoy[1], "--bogus"]),
        "'--bogus'",
        "check",
    );
    // `-c` was never a documented spelling of `--config`.
    assert_usage_error(&tollgate(&["check", "-c", envoy[1]]), "'-c'", "check");
    assert_usage_error(
        &tollgate(&["explain", "GET", "/"]),
        "--config <FILE>",
        "explain",
    );
    // A value missing or of the wrong kind: clap's message, exit 2.
    for (run, message) in [
        (
            tollgate(&["explain", "--config"]),
            "a value is required for '--config <FILE>'",
        ),
        (
            tollgate(&["explain", envoy[0], envoy[1], "--now", "soon", "GET", "/"]),
            "invalid value 'soon' for '--now <UNIX>'",
        ),
    ] {
        assert_eq!(run.status, 2, "{}", run.all());
        assert!(run.stderr.contains(message), "{}", run.all());
    }
    assert_usage_error(&tollgate(&["frob"]), "'frob'", "<COMMAND>");
}

#[test]
fn options_of_another_command_are_refused() {
    let envoy = ["--config", "envoy/envoy.yaml"];
    // `--now` is explain's and test's: check ignored it.
    assert_usage_error(
        &tollgate(&["check", envoy[0], envoy[1], "--now", "5"]),
        "'--now'",
        "check",
    );
    assert_usage_error(
        &tollgate(&[
            "test",
            envoy[0],
            envoy[1],
            "--json",
            "envoy/envoy.cases.yaml",
        ]),
        "'--json'",
        "test",
    );
    assert_usage_error(
        &tollgate(&["check", envoy[0], envoy[1], "-H", "Host: x"]),
        "'-H'",
        "check",
    );
    // `--json` is a switch: `--json=false` turned JSON on.
    assert_usage_error(
        &tollgate(&["explain", envoy[0], envoy[1], "--json=false", "GET", "/"]),
        "'false' for '--json'",
        "explain",
    );
}

#[test]
fn check_prints_the_warnings_the_filter_logs() {
    let dir = scratch("check-warnings");
    let config = dir.join("issuer.json");
    std::fs::write(
        &config,
        r#"{"issuers": [{"name": "idp", "issuer": "https://idp.example.com",
            "jwks_uri": "https://idp.example.com/jwks", "cluster": "idp"}],
            "rules": [{"prefix": "/", "mode": "required"}]}"#,
    )
    .unwrap();
    let run = tollgate(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(run.status, 0, "{}", run.all());
    let warnings = run.warnings();
    assert_eq!(warnings.len(), 1, "{}", run.stdout);
    assert!(
        warnings[0].starts_with("warning: issuer idp: no audiences"),
        "{}",
        run.stdout
    );
}
