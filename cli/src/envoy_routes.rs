//! What `check` says about the routes beside the filter in an Envoy configuration.
//!
//! An Envoy route `prefix` is a string prefix: `prefix: /api` also matches `/apiorders`,
//! `/api.v2/x` and `/api-internal/x`, while the filter's rules match whole segments. A route
//! whose prefix is not segment-aligned (not `/`, not ending in `/`) is reported when it
//! rewrites the path (the backend then receives a path the filter never decided, `/apiorders`
//! as `/orders`), or when a rule sits at or under its prefix (the traffic the route sends to
//! one backend is decided under different rules). A case-insensitive route is noted when
//! rules are spelled with capitals.
//!
//! A `typed_per_filter_config` entry for the filter's name with `disabled: true` (on a route,
//! a virtual host or the route configuration), or the filter's own `disabled: true` in
//! `http_filters`, turns the filter off: Envoy sends those requests on unchecked, their
//! identity headers as the client wrote them. `check` warns about each; [`skip`] tells
//! `explain` and `test` whether a request is routed where the filter does not run.

use serde::Serialize;
use serde_json::Value;

use crate::config_source::Loaded;
use tollgate_core::rules::{Matcher, RuleSet};

/// The `warning: …` and `note: …` lines for the routes of `route_config` (an HCM's inline
/// `route_config`) under `rules`.
pub fn findings(route_config: &Value, rules: &RuleSet) -> Vec<String> {
    let rule_paths: Vec<&str> = (0..)
        .map_while(|i| rules.rule(i))
        .map(|rule| match &rule.matcher {
            Matcher::Exact(p) | Matcher::Prefix(p) => p.as_str(),
        })
        .collect();
    let capitals: Vec<&str> = rule_paths
        .iter()
        .copied()
        .filter(|p| p.bytes().any(|b| b.is_ascii_uppercase()))
        .collect();
    let mut out = Vec::new();
    if route_config.get("rds").is_some() {
        out.push("note: the routes come from RDS, not from this file: check that their prefixes are whole segments (path_separated_prefix, or a prefix ending in /)".to_owned());
    }
    let hosts = route_config
        .get("virtual_hosts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for host in hosts {
        let host_name = host.get("name").and_then(Value::as_str).unwrap_or("?");
        let routes = host
            .get("routes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for (i, route) in routes.enumerate() {
            let name = match route.get("name").and_then(Value::as_str) {
                Some(name) => format!("route {name:?}"),
                None => format!("route #{i}"),
            };
            let place = format!("{name} of virtual host {host_name:?}");
            let matched = route.get("match");
            let insensitive = matched
                .and_then(|m| m.get("case_sensitive"))
                .and_then(Value::as_bool)
                == Some(false);
            if insensitive && !capitals.is_empty() {
                out.push(format!(
                    "note: {place} matches paths case-insensitively (case_sensitive: false) and rules are spelled with capitals ({}): the filter reads every path under case folding too, the strictest answer winning",
                    capitals.join(", ")
                ));
            }
            let Some(prefix) = matched
                .and_then(|m| m.get("prefix"))
                .and_then(Value::as_str)
            else {
                continue;
            };
            if prefix.is_empty() || prefix == "/" || prefix.ends_with('/') {
                continue;
            }
            if let Some(problem) = problem(route.get("route"), prefix, &rule_paths) {
                out.push(format!(
                    "warning: {place}: prefix {prefix:?} is a string prefix, not whole segments: it also matches \"{prefix}x\" and \"{prefix}.v2/x\"; {problem}. Use path_separated_prefix: {prefix:?}, or prefix: \"{prefix}/\""
                ));
            }
        }
    }
    out
}

