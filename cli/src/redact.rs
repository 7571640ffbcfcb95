//! Output never holds a secret, a full token or a token's signature: configured secrets are
//! shown by their name, tokens by the start of their header and their length, any other
//! credential by its length. Every line the command prints goes through [`Redactor::clean`].

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use tollgate_core::credential::spellings::{CredentialNames, Spelling};
use tollgate_core::credential::Locations;
use tollgate_core::request::path;

/// Values shorter than this are not masked where they appear elsewhere in the output (no
/// configured key is this short, and masking every `x` would garble the output).
const SHORTEST_MASKED: usize = 6;

/// Masks known secrets and credentials in text.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// A value and what to show instead.
    known: Vec<(String, String)>,
    /// The values in `known`.
    seen: std::collections::HashSet<String>,
}

/// How a token or credential is shown: `eyJhbGciOi…(153 bytes)` for a token (the start of its
/// header, which is not secret), `…(40 bytes)` for anything else.
pub fn mask(value: &str) -> String {
    let looks_like_token = value.starts_with("eyJ") && value.matches('.').count() == 2;
    let shown: String = if looks_like_token {
        value.chars().take(10).collect()
    } else {
        String::new()
    };
    format!("{shown}…({} bytes)", value.len())
}

impl Redactor {
    /// A redactor for the configured secrets (`value`, `label`).
    pub fn new(secrets: &[(String, String)]) -> Self {
        let mut redactor = Redactor::default();
        for (value, label) in secrets {
            redactor.add(value, format!("<{label}>"));
        }
        redactor
    }

    /// Masks `value` wherever it appears, also as Rust and JSON escape it (a `\` or `"` in a
    /// secret is written escaped in quoted output).
    pub fn add(&mut self, value: &str, shown: String) {
        if value.len() < SHORTEST_MASKED {
            return;
        }
        let escaped = [
            value.escape_debug().to_string(),
            serde_json::to_string(value)
                .map(|quoted| quoted.trim_matches('"').to_owned())
                .unwrap_or_default(),
        ];
        for form in std::iter::once(value.to_owned()).chain(escaped) {
            if form.len() >= SHORTEST_MASKED && self.seen.insert(form.clone()) {
                self.known.push((form, shown.clone()));
            }
        }
    }

    /// Masks a credential value (and its percent-decoded form).
    pub fn add_credential(&mut self, value: &str) {
        self.add(value, mask(value));
        if let Some(decoded) = tollgate_core::request::query::percent_decode(value.as_bytes())
            .and_then(|d| String::from_utf8(d).ok())
        {
            self.add(&decoded, mask(&decoded));
        }
    }

