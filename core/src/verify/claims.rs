//! Claims read from an issuer's token beyond the registered ones: the subject claim, the
//! roles claim and the claims copied to headers.
//!
//! The payload is read into a JSON tree that refuses a repeated name at any depth (two
//! parsers that keep the first and the last of two `roles` would disagree on who the caller
//! is), and a value reaches a header only when no upstream could read it differently.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::verify::base64url;
use crate::verify::jws::MAX_DEPTH;

/// The longest claim value copied into a header, in bytes.
pub const MAX_CLAIM_HEADER_LEN: usize = 1024;
pub use crate::identity::MAX_ROLES;

/// A JSON tree whose objects never repeat a name.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if members.insert(name, value).is_some() {
                return Err(de::Error::custom("a name is repeated"));
            }
        }
        Ok(Value::Object(members))
    }
}

/// A JSON text whose objects never repeat a name, as a tree; `None` otherwise.
pub fn parse_strict(text: &[u8]) -> Option<Value> {
    serde_json::from_slice::<Strict>(text).ok().map(|s| s.0)
}

/// The payload segment of a compact JWS as a JSON object, or `None` when it is not
/// base64url JSON of an object, nests deeper than the JWS reader allows, or repeats a name.
pub fn parse_payload(segment: &str) -> Option<Map<String, Value>> {
    let mut buffer = Vec::new();
    base64url::decode_into(segment.as_bytes(), &mut buffer)?;
    if buffer.iter().filter(|b| **b == b'[' || **b == b'{').count() > MAX_DEPTH * 64 {
        // Cheap bound on the tree's size before it is built; depth is checked by serde_json
        // (its recursion limit) and by the JWS reader, which reads this payload first.
        return None;
    }
    match serde_json::from_slice::<Strict>(&buffer).ok()?.0 {
        Value::Object(members) => Some(members),
        _ => None,
    }
}

/// The value at `path` in `claims`: the claim of that exact name, else the dotted path
/// through nested objects (`realm_access.roles`).
pub fn lookup<'c>(claims: &'c Map<String, Value>, path: &str) -> Option<&'c Value> {
    if let Some(value) = claims.get(path) {
        return Some(value);
    }
    let mut parts = path.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

/// A text an upstream reads as one value, the same way everywhere: visible ASCII and spaces,
/// no comma (a list separator), not empty, not padded, at most [`MAX_CLAIM_HEADER_LEN`].
fn is_single_header_value(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_CLAIM_HEADER_LEN
        && !text.starts_with(' ')
        && !text.ends_with(' ')
        && text
            .bytes()
            .all(|b| (b.is_ascii_graphic() || b == b' ') && b != b',')
}

/// The header value of a claim, or `None` when an upstream could read it differently (it is
/// dropped, never rewritten): a string, number or boolean as its text; a list of those as
/// their texts joined by `,`; objects, `null` and anything unsafe give none.
pub fn header_value(value: &Value) -> Option<String> {
    let scalar = |v: &Value| match v {
        Value::String(s) if is_single_header_value(s) => Some(s.clone()),
        // An integer is read exactly and written back as it was; any other number (a
        // fraction, an exponent, an integer beyond 64 bits) would be rewritten: dropped.
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match value {
        Value::Array(items) if !items.is_empty() => {
            let texts: Option<Vec<String>> = items.iter().map(scalar).collect();
            let joined = texts?.join(",");
            (joined.len() <= MAX_CLAIM_HEADER_LEN).then_some(joined)
        }
        Value::Array(_) => None,
        other => scalar(other),
    }
}

/// The values a claim names, `None` for one that is not a string: itself, or each element
/// of a list (the roles claim; [`crate::identity::Roles::from_claim`] keeps the role names
/// among them). `null` names nothing.
pub fn strings(value: &Value) -> Vec<Option<&str>> {
    match value {
        Value::Array(items) => items.iter().map(Value::as_str).collect(),
        Value::Null => Vec::new(),
        other => vec![other.as_str()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload(json: &str) -> String {
        use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Encoder};
        Base64UrlSafeNoPadding::encode_to_string(json.as_bytes()).unwrap()
    }

    #[test]
    fn a_repeated_name_at_any_depth_is_refused() {
        assert!(parse_payload(&payload(r#"{"a":{"roles":["x"]}}"#)).is_some());
        assert!(parse_payload(&payload(r#"{"a":1,"a":2}"#)).is_none());
        assert!(parse_payload(&payload(r#"{"a":{"roles":["x"],"roles":["admin"]}}"#)).is_none());
        assert!(parse_payload(&payload(r#"[1]"#)).is_none());
    }

    #[test]
    fn lookup_prefers_the_exact_name_then_walks_dots() {
        let claims = json!({"realm_access": {"roles": ["a"]}, "https://x.example/roles": "b"});
        let claims = claims.as_object().unwrap();
        assert_eq!(lookup(claims, "realm_access.roles"), Some(&json!(["a"])));
        assert_eq!(lookup(claims, "https://x.example/roles"), Some(&json!("b")));
        assert_eq!(lookup(claims, "realm_access.missing"), None);
        assert_eq!(lookup(claims, "realm_access.roles.x"), None);
    }

    #[test]
    fn header_values_an_upstream_could_split_are_dropped() {
        assert_eq!(
            header_value(&json!("a@b.example")),
            Some("a@b.example".into())
        );
        assert_eq!(header_value(&json!(42)), Some("42".into()));
        assert_eq!(header_value(&json!(["a", "b"])), Some("a,b".into()));
        for unsafe_value in [
            json!("a,b"),
            json!("a\r\nx-auth-user: admin"),
            json!("tab\there"),
            json!("é"),
            json!(" padded"),
            json!(""),
            json!(["a", "b,c"]),
            json!({"a": 1}),
            json!(null),
            json!([]),
            json!("x".repeat(MAX_CLAIM_HEADER_LEN + 1)),
        ] {
            assert_eq!(header_value(&unsafe_value), None, "{unsafe_value}");
        }
    }

    #[test]
    fn numbers_reach_a_header_as_written_or_not_at_all() {
        let header = |json: &str| {
            let claims = parse_payload(&payload(&format!(r#"{{"n":{json}}}"#))).unwrap();
            header_value(claims.get("n").unwrap())
        };
        for exact in [
            "0",
            "42",
            "-5",
            "18446744073709551615",
            "-9223372036854775808",
        ] {
            assert_eq!(header(exact).as_deref(), Some(exact), "{exact}");
        }
        for rewritten in [
            "18446744073709551616",
            "18446744073709551617",
            "-9223372036854775809",
            "1.5",
            "1.0",
            "1e2",
            "-0",
            "0.1",
            "[1, 2.0]",
        ] {
            assert_eq!(header(rewritten), None, "{rewritten}");
        }
        assert_eq!(header("[1, -2]").as_deref(), Some("1,-2"));
    }

    #[test]
    fn strings_are_a_string_or_each_element_of_a_list_none_when_not_a_string() {
        assert_eq!(strings(&json!("admin")), vec![Some("admin")]);
        assert_eq!(
            strings(&json!(["admin", "Bad", 3, null, ["x"], "editor"])),
            vec![Some("admin"), Some("Bad"), None, None, None, Some("editor")]
        );
        assert_eq!(strings(&json!({"a": "admin"})), vec![None]);
        assert_eq!(strings(&json!(3)), vec![None]);
        assert!(strings(&json!(null)).is_empty());
        assert!(strings(&json!([])).is_empty());
    }
}
