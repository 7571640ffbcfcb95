//! Reading the plugin configuration from the file an operator has: the plugin's JSON, an Envoy
//! YAML (the tollgate Wasm HTTP filter's `configuration`) or an Istio `WasmPlugin`
//! (`spec.pluginConfig`), and the `*_env` secrets from the environment or an env file.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use tollgate_core::config::Config;

use crate::args::ConfigArgs;
use crate::error::CliError;
use crate::yaml;

/// A configuration as the filter would load it, and where it was found.
pub struct Loaded {
    /// What was read, for `check`'s first line (`Envoy configuration …, HTTP filter "tollgate"`).
    pub origin: String,
    /// The plugin configuration's JSON text, exactly what the filter is given.
    pub json: Vec<u8>,
    /// The variables `*_env` keys may name: the environment, overridden by the env file.
    pub env: BTreeMap<String, String>,
    /// Every secret value the configuration names, with a label (`API key "backend"`), so
    /// that output can mask them.
    pub secrets: Vec<(String, String)>,
    /// The inline `route_config` of the HTTP connection manager that holds the filter, when
    /// the file is an Envoy configuration that has one (`{"rds": …}` when it uses RDS).
    pub route_config: Option<Value>,
    /// The HTTP filter's own entry in `http_filters` (its `name`, `disabled`), Envoy only.
    pub http_filter: Option<Value>,
}

impl Loaded {
    /// The configuration, checked as `on_configure` checks it.
    pub fn parse(&self) -> Result<Config, tollgate_core::config::ConfigError> {
        Config::parse(&self.json, &|name| self.env.get(name).cloned())
    }
}

/// A plugin configuration found in a file.
struct Candidate {
    /// How to name it with `--filter`.
    name: String,
    /// Where it sits, for the origin line.
    place: String,
    json: Result<Vec<u8>, String>,
    /// The inline `route_config` beside the filter (Envoy only).
    route_config: Option<Value>,
    /// The filter's entry in `http_filters` (Envoy only).
    http_filter: Option<Value>,
}

/// Reads the configuration file and the environment `args` name.
pub fn load(args: &ConfigArgs) -> Result<Loaded, CliError> {
    let file = args.config.display().to_string();
    let text = read(&args.config)?;
    let mut env: BTreeMap<String, String> = std::env::vars().collect();
    let mut given = Vec::new();
    if let Some(env_file) = &args.env_file {
        given = env_file_vars(env_file)?;
        env.extend(given.iter().cloned());
    }
    // Before the configuration names its secrets, every value of the env file is one: an
    // error about the file (a resource's name, say) never shows them.
    let masked: Vec<(String, String)> = given
        .iter()
        .map(|(name, value)| (value.clone(), format!("${name}")))
        .collect();
    let (origin, json, route_config, http_filter) =
        plugin_json(&file, &text, args.filter.as_deref())
            .map_err(|e| e.map_message(|m| crate::redact::Redactor::new(&masked).clean(m)))?;
    let secrets = secret_values(&json, &env);
    Ok(Loaded {
        origin,
        json,
        env,
        secrets,
        route_config,
        http_filter,
    })
}

fn read(path: &Path) -> Result<String, CliError> {
    crate::input::read_text(path)
}

/// `KEY=VALUE` lines; blank lines and `#` comments are skipped, `export ` and quotes around
/// the value are allowed.
pub fn env_file_vars(path: &Path) -> Result<Vec<(String, String)>, CliError> {
    let text = read(path)?;
    let mut vars = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(CliError::input(format!(
                "{}:{}: expected KEY=VALUE",
                path.display(),
                number + 1
            )));
        };
        let value = ['"', '\'']
            .iter()
            .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
            .unwrap_or(value);
        vars.push((key.trim().to_owned(), value.to_owned()));
    }
    Ok(vars)
}

/// What a configuration file holds: where the plugin configuration was found, its JSON text,
/// the routes beside it and the filter's `http_filters` entry.
type Found = (String, Vec<u8>, Option<Value>, Option<Value>);

