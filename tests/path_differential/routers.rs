//! Routers that match paths case-insensitively, and Envoy on a second hop: the handler or route a reading reaches.

use super::*;

/// Where the case-insensitive routers mount a handler: at each rule's path or prefix.
fn mounts() -> Value {
    rules()
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| match (rule.get("path"), rule.get("prefix")) {
            (Some(path), _) => json!({"path": path, "exact": true}),
            (_, prefix) => json!({"path": prefix.unwrap(), "exact": false}),
        })
        .collect()
}

/// ASP.NET Core's routing, emulated (the test machine runs no .NET): `HttpRequest.Path` is
/// the decoded path (but for `%2F`), and a mount (`app.Map`, a route template) matches under
/// `OrdinalIgnoreCase`: each character compared by its simple upper-case mapping (which folds
/// U+0131 and U+017F onto `I` and `S`); a second variant compares simple lower-case mappings
/// (U+212A and U+0130 onto `k` and `i`). A path served by a mount is read as the mount's path
/// followed by the rest; one no mount serves, as it is.
const ASPNET: &str = r#"
import json, sys
from urllib.parse import quote, unquote

data = json.load(sys.stdin)
mounts = sorted(data["mounts"], key=lambda m: (not m["exact"], -len(m["path"])))

def upper(c):
    u = c.upper()
    return u if len(u) == 1 else c

def lower(c):
    l = c.lower()
    return l[0] if l else c

FOLDS = {
    # .NET's OrdinalIgnoreCase compares the simple upper-case mapping of each UTF-16 unit.
    "aspnet-ordinal-ignore-case": lambda s: "".join(upper(c) for c in s),
    # The same comparison on simple lower-case mappings (Kelvin sign to k, dotted I to i).
    "ordinal-ignore-case-lower": lambda s: "".join(lower(c) for c in s),
}

def request_path(p):
    # HttpRequest.Path: percent-decoded, but for %2F, which stays encoded.
    parts = p.replace("%2f", "%2F").split("%2F")
    return "%2F".join(unquote(part, errors="strict") for part in parts)

def encode(rest):
    return "%2F".join(quote(part, safe="/:@!$&'()*+,;=~") for part in rest.split("%2F"))

def route(p, fold):
    try:
        path = request_path(p)
    except UnicodeDecodeError:
        return None
    folded = fold(path)
    if len(folded) != len(path):
        return p
    for m in mounts:
        key = fold(m["path"])
        if m["exact"]:
            if folded == key or folded == key + "/":
                return m["path"]
        elif folded == key or folded.startswith(key + "/"):
            return m["path"] + encode(path[len(key):])
    return p

json.dump({name: [route(p, f) for p in data["paths"]] for name, f in FOLDS.items()}, sys.stdout)
"#;

/// Real routers that match case-insensitively by default (Express, Koa with @koa/router, in
/// `tests/routers/`) and ASP.NET Core's matching (emulated in Python): the handler a path
/// reaches is read as that mount's path, and the filter must be at least as strict.
#[test]
#[cfg_attr(
    not(feature = "envoy-tests"),
    ignore = "needs python3, node and tests/routers/node_modules: make e2e"
)]
fn case_insensitive_routers_reach_no_handler_the_filter_decided_less_strictly() {
    let started = Instant::now();
    let (total, paths) = readable_paths();
    let routers = support::manifest_dir().join("tests/routers");
    assert!(
        routers.join("node_modules/express").is_dir(),
        "{}: run `make test-tools` (npm ci)",
        routers.display()
    );
    let input = json!({
        "mounts": mounts(),
        "paths": paths.iter().map(|(_, p)| p).collect::<Vec<_>>()
    })
    .to_string();
    let script = routers.join("route.js");
    let mut readings = run_batch("node", &[script.to_str().unwrap()], &input);
    readings.extend(run_batch("python3", &["-c", ASPNET], &input));
    let rejected: usize = readings.values().flatten().filter(|r| r.is_none()).count();
    let (failures, compared) = compare(&paths, &readings);
    summary(&format!(
        "path differential (case-insensitive routers): {total} distinct paths, {} × {} \
         routers × {} configurations = {compared} readings compared ({rejected} rejected), {} \
         less strict, {:.1} s",
        paths.len(),
        readings.len(),
        configs().len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    ));
    // The routers did route: the mounts are reached in another case.
    for (router, list) in &readings {
        let index = paths.iter().position(|(_, p)| p == "/ADMIN/users").unwrap();
        assert_eq!(
            list[index].as_deref(),
            Some("/admin/users"),
            "{router} does not route /ADMIN/users to /admin"
        );
    }
    report("routers", &failures);
}

