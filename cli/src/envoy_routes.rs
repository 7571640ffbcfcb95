//! What `check` says about the routes beside the filter in an Envoy configuration.
//!
//! An Envoy route `prefix` is a string prefix: `prefix: /api` also matches `/apiorders`,
//! `/api.v2/x` and `/api-internal/x`, while the filter's rules match whole segments. A route
//! whose prefix is not segment-aligned (not `/`, not ending in `/`) is reported when it
//! rewrites the path (the backend then receives a path the filter never decided, `/apiorders`
//! as `/orders`), or when a rule sits at or under its prefix (the traffic the route sends to
//! one backend is decided under different rules). A case-insensitive route is noted when
//! rules are spelled with capitals.

use serde_json::Value;
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