/// The plugin configuration's JSON text in `text`, where it was found, and the inline
/// `route_config` beside it (Envoy).
fn plugin_json(file: &str, text: &str, filter: Option<&str>) -> Result<Found, CliError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        if let Ok(value) = serde_json::from_str::<Value>(text) {
            if !is_envoy(&value) && !is_wasm_plugin(&value) {
                if let Some(name) = filter {
                    return Err(CliError::input(format!(
                        "{file}: --filter {name} given, but the file is the plugin configuration itself"
                    )));
                }
                return Ok((
                    format!("plugin configuration (JSON) {file}"),
                    text.as_bytes().to_vec(),
                    None,
                    None,
                ));
            }
        }
    }
    let docs = if trimmed.starts_with('{') {
        match serde_json::from_str::<Value>(text) {
            Ok(value) => vec![value],
            Err(_) => yaml::documents(text, file)?,
        }
    } else {
        yaml::documents(text, file)?
    };
    let mut candidates = Vec::new();
    let mut envoy = false;
    for doc in &docs {
        if is_wasm_plugin(doc) {
            candidates.push(wasm_plugin(doc));
        } else if is_envoy(doc) {
            envoy = true;
            find_filters(doc, &mut candidates);
        }
    }
    let kind = if envoy {
        "Envoy configuration"
    } else {
        "Istio WasmPlugin"
    };
    if candidates.is_empty() {
        return Err(CliError::input(format!(
            "{file}: no tollgate configuration found (expected the plugin's JSON, an Envoy configuration with a tollgate Wasm HTTP filter, or an Istio WasmPlugin)"
        )));
    }
    let names = || {
        candidates
            .iter()
            .map(|c| format!("{:?}", c.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let chosen = match filter {
        Some(name) => candidates.iter().find(|c| c.name == name).ok_or_else(|| {
            CliError::input(format!(
                "{file}: no tollgate filter named {name:?} (found {})",
                names()
            ))
        })?,
        None if candidates.len() > 1 => {
            return Err(CliError::input(format!(
                "{file}: {} tollgate filters ({}): choose one with --filter NAME",
                candidates.len(),
                names()
            )))
        }
        None => candidates
            .first()
            .ok_or_else(|| CliError::input(format!("{file}: no tollgate configuration found")))?,
    };
    let how = if filter.is_some() {
        "chosen with --filter"
    } else {
        "the only one"
    };
    let json = chosen
        .json
        .clone()
        .map_err(|e| CliError::input(format!("{file}: {}: {e}", chosen.place)))?;
    Ok((
        format!("{kind} {file}, {} ({how})", chosen.place),
        json,
        chosen.route_config.clone(),
        chosen.http_filter.clone(),
    ))
}

fn is_envoy(doc: &Value) -> bool {
    ["static_resources", "dynamic_resources", "admin", "node"]
        .iter()
        .any(|key| doc.get(key).is_some())
        || doc.get("http_filters").is_some()
}

fn is_wasm_plugin(doc: &Value) -> bool {
    doc.get("kind").and_then(Value::as_str) == Some("WasmPlugin")
}

/// An Istio `WasmPlugin`'s `spec.pluginConfig`.
fn wasm_plugin(doc: &Value) -> Candidate {
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)")
        .to_owned();
    let json = match doc.pointer("/spec/pluginConfig") {
        Some(config) => serde_json::to_vec(config).map_err(|e| e.to_string()),
        None => Err("has no spec.pluginConfig".to_owned()),
    };
    Candidate {
        place: format!("WasmPlugin {name:?} spec.pluginConfig"),
        name,
        json,
        route_config: None,
        http_filter: None,
    }
}

/// Every Wasm HTTP filter running tollgate's module, anywhere in an Envoy configuration.
fn find_filters(node: &Value, out: &mut Vec<Candidate>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::Array(filters)) = map.get("http_filters") {
                // Routes served by RDS are not in the file: `check` says so.
                let routes = map
                    .get("route_config")
                    .cloned()
                    .or_else(|| map.get("rds").map(|rds| serde_json::json!({"rds": rds})));
                out.extend(filters.iter().filter_map(|f| {
                    tollgate_filter(f).map(|c| Candidate {
                        route_config: routes.clone(),
                        ..c
                    })
                }));
            }
            map.iter()
                .filter(|(key, _)| *key != "http_filters")
                .for_each(|(_, value)| find_filters(value, out));
        }
        Value::Array(items) => items.iter().for_each(|item| find_filters(item, out)),
        _ => {}
    }
}

