//! How a decision is reported: the access-log fields and the debug line. Never a credential.

use std::borrow::Cow;

use super::{Decision, Outcome};
use crate::identity::CredentialKind;
use crate::request::names;
use crate::request::path;

/// A field of the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogField {
    Outcome,
    Type,
    Role,
    User,
    Name,
    /// The issuer (its configured `name`) of an identity provider's token.
    Issuer,
    Code,
    Rule,
}

impl LogField {
    /// Every field.
    pub const ALL: [LogField; 8] = [
        LogField::Outcome,
        LogField::Type,
        LogField::Role,
        LogField::User,
        LogField::Name,
        LogField::Issuer,
        LogField::Code,
        LogField::Rule,
    ];

    /// The field's name.
    pub fn name(self) -> &'static str {
        match self {
            LogField::Outcome => "outcome",
            LogField::Type => "type",
            LogField::Role => "role",
            LogField::User => "user",
            LogField::Name => "name",
            LogField::Issuer => "issuer",
            LogField::Code => "code",
            LogField::Rule => "rule",
        }
    }

    /// The property the adapter sets (Envoy's filter state `wasm.<property>`).
    pub fn property(self) -> &'static str {
        match self {
            LogField::Outcome => "tollgate.outcome",
            LogField::Type => "tollgate.type",
            LogField::Role => "tollgate.role",
            LogField::User => "tollgate.user",
            LogField::Name => "tollgate.name",
            LogField::Issuer => "tollgate.issuer",
            LogField::Code => "tollgate.code",
            LogField::Rule => "tollgate.rule",
        }
    }
}

impl Outcome {
    /// One word for logs and the access log.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Preflight => "preflight",
            Outcome::Unchecked => "unchecked",
            Outcome::Allowed(_) => "allowed",
            Outcome::Denied(_) => "denied",
            Outcome::Redirected(_) => "redirected",
        }
    }
}

impl Decision<'_> {
    /// Fields for Envoy's access log, set as filter state `wasm.tollgate.<field>`; only those
    /// with a value. Never a credential.
    pub fn log_fields(&self) -> Vec<(LogField, Cow<'_, str>)> {
        let mut fields = vec![(LogField::Outcome, Cow::Borrowed(self.outcome.label()))];
        match &self.outcome {
            Outcome::Allowed(identity) => {
                fields.push((LogField::Type, Cow::Borrowed(identity.kind.as_str())));
                fields.push((LogField::Role, Cow::Borrowed(&*identity.role)));
                if let Some(user) = &identity.user {
                    fields.push((LogField::User, Cow::Borrowed(&**user)));
                }
                if let Some(name) = &identity.name {
                    fields.push((LogField::Name, Cow::Borrowed(&**name)));
                    if identity.kind == CredentialKind::AccessToken {
                        fields.push((LogField::Issuer, Cow::Borrowed(&**name)));
                    }
                }
            }
            Outcome::Denied(denial) | Outcome::Redirected(denial) => {
                fields.push((LogField::Code, Cow::Borrowed(denial.code().as_str())));
            }
            Outcome::Preflight | Outcome::Unchecked => {}
        }
        if !matches!(self.outcome, Outcome::Preflight) {
            fields.push((LogField::Rule, Cow::Owned(self.rule_label())));
        }
        fields
    }

    /// `rules[N]` for a configured rule, `default` for the default mode.
    pub fn rule_label(&self) -> String {
        match self.rule {
            Some(index) => format!("rules[{index}]"),
            None => "default".to_owned(),
        }
    }

    /// One line for the debug log: method, normalised path (never the query, which may hold
    /// a credential), outcome, rule and identity or reason.
    pub fn describe<N, V>(&self, headers: &[(N, V)]) -> String
    where
        N: AsRef<str>,
        V: AsRef<[u8]>,
    {
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.as_ref() == name)
                .map(|(_, v)| v.as_ref())
        };
        let method = String::from_utf8_lossy(header(names::METHOD).unwrap_or_default());
        let path = header(names::PATH)
            .map(|target| path::split_target(target).0)
            .and_then(|p| path::readings(p).ok().map(|r| elide_parameters(r.first())))
            .unwrap_or_else(|| "(unusable path)".to_owned());
        let mut line = format!("{} {method} {path}", self.outcome.label());
        for (field, value) in self.log_fields().iter().skip(1) {
            line.push_str(&format!(" {}={value}", field.name()));
        }
        if let Outcome::Denied(denial) | Outcome::Redirected(denial) = &self.outcome {
            line.push_str(&format!(" reason=\"{}\"", denial.message()));
        }
        line
    }
}