/// Why a route with a prefix that is not segment-aligned lets traffic past a rule, if it does.
fn problem(action: Option<&Value>, prefix: &str, rules: &[&str]) -> Option<String> {
    let rewrite = ["prefix_rewrite", "regex_rewrite"]
        .into_iter()
        .find(|key| action.and_then(|a| a.get(key)).is_some());
    if let Some(key) = rewrite {
        return Some(format!(
            "its {key} sends such paths to the backend as paths the filter never decided (with prefix_rewrite \"/\", \"{prefix}orders\" arrives as \"/orders\")"
        ));
    }
    // Compared in lower case: the filter reads paths under case folding too.
    let fold = |text: &str| text.to_ascii_lowercase();
    let route = fold(prefix);
    let covered: Vec<&str> = rules
        .iter()
        .copied()
        .filter(|rule| {
            let rule = fold(rule);
            rule == route
                || rule
                    .strip_prefix(&route)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
        .collect();
    (!covered.is_empty()).then(|| {
        format!(
            "the rules {} match whole segments, so \"{prefix}x\" reaches this route's backend decided by another rule",
            covered.join(", ")
        )
    })
}

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
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use serde_json::json;
    use tollgate_core::config::Config;

    fn rules(rules: Value) -> RuleSet {
        let config = json!({"secrets": [{"key": "Hq3vXo9TzK7rWm2pLc8dNs5yFb4gJe6A"}], "default_mode": "none", "rules": rules});
        Config::parse(config.to_string().as_bytes(), &|_| None)
            .unwrap()
            .rules
    }

    fn routes(list: Value) -> Value {
        json!({"virtual_hosts": [{"name": "all", "routes": list}]})
    }

    #[test]
    fn string_prefixes_that_escape_a_rule_are_reported() {
        let set = rules(json!([
            {"prefix": "/api", "mode": "required"},
            {"prefix": "/Reports", "mode": "required"},
            {"path": "/ops/x", "mode": "required"}
        ]));
        let config = routes(json!([
            {"name": "rewrite", "match": {"prefix": "/api"}, "route": {"cluster": "a", "prefix_rewrite": "/"}},
            {"name": "regex", "match": {"prefix": "/v1"}, "route": {"cluster": "a", "regex_rewrite": {"pattern": {"regex": "^/v1"}, "substitution": ""}}},
            {"name": "equal", "match": {"prefix": "/api"}, "route": {"cluster": "a"}},
            {"name": "above", "match": {"prefix": "/ops"}, "route": {"cluster": "a"}},
            {"name": "folded", "match": {"prefix": "/reports", "case_sensitive": false}, "route": {"cluster": "a"}},
            {"name": "aligned", "match": {"prefix": "/api/"}, "route": {"cluster": "a", "prefix_rewrite": "/"}},
            {"name": "separated", "match": {"path_separated_prefix": "/api"}, "route": {"cluster": "a", "prefix_rewrite": "/"}},
            {"name": "unrelated", "match": {"prefix": "/static"}, "route": {"cluster": "a"}},
            {"name": "other-case", "match": {"prefix": "/reports"}, "route": {"cluster": "a"}},
            {"name": "root", "match": {"prefix": "/"}, "route": {"cluster": "a"}}
        ]));
        let found = findings(&config, &set);
        let warned: Vec<&str> = found
            .iter()
            .filter(|l| l.starts_with("warning: "))
            .map(|l| l.split('"').nth(1).unwrap())
            .collect();
        assert_eq!(
            warned,
            ["rewrite", "regex", "equal", "above", "folded", "other-case"],
            "{found:#?}"
        );
        assert!(
            found[0].contains("path_separated_prefix: \"/api\""),
            "{}",
            found[0]
        );
        assert!(
            found[0].contains("\"/apiorders\" arrives as \"/orders\""),
            "{}",
            found[0]
        );
        let notes: Vec<&String> = found.iter().filter(|l| l.starts_with("note: ")).collect();
        assert_eq!(notes.len(), 1, "{found:#?}");
        assert!(notes[0].contains("route \"folded\"") && notes[0].contains("/Reports"));
    }

    #[test]
    fn routes_from_rds_are_named_as_unread() {
        let set = rules(json!([{"prefix": "/api", "mode": "required"}]));
        let found = findings(&json!({"rds": {"route_config_name": "r"}}), &set);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("note: the routes come from RDS"));
    }

    #[test]
    fn lower_case_rules_give_no_case_note() {
        let set = rules(json!([{"prefix": "/api/", "mode": "required"}]));
        let config = routes(json!([
            {"match": {"prefix": "/api/", "case_sensitive": false}, "route": {"cluster": "a"}}
        ]));
        assert!(findings(&config, &set).is_empty());
    }
}
