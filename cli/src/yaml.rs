//! YAML documents as JSON values, so that serde reads them like the plugin's JSON.

use serde_json::{Map, Number, Value};
use yaml_rust2::{Yaml, YamlLoader};

use crate::error::CliError;

/// Every document of a YAML text, as JSON; `file` names the text in errors.
pub fn documents(text: &str, file: &str) -> Result<Vec<Value>, CliError> {
    let docs = YamlLoader::load_from_str(text)
        .map_err(|e| CliError::usage(format!("{file}: not valid YAML: {e}")))?;
    docs.iter().map(|doc| to_json(doc, file)).collect()
}

fn to_json(node: &Yaml, file: &str) -> Result<Value, CliError> {
    Ok(match node {
        Yaml::Real(text) => text
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| CliError::usage(format!("{file}: the number {text} is not finite")))?,
        Yaml::Integer(i) => Value::from(*i),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| to_json(item, file))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Hash(map) => {
            let mut out = Map::new();
            for (key, value) in map {
                let key = match key {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    other => {
                        return Err(CliError::usage(format!(
                            "{file}: a mapping key that is not text: {other:?}"
                        )))
                    }
                };
                out.insert(key, to_json(value, file)?);
            }
            Value::Object(out)
        }
        Yaml::Null | Yaml::BadValue => Value::Null,
        Yaml::Alias(_) => return Err(CliError::usage(format!("{file}: an unresolved YAML alias"))),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn maps_lists_and_scalars() {
        let docs = documents("a: [1, x, true]\nb: {c: 1.5}\n---\nd: null\n", "t").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(
            docs.first().unwrap(),
            &serde_json::json!({"a": [1, "x", true], "b": {"c": 1.5}})
        );
    }
}
