//! The cases file of `tollgate test`: YAML entries of a request and what must come of it,
//! read into typed cases (unknown keys are errors that name the case and the key).
//!
//! ```yaml
//! - name: a user token on an admin path
//!   request:
//!     method: GET
//!     target: /admin/users
//!     headers:
//!       Authorization: ["Bearer ", {mint: {sub: alice, ttl: 1h}}]
//!   expect: {status: 403, code: PERMISSION_DENIED, rule: "prefix /admin"}
//! ```
//!
//! An issuer's token is minted with a private key: `{mint: {issuer: idp, key: idp.pem,
//! claims: {sub: alice, aud: api}}}` ([`crate::provider_token`]).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};
use tollgate_core::verify::token::{claims_for, SigningKey, MAX_TIMESTAMP};

use tollgate_core::config::Config;
use tollgate_core::verify::issuer::KeySource;

use crate::error::CliError;
use crate::fetched_keys::FetchedKeys;
use crate::yaml;

/// One case as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: Option<String>,
    pub request: RequestSpec,
    pub expect: Expect,
}

/// The request of a case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    pub method: String,
    pub target: Text,
    #[serde(default)]
    pub headers: Headers,
}

/// Headers: a mapping (sorted by name), or a list of one-entry mappings (in order, and a name
/// may repeat).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Headers {
    List(Vec<BTreeMap<String, Text>>),
    Map(BTreeMap<String, Text>),
}

impl Default for Headers {
    fn default() -> Self {
        Headers::List(Vec::new())
    }
}

/// A target or header value: text, a minted token or an environment variable, or a list of
/// those joined (`["Bearer ", {mint: {...}}]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Text {
    Plain(String),
    Joined(Vec<Piece>),
    One(Special),
}

/// One piece of a [`Text`].
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Piece {
    Plain(String),
    Special(Special),
}

/// `{mint: {...}}` or `{env: NAME}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Special {
    pub mint: Option<Mint>,
    pub env: Option<String>,
}

/// A token to mint: with the configuration's first secret (`sub`, `ttl`, `kid?`, `type?`,
/// `issued_ago?`), or as an issuer signs it (`issuer`, `key`, `claims`, `ttl?`, `kid?`,
/// `issued_ago?`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mint {
    pub sub: Option<String>,
    /// Lifetime: seconds, or a number with `s`, `m`, `h` or `d` (an issuer's token: 1h
    /// unless given, and only when `claims` has no `exp`).
    pub ttl: Option<Duration>,
    /// Default: the first secret's `kid`, or the `kid` of the issuer's key that `key` matches.
    pub kid: Option<String>,
    /// `token_type`; default `access`.
    #[serde(rename = "type")]
    pub token_type: Option<String>,
    /// Issued this long before now (an expired token: `ttl: 5m, issued_ago: 1h`).
    pub issued_ago: Option<Duration>,
    /// The `name` of the `issuers` entry whose token this is.
    pub issuer: Option<String>,
    /// The private key file, relative to the cases file's directory.
    pub key: Option<String>,
    /// The token's claims, as given; `iss`, `iat` and `exp` are added unless present.
    pub claims: Option<Map<String, Value>>,
}

/// A duration: seconds, or text such as `90s`, `5m`, `2h`, `7d`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Duration {
    Seconds(u64),
    Text(String),
}

impl Duration {
    fn seconds(&self) -> Result<u64, String> {
        match self {
            Duration::Seconds(s) => Ok(*s),
            Duration::Text(text) => {
                let (number, unit) = text.split_at(
                    text.find(|c: char| !c.is_ascii_digit())
                        .unwrap_or(text.len()),
                );
                let n: u64 = number
                    .parse()
                    .map_err(|_| format!("{text:?} is not a duration"))?;
                let scale = match unit {
                    "" | "s" => 1,
                    "m" => 60,
                    "h" => 3600,
                    "d" => 86400,
                    _ => return Err(format!("{text:?}: unit must be s, m, h or d")),
                };
                Ok(n.saturating_mul(scale))
            }
        }
    }
}

