//! The Prometheus side: the alert rules an operator loads pass `promtool check rules` and
//! their unit tests (`promtool test rules`), and a real Prometheus scraping the example
//! Envoy's `/stats/prometheus` finds tollgate's series with their labels. Debian's
//! `prometheus` package provides both programs (`make test-tools` installs it).

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::idp::Idp;
use support::{manifest_dir, Request, SignIn};

const SECRET: &str = "alerts-test-secret-Vq8Zr3Kw7Tm2Xc9Nb4Hf";
const ENV: &[(&str, &str)] = &[
    ("TOLLGATE_SECRET", SECRET),
    (
        "TOLLGATE_API_KEY",
        "sk_alerts_test_api_key_Jq5d8mTwcYu9aQKFMKQ",
    ),
    (
        "TOLLGATE_PUBLISHABLE_KEY",
        "pk_alerts_test_publishable_Xq7Rt2Lm9Kv4",
    ),
    (
        "TOLLGATE_CLIENT_SECRET",
        "cs_alerts_test_client_secret_rroDnobDQCm7JU",
    ),
    (
        "TOLLGATE_OIDC_CLIENT_SECRET",
        "oc_demo_cHXGGhItcFmii-nzd1StJrW98SxNXq3E",
    ),
    (
        "TOLLGATE_COOKIE_KEYS",
        "demo:g3w8W8tZvaVe5W3WfmQT6WqxikPHTFqVdccDFz8VKm8",
    ),
];

fn tool(name: &str) -> String {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{name} is not installed: run `make test-tools` (Debian package prometheus)"
    );
    name.to_owned()
}

#[test]
fn the_alert_rules_are_valid_and_their_unit_tests_pass() {
    let dir = manifest_dir().join("envoy/prometheus");
    for args in [
        ["check", "rules", "tollgate-alerts.yaml"],
        ["test", "rules", "tollgate-alerts.test.yaml"],
    ] {
        let out = Command::new(tool("promtool"))
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The relabelling docs/native.md gives for the native module, whose series Envoy names
/// `envoy_wasmcustom_tollgate_*` (it strips the namespace of the `.wasm`'s stats only): the
/// series, and so the alert rules, read the same on both builds.
const NATIVE_RELABEL: &str = "  metric_relabel_configs:\n  - source_labels: [__name__]\n    regex: envoy_wasmcustom_(tollgate_.*)\n    target_label: __name__\n    replacement: $1\n";

/// A Prometheus scraping `targets` (host:port, `/stats/prometheus`) every second.
struct Prometheus {
    child: std::process::Child,
    port: u16,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(target: &str) -> Prometheus {
        let dir = support::scratch_dir("prometheus");
        let port = support::free_port();
        let config = format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: [{}]\nscrape_configs:\n- job_name: envoy\n  metrics_path: /stats/prometheus\n  static_configs: [{{targets: ['{target}']}}]\n{}",
            manifest_dir().join("envoy/prometheus/tollgate-alerts.yaml").display(),
            NATIVE_RELABEL
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let child = Command::new(tool("prometheus"))
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .unwrap();
        Prometheus { child, port }
    }

    fn query(&self, path: &str) -> Option<Value> {
        // Not up yet: no answer.
        std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        let request = Request::get(path).host(&format!("127.0.0.1:{}", self.port));
        let response = support::send_raw(self.port, &request.to_bytes());
        (response.status == 200).then(|| response.json()).flatten()
    }
}

#[test]
fn prometheus_scrapes_the_tollgate_series_with_their_labels() {
    // The example trusts the provider as `http://127.0.0.1:9400`, wherever it listens.
    let idp = Idp::start_with_issuer(Idp::free_port(), "http://127.0.0.1:9400");
    let signin = SignIn::start(SECRET, "127.0.0.1:10000");
    let envoy = support::example_envoy_with_idp("envoy.yaml", signin.port, idp.port(), ENV)
        .unwrap_or_else(|r| panic!("example refused ({:?}):\n{}", r.exit_code, r.log));
    // An allowed provider token, a refusal.
    let token = idp.token("RS256");
    let host = "127.0.0.1:10000";
    let response = envoy.send(&Request::get("/inventory").host(host).bearer(&token));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        envoy.send(&Request::get("/api/orders").host(host)).status,
        401
    );
    let prometheus = Prometheus::start(&format!("127.0.0.1:{}", envoy.admin_port));
    let wanted = [
        ("tollgate_allowed", "credential_type", "access_token"),
        ("tollgate_denied", "code", "missing_credentials"),
        ("tollgate_issuer_keys_fetched", "issuer", "demo-idp"),
        ("tollgate_issuer_keys_loaded", "issuer", "demo-idp"),
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = Value::Null;
    loop {
        let found =
            prometheus.query("/api/v1/series?match%5B%5D=%7B__name__%3D~%22tollgate_.%2A%22%7D");
        if let Some(found) = found {
            let series = found["data"].as_array().cloned().unwrap_or_default();
            let has = |(name, label, value): &(&str, &str, &str)| {
                series
                    .iter()
                    .any(|s| s["__name__"] == *name && s[*label] == *value && s["job"] == "envoy")
            };
            if wanted.iter().all(has) {
                break;
            }
            last = found;
        }
        assert!(
            Instant::now() < deadline,
            "series missing after 30 s: {last}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // And the rules loaded without error.
    let rules = prometheus.query("/api/v1/rules").unwrap();
    let groups = rules["data"]["groups"].as_array().unwrap();
    assert_eq!(groups[0]["rules"].as_array().unwrap().len(), 5, "{rules}");
    assert!(
        groups[0]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["health"] != "err"),
        "{rules}"
    );
}
