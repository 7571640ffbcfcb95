//! The native module (`libtollgate_native.so`) against the pinned Envoy: the ABI it was built
//! for is the one Envoy speaks (its start log says "matched"), every callback it imports is
//! one the pinned binary exports, every hook Envoy requires is exported, and a panic in the
//! filter fails the request closed and keeps Envoy up. (What each callback does is read back
//! by the whole end-to-end suite on the native build, `make e2e-native`: headers read, set,
//! appended and removed, local replies, filter state in the access log, the log levels,
//! counters and gauges, the calls out of Envoy for keys and the revocation feed.)

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use support::{file_from_env, native_trap_module, token_for, wait_until, Envoy, Request, Setup, K};

/// The native module, whichever build the suite runs.
fn module() -> PathBuf {
    file_from_env(
        "TOLLGATE_NATIVE_SO",
        "target/release/libtollgate_native.so",
        "run `make native`",
    )
}

/// The ELF binary of the pinned Envoy (`.venv/bin/envoy` is pip's launcher script).
fn envoy_elf() -> PathBuf {
    let launcher = file_from_env("ENVOY", ".venv/bin/envoy", "run `make setup`");
    let venv = launcher.parent().and_then(Path::parent).unwrap();
    let lib = venv.join("lib");
    for python in std::fs::read_dir(&lib).unwrap().flatten() {
        let elf = python.path().join("site-packages/envoy/_bin/envoy");
        if elf.exists() {
            return elf;
        }
    }
    panic!("no envoy binary under {}", lib.display())
}

/// The dynamic symbols of `file` (`nm -D`), defined or undefined.
fn symbols(file: &Path, defined: bool) -> BTreeSet<String> {
    let which = if defined {
        "--defined-only"
    } else {
        "--undefined-only"
    };
    let out = Command::new("nm")
        .args(["-D", which])
        .arg(file)
        .output()
        .expect("nm (binutils) runs");
    assert!(out.status.success(), "nm {}", file.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last().map(str::to_owned))
        .filter(|name| name.starts_with("envoy_dynamic_module_"))
        .collect()
}

/// The hooks Envoy 1.40 resolves when it loads an HTTP filter module (a missing one refuses
/// the configuration).
const REQUIRED_HOOKS: [&str; 21] = [
    "envoy_dynamic_module_on_program_init",
    "envoy_dynamic_module_on_http_filter_config_new",
    "envoy_dynamic_module_on_http_filter_config_destroy",
    "envoy_dynamic_module_on_http_filter_new",
    "envoy_dynamic_module_on_http_filter_request_headers",
    "envoy_dynamic_module_on_http_filter_request_body",
    "envoy_dynamic_module_on_http_filter_request_trailers",
    "envoy_dynamic_module_on_http_filter_response_headers",
    "envoy_dynamic_module_on_http_filter_response_body",
    "envoy_dynamic_module_on_http_filter_response_trailers",
    "envoy_dynamic_module_on_http_filter_stream_complete",
    "envoy_dynamic_module_on_http_filter_destroy",
    "envoy_dynamic_module_on_http_filter_http_callout_done",
    "envoy_dynamic_module_on_http_filter_http_stream_headers",
    "envoy_dynamic_module_on_http_filter_http_stream_data",
    "envoy_dynamic_module_on_http_filter_http_stream_trailers",
    "envoy_dynamic_module_on_http_filter_http_stream_complete",
    "envoy_dynamic_module_on_http_filter_http_stream_reset",
    "envoy_dynamic_module_on_http_filter_scheduled",
    "envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark",
    "envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark",
];

/// What is wrong between a module's imports and exports and Envoy's exports.
fn abi_mismatches(
    imports: &BTreeSet<String>,
    exports: &BTreeSet<String>,
    envoy_exports: &BTreeSet<String>,
) -> Vec<String> {
    let mut wrong: Vec<String> = imports
        .difference(envoy_exports)
        .map(|name| format!("imported but not exported by Envoy: {name}"))
        .collect();
    wrong.extend(
        REQUIRED_HOOKS
            .iter()
            .filter(|hook| !exports.contains(**hook))
            .map(|hook| format!("required hook missing: {hook}")),
    );
    wrong
}

