//! The hostile-input table, `tests/data/security-cases.tsv`, read into typed rows: one tab-
//! separated record per case (`#` lines are comments), read with `csv` and serde. Its columns
//! and notations are described at the top of the file. The configurations rows name are
//! [`ConfigName::json`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{json, Value};

use tollgate_core::verify::token::{claims_for, SigningKey};

use crate::{now, CS, CSB, K, LOGIN, PK, SK};

/// The table's text.
pub const TABLE: &str = include_str!("../../tests/data/security-cases.tsv");

/// One row: a request under a configuration, and what must come of it.
#[derive(Debug, Clone, Deserialize)]
pub struct Row {
    pub id: String,
    pub config: ConfigName,
    pub request: RequestText,
    pub expect: Expect,
    #[serde(default)]
    pub note: String,
}

/// Every row of the table, in order.
pub fn rows() -> Vec<Row> {
    csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .comment(Some(b'#'))
        .has_headers(false)
        .flexible(true)
        .quoting(false)
        .from_reader(TABLE.as_bytes())
        .deserialize()
        .enumerate()
        .map(|(i, row)| row.unwrap_or_else(|e| panic!("security-cases.tsv, record {i}: {e}")))
        .collect()
}

/// The configurations rows name (column 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum ConfigName {
    A,
    B,
    C,
    D,
    E,
    F,
    G,
    H,
    I,
    J,
    K,
    L,
}

impl ConfigName {
    pub const ALL: [ConfigName; 12] = [
        ConfigName::A,
        ConfigName::B,
        ConfigName::C,
        ConfigName::D,
        ConfigName::E,
        ConfigName::F,
        ConfigName::G,
        ConfigName::H,
        ConfigName::I,
        ConfigName::J,
        ConfigName::K,
        ConfigName::L,
    ];

    /// The plugin configuration.
    pub fn json(self) -> Value {
        let mut a = json!({
            "secrets": [{"key": K}],
            "api_keys": [{"name": "server", "key": SK}],
            "publishable_keys": [{"name": "web", "key": PK}],
            "clients": [
                {"client_id": "client-a", "client_secret": CS},
                {"client_id": "client-b", "client_secret": CSB}
            ],
            "rules": [
                {"prefix": "/public", "mode": "none"},
                {"path": "/login", "mode": "none"},
                {"path": "/healthz", "mode": "none"},
                {"prefix": "/feed", "mode": "optional"},
                {"prefix": "/ops", "mode": "required", "roles": ["admin"]}
            ],
            "login_url": LOGIN,
            "return_param": "return_to",
            "token_cookie": "session"
        });
        match self {
            ConfigName::A => a,
            ConfigName::B => json!({
                "secrets": [{"key": K}],
                "default_mode": "none",
                "rules": [{"prefix": "/admin", "mode": "required"}]
            }),
            ConfigName::C => json!({
                "secrets": [{"key": K}],
                "default_mode": "none",
                "rules": [{"path": "/admin", "mode": "required"}]
            }),
            ConfigName::D => {
                a["login_url"] = json!(format!("{LOGIN}?tenant=acme"));
                a
            }
            ConfigName::E => json!({
                "secrets": [{"key": K}],
                "default_mode": "none",
                "rules": [
                    {"prefix": "/items", "mode": "required", "methods": ["DELETE"]},
                    {"prefix": "/reports", "mode": "required", "methods": ["GET"]}
                ]
            }),
            ConfigName::F => {
                a["identity_headers"] = json!({
                    "user": "x-user", "type": "x-user-type", "role": "x-user-role", "name": "x-user-name"
                });
                a
            }
            ConfigName::G => json!({
                "secrets": [{"key": K}],
                "rules": [
                    {"prefix": "/public", "mode": "none"},
                    {"path": "/healthz", "mode": "none"},
                    {"prefix": "/feed", "mode": "optional"},
                    {"prefix": "/orders", "mode": "none", "methods": ["GET"]}
                ]
            }),
            ConfigName::H => json!({
                "secrets": [{"key": K}],
                "clients": [{"client_id": "client-a", "client_secret": CS}],
                "login_url": LOGIN,
                "rules": [
                    {"path": "/login", "mode": "none"},
                    {"prefix": "/feed", "mode": "optional"},
                    {"prefix": "/admin", "mode": "required", "roles": ["admin"]}
                ]
            }),
            ConfigName::I => json!({
                "secrets": [{"key": K}],
                "default_mode": "none",
                "rules": [
                    {"prefix": "/api", "mode": "required"},
                    {"prefix": "/secret", "mode": "required"},
                    {"prefix": "/keys", "mode": "required"},
                    {"prefix": "/Reports", "mode": "required"},
                    {"prefix": "/admin", "mode": "required", "roles": ["admin"]}
                ]
            }),
            ConfigName::J => crate::conditions::config_j(),
            ConfigName::K => json!({
                "secrets": [{"key": K}],
                "default_mode": "none",
                "rules": [
                    {"prefix": "/", "mode": "none"},
                    {"prefix": "/", "mode": "required", "hosts": ["api.example.com", "*.api.example.com"]},
                    {"prefix": "/ops", "mode": "required", "roles": ["admin"], "hosts": ["ops.example.com"]}
                ]
            }),
            ConfigName::L => crate::provider::config_j(),
        }
    }
}

