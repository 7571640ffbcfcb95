//! The routes of an Envoy configuration that turn the filter off: `check` warns about them,
//! `explain` says when a request is routed where the filter does not run, and `test` fails
//! such a case. Also: header values lose the blanks Envoy strips before the filter sees them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{scratch, token, tollgate};
use tollgate_testkit::NOW;

const ROUTES: &str = "cli/tests/data/envoy-route-disabled.yaml";
const OFF_BY_DEFAULT: &str = "cli/tests/data/envoy-filter-disabled.yaml";
/// The secret of both files' configuration.
const SECRET: &str = "Hq3vXo9TzK7rWm2pLc8dNs5yFb4gJe6A";

/// The first line of `explain GET target` with `Host: host` under `config`.
fn first_line(config: &str, target: &str, host: &str) -> String {
    let header = format!("Host: {host}");
    let run = tollgate(&["explain", "--config", config, "GET", target, "-H", &header]);
    assert_eq!(run.status, 0, "{}", run.all());
    run.stdout.lines().next().unwrap().to_owned()
}

#[test]
fn check_warns_about_every_place_that_turns_the_filter_off() {
    let run = tollgate(&["check", "--config", ROUTES]);
    assert_eq!(run.status, 0, "{}", run.all());
    let warnings = run.warnings();
    let places: Vec<&str> = warnings
        .iter()
        .map(|w| w.split(" disables the filter").next().unwrap())
        .collect();
    assert_eq!(
        places,
        [
            "warning: route \"internal\" (prefix \"/api/internal\") of virtual host \"api\"",
            "warning: route \"exact-health\" (path \"/healthz\") of virtual host \"api\"",
            "warning: route \"folded\" (prefix \"/Metrics\") of virtual host \"api\"",
            "warning: route \"separated\" (path_separated_prefix \"/files\") of virtual host \"api\"",
            "warning: route \"by-header\" (prefix \"/debug\" with headers) of virtual host \"api\"",
            "warning: route \"regex\" (match {safe_regex}) of virtual host \"api\"",
            "warning: virtual host \"partners\" (domains [\"*.partners.example.com\"])",
        ],
        "{}",
        run.stdout
    );
    assert!(
        warnings
            .iter()
            .all(|w| w.contains("not checked") && w.contains("identity headers")),
        "{}",
        run.stdout
    );
    let notes: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("note: "))
        .collect();
    assert_eq!(notes.len(), 2, "{}", run.stdout);
    assert!(
        notes[0].contains("route \"tuned\"") && notes[0].contains("does not read it"),
        "{}",
        notes[0]
    );
}

#[test]
fn check_warns_about_a_filter_off_by_default() {
    let run = tollgate(&["check", "--config", OFF_BY_DEFAULT]);
    assert_eq!(run.status, 0, "{}", run.all());
    let warnings = run.warnings();
    assert_eq!(warnings.len(), 1, "{}", run.stdout);
    assert!(
        warnings[0].starts_with("warning: HTTP filter \"auth\" has disabled: true")
            && warnings[0].contains("not checked"),
        "{}",
        warnings[0]
    );
}

#[test]
fn explain_says_first_when_the_route_disables_the_filter() {
    let expected = "warning: Envoy does not run the filter on this request: route \"internal\" (prefix \"/api/internal\") of virtual host \"api\" disables it; the upstream receives it as sent";
    let run = tollgate(&[
        "explain",
        "--config",
        ROUTES,
        "GET",
        "/api/internal/x",
        "-H",
        "Host: api.example.com",
        "-H",
        "X-Auth-User: admin",
    ]);
    assert_eq!(run.status, 0, "{}", run.all());
    assert_eq!(
        run.stdout.lines().next().unwrap(),
        expected,
        "{}",
        run.stdout
    );
    // The port is stripped before the domains are matched.
    assert_eq!(
        first_line(ROUTES, "/api/internal/x", "API.example.com:9000"),
        expected
    );
    let json = tollgate(&[
        "explain",
        "--config",
        ROUTES,
        "--json",
        "GET",
        "/api/internal/x",
        "-H",
        "Host: api.example.com",
    ]);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(value["filter_skipped"]["certain"], true, "{}", json.stdout);
    assert!(value["filter_skipped"]["reason"]
        .as_str()
        .unwrap()
        .starts_with("route \"internal\""));
}

#[test]
fn each_path_matcher_is_evaluated() {
    let skipped = |target: &str| {
        let line = first_line(ROUTES, target, "api.example.com");
        line.strip_prefix("warning: Envoy does not run the filter on this request: ")
            .map(|rest| rest.split(' ').nth(1).unwrap().to_owned())
    };
    // `path`: exact, the query aside.
    assert_eq!(
        skipped("/healthz?probe=1").as_deref(),
        Some("\"exact-health\"")
    );
    assert_eq!(skipped("/healthz/x"), None);
    // `prefix` with `case_sensitive: false`.
    assert_eq!(skipped("/metrics/cpu").as_deref(), Some("\"folded\""));
    // `path_separated_prefix`: the prefix and what is under it, not `/filesx`.
    assert_eq!(skipped("/files").as_deref(), Some("\"separated\""));
    assert_eq!(skipped("/files/a").as_deref(), Some("\"separated\""));
    assert_eq!(skipped("/filesx"), None);
    // The filter runs on the catch-all route.
    assert_eq!(skipped("/api/orders"), None);
}