    /// Learns the credentials a request carries in any spelling a server reads: the
    /// `Authorization` value, credential query parameters and `;` path parameters, and
    /// credential cookies.
    pub fn learn_request(&mut self, headers: &[(String, Vec<u8>)], at: Locations<'_>) {
        let names = CredentialNames::new(at);
        for (name, value) in headers {
            let value = String::from_utf8_lossy(value);
            match name.as_str() {
                "authorization" => {
                    for piece in value.split(',') {
                        let piece = piece.trim();
                        let credential = piece.split_once([' ', '\t']).map_or(piece, |(_, c)| c);
                        self.add_credential(credential.trim());
                    }
                }
                "cookie" => {
                    for pair in value.split([';', ',']) {
                        if let Some((n, v)) = pair.split_once('=') {
                            let n = n.trim();
                            // Sign-in's sealed cookies carry a session: a credential too.
                            if names.cookie(n.as_bytes()) != Spelling::Other
                                || names.param(n.as_bytes()) != Spelling::Other
                                || tollgate_core::oidc::cookies::is_ours(n.as_bytes())
                            {
                                self.add_credential(v.trim());
                            }
                        }
                    }
                }
                ":path" => {
                    let (raw_path, query) = path::split_target(value.as_bytes());
                    let pairs = query
                        .unwrap_or_default()
                        .split(|&b| b == b'&' || b == b';')
                        .chain(raw_path.split(|&b| b == b';').skip(1));
                    for pair in pairs {
                        let pair = String::from_utf8_lossy(pair);
                        if let Some((n, v)) = pair.split_once('=') {
                            // A client_id names the client; it is not secret.
                            let id = n == tollgate_core::credential::CLIENT_ID_PARAM;
                            if !id && names.param(n.as_bytes()) != Spelling::Other {
                                self.add_credential(v);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// `value` with every string in it (object keys too) cleaned as [`Redactor::clean`] does,
    /// before it is written as JSON: masking the written text could break its quoting.
    pub fn clean_json(&self, value: serde_json::Value) -> serde_json::Value {
        let matcher = self.matcher();
        self.clean_json_with(matcher.as_ref(), value)
    }

    fn clean_json_with(
        &self,
        matcher: Option<&AhoCorasick>,
        value: serde_json::Value,
    ) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(text) => Value::String(self.clean_with(matcher, &text)),
            Value::Array(items) => Value::Array(
                items
                    .into_iter()
                    .map(|v| self.clean_json_with(matcher, v))
                    .collect(),
            ),
            Value::Object(fields) => Value::Object(
                fields
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            self.clean_with(matcher, &k),
                            self.clean_json_with(matcher, v),
                        )
                    })
                    .collect(),
            ),
            other => other,
        }
    }

    /// `text` with every known value masked, and any other token-shaped run cut to its header.
    /// One pass over the text for all values together (the longest wins where they overlap).
    pub fn clean(&self, text: &str) -> String {
        self.clean_with(self.matcher().as_ref(), text)
    }

    /// The matcher of every known value: an NFA, built in time linear in the values (a DFA
    /// took minutes for requests holding 50 KB credentials); `None` if it cannot be built.
    fn matcher(&self) -> Option<AhoCorasick> {
        AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(AhoCorasickKind::NoncontiguousNFA))
            .build(self.known.iter().map(|(value, _)| value.as_str()))
            .ok()
    }

    fn clean_with(&self, matcher: Option<&AhoCorasick>, text: &str) -> String {
        let masked = match matcher {
            Some(matcher) => {
                let shown: Vec<&str> = self.known.iter().map(|(_, s)| s.as_str()).collect();
                matcher.replace_all(text, &shown)
            }
            // A matcher that cannot be built: everything is masked rather than leak.
            None => mask(text),
        };
        mask_tokens(&masked)
    }
}

/// The shortest run of three base64url parts taken for a token (host names and file names
/// with two dots are shorter).
const SHORTEST_TOKEN: usize = 32;

/// Any token-shaped run (base64url parts joined by two dots or more, [`SHORTEST_TOKEN`]
/// bytes or longer, whatever its header says), shown as [`mask`] shows a token.
fn mask_tokens(text: &str) -> String {
    // `%` too: a dot may be written `%2E`.
    let in_run = |c: char| c.is_ascii_alphanumeric() || "-_.%".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(in_run) {
        let (before, from) = rest.split_at(start);
        out.push_str(before);
        let len = from.find(|c: char| !in_run(c)).unwrap_or(from.len());
        let (run, after) = from.split_at(len);
        // `%2E`, and `%252E` where a reading shows an escaped `%2E`, count as dots.
        let dots = run.matches('.').count()
            + ["%2E", "%2e", "%252E", "%252e"]
                .iter()
                .map(|dot| run.matches(dot).count())
                .sum::<usize>();
        let token_shaped = run.len() >= SHORTEST_TOKEN && dots >= 2;
        if token_shaped {
            out.push_str(&mask(run));
        } else {
            out.push_str(run);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJlc2lnbmF0dXJl";

    #[test]
    fn tokens_and_secrets_are_masked() {
        let mut r = Redactor::new(&[("s3cr3t-value-long".into(), "secret \"demo\"".into())]);
        assert_eq!(r.clean("k=s3cr3t-value-long"), "k=<secret \"demo\">");
        assert_eq!(
            r.clean(&format!("Bearer {TOKEN}")),
            "Bearer eyJhbGciOi…(61 bytes)"
        );
        let headers = vec![
            (
                ":path".to_owned(),
                b"/a?access_token=abcdefgh123&x=1".to_vec(),
            ),
            (
                "cookie".to_owned(),
                b"access_token=zyxwvut987; theme=dark".to_vec(),
            ),
        ];
        r.learn_request(
            &headers,
            Locations {
                query_param: "access_token",
                cookie: "access_token",
            },
        );
        assert_eq!(
            r.clean("/a?access_token=abcdefgh123&x=1"),
            "/a?access_token=…(11 bytes)&x=1"
        );
        assert_eq!(
            r.clean("access_token=zyxwvut987; theme=dark"),
            "access_token=…(10 bytes); theme=dark"
        );
        assert!(!r.clean(TOKEN).contains("c2lnbmF0"));
    }

    #[test]
    fn tokens_are_masked_whatever_their_header_and_however_their_dots_are_written() {
        let r = Redactor::default();
        let plain = "IHsiYWxnIjoiSFMyNTYifQ.eyJzdWIiOiJhIn0.c2lnbmF0dXJlc2lnbmF0dXJl";
        assert!(!r.clean(plain).contains("c2lnbmF0"));
        let encoded = "tokeneyJhbGciOiJIUzI1NiJ9%2EeyJzdWIiOiJhIn0%2Ec2lnbmF0dXJlc2lnbmF0dXJl";
        assert!(!r.clean(&format!("&{encoded}&")).contains("c2lnbmF0"));
        let twice = encoded.replace("%2E", "%252E");
        assert!(!r.clean(&format!("/;x={twice}")).contains("c2lnbmF0"));
        // Host and file names with two dots stay readable.
        assert_eq!(
            r.clean("api.example.com envoy.cases.yaml"),
            "api.example.com envoy.cases.yaml"
        );
    }
}