/// `path` with the values of its `;` parameters left out, and cut at the first escape or `,`
/// (a client may put a credential in a parameter, or behind an encoded `?` or `;`).
fn elide_parameters(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let (mut in_parameter, mut in_value) = (false, false);
    for c in path.chars() {
        match c {
            '%' | ',' => {
                out.push('…');
                break;
            }
            '/' => (in_parameter, in_value) = (false, false),
            ';' => (in_parameter, in_value) = (true, false),
            '=' if in_parameter && !in_value => {
                in_value = true;
                out.push_str("=…");
                continue;
            }
            _ if in_value => continue,
            _ => {}
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::decision::decide;
    use crate::worker::WorkerState;

    #[test]
    fn log_fields_and_description_never_hold_the_credential() {
        let config = Config::parse(
            br#"{"secrets":[{"key":"Hq3vXo9TzK7rWm2pLc8dNs5yFb4gJe6A"}],"rules":[{"prefix":"/public","mode":"none"}]}"#,
            &|_| None,
        )
        .unwrap();
        let token =
            crate::verify::token::SigningKey::new(None, b"Hq3vXo9TzK7rWm2pLc8dNs5yFb4gJe6A")
                .sign(crate::verify::token::claims_for(
                    "alice",
                    "access",
                    1_750_000_000,
                    60,
                ))
                .unwrap();
        let target = format!("/api/x?access_token={token}");
        let headers = vec![
            (":method".to_string(), b"GET".to_vec()),
            (":path".to_string(), target.into_bytes()),
        ];
        let d = decide(
            &config,
            &mut WorkerState::default(),
            &headers,
            1_750_000_000,
        );
        assert_eq!(
            d.log_fields(),
            vec![
                (LogField::Outcome, Cow::Borrowed("allowed")),
                (LogField::Type, "access_token".into()),
                (LogField::Role, "user".into()),
                (LogField::User, "alice".into()),
                (LogField::Rule, "default".into()),
            ]
        );
        let line = d.describe(&headers);
        assert_eq!(
            line,
            "allowed GET /api/x type=access_token role=user user=alice rule=default"
        );
        assert!(!line.contains(&token));

        let headers = vec![
            (":method".to_string(), b"GET".to_vec()),
            (":path".to_string(), b"/api/x?access_token=a.b.c".to_vec()),
        ];
        let d = decide(
            &config,
            &mut WorkerState::default(),
            &headers,
            1_750_000_000,
        );
        assert_eq!(
            d.log_fields(),
            vec![
                (LogField::Outcome, Cow::Borrowed("denied")),
                (LogField::Code, "INVALID_CREDENTIALS".into()),
                (LogField::Rule, "default".into()),
            ]
        );
        assert!(d
            .describe(&headers)
            .starts_with("denied GET /api/x code=INVALID_CREDENTIALS rule=default reason=\""));
        let headers = vec![
            (":method".to_string(), b"GET".to_vec()),
            (":path".to_string(), b"/public/x".to_vec()),
        ];
        let d = decide(
            &config,
            &mut WorkerState::default(),
            &headers,
            1_750_000_000,
        );
        assert_eq!(
            d.describe(&headers),
            "unchecked GET /public/x rule=rules[0]"
        );
    }
}