/// The plugin configuration of one HTTP filter, when it is a Wasm filter whose module is
/// tollgate's (its code's file or URL, or the filter's name, says `tollgate`).
fn tollgate_filter(filter: &Value) -> Option<Candidate> {
    let typed = filter.get("typed_config")?;
    let wasm = typed
        .get("@type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.ends_with("envoy.extensions.filters.http.wasm.v3.Wasm"));
    if !wasm {
        return None;
    }
    let name = filter
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)")
        .to_owned();
    let config = typed.get("config")?;
    let code = config
        .pointer("/vm_config/code")
        .map(Value::to_string)
        .unwrap_or_default();
    let ours = code.contains("tollgate") || name.contains("tollgate");
    if !ours {
        return None;
    }
    let json = match config.get("configuration") {
        Some(Value::Object(any)) => match any.get("value") {
            Some(Value::String(text)) => Ok(text.as_bytes().to_vec()),
            _ => Err(
                "configuration has no string value (expected a google.protobuf.StringValue)"
                    .to_owned(),
            ),
        },
        _ => Err("has no configuration".to_owned()),
    };
    Some(Candidate {
        place: format!("HTTP filter {name:?}"),
        name,
        json,
        route_config: None,
        http_filter: Some(filter.clone()),
    })
}

/// The secret values a plugin configuration names (inline or through `*_env`), labelled.
fn secret_values(json: &[u8], env: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let Ok(config) = serde_json::from_slice::<Value>(json) else {
        return Vec::new();
    };
    let lists = [
        ("secrets", "secret", "kid", "key"),
        ("api_keys", "API key", "name", "key"),
        ("publishable_keys", "publishable key", "name", "key"),
        ("clients", "client secret of", "client_id", "client_secret"),
    ];
    let mut out = Vec::new();
    for (list, label, name_key, value_key) in lists {
        let items = config
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for (i, item) in items.enumerate() {
            let name = item
                .get(name_key)
                .and_then(Value::as_str)
                .map_or_else(|| format!("{list}[{i}]"), |n| format!("{n:?}"));
            let inline = item
                .get(value_key)
                .and_then(Value::as_str)
                .map(str::to_owned);
            let from_env = item
                .get(format!("{value_key}_env"))
                .and_then(Value::as_str)
                .and_then(|var| env.get(var).cloned());
            if let Some(value) = inline.or(from_env).filter(|v| !v.is_empty()) {
                out.push((value, format!("{label} {name}")));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn plugin_json_itself() {
        let (origin, json, _, _) =
            plugin_json("c.json", r#"{"default_mode":"none"}"#, None).unwrap();
        assert!(origin.starts_with("plugin configuration (JSON)"));
        assert_eq!(json, br#"{"default_mode":"none"}"#);
    }

    #[test]
    fn envoy_filter_and_its_choice() {
        let one = r#"
static_resources:
  listeners:
  - filter_chains:
    - filters:
      - typed_config:
          http_filters:
          - name: tollgate
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                vm_config: {code: {local: {filename: x/tollgate.wasm}}}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: '{"default_mode":"none"}'
          - name: other
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
"#;
        let (origin, json, _, _) = plugin_json("e.yaml", one, None).unwrap();
        assert!(
            origin.contains("HTTP filter \"tollgate\" (the only one)"),
            "{origin}"
        );
        assert_eq!(json, br#"{"default_mode":"none"}"#);
        assert!(plugin_json("e.yaml", one, Some("nope")).is_err());
    }

    #[test]
    fn wasm_plugin_among_documents() {
        let text = "kind: Service\n---\nkind: WasmPlugin\nmetadata: {name: tg}\nspec:\n  pluginConfig: {default_mode: none}\n";
        let (origin, json, _, _) = plugin_json("w.yaml", text, None).unwrap();
        assert!(origin.starts_with("Istio WasmPlugin w.yaml"), "{origin}");
        assert_eq!(json, br#"{"default_mode":"none"}"#);
    }
}
