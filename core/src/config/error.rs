//! A refused configuration: the key, and what is wrong, never quoting a value.

use std::fmt;

/// A configuration refused: which key, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

impl ConfigError {
    pub(crate) fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// The key and message of an unknown field, without the field's name when it could be a
/// secret written where a key belongs (`{"name": "backend", "sk_live_…": null}`, a forgotten
/// `"key":`): a name is shown only when it is short, plain (`[a-z0-9_]`) and no strong key.
pub(super) fn without_secret_names<'p>(path: &'p str, message: &str) -> (&'p str, String) {
    let name = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'));
    let Some((name, expected)) = name else {
        return (path, message.to_owned());
    };
    let plain = name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && super::key_strength::check_strength(name).is_err();
    if plain {
        return (path, message.to_owned());
    }
    let parent = path
        .strip_suffix(name)
        .map(|p| p.strip_suffix('.').unwrap_or(p))
        .unwrap_or(path);
    (
        parent,
        format!("has an unknown field (its name is not shown: it may be a secret){expected}"),
    )
}

/// A parser's message without the values it quotes (`invalid type: string "…"`): the value
/// may be a secret written in the wrong place, and the message goes to the log.
pub(super) fn without_values(message: &str) -> String {
    /// How the parser quotes a value, and what is written instead.
    const QUOTED: [(&str, char, &str); 3] = [
        ("string \"", '"', "a string"),
        ("integer `", '`', "a number"),
        ("floating point `", '`', "a number"),
    ];
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some((at, opening, quote, plain)) = QUOTED
        .iter()
        .filter_map(|&(o, q, p)| rest.find(o).map(|at| (at, o, q, p)))
        .min_by_key(|found| found.0)
    {
        out.push_str(rest.get(..at).unwrap_or_default());
        out.push_str(plain);
        rest = skip_quoted(rest.get(at + opening.len()..).unwrap_or_default(), quote);
    }
    out.push_str(rest);
    out
}

/// What follows the closing `quote` (a backslash escapes the next character).
fn skip_quoted(text: &str, quote: char) -> &str {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            c if c == quote => return text.get(i + c.len_utf8()..).unwrap_or_default(),
            _ => {}
        }
    }
    ""
}
