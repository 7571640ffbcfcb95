//! The Envoy routes on which the filter does not run.
//!
//! A `typed_per_filter_config` entry for the filter's name with `disabled: true` (on a route,
//! a virtual host or the route configuration), or the filter's own `disabled: true` in
//! `http_filters` (then only the routes that enable it run it), turns the filter off: Envoy
//! sends those requests on unchecked, their identity headers as the client wrote them.
//! [`disabled_findings`] gives `check` a warning for each; [`skip`] tells `explain` and `test`
//! whether a request is routed where the filter does not run. Routing follows Envoy: the
//! virtual host by the Host's domains, then the first route, in order, that takes the path
//! (`prefix`, `path`, `path_separated_prefix`); a matcher this tool cannot evaluate (a regex,
//! headers, …) is a route that may take the request.

use serde::Serialize;
use serde_json::Value;

use crate::config_source::Loaded;

/// Route conditions besides the path that this tool does not evaluate.
const UNREAD_CONDITIONS: [&str; 8] = [
    "headers",
    "query_parameters",
    "runtime_fraction",
    "grpc",
    "tls_context",
    "dynamic_metadata",
    "filter_state",
    "cel_expression",
];

/// The filter's name and whether its `http_filters` entry has `disabled: true`.
fn filter_of(filter: &Value) -> (&str, bool) {
    let name = filter.get("name").and_then(Value::as_str).unwrap_or("");
    (
        name,
        filter.get("disabled").and_then(Value::as_bool) == Some(true),
    )
}

/// What the `typed_per_filter_config` entry of `owner` for the filter `name` says: `Some(false)`
/// turns it off (`disabled: true`), `Some(true)` turns it on (a FilterConfig not disabled),
/// `None` leaves it to the level above.
fn entry_says(owner: &Value, name: &str) -> Option<bool> {
    let entry = owner.get("typed_per_filter_config")?.get(name)?;
    if entry.get("disabled").and_then(Value::as_bool) == Some(true) {
        return Some(false);
    }
    let filter_config = entry
        .get("@type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.ends_with("envoy.config.route.v3.FilterConfig"));
    filter_config.then_some(true)
}

/// `prefix "/api"`, `path "/x"`, `safe_regex`, … with the conditions this tool does not read.
fn matcher_text(route: &Value) -> String {
    let m = route.get("match").unwrap_or(&Value::Null);
    let path = ["prefix", "path", "path_separated_prefix"]
        .into_iter()
        .find_map(|key| {
            m.get(key)
                .and_then(Value::as_str)
                .map(|p| format!("{key} {p:?}"))
        });
    let mut text = path.unwrap_or_else(|| {
        let keys: Vec<&str> = m
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.as_str())
            .collect();
        format!("match {{{}}}", keys.join(", "))
    });
    let extra: Vec<&str> = UNREAD_CONDITIONS
        .into_iter()
        .filter(|k| m.get(k).is_some())
        .collect();
    if !extra.is_empty() {
        text.push_str(&format!(" with {}", extra.join(", ")));
    }
    text
}

