//! A running Envoy: its configuration written, started on free ports, its admin endpoint read; the shipped examples started and validated.

use super::*;

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

pub(super) fn read_port(address: &str) -> Option<u16> {
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
        // The native module reads the process's environment (the `.wasm`, its VM's), and is
        // found through Envoy's search path.
        let mut env: Vec<(String, String)> = Vec::new();
        if let Some(module) = setup.native_module() {
            let dir = module
                .parent()
                .unwrap_or(Path::new("."))
                .display()
                .to_string();
            env.push(("ENVOY_DYNAMIC_MODULES_SEARCH_PATH".into(), dir));
            env.extend(setup.vm_env.iter().cloned());
        }
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let log_level = setup.log_level();
        let launch = Launch {
            config: &config,
            host_env: &env,
            concurrency: setup.concurrency,
            dir: &dir,
            extra_args: &[],
            component_log_level: &log_level,
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
            component_log_level: "wasm:debug,dynamic_modules:debug",
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
            tls: setup.tls.clone(),
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

    /// [`Envoy::get`], or `None` when the connection fails (while Envoy swaps a listener it
    /// may reset connections of the old one): for polling until an update applies.
    pub fn try_get(&self, target: &str) -> Option<Response> {
        let request = Request::get(target);
        try_send(self.port, &request.to_bytes(), false).ok()
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
    example_envoy_listening(path, 0, signin_port, idp_port, env)
}

/// [`example_envoy_from`] listening on `listen_port` (0: a port the system chooses).
pub fn example_envoy_listening(
    path: &Path,
    listen_port: u16,
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
        .replace(
            "port_value: 10000}",
            &format!("port_value: {listen_port}}}"),
        )
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
    // On the native build: the same file through scripts/native-config.py, as `make run
    // NATIVE=1` serves it.
    let mut env: Vec<(&str, &str)> = env.to_vec();
    let search_path;
    if let Some(module) = native_module() {
        let script = manifest_dir().join("scripts/native-config.py");
        let native = stdout_of(
            "python3",
            [script.as_os_str(), path.as_os_str()],
            "",
            "python3",
        );
        std::fs::write(&path, native).unwrap();
        search_path = module.parent().unwrap().display().to_string();
        env.push(("ENVOY_DYNAMIC_MODULES_SEARCH_PATH", &search_path));
    }
    let envoy = Envoy::from_file(&path, &env)?;
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