#[test]
fn every_callback_the_module_imports_is_exported_by_the_pinned_envoy() {
    let (so, elf) = (module(), envoy_elf());
    let imports = symbols(&so, false);
    let exports = symbols(&so, true);
    let envoy_exports = symbols(&elf, true);
    assert!(imports.len() >= 20, "the module imports {imports:?}");
    assert_eq!(
        abi_mismatches(&imports, &exports, &envoy_exports),
        Vec::<String>::new()
    );
    // The check finds what is missing on either side.
    let mut fewer = envoy_exports.clone();
    fewer.remove("envoy_dynamic_module_callback_http_send_response");
    let mut hooks = exports.clone();
    hooks.remove("envoy_dynamic_module_on_http_filter_scheduled");
    assert_eq!(
        abi_mismatches(&imports, &hooks, &fewer),
        vec![
            "imported but not exported by Envoy: envoy_dynamic_module_callback_http_send_response"
                .to_string(),
            "required hook missing: envoy_dynamic_module_on_http_filter_scheduled".to_string()
        ]
    );
}

/// A setup on the native module whatever build the suite runs.
fn native_setup(config: serde_json::Value) -> Setup {
    std::env::set_var("TOLLGATE_NATIVE", module());
    Setup::new(config)
}

#[test]
fn envoy_says_the_abi_matched_and_the_module_decides() {
    let envoy = Envoy::start(native_setup(json!({"secrets": [{"key": K}]})));
    let log = envoy.log();
    assert!(
        log.contains("Dynamic module ABI version v0.2.0 matched."),
        "no ABI match in Envoy's log:\n{log}"
    );
    assert_eq!(envoy.get("/orders").status, 401);
    let ok = envoy.send(&Request::get("/orders").bearer(&token_for("alice")));
    assert_eq!(ok.status, 200);
    assert!(envoy.log().contains("tollgate"), "the filter logs");
}

#[test]
fn a_panic_in_the_filter_fails_the_request_closed_and_envoy_stays_up() {
    let mut setup = native_setup(json!({"secrets": [{"key": K}]}));
    setup.module = Some(support::trap_module());
    let trap = native_trap_module();
    assert!(trap.exists(), "run `make native-trap`");
    setup.concurrency = 2;
    let envoy = Envoy::start(setup);
    let good = || Request::get("/orders").bearer(&token_for("alice"));
    for _ in 0..20 {
        let r = envoy.send(&good().header("x-tollgate-test-trap", "1"));
        let body = r.text();
        assert_eq!(r.status, 503, "{body}");
        assert_eq!(r.code().as_deref(), Some("FILTER_UNAVAILABLE"), "{body}");
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert!(!body.contains("alice"), "nothing of the request: {body}");
    }
    // Envoy is up and the filter decides as before.
    assert_eq!(envoy.send(&good()).status, 200);
    assert_eq!(envoy.get("/orders").status, 401);
    wait_until("the panics are counted", Duration::from_secs(10), || {
        envoy
            .stats("wasmcustom.tollgate.panicked")
            .values()
            .sum::<u64>()
            == 20
    });
    let log = envoy.log();
    let lines = log
        .lines()
        .filter(|l| l.contains("tollgate 0") && l.contains("panic at"))
        .count();
    assert_eq!(lines, 1, "logged once:\n{log}");
}

/// Each worker configures its filter on its first request: that request is decided with the
/// keys the process fetched already, not held for a tick to install them (it was, and each
/// request held for a `kid` the keys lack was counted held twice).
#[test]
fn a_workers_first_request_uses_the_keys_the_process_has() {
    std::env::set_var("TOLLGATE_NATIVE", module());
    let idp = support::idp::Idp::start();
    let envoy = support::idp::envoy_trusting(
        json!([support::idp::issuer_entry(&idp, 600)]),
        idp.port(),
        json!({}),
    );
    let token = idp.token("RS256");
    // The first request waits for the first fetch; every later one, on any of the four
    // workers (each request is a new connection), is decided at once.
    assert_eq!(envoy.send(&support::idp::bearer(&token)).status, 200);
    for _ in 0..16 {
        assert_eq!(envoy.send(&support::idp::bearer(&token)).status, 200);
    }
    wait_until("the held request counted", Duration::from_secs(10), || {
        envoy
            .stats("wasmcustom.tollgate.issuer_keys.requests_held.idp")
            .values()
            .sum::<u64>()
            >= 1
    });
    let held: u64 = envoy
        .stats("wasmcustom.tollgate.issuer_keys.requests_held.idp")
        .values()
        .sum();
    assert_eq!(
        held, 1,
        "only the request that came before the keys was held"
    );
}