/// The HTTP connection manager settings of each second-hop listener.
fn envoy_variants() -> Vec<(&'static str, Value)> {
    let normalise = json!({"normalize_path": true, "merge_slashes": true});
    let with = |action: &str| {
        let mut hcm = normalise.clone();
        hcm["path_with_escaped_slashes_action"] = json!(action);
        hcm
    };
    vec![
        ("envoy-normalize-merge", normalise.clone()),
        ("envoy-unescape-forward", with("UNESCAPE_AND_FORWARD")),
        ("envoy-unescape-redirect", with("UNESCAPE_AND_REDIRECT")),
    ]
}

/// An Envoy with no filter at all: one listener per variant, each routing to the echo upstream.
fn second_hop() -> (Envoy, BTreeMap<String, u16>) {
    let listeners: Vec<Value> = envoy_variants()
        .into_iter()
        .map(|(name, settings)| {
            let mut hcm = json!({
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": name,
                "codec_type": "HTTP1",
                "route_config": {"virtual_hosts": [{
                    "name": "all",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "echo"}}]
                }]},
                "http_filters": [{
                    "name": "envoy.filters.http.router",
                    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
                }]
            });
            for (k, v) in settings.as_object().unwrap() {
                hcm[k] = v.clone();
            }
            json!({
                "name": name,
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": hcm
                }]}]
            })
        })
        .collect();
    let bootstrap = json!({
        "node": {"id": "path-differential", "cluster": "path-differential"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": listeners,
            "clusters": [{
                "name": "echo",
                "type": "STATIC",
                "connect_timeout": "2s",
                "load_assignment": {
                    "cluster_name": "echo",
                    "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                        "address": "127.0.0.1", "port_value": support::upstream_port()
                    }}}}]}]
                }
            }]
        }
    });
    let file = support::scratch_dir("path-differential").join("envoy.json");
    std::fs::write(&file, bootstrap.to_string()).unwrap();
    let envoy = Envoy::from_file(&file, &[]).unwrap_or_else(|refused| {
        panic!(
            "Envoy did not start (exit {:?}):\n{}",
            refused.exit_code, refused.log
        )
    });
    let statuses = envoy.admin("/listeners?format=json").json().unwrap();
    let ports = statuses["listener_statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let port = s["local_address"]["socket_address"]["port_value"]
                .as_u64()
                .unwrap();
            (
                s["name"].as_str().unwrap().to_owned(),
                u16::try_from(port).unwrap(),
            )
        })
        .collect();
    (envoy, ports)
}

/// What one listener did with the paths.
struct ListenerReadings {
    name: String,
    /// The path that reached the upstream, per path (`None`: Envoy answered itself).
    readings: Vec<Option<String>>,
    /// How many answers had each status.
    statuses: BTreeMap<u16, usize>,
    /// The paths Envoy answered itself, with the status.
    skipped: Vec<String>,
}

/// A keep-alive HTTP/1.1 client for one listener.
struct Client {
    port: u16,
    stream: Option<TcpStream>,
}

impl Client {
    /// Sends `GET path`; returns the status and the body.
    fn get(&mut self, path: &str) -> (u16, Vec<u8>) {
        for attempt in 0..2 {
            match self.try_get(path) {
                Ok(answer) => return answer,
                Err(e) if attempt == 1 => panic!("GET {} on port {}: {e}", show(path), self.port),
                Err(_) => self.stream = None,
            }
        }
        unreachable!()
    }