/// What must come of a case's request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// 200 when the request goes on upstream, else the filter's status.
    pub status: u32,
    pub code: Option<String>,
    pub user: Option<String>,
    pub role: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub name: Option<String>,
    /// `rules[N]`, `default`, or the rule as configured (`prefix /admin`).
    pub rule: Option<String>,
    /// Headers the upstream gets: the one value, or `null` for none at all.
    pub upstream_headers: Option<BTreeMap<String, Option<String>>>,
    /// The `:path` the upstream gets.
    pub upstream_path: Option<String>,
    /// The `Location` of a redirect.
    pub location: Option<String>,
}

/// Reads a cases file: a list of cases, or a mapping with a `cases` list.
pub fn load(path: &Path) -> Result<Vec<Case>, CliError> {
    let file = path.display().to_string();
    let text = crate::input::read_text(path)?;
    let docs = yaml::documents(&text, &file)?;
    let mut cases = Vec::new();
    for doc in docs {
        let list = match doc {
            Value::Array(list) => list,
            Value::Object(mut map) => match map.remove("cases") {
                Some(Value::Array(list)) if map.is_empty() => list,
                _ => {
                    return Err(CliError::input(format!(
                        "{file}: expected a list of cases (or `cases:` and a list)"
                    )))
                }
            },
            Value::Null => continue,
            _ => return Err(CliError::input(format!("{file}: expected a list of cases"))),
        };
        for entry in list {
            let index = cases.len();
            let label = entry.get("name").and_then(Value::as_str).map_or_else(
                || format!("case {}", index + 1),
                |n| format!("case {} ({n:?})", index + 1),
            );
            let case: Case = serde_path_to_error::deserialize(entry).map_err(|e| {
                CliError::input(format!("{file}: {label}: {}: {}", e.path(), e.inner()))
            })?;
            cases.push(case);
        }
    }
    Ok(cases)
}

/// What pieces are made from: the time, the signing key, the environment, and for issuers'
/// tokens the configuration, the keys given with `--jwks` and the cases file's directory.
pub struct Materials<'a> {
    pub now: u64,
    pub key: Option<&'a SigningKey>,
    pub env: &'a BTreeMap<String, String>,
    pub config: &'a Config,
    pub fetched: &'a FetchedKeys,
    pub dir: &'a Path,
}