impl fmt::Display for ConfigName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The request column as written: `METHOD TARGET`, then ` | Name: value` per header line and
/// ` | *N Name: value` for N lines named Name1..NameN. Placeholders and escapes stay as written
/// ([`RequestText::build`] expands them).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct RequestText {
    pub method: String,
    /// `None` for `-` (no `:path` at all).
    pub target: Option<String>,
    pub headers: Vec<HeaderText>,
}

#[derive(Debug, Clone)]
pub struct HeaderText {
    pub name: String,
    pub value: String,
    /// `*N`: the line is sent N times, as Name1..NameN.
    pub repeat: Option<usize>,
}

impl TryFrom<String> for RequestText {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let mut parts = text.split(" | ");
        let first = parts.next().unwrap_or_default();
        let (method, target) = first
            .split_once(' ')
            .ok_or_else(|| format!("no `METHOD TARGET` in {first:?}"))?;
        let headers = parts
            .map(|part| {
                let (repeat, header) = match part.strip_prefix('*') {
                    Some(counted) => {
                        let (n, h) = counted
                            .split_once(' ')
                            .ok_or_else(|| format!("no header after *N in {part:?}"))?;
                        (Some(n.parse().map_err(|e| format!("{part:?}: {e}"))?), h)
                    }
                    None => (None, part),
                };
                let (name, value) = header
                    .split_once(':')
                    .ok_or_else(|| format!("no `Name: value` in {part:?}"))?;
                Ok(HeaderText {
                    name: name.to_owned(),
                    value: value.strip_prefix(' ').unwrap_or(value).to_owned(),
                    repeat,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(RequestText {
            method: method.to_owned(),
            target: (target != "-").then(|| target.to_owned()),
            headers,
        })
    }
}

impl RequestText {
    /// The target and header lines as bytes, with `expand` turning the table's text into
    /// bytes: a `*N` line becomes N lines named Name1..NameN. A row without a target gets an
    /// empty one (no `:path` natively; such rows are `native`).
    pub fn expanded(&self, expand: impl Fn(&str) -> Vec<u8>) -> (Vec<u8>, Vec<(String, Vec<u8>)>) {
        let target = self.target.as_deref().map(&expand).unwrap_or_default();
        let mut headers = Vec::new();
        for header in &self.headers {
            let value = expand(&header.value);
            match header.repeat {
                Some(n) => {
                    headers.extend((1..=n).map(|i| (format!("{}{i}", header.name), value.clone())))
                }
                None => headers.push((header.name.clone(), value)),
            }
        }
        (target, headers)
    }
}

/// The expectation column: the status, then checks, and where the row runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct Expect {
    pub status: u16,
    pub checks: Vec<Check>,
    pub only: Option<Only>,
}

/// A row that runs one way only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    /// Envoy answers before the filter.
    Envoy,
    /// HTTP/1 cannot carry the request.
    Native,
}

/// One identity header the filter sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityField {
    User,
    Type,
    Role,
    Name,
}

impl IdentityField {
    pub const ALL: [IdentityField; 4] = [
        IdentityField::User,
        IdentityField::Type,
        IdentityField::Role,
        IdentityField::Name,
    ];

    /// The default header name.
    pub fn header(self) -> &'static str {
        match self {
            IdentityField::User => "x-auth-user",
            IdentityField::Type => "x-auth-type",
            IdentityField::Role => "x-auth-role",
            IdentityField::Name => "x-auth-name",
        }
    }
}

