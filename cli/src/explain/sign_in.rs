//! Browser sign-in's part of an explanation (`oidc` configured): the callback and logout
//! paths the filter answers itself, and the session a request's cookies carry, read before
//! the decision as the filter reads them.

use std::rc::Rc;

use tollgate_core::config::Config;
use tollgate_core::oidc::config::{cluster_endpoint, Endpoints};
use tollgate_core::oidc::flow::{self, Intercepted, Pending, Seen};
use tollgate_core::oidc::refresh;
use tollgate_core::request::Session;
use tollgate_core::response::LocalResponse;

use super::{Answer, Step};

/// What sign-in does with a request before the decision.
pub enum Before {
    /// Decided by the decision, in the session `viewed` when the request carries cookies of
    /// the filter.
    Decide {
        step: Option<Step>,
        viewed: Option<Viewed>,
    },
    /// Answered by sign-in (a callback, a logout, a near miss of their paths).
    Answered { step: Step, answer: Answer },
}

/// A request's session as sign-in read it from its cookies.
pub struct Viewed {
    /// The access token the session holds (the decision reads it as the request's bearer
    /// credential; also for the output's redactor).
    pub token: Option<String>,
    /// The `Cookie` header without the filter's cookies.
    pub cookie: Option<Vec<u8>>,
}

impl Viewed {
    /// What the decision reads in place of the request's cookies and `Authorization`.
    pub fn session(&self) -> Session<'_> {
        Session {
            token: self.token.as_deref(),
            cookie: self.cookie.as_deref(),
        }
    }

    /// `headers` as the filter hands them on before the decision's edits: the filter's
    /// cookies gone.
    pub fn handed_on(&self, headers: &[(String, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
        let own = headers.iter().filter(|(name, _)| name != "cookie").cloned();
        let cookie = self
            .cookie
            .clone()
            .map(|cookie| ("cookie".to_owned(), cookie));
        own.chain(cookie).collect()
    }
}

/// With `oidc.discovery`, the endpoints as the filter would have them once the provider's
/// document is fetched (explain does not fetch it): the configuration's, else named after
/// the document's keys.
pub fn discovered(config: &Config) -> Option<Rc<Endpoints>> {
    let oidc = config
        .oidc
        .as_ref()
        .filter(|oidc| oidc.discovery.is_some())?;
    let configured = &oidc.configured;
    let named = |key: &str| format!("https://discovered.invalid/{key}");
    Some(Rc::new(Endpoints {
        authorization: configured
            .authorization
            .clone()
            .unwrap_or_else(|| named("authorization_endpoint")),
        token: configured
            .token
            .clone()
            .unwrap_or_else(|| cluster_endpoint(&named("token_endpoint"))),
        revocation: configured.revocation.clone(),
        end_session: configured.end_session.clone(),
    }))
}

/// Sign-in's step for `headers` at unix time `now`, with the provider's endpoints
/// `discovered` when the configuration asks for discovery.
pub fn before(
    config: &Config,
    discovered: Option<&Endpoints>,
    headers: &[(String, Vec<u8>)],
    now: u64,
) -> Before {
    let Some(oidc) = &config.oidc else {
        return Before::Decide {
            step: None,
            viewed: None,
        };
    };
    let seen = Seen::read(headers);
    let path = String::from_utf8_lossy(seen.path).into_owned();
    let answered = |says: Vec<String>, response: &LocalResponse| Before::Answered {
        step: Step {
            step: "sign-in",
            says,
        },
        answer: answer(response),
    };
    match flow::intercept(oidc, oidc.endpoints(discovered), &seen, now) {
        Intercepted::Pass => {}
        Intercepted::Answer(response, _) => {
            let says = if path == oidc.redirect_path {
                "the callback path: refused before any call to the provider (no sign-in of this browser under way, or its state does not match, or the provider answered an error)"
            } else if oidc.logout_path.as_deref() == Some(path.as_str()) {
                "the logout path: the session's cookies are cleared and the browser goes on to the provider's logout"
            } else {
                "a spelling of the callback or logout path that a server may read as it: refused"
            };
            return answered(vec![says.to_owned()], &response);
        }
        Intercepted::Call(_, Pending::Logout { answer: response }) => {
            let says = "the logout path: the refresh token is revoked at the provider while the request waits, the session's cookies are cleared, and the browser goes on to the provider's logout";
            return answered(vec![says.to_owned()], &response);
        }
        Intercepted::Call(..) => {
            let says = format!(
                "the callback path, with this browser's state: the code and the verifier are exchanged at the token endpoint through cluster {} while the request waits (explain does not call the provider); the ID token is then checked and the session set",
                oidc.cluster
            );
            return Before::Answered {
                step: Step {
                    step: "sign-in",
                    says: vec![says],
                },
                answer: Answer {
                    outcome: "waits for the provider".to_owned(),
                    status: 0,
                    code: None,
                    headers: Vec::new(),
                    body: None,
                    edits: Vec::new(),
                },
            };
        }
    }
    let opened = &mut tollgate_core::oidc::opened::OpenedSessions::default();
    let Some(view) = refresh::session_view(oidc, &seen, now, opened) else {
        let says = "no cookie of the filter: no session (a browser on a required path is sent to the provider)";
        return Before::Decide {
            step: Some(Step {
                step: "session",
                says: vec![says.to_owned()],
            }),
            viewed: None,
        };
    };
    let has_authorization =
        |list: &[(String, Vec<u8>)]| list.iter().any(|(n, _)| n == "authorization");
    let says = if has_authorization(headers) {
        "the request has its own Authorization header: it is checked with that one; the filter's cookies leave the request"
    } else if view.token.is_some() {
        "the session cookie opens: its access token is checked as the request's Authorization: Bearer; the filter's cookies leave the request"
    } else {
        "a cookie of the filter that does not open (tampered, another key, expired, or named twice): no session; the filter's cookies leave the request"
    };
    Before::Decide {
        step: Some(Step {
            step: "session",
            says: vec![says.to_owned()],
        }),
        viewed: Some(Viewed {
            token: view.token.as_deref().map(str::to_owned),
            cookie: view.cookie,
        }),
    }
}

/// Sign-in's own answer, as an explanation shows an answer.
fn answer(response: &LocalResponse) -> Answer {
    super::responded(response, "sign-in".to_owned(), None, Vec::new())
}
