//! Fail-closed: when the filter traps, Envoy answers 5xx and never lets the request on; every
//! example configuration asks for that.
//!
//! Uses the test-trap build (`make trap-wasm`, copied to `target/trap`; done by `make e2e`),
//! whose filter traps on a request marked `x-tollgate-test-trap`, after
//! setting the identity headers and before letting the request on.

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use serde_json::json;
use support::{manifest_dir, token_for, trap_module, Envoy, Request, Response, Setup, K};
use yaml_rust2::{Yaml, YamlLoader};

fn token() -> String {
    token_for("alice")
}

fn reached_upstream(r: &Response) -> bool {
    r.json()
        .is_some_and(|j| j["path"].is_string() && j["headers"].is_array())
}

#[test]
fn a_trap_answers_5xx_and_nothing_gets_through_afterwards() {
    let mut setup = Setup::new(json!({
        "secrets": [{"key": K}],
        "rules": [{"prefix": "/public", "mode": "none"}]
    }));
    setup.module = Some(trap_module());
    setup.concurrency = 2;
    let envoy = Envoy::start(setup);
    let good = || Request::get("/api/orders").bearer(&token());

    // The build works: a valid token passes, a missing one does not.
    let r = envoy.send(&good());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.upstream_header("x-auth-user").as_deref(), Some("alice"));
    assert_eq!(envoy.get("/api/orders").status, 401);

    // A trap while letting a valid request on: 5xx, and the upstream never sees it.
    for _ in 0..4 {
        let r = envoy.send(&good().header("x-tollgate-test-trap", "1"));
        assert!(
            r.status >= 500,
            "a trapped request got {}: {}",
            r.status,
            r.text()
        );
        assert!(
            !reached_upstream(&r),
            "a trapped request reached the upstream"
        );
    }
    // The panic hook logs the panic at critical level, where in the code, before the trap.
    let log = envoy.log();
    assert!(
        log.contains("[critical]")
            && log.contains("tollgate")
            && (log.contains("panic at src/lib.rs:")
                || log.contains("panic at native/src/hooks.rs:")),
        "no critical line for the panic in the log:\n{log}"
    );
    assert!(
        log.contains("test trap") || log.contains("wasm") || log.contains("fails closed"),
        "no trace of the trap in the log"
    );

    // Afterwards, whatever state the VMs are in: nothing passes without a verified identity.
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let r = envoy.get("/api/orders");
        assert!(
            !reached_upstream(&r),
            "an anonymous request reached the upstream"
        );
        statuses.push(r.status);
        let r = envoy.send(&good().header("x-auth-user", "mallory"));
        if reached_upstream(&r) {
            assert_eq!(r.upstream_header("x-auth-user").as_deref(), Some("alice"));
        } else {
            assert!(r.status >= 500, "{}", r.status);
        }
    }
    println!("statuses of anonymous requests after the traps: {statuses:?}");
}

/// Every `envoy.filters.http.wasm` in `yaml` (by its `vm_config`), as the mapping holding it.
fn wasm_configs(yaml: &Yaml, out: &mut Vec<Yaml>) {
    match yaml {
        Yaml::Hash(map) => {
            if map.contains_key(&Yaml::String("vm_config".into())) {
                out.push(yaml.clone());
            }
            map.values().for_each(|v| wasm_configs(v, out));
        }
        Yaml::Array(items) => items.iter().for_each(|v| wasm_configs(v, out)),
        _ => {}
    }
}

#[test]
fn every_example_configuration_fails_closed() {
    let mut checked = 0;
    for file in ["envoy/envoy.yaml", "envoy/envoy.compose.yaml"] {
        let text = std::fs::read_to_string(manifest_dir().join(file)).unwrap();
        let mut configs = Vec::new();
        for doc in YamlLoader::load_from_str(&text).unwrap() {
            wasm_configs(&doc, &mut configs);
        }
        assert!(!configs.is_empty(), "{file}: no Wasm filter found");
        for config in configs {
            assert_eq!(
                config["failure_policy"].as_str(),
                Some("FAIL_CLOSED"),
                "{file}: a Wasm filter without failure_policy: FAIL_CLOSED"
            );
            checked += 1;
        }
    }
    let istio =
        std::fs::read_to_string(manifest_dir().join("envoy/istio/wasmplugin.yaml")).unwrap();
    let plugins: Vec<Yaml> = YamlLoader::load_from_str(&istio)
        .unwrap()
        .into_iter()
        .filter(|d| d["kind"].as_str() == Some("WasmPlugin"))
        .collect();
    assert!(!plugins.is_empty());
    for plugin in plugins {
        assert_eq!(plugin["spec"]["failStrategy"].as_str(), Some("FAIL_CLOSE"));
        checked += 1;
    }
    let bench = std::fs::read_to_string(manifest_dir().join("bench/bench.py")).unwrap();
    assert!(bench.contains("\"failure_policy\": \"FAIL_CLOSED\""));
    assert!(checked >= 3);
}