/// Whether the route's matcher takes `path`: `None` when it cannot be told here (a regex, a
/// header condition, …).
fn route_takes(route: &Value, path: &str) -> Option<bool> {
    let m = route.get("match")?;
    let path = path.split(['?', '#']).next().unwrap_or(path).as_bytes();
    let folded = m.get("case_sensitive").and_then(Value::as_bool) == Some(false);
    let same = |a: &[u8], b: &[u8]| {
        if folded {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    let starts = |p: &str| {
        path.get(..p.len())
            .is_some_and(|head| same(head, p.as_bytes()))
    };
    let text = |key: &str| m.get(key).and_then(Value::as_str);
    let on_path = if let Some(p) = text("prefix") {
        starts(p)
    } else if let Some(p) = text("path") {
        same(path, p.as_bytes())
    } else if let Some(p) = text("path_separated_prefix") {
        starts(p) && matches!(path.get(p.len()), None | Some(b'/'))
    } else {
        return None;
    };
    if !on_path {
        return Some(false);
    }
    (!UNREAD_CONDITIONS.iter().any(|k| m.get(k).is_some())).then_some(true)
}

/// Whether the filter runs on `route` of `host`: `Err` says why not.
fn runs_on(
    routes: &Value,
    host: &Value,
    (index, route): (usize, &Value),
    filter: &Value,
) -> Result<(), String> {
    let (name, off_by_default) = filter_of(filter);
    let host_name = host.get("name").and_then(Value::as_str).unwrap_or("?");
    let place = format!(
        "{} ({}) of virtual host {host_name:?}",
        route_name(route, index),
        matcher_text(route)
    );
    match entry_says(route, name) {
        Some(true) => return Ok(()),
        Some(false) => return Err(format!("{place} disables it")),
        None => {}
    }
    let above = [
        (host, format!("virtual host {host_name:?}")),
        (routes, "the route configuration".to_owned()),
    ];
    for (owner, label) in above {
        match entry_says(owner, name) {
            Some(true) => return Ok(()),
            Some(false) => return Err(format!("{place} takes it, and {label} disables it")),
            None => {}
        }
    }
    if off_by_default {
        return Err(format!("{place} takes it, and does not enable the HTTP filter {name:?}, which has disabled: true"));
    }
    Ok(())
}

fn route_name(route: &Value, index: usize) -> String {
    match route.get("name").and_then(Value::as_str) {
        Some(name) => format!("route {name:?}"),
        None => format!("route #{index}"),
    }
}

/// The request is routed where Envoy does not run the filter: `certain`, or possibly (a
/// route whose matcher this tool cannot evaluate, a Host no virtual host surely takes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skip {
    pub certain: bool,
    pub reason: String,
}

/// Where Envoy routes the request `headers` (`:authority`, `:path`) under the routes beside
/// the filter, when the filter does not (or may not) run there.
pub fn skip(loaded: &Loaded, headers: &[(String, Vec<u8>)]) -> Option<Skip> {
    let (routes, filter) = (loaded.route_config.as_ref()?, loaded.http_filter.as_ref()?);
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    };
    let (authority, path) = (get(":authority"), get(":path"));
    let hosts: Vec<&Value> = routes
        .get("virtual_hosts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    if let Some(host) = chosen_host(&hosts, &authority) {
        return in_host(routes, host, filter, &path);
    }
    let found: Vec<Skip> = hosts
        .iter()
        .filter_map(|h| in_host(routes, h, filter, &path))
        .collect();
    if found.is_empty() {
        return None;
    }
    let reasons: Vec<&str> = found.iter().map(|s| s.reason.as_str()).collect();
    Some(Skip {
        certain: found.len() == hosts.len() && found.iter().all(|s| s.certain),
        reason: format!(
            "the Host {authority:?} matches no virtual host's domains for certain, and {}",
            reasons.join("; ")
        ),
    })
}

/// The virtual host Envoy picks for `authority` (port stripped): an exact domain, then the
/// longest `*.suffix`, then the longest `prefix.*`, then `*`.
fn chosen_host<'a>(hosts: &[&'a Value], authority: &str) -> Option<&'a Value> {
    let host = authority.to_ascii_lowercase();
    let bare = match host.rsplit_once(':') {
        Some((name, port))
            if !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!name.contains(':') || name.ends_with(']')) =>
        {
            name.to_owned()
        }
        _ => host.clone(),
    };
    let rank = |domain: &str| -> Option<(u8, usize)> {
        let domain = domain.to_ascii_lowercase();
        if domain == host || domain == bare {
            Some((3, domain.len()))
        } else if domain == "*" {
            Some((0, 0))
        } else if let Some(suffix) = domain.strip_prefix('*') {
            (bare.len() > suffix.len() && bare.ends_with(suffix)).then_some((2, domain.len()))
        } else if let Some(prefix) = domain.strip_suffix('*') {
            (bare.len() > prefix.len() && bare.starts_with(prefix)).then_some((1, domain.len()))
        } else {
            None
        }
    };
    let mut best: Option<((u8, usize), &Value)> = None;
    for host in hosts {
        let domains = host
            .get("domains")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for rank in domains.filter_map(Value::as_str).filter_map(rank) {
            if best.is_none_or(|(b, _)| rank > b) {
                best = Some((rank, host));
            }
        }
    }
    best.map(|(_, host)| host)
}

/// The first route of `host` that takes `path`, when the filter does not (or may not) run on it.
fn in_host(routes: &Value, host: &Value, filter: &Value, path: &str) -> Option<Skip> {
    let mut maybe: Vec<String> = Vec::new();
    let mut unsure_runs = false;
    let list = host
        .get("routes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for (index, route) in list.enumerate() {
        let runs = runs_on(routes, host, (index, route), filter);
        match route_takes(route, path) {
            Some(false) => {}
            None => match runs {
                Err(why) => maybe.push(format!(
                    "{why} (its matcher is not evaluated here: it may take the request)"
                )),
                Ok(()) => unsure_runs = true,
            },
            Some(true) => {
                return match runs {
                    Err(why) if !unsure_runs && maybe.is_empty() => Some(Skip {
                        certain: true,
                        reason: why,
                    }),
                    Err(why) => {
                        maybe.push(format!("{why}, unless an earlier route whose matcher is not evaluated here takes it"));
                        Some(Skip {
                            certain: false,
                            reason: maybe.join("; "),
                        })
                    }
                    Ok(()) => (!maybe.is_empty()).then(|| Skip {
                        certain: false,
                        reason: maybe.join("; "),
                    }),
                };
            }
        }
    }
    (!maybe.is_empty()).then(|| Skip {
        certain: false,
        reason: maybe.join("; "),
    })
}