/// One check of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// `code=CODE`: the JSON error code.
    Code(String),
    /// `challenge=ERROR`: `WWW-Authenticate` holds `error="ERROR"`.
    Challenge(String),
    /// `user=V`, `type=V`, `role=V`, `name=V`: the one value of that identity header upstream.
    Identity(IdentityField, String),
    /// `noid`: the request went on, with no identity header.
    NoIdentity,
    /// `path=P`: the `:path` upstream.
    Path(String),
    /// `gone=H`: the request went on without header H.
    Gone(String),
    /// `kept=H`: header H went on.
    Kept(String),
    /// `upstream:H=V`: the one value of header H upstream is V (with the table's escapes).
    Upstream(String, String),
    /// `location=L`: the exact `Location`.
    Location(String),
    /// `location^=L`: a `Location` that starts with L.
    LocationPrefix(String),
}

impl FromStr for Check {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (key, value) = text.split_once('=').unwrap_or((text, ""));
        let value = value.to_owned();
        Ok(match key {
            "code" => Check::Code(value),
            "challenge" => Check::Challenge(value),
            "user" => Check::Identity(IdentityField::User, value),
            "type" => Check::Identity(IdentityField::Type, value),
            "role" => Check::Identity(IdentityField::Role, value),
            "name" => Check::Identity(IdentityField::Name, value),
            "noid" if value.is_empty() => Check::NoIdentity,
            "path" => Check::Path(value),
            "gone" => Check::Gone(value),
            "kept" => Check::Kept(value),
            "location" => Check::Location(value),
            "location^" => Check::LocationPrefix(value),
            _ => match key.strip_prefix("upstream:") {
                Some(header) => Check::Upstream(header.to_owned(), value),
                None => return Err(format!("unknown expectation {text:?}")),
            },
        })
    }
}

impl TryFrom<String> for Expect {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let mut words = text.split(' ');
        let status = words
            .next()
            .unwrap_or_default()
            .parse()
            .map_err(|e| format!("status of {text:?}: {e}"))?;
        let mut checks = Vec::new();
        let mut only = None;
        for word in words {
            match word {
                "envoy" | "native" if only.is_some() => {
                    return Err(format!("both envoy and native in {text:?}"))
                }
                "envoy" => only = Some(Only::Envoy),
                "native" => only = Some(Only::Native),
                check => checks.push(check.parse()?),
            }
        }
        Ok(Expect {
            status,
            checks,
            only,
        })
    }
}

/// The credentials the placeholders stand for, minted for this run's clock.
pub struct Placeholders(BTreeMap<&'static str, String>);

impl Placeholders {
    /// The placeholders minted for this run's clock.
    pub fn get() -> &'static Placeholders {
        static PLACEHOLDERS: OnceLock<Placeholders> = OnceLock::new();
        PLACEHOLDERS.get_or_init(|| Placeholders::minted_at(now()))
    }

    /// The placeholders with tokens minted at unix time `now` (valid for an hour).
    pub fn minted_at(now: u64) -> Placeholders {
        let key = SigningKey::new(None, K.as_bytes());
        let sign = |token_type: &str, issued: u64| {
            key.sign(claims_for("alice", token_type, issued, 3600))
                .unwrap_or_default()
        };
        let j01 = sign("access", now);
        let unsigned = j01
            .rsplit_once('.')
            .map_or("", |(signed, _)| signed)
            .to_owned();
        let encoded: String = j01
            .bytes()
            .enumerate()
            .map(|(i, b)| match i {
                0..=2 => format!("%{b:02X}"),
                _ => char::from(b).to_string(),
            })
            .collect();
        let mut all = BTreeMap::from([
            ("J09a", format!("{unsigned}.")),
            ("J15a", sign("refresh", now)),
            ("J14b", sign("access", now.saturating_sub(4200))),
            ("J01%", encoded),
            ("SK", SK.into()),
            ("PK", PK.into()),
            ("CS", CS.into()),
            ("CSB", CSB.into()),
            ("J01", j01),
        ]);
        all.extend(crate::conditions::claim_tokens(now));
        all.extend(crate::provider::provider_tokens(now));
        Placeholders(all)
    }

    /// What `<name>` stands for.
    pub fn value(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }

    /// Every secret value, to look for in answers and logs.
    pub fn secrets(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self.0.values().map(String::as_str).collect();
        all.push(K);
        all
    }
}

/// The table's text as bytes, placeholders standing for this run's credentials.
pub fn expand(text: &str) -> Vec<u8> {
    crate::expand_table(text, |name| Placeholders::get().value(name))
}
