//! The key a JSON parser's error is about (`issuers[0].audiences`), read from where in the
//! text the parser stopped: the keys and array positions open at that point.

/// One open object or array at the error's position.
enum Open {
    /// An object, with the key whose value is being read.
    Object { key: Option<String>, at_key: bool },
    /// An array, with the position of the element being read, once it has begun.
    Array { index: usize, begun: bool },
}

/// The keys open at the 1-based `line` and `column` (in bytes) of `json`: `a.b[2].c`, or
/// an empty string at the top level. A parser reports a field missing from an object at
/// the object's end, so the object's own key names it; an unknown field, after its name, so
/// the name ends the path.
pub(super) fn path_at(json: &[u8], line: usize, column: usize) -> String {
    let mut open: Vec<Open> = Vec::new();
    let mut bytes = json.iter().copied().enumerate();
    let end = offset(json, line, column);
    while let Some((at, byte)) = bytes.next() {
        if at >= end {
            break;
        }
        if let Some(Open::Array { begun, .. }) = open.last_mut() {
            *begun |= !matches!(byte, b']' | b',') && !byte.is_ascii_whitespace();
        }
        match byte {
            b'{' => open.push(Open::Object {
                key: None,
                at_key: true,
            }),
            b'[' => open.push(Open::Array {
                index: 0,
                begun: false,
            }),
            b'}' | b']' => {
                open.pop();
            }
            b':' => {
                if let Some(Open::Object { at_key, .. }) = open.last_mut() {
                    *at_key = false;
                }
            }
            b',' => match open.last_mut() {
                Some(Open::Object { at_key, .. }) => *at_key = true,
                Some(Open::Array { index, begun }) => (*index, *begun) = (*index + 1, false),
                None => {}
            },
            b'"' => {
                let text = string_from(&mut bytes, end);
                if let Some(Open::Object { key, at_key: true }) = open.last_mut() {
                    *key = Some(text);
                }
            }
            _ => {}
        }
    }
    let mut path = String::new();
    for level in &open {
        match level {
            Open::Object { key: Some(key), .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Open::Object { key: None, .. } => {}
            Open::Array { index, begun } => {
                if *begun {
                    path.push_str(&format!("[{index}]"));
                }
            }
        }
    }
    path
}

/// The byte offset of `line` and `column` (both 1-based) in `json`.
fn offset(json: &[u8], line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        json.iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'\n')
            .nth(line - 2)
            .map_or(json.len(), |(at, _)| at + 1)
    };
    line_start.saturating_add(column)
}

/// The rest of a string whose opening quote was read, up to its closing quote (escapes kept
/// as written), reading no further than `end`.
fn string_from(bytes: &mut impl Iterator<Item = (usize, u8)>, end: usize) -> String {
    let mut text = Vec::new();
    let mut escaped = false;
    for (at, byte) in bytes.by_ref() {
        if at >= end || (!escaped && byte == b'"') {
            break;
        }
        escaped = !escaped && byte == b'\\';
        text.push(byte);
    }
    String::from_utf8_lossy(&text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::path_at;

    /// The path serde_json's error on `json` into `T` points at.
    fn path_of<T: serde::de::DeserializeOwned + std::fmt::Debug>(json: &str) -> String {
        let error = serde_json::from_str::<T>(json).unwrap_err();
        path_at(json.as_bytes(), error.line(), error.column())
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        name: String,
        #[serde(default)]
        audiences: Vec<String>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        #[serde(default)]
        issuers: Vec<Inner>,
        #[serde(default)]
        seconds: u64,
    }

    #[test]
    fn names_the_key_of_each_kind_of_error() {
        for (json, path) in [
            (r#"{"seconds": "x"}"#, "seconds"),
            (r#"{"bogus": 1}"#, "bogus"),
            (
                r#"{"issuers": [{"name": "a"}, {"name": 3}]}"#,
                "issuers[1].name",
            ),
            (
                r#"{"issuers": [{"name": "a", "audiences": [1]}]}"#,
                "issuers[0].audiences[0]",
            ),
            (r#"{"issuers": [{"audiences": []}]}"#, "issuers[0]"),
            (
                "{\n  \"issuers\": [\n    {\"name\": \"a\\\"b\", \"x\": 1}\n  ]\n}",
                "issuers[0].x",
            ),
            (r#"{"seconds": 1, "issuers": {}}"#, "issuers"),
            (
                r#"{"issuers": [{"name": "a,b:c{", "other": 2}]}"#,
                "issuers[0].other",
            ),
        ] {
            assert_eq!(path_of::<Outer>(json), path, "{json}");
        }
    }

    #[test]
    fn is_linear_in_the_text() {
        let json = format!(
            "{{\"issuers\": [{}{{\"name\": 1}}]}}",
            "{\"name\": \"a\"},".repeat(20_000)
        );
        assert_eq!(path_of::<Outer>(&json), "issuers[20000].name");
    }
}