impl Materials<'_> {
    /// The text, with tokens minted and variables read. `minted` collects the tokens made.
    pub fn text(&self, text: &Text, minted: &mut Vec<String>) -> Result<String, String> {
        match text {
            Text::Plain(s) => Ok(s.clone()),
            Text::One(special) => self.special(special, minted),
            Text::Joined(pieces) => pieces
                .iter()
                .map(|p| match p {
                    Piece::Plain(s) => Ok(s.clone()),
                    Piece::Special(special) => self.special(special, minted),
                })
                .collect(),
        }
    }

    fn special(&self, special: &Special, minted: &mut Vec<String>) -> Result<String, String> {
        match (&special.mint, &special.env) {
            (Some(mint), None) => {
                let token = self.mint(mint)?;
                minted.push(token.clone());
                Ok(token)
            }
            (None, Some(name)) => self.env.get(name).cloned().ok_or_else(|| {
                format!("env: {name} is not set (in the environment or --env-file)")
            }),
            _ => Err("give exactly one of mint or env".to_owned()),
        }
    }

    fn mint(&self, mint: &Mint) -> Result<String, String> {
        if mint.issuer.is_some() || mint.key.is_some() || mint.claims.is_some() {
            return self.mint_for_issuer(mint);
        }
        let (Some(sub), Some(ttl)) = (&mint.sub, &mint.ttl) else {
            return Err("mint: give sub and ttl (a token of the master secrets), or issuer, key and claims (an issuer's token)".to_owned());
        };
        let key = self
            .key
            .ok_or("mint: the configuration has no secret to sign with")?;
        let key = match &mint.kid {
            Some(kid) => key.with_kid(Some(kid.clone())),
            None => key.clone(),
        };
        let (issued, ttl) = self.times(Some(ttl), mint.issued_ago.as_ref())?;
        let claims = claims_for(
            sub,
            mint.token_type.as_deref().unwrap_or("access"),
            issued,
            ttl,
        );
        key.sign(claims).map_err(|e| format!("mint: {e}"))
    }

    /// When the token is issued and how long it lives (`ttl` 1 h unless given).
    fn times(
        &self,
        ttl: Option<&Duration>,
        issued_ago: Option<&Duration>,
    ) -> Result<(u64, u64), String> {
        let ago = issued_ago.map(Duration::seconds).transpose()?.unwrap_or(0);
        let issued = self.now.saturating_sub(ago);
        let ttl = ttl.map(Duration::seconds).transpose()?.unwrap_or(3600);
        if issued.saturating_add(ttl) > MAX_TIMESTAMP {
            return Err(format!(
                "mint.ttl: the token would expire after {MAX_TIMESTAMP} (February 2106), the last time a token can name"
            ));
        }
        Ok((issued, ttl))
    }

    /// `{mint: {issuer, key, claims}}`: the claims as given, with `iss` (the issuer's),
    /// `iat` and `exp` (from now, `issued_ago` and `ttl`) unless present, signed with `key`.
    fn mint_for_issuer(&self, mint: &Mint) -> Result<String, String> {
        let (Some(name), Some(key_file)) = (&mint.issuer, &mint.key) else {
            return Err("mint: an issuer's token needs issuer (an issuers entry's name) and key (a private key file)".to_owned());
        };
        if mint.sub.is_some() || mint.token_type.is_some() {
            return Err(
                "mint: an issuer's token takes its sub and token_type in claims".to_owned(),
            );
        }
        let issuers = &self.config.issuers.list;
        let (index, issuer) = issuers
            .iter()
            .enumerate()
            .find(|(_, i)| &*i.name == name)
            .ok_or_else(|| format!("mint.issuer: no issuer is named {name:?}"))?;
        let keys = match &issuer.keys {
            KeySource::Inline(set) => Some(&**set),
            KeySource::Remote(_) => self.fetched.of(index),
        };
        let mut claims = mint.claims.clone().unwrap_or_default();
        let (issued, ttl) = self.times(mint.ttl.as_ref(), mint.issued_ago.as_ref())?;
        claims
            .entry("iss")
            .or_insert_with(|| Value::from(issuer.issuer.clone()));
        claims.entry("iat").or_insert_with(|| Value::from(issued));
        claims
            .entry("exp")
            .or_insert_with(|| Value::from(issued.saturating_add(ttl)));
        let path = self.dir.join(key_file);
        // The key's text is never quoted: only the file's name is.
        let text = crate::input::read_text(&path).map_err(|e| format!("mint.key: {e}"))?;
        crate::provider_token::mint(&text, keys, &claims, mint.kid.as_deref())
            .map_err(|e| format!("mint.key: {}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(text: &str) -> Result<Vec<Case>, CliError> {
        let dir = std::env::temp_dir().join(format!("tollgate-cases-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("{}.yaml", text.len()));
        std::fs::write(&file, text).unwrap();
        load(&file)
    }

    #[test]
    fn reads_cases_and_names_bad_keys() {
        let cases = parse(
            "- name: a\n  request: {method: GET, target: /x, headers: {A: [\"Bearer \", {mint: {sub: s, ttl: 1h}}]}}\n  expect: {status: 200}\n",
        )
        .unwrap();
        assert_eq!(cases.len(), 1);
        let err =
            parse("- request: {method: GET, target: /x}\n  expect: {stauts: 200}\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("case 1: expect.stauts: unknown field `stauts`"),
            "{}",
            err.to_string()
        );
    }

    #[test]
    fn durations() {
        assert_eq!(Duration::Text("2h".into()).seconds().unwrap(), 7200);
        assert_eq!(Duration::Seconds(5).seconds().unwrap(), 5);
        assert!(Duration::Text("2y".into()).seconds().is_err());
    }
}
