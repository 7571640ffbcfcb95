//! The claim values a configuration's conditions read, taken from a token's payload once,
//! when it is verified, and kept with the cache entry (a hit never parses the token again).

use serde_json::Value;

use crate::verify::claims::parse_payload;
use crate::verify::jws;

/// The claim paths every rule's conditions read, each in one slot; empty when no rule has
/// conditions on tokens (then nothing is extracted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimPaths {
    paths: Vec<Vec<String>>,
}

impl ClaimPaths {
    /// The slot of `path`, added when new.
    pub fn slot(&mut self, path: &[String]) -> usize {
        match self.paths.iter().position(|p| p == path) {
            Some(slot) => slot,
            None => {
                self.paths.push(path.to_vec());
                self.paths.len() - 1
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// The values at every path of a verified token's payload, or `None` when the payload is
    /// no JSON object whose names are never repeated (at any depth).
    pub fn extract(&self, token: &str) -> Option<TokenClaims> {
        let payload = parse_payload(jws::split(token)?.payload)?;
        let values = self
            .paths
            .iter()
            .map(|path| {
                let (first, rest) = path.split_first()?;
                let mut value = payload.get(first)?;
                for key in rest {
                    value = value.as_object()?.get(key)?;
                }
                Some(value.clone())
            })
            .collect();
        Some(TokenClaims { values })
    }
}

/// The values of a token's claims at the [`ClaimPaths`], by slot (`None`: absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    values: Box<[Option<Value>]>,
}

impl TokenClaims {
    /// The value in `slot`, when the token has it.
    pub fn get(&self, slot: usize) -> Option<&Value> {
        self.values.get(slot)?.as_ref()
    }

    /// About the bytes the values hold (for the cache's bound).
    pub fn cost(&self) -> usize {
        fn cost(value: &Value) -> usize {
            let node = std::mem::size_of::<Value>();
            match value {
                Value::String(s) => node + s.len(),
                Value::Array(items) => node + items.iter().map(cost).sum::<usize>(),
                Value::Object(members) => {
                    node + members
                        .iter()
                        .map(|(k, v)| k.len() + node + cost(v))
                        .sum::<usize>()
                }
                _ => node,
            }
        }
        self.values.iter().flatten().map(cost).sum::<usize>()
            + self.values.len() * std::mem::size_of::<Option<Value>>()
    }
}
