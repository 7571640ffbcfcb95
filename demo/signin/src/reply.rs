//! Replies, and the security headers every one of them carries.

use serde_json::{json, Value};

/// A reply to send.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(status: u16, value: Value) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: format!("{value}\n"),
        }
    }

    pub fn html(status: u16, body: String) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "text/html; charset=utf-8".into())],
            body,
        }
    }

    /// `{"code": status, "data": null, "msg": message}`.
    pub fn error(status: u16, message: &str) -> Reply {
        Reply::json(
            status,
            json!({"code": status, "data": null, "msg": message}),
        )
    }

    /// A 302 to `location`.
    pub fn redirect(location: String) -> Reply {
        Reply {
            status: 302,
            headers: vec![("Location".into(), location)],
            body: String::new(),
        }
    }

    pub fn with(mut self, name: &str, value: String) -> Reply {
        self.headers.push((name.into(), value));
        self
    }

    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Adds the headers every reply carries: no caching, no sniffing, no framing, no
    /// referrer to other sites (the login URL carries the return URL; `no-referrer` would
    /// make browsers send `Origin: null`), and a CSP that lets the page post only to this
    /// service and the trusted hosts it may redirect to.
    pub fn secured(mut self, trusted_hosts: &[String]) -> Reply {
        let mut form_action = String::from("'self'");
        for host in trusted_hosts {
            form_action.push_str(&format!(" http://{host} https://{host}"));
        }
        let csp = format!(
            "default-src 'none'; style-src 'unsafe-inline'; form-action {form_action}; \
             frame-ancestors 'none'; base-uri 'none'"
        );
        for (name, value) in [
            ("Cache-Control", "no-store".to_owned()),
            ("X-Content-Type-Options", "nosniff".to_owned()),
            ("X-Frame-Options", "DENY".to_owned()),
            ("Referrer-Policy", "same-origin".to_owned()),
            ("Cross-Origin-Opener-Policy", "same-origin".to_owned()),
            ("Content-Security-Policy", csp),
        ] {
            if self.header(name).is_none() {
                self.headers.push((name.into(), value));
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reply_is_secured() {
        let reply = Reply::error(404, "not found").secured(&["app.example.com".into()]);
        assert_eq!(reply.header("x-frame-options"), Some("DENY"));
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        let csp = reply.header("content-security-policy").unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("form-action 'self' http://app.example.com https://app.example.com"));
    }
}