#[test]
fn a_matcher_not_evaluated_is_a_possible_skip() {
    let line = first_line(ROUTES, "/v1/raw/x", "api.example.com");
    assert!(
        line.starts_with("note: Envoy may not run the filter on this request: route \"regex\"")
            && line.contains("not evaluated"),
        "{line}"
    );
    let line = first_line(ROUTES, "/debug/x", "api.example.com");
    assert!(
        line.starts_with("note: Envoy may not run the filter on this request: route \"by-header\""),
        "{line}"
    );
}

#[test]
fn the_virtual_host_is_chosen_by_the_host() {
    let line = first_line(ROUTES, "/x", "a.partners.example.com:443");
    assert!(
        line.starts_with(
            "warning: Envoy does not run the filter on this request: route \"partners-rest\""
        ) && line.contains("virtual host \"partners\" disables it"),
        "{line}"
    );
    // A route's FilterConfig turns the filter back on under a virtual host that disables it.
    assert!(
        first_line(ROUTES, "/checked/x", "a.partners.example.com").starts_with("configuration:")
    );
    // The same path under the api host: the filter runs (a note about the regex route only).
    assert!(first_line(ROUTES, "/x", "api.example.com").starts_with("note: "));
    // A Host no domain takes for certain: every virtual host is considered.
    let line = first_line(ROUTES, "/x", "elsewhere.example.org");
    assert!(
        line.starts_with("note: Envoy may not run the filter")
            && line.contains("route \"partners-rest\""),
        "{line}"
    );
}

#[test]
fn a_filter_off_by_default_runs_only_where_a_route_enables_it() {
    assert!(first_line(OFF_BY_DEFAULT, "/api/orders", "h").starts_with("configuration:"));
    let line = first_line(OFF_BY_DEFAULT, "/apiorders", "h");
    assert!(
        line.starts_with("warning: Envoy does not run the filter on this request: route \"rest\"")
            && line.contains("has disabled: true"),
        "{line}"
    );
}

#[test]
fn test_fails_a_case_routed_where_the_filter_does_not_run() {
    let dir = scratch("envoy-routes");
    let cases = dir.join("cases.yaml");
    std::fs::write(
        &cases,
        "- name: internal is refused\n  request: {method: GET, target: /api/internal/x, headers: {Host: api.example.com}}\n  expect: {status: 401}\n\
         - name: orders are refused\n  request: {method: GET, target: /api/orders, headers: {Host: api.example.com}}\n  expect: {status: 401}\n",
    )
    .unwrap();
    let run = tollgate(&["test", "--config", ROUTES, cases.to_str().unwrap()]);
    assert_eq!(run.status, 1, "{}", run.all());
    assert!(
        run.stdout.contains("FAIL  internal is refused"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("PASS  orders are refused"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("  Envoy does not run the filter on this request: route \"internal\" (prefix \"/api/internal\") of virtual host \"api\" disables it; the upstream receives it as sent"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("1 passed, 1 failed"), "{}", run.stdout);
}

#[test]
fn header_values_lose_the_blanks_envoy_strips() {
    let dir = scratch("envoy-blanks");
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        format!(r#"{{"secrets":[{{"kid":"demo","key":"{SECRET}"}}],"default_mode":"required"}}"#),
    )
    .unwrap();
    let t = token(SECRET, "lUpa");
    let header = format!("Authorization: Bearer {t} \t");
    let now = NOW.to_string();
    let run = tollgate(&[
        "explain",
        "--config",
        config.to_str().unwrap(),
        "--now",
        &now,
        "GET",
        "/a",
        "-H",
        &header,
    ]);
    assert_eq!(run.status, 0, "{}", run.all());
    assert!(
        run.stdout.contains("answer: 200 from the upstream"),
        "{}",
        run.stdout
    );
    // A cases file's values too.
    let cases = dir.join("cases.yaml");
    std::fs::write(
        &cases,
        format!("- request: {{method: GET, target: /a, headers: {{Authorization: \"\\tBearer {t}  \"}}}}\n  expect: {{status: 200, user: lUpa}}\n"),
    )
    .unwrap();
    let run = tollgate(&[
        "test",
        "--config",
        config.to_str().unwrap(),
        "--now",
        &now,
        cases.to_str().unwrap(),
    ]);
    assert_eq!(run.status, 0, "{}", run.all());
}
