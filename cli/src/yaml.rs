//! YAML documents as JSON values, so that serde reads them like the plugin's JSON.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, EventReceiver, Parser};
use yaml_rust2::{Yaml, YamlLoader};

use crate::error::CliError;

/// The deepest nesting read: configurations and cases files nest a few levels, and deeper
/// texts would exhaust the stack of the code that reads them.
const MAX_DEPTH: usize = 64;
/// The furthest a line's content may start (spaces and `- ` indicators).
const MAX_INDENT: usize = 256;
/// The most nodes a text may stand for once its aliases are expanded (a few hundred bytes of
/// aliases to aliases can stand for billions).
const MAX_NODES: u64 = 1_000_000;

/// Every document of a YAML text, as JSON; `file` names the text in errors.
pub fn documents(text: &str, file: &str) -> Result<Vec<Value>, CliError> {
    check_bounds(text).map_err(|problem| CliError::input(format!("{file}: {problem}")))?;
    let docs = YamlLoader::load_from_str(text)
        .map_err(|e| CliError::input(format!("{file}: not valid YAML: {e}")))?;
    docs.iter().map(|doc| to_json(doc, file)).collect()
}

/// Refuses a text nested deeper than [`MAX_DEPTH`] or standing for more than [`MAX_NODES`]
/// nodes, from the parser's events, before anything is built from it.
fn check_bounds(text: &str) -> Result<(), String> {
    // Block nesting needs a column of indentation (or a `- `) per level, and the parser
    // itself recurses per level: a line that starts that far in is refused before it parses.
    let deep = text.lines().any(|line| {
        let lead = line.bytes().take_while(|b| b" \t-?".contains(b)).count();
        lead > MAX_INDENT
    });
    if deep {
        return Err(format!("nests deeper than {MAX_INDENT} columns"));
    }
    let mut bounds = Bounds::default();
    Parser::new_from_str(text)
        .load(&mut bounds, true)
        .map_err(|e| format!("not valid YAML: {e}"))?;
    bounds.problem.map_or(Ok(()), Err)
}

/// Sizes seen while parsing: the open collections (their anchor and size so far), the size
/// of each anchored node, the nodes counted so far.
#[derive(Default)]
struct Bounds {
    open: Vec<(usize, u64)>,
    anchored: HashMap<usize, u64>,
    nodes: u64,
    problem: Option<String>,
}

impl Bounds {
    /// A finished node of `size` nodes (an alias: the size of what it names).
    fn node(&mut self, anchor: usize, size: u64, counted: u64) {
        if anchor > 0 {
            self.anchored.insert(anchor, size);
        }
        if let Some((_, parent)) = self.open.last_mut() {
            *parent = parent.saturating_add(size);
        }
        self.nodes = self.nodes.saturating_add(counted);
        if self.nodes > MAX_NODES {
            self.problem = Some(format!(
                "stands for more than {MAX_NODES} values once its aliases are expanded"
            ));
        }
    }
}

impl EventReceiver for Bounds {
    fn on_event(&mut self, event: Event) {
        if self.problem.is_some() {
            return;
        }
        match event {
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.open.len() >= MAX_DEPTH {
                    self.problem = Some(format!("nests deeper than {MAX_DEPTH} levels"));
                }
                self.open.push((anchor, 1));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((anchor, size)) = self.open.pop() {
                    self.node(anchor, size, 1);
                }
            }
            Event::Scalar(_, _, anchor, _) => self.node(anchor, 1, 1),
            Event::Alias(anchor) => {
                let size = self.anchored.get(&anchor).copied().unwrap_or(1);
                self.node(0, size, size);
            }
            _ => {}
        }
    }
}

fn to_json(node: &Yaml, file: &str) -> Result<Value, CliError> {
    Ok(match node {
        Yaml::Real(text) => text
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| CliError::input(format!("{file}: the number {text} is not finite")))?,
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
                    _ => {
                        return Err(CliError::input(format!(
                            "{file}: a mapping key that is not text (a list, a mapping or a number with a fraction)"
                        )))
                    }
                };
                out.insert(key, to_json(value, file)?);
            }
            Value::Object(out)
        }
        Yaml::Null | Yaml::BadValue => Value::Null,
        Yaml::Alias(_) => return Err(CliError::input(format!("{file}: an unresolved YAML alias"))),
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

    #[test]
    fn deep_nesting_and_alias_bombs_are_refused_before_they_are_built() {
        let deep = format!("{}x\n", "- ".repeat(3000));
        let err = documents(&deep, "deep.yaml").unwrap_err();
        assert!(
            err.to_string().contains("nests deeper"),
            "{}",
            err.to_string()
        );
        let deep_flow = format!("a: {}x{}\n", "[".repeat(200), "]".repeat(200));
        let err = documents(&deep_flow, "flow.yaml").unwrap_err();
        assert!(err.to_string().contains("nest"), "{}", err.to_string());
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..10 {
            let prev = level - 1;
            bomb.push_str(&format!(
                "a{level}: &a{level} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let err = documents(&bomb, "bomb.yaml").unwrap_err();
        assert!(err.to_string().contains("aliases"), "{}", err.to_string());
        // Ordinary anchors still work.
        let ok = documents("base: &b {x: 1}\nuse: *b\n", "ok.yaml").unwrap();
        assert_eq!(ok[0]["use"]["x"], 1);
    }
}