/// `check`'s warnings about the places that turn the filter off (`disabled: true` on a
/// route, a virtual host, the route configuration or the filter's own entry), and notes about
/// the per-route configurations for the filter it does not read.
pub fn disabled_findings(route_config: Option<&Value>, filter: &Value) -> Vec<String> {
    let (name, off_by_default) = filter_of(filter);
    let unchecked = "the requests it takes are not checked and their identity headers (x-auth-*) not stripped: the upstream receives them as sent";
    let mut out = Vec::new();
    if off_by_default {
        out.push(format!("warning: HTTP filter {name:?} has disabled: true: Envoy runs it only on the routes that enable it (a FilterConfig in typed_per_filter_config); the requests of every other route are not checked and their identity headers (x-auth-*) not stripped: the upstream receives them as sent"));
    }
    let Some(routes) = route_config else {
        return out;
    };
    let mut look = |owner: &Value, place: String| {
        let Some(entry) = owner
            .get("typed_per_filter_config")
            .and_then(|c| c.get(name))
        else {
            return;
        };
        match entry_says(owner, name) {
            Some(false) => out.push(format!("warning: {place} disables the filter {name:?} (typed_per_filter_config): {unchecked}")),
            Some(true) if entry.get("config").is_none() => {}
            _ => {
                // The type's last name only (`FilterConfig`, `Struct`).
                let kind = entry
                    .get("@type")
                    .and_then(Value::as_str)
                    .and_then(|t| t.rsplit(['/', '.']).next())
                    .unwrap_or("?");
                out.push(format!("note: {place} has a typed_per_filter_config entry for {name:?} ({kind}): the check does not read it"));
            }
        }
    };
    look(routes, "the route configuration".to_owned());
    for host in routes
        .get("virtual_hosts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let host_name = host.get("name").and_then(Value::as_str).unwrap_or("?");
        let domains = host
            .get("domains")
            .map(Value::to_string)
            .unwrap_or_default();
        look(
            host,
            format!("virtual host {host_name:?} (domains {domains})"),
        );
        for (i, route) in host
            .get("routes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            look(
                route,
                format!(
                    "{} ({}) of virtual host {host_name:?}",
                    route_name(route, i),
                    matcher_text(route)
                ),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn the_virtual_host_follows_envoys_order() {
        let hosts = [
            json!({"name": "any", "domains": ["*"]}),
            json!({"name": "prefix", "domains": ["api.*"]}),
            json!({"name": "suffix", "domains": ["*.example.com"]}),
            json!({"name": "longer", "domains": ["*.api.example.com"]}),
            json!({"name": "exact", "domains": ["api.example.com"]}),
        ];
        let hosts: Vec<&Value> = hosts.iter().collect();
        let pick = |host: &str| chosen_host(&hosts, host).unwrap()["name"].clone();
        assert_eq!(pick("API.example.com:8080"), "exact");
        assert_eq!(pick("v1.api.example.com"), "longer");
        assert_eq!(pick("www.example.com"), "suffix");
        assert_eq!(pick("api.internal"), "prefix");
        assert_eq!(pick("other"), "any");
        assert!(chosen_host(&hosts[1..], "other").is_none());
    }

    #[test]
    fn path_matchers() {
        let takes = |m: Value, path: &str| route_takes(&json!({"match": m}), path);
        assert_eq!(takes(json!({"prefix": "/a"}), "/ab?x"), Some(true));
        assert_eq!(takes(json!({"prefix": "/A"}), "/a"), Some(false));
        assert_eq!(
            takes(json!({"prefix": "/A", "case_sensitive": false}), "/a"),
            Some(true)
        );
        assert_eq!(takes(json!({"path": "/a"}), "/a?q=1"), Some(true));
        assert_eq!(takes(json!({"path": "/a"}), "/a/"), Some(false));
        assert_eq!(
            takes(json!({"path_separated_prefix": "/a"}), "/a/b"),
            Some(true)
        );
        assert_eq!(
            takes(json!({"path_separated_prefix": "/a"}), "/ab"),
            Some(false)
        );
        assert_eq!(takes(json!({"safe_regex": {"regex": ".*"}}), "/a"), None);
        assert_eq!(takes(json!({"prefix": "/a", "headers": []}), "/a"), None);
        assert_eq!(
            takes(json!({"prefix": "/b", "headers": []}), "/a"),
            Some(false)
        );
    }
}