    fn try_get(&mut self, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(("127.0.0.1", self.port))?;
            stream.set_read_timeout(Some(Duration::from_secs(20)))?;
            // Without it, each small request waits for a delayed acknowledgement.
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
        }
        let stream = self.stream.as_mut().unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: h\r\nX-Echo-Format: json\r\n\r\n");
        stream.write_all(request.as_bytes())?;
        let mut raw = Vec::new();
        let mut buf = [0u8; 16384];
        let head_end = loop {
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Err(std::io::Error::other("connection closed"));
            }
            raw.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line: {head}")))?;
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut body = raw[head_end + 4..].to_vec();
        while body.len() < length {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Err(std::io::Error::other("connection closed in the body"));
            }
            body.extend_from_slice(&buf[..n]);
        }
        if head.contains("\r\nconnection: close") {
            self.stream = None;
        }
        Ok((status, body))
    }
}

#[test]
#[cfg_attr(not(feature = "envoy-tests"), ignore = "needs Envoy: make e2e")]
fn envoy_on_a_second_hop_reads_no_path_less_strictly_than_the_filter() {
    let started = Instant::now();
    let (total, paths) = readable_paths();
    let (_envoy, ports) = second_hop();
    let variants: Vec<(String, u16)> = envoy_variants()
        .into_iter()
        .map(|(name, _)| (name.to_owned(), ports[name]))
        .collect();
    let paths_ref = &paths;
    // One thread per listener; each keeps one connection alive where Envoy allows it.
    let results: Vec<ListenerReadings> = std::thread::scope(|scope| {
        let handles: Vec<_> = variants
            .iter()
            .map(|(name, port)| {
                scope.spawn(move || {
                    let mut client = Client {
                        port: *port,
                        stream: None,
                    };
                    let mut statuses = BTreeMap::new();
                    let mut skipped = Vec::new();
                    let readings = paths_ref
                        .iter()
                        .map(|(_, p)| {
                            let (status, body) = client.get(p);
                            *statuses.entry(status).or_insert(0) += 1;
                            match status {
                                200 => {
                                    let echo: Value =
                                        serde_json::from_slice(&body).unwrap_or_else(|e| {
                                            panic!("{name}: {}: not an echo: {e}", show(p))
                                        });
                                    Some(echo["path"].as_str().unwrap().to_owned())
                                }
                                // Envoy refused the path, or sent the client to another
                                // path that it must ask for (through the filter) again.
                                _ => {
                                    skipped.push(format!("{name} {status} {}", show(p)));
                                    None
                                }
                            }
                        })
                        .collect();
                    ListenerReadings {
                        name: name.clone(),
                        readings,
                        statuses,
                        skipped,
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut readings = ParserReadings::new();
    let mut by_status = Vec::new();
    let mut skipped = Vec::new();
    for listener in results {
        by_status.push(format!("{} {:?}", listener.name, listener.statuses));
        skipped.extend(listener.skipped);
        readings.insert(listener.name, listener.readings);
    }
    // For whoever reads a failure: which paths Envoy answered itself (not compared).
    let skipped_file =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("path-differential-envoy-skipped.txt");
    std::fs::write(&skipped_file, skipped.join("\n")).unwrap();
    let (failures, compared) = compare(&paths, &readings);
    summary(&format!(
        "path differential (Envoy second hop): {total} distinct paths, {} refused by the \
         filter, {} × {} listeners × {} configurations = {compared} readings compared, {} \
         less strict, {:.1} s; answers by status: {} (the paths Envoy answered itself: {})",
        total - paths.len(),
        paths.len(),
        readings.len(),
        configs().len(),
        failures.len(),
        started.elapsed().as_secs_f64(),
        by_status.join("; "),
        skipped_file.display()
    ));
    // Every listener served most paths: a broken setup cannot pass as "no failure".
    for (name, list) in &readings {
        let served = list.iter().filter(|r| r.is_some()).count();
        assert!(
            served * 2 > list.len(),
            "{name} served only {served} of {} paths",
            list.len()
        );
    }
    report("envoy", &failures);
}
