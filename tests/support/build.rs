//! Which build of the filter the suite runs: the `.wasm` in a V8 VM, or the native module
//! when `TOLLGATE_NATIVE` names it (`make e2e-native`); the filter's entry in Envoy's
//! configuration, its logger, and its test-trap build for each.

use super::*;

/// The native build (`libtollgate_native.so`) when the suite runs on it: `TOLLGATE_NATIVE`
/// names it (`make e2e-native`); otherwise the suite runs the `.wasm`.
pub fn native_module() -> Option<PathBuf> {
    std::env::var_os("TOLLGATE_NATIVE")
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
}

/// Envoy's logger of the filter: `wasm`, or `dynamic_modules` for the native build (for
/// `POST /logging?<logger>=debug` on the admin endpoint).
pub fn filter_logger() -> &'static str {
    if native_module().is_some() {
        "dynamic_modules"
    } else {
        "wasm"
    }
}

/// The test-trap build of the native module.
pub fn native_trap_module() -> PathBuf {
    file_from_env(
        "TOLLGATE_TRAP_NATIVE",
        "target/native-trap/libtollgate_native.so",
        "run `make e2e-native`",
    )
}

impl Setup {
    /// The native module this Envoy loads, when the suite runs on the native build: the
    /// test-trap build's when [`Setup::module`] names the trap `.wasm`.
    pub fn native_module(&self) -> Option<PathBuf> {
        let native = native_module()?;
        Some(match &self.module {
            Some(module) if module == &trap_module() => native_trap_module(),
            _ => native,
        })
    }

    /// Envoy's `--component-log-level`: the native module logs through `dynamic_modules`.
    pub fn log_level(&self) -> String {
        match self.native_module() {
            Some(_) => self
                .component_log_level
                .split(',')
                .flat_map(|part| match part.strip_prefix("wasm:") {
                    Some(level) => vec![part.to_string(), format!("dynamic_modules:{level}")],
                    None => vec![part.to_string()],
                })
                .collect::<Vec<_>>()
                .join(","),
            None => self.component_log_level.clone(),
        }
    }

    /// The filter: the `.wasm` in a V8 VM, or the native module.
    pub(super) fn filter(&self, env: serde_json::Map<String, Value>) -> Value {
        if self.native_module().is_some() {
            return json!({
                "name": "tollgate",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
                    "dynamic_module_config": {
                        "name": "tollgate_native",
                        "do_not_close": true,
                        "metrics_namespace": "wasmcustom"
                    },
                    "filter_name": "tollgate",
                    "filter_config": {
                        "@type": "type.googleapis.com/google.protobuf.StringValue",
                        "value": self.plugin_config
                    }
                }
            });
        }
        json!({
            "name": "tollgate",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {
                    "name": "tollgate",
                    "failure_policy": "FAIL_CLOSED",
                    "vm_config": {
                        "vm_id": "tollgate",
                        "runtime": "envoy.wasm.runtime.v8",
                        "code": {"local": {"filename": self.module.clone().unwrap_or_else(wasm_module)}},
                        "environment_variables": {"key_values": env}
                    },
                    "configuration": {
                        "@type": "type.googleapis.com/google.protobuf.StringValue",
                        "value": self.plugin_config
                    }
                }
            }
        })
    }
}
