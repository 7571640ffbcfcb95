//! Browser sign-in through a real OpenID provider (npm's `oidc-provider`, `tests/idp`) in a
//! real Envoy: the redirect with PKCE, the callback's refusals (no call to the provider
//! without the sign-in's state), a failing token endpoint, tampered cookies, and the whole
//! round trip in headless Chromium (sign-in, a second tab, logout), over HTTP/1.1 and over
//! HTTP/2 (TLS with ALPN `h2`, as browsers speak it).

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::idp::{issuer_entry, Idp, WEB_CLIENT, WEB_SECRET};
use support::{send_h2, wait_until, Envoy, Request, Response, Setup, Tls};

/// The cookie keys (one `kid:key`, 32 bytes in base64url).
const COOKIE_KEYS: &str = "t1:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1-f4CBgoM";

/// How browsers reach the site.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Transport {
    /// Plain HTTP/1.1; the cookies without `Secure` (`cookie_secure: false`).
    Http1,
    /// TLS offering `h2` by ALPN (a self-signed certificate); the cookies as by default
    /// (`Secure`, `__Host-`). The provider stays plain HTTP on its own port.
    Http2,
}

impl Transport {
    fn scheme(self) -> &'static str {
        match self {
            Transport::Http1 => "http",
            Transport::Http2 => "https",
        }
    }
}

/// Envoy with browser sign-in through a provider of its own, both on loopback.
struct Site {
    envoy: Envoy,
    idp: Idp,
    /// Envoy's access log (the default format: the path as the filter left it, and
    /// `%PROTOCOL%`).
    access_log: std::path::PathBuf,
    transport: Transport,
}

impl Site {
    /// `oidc_extra` overrides keys of `oidc`.
    fn start(oidc_extra: Value) -> Site {
        Site::start_over(Transport::Http1, oidc_extra)
    }

    /// [`Site::start`] reached over `transport`.
    fn start_over(transport: Transport, oidc_extra: Value) -> Site {
        Site::start_after(transport, oidc_extra, |_| {})
    }

    /// [`Site::start_over`], with `prepare` done to the provider before Envoy starts.
    fn start_after(transport: Transport, oidc_extra: Value, prepare: impl FnOnce(&Idp)) -> Site {
        let port = support::free_port();
        let origin = format!("{}://127.0.0.1:{port}", transport.scheme());
        let idp = Idp::start_web(
            Idp::free_port(),
            &format!("{origin}/oauth/callback"),
            &format!("{origin}/bye"),
        );
        prepare(&idp);
        let issuer = idp.issuer().to_owned();
        let mut oidc = json!({
            "issuer": "idp",
            "client_id": WEB_CLIENT,
            "client_secret_env": "OIDC_CLIENT_SECRET",
            "authorization_endpoint": format!("{issuer}/auth"),
            "token_endpoint": format!("{issuer}/token"),
            "revocation_endpoint": format!("{issuer}/token/revocation"),
            "end_session_endpoint": format!("{issuer}/session/end"),
            "cluster": "idp",
            "redirect_path": "/oauth/callback",
            "logout_path": "/logout",
            "post_logout_redirect_uri": format!("{origin}/bye"),
            "scopes": ["offline_access"],
            "cookie_key_env": "COOKIE_KEYS"
        });
        if transport == Transport::Http1 {
            oidc["cookie_secure"] = json!(false);
        }
        // A key set to null is left out.
        for (key, value) in oidc_extra.as_object().unwrap() {
            match value {
                Value::Null => drop(oidc.as_object_mut().unwrap().remove(key)),
                value => oidc[key] = value.clone(),
            }
        }
        // No clock skew: a session's access token expires when its `exp` says (the refresh
        // test's tokens live 3 seconds).
        let config = json!({
            "clock_skew_seconds": 0,
            "issuers": [issuer_entry(&idp, 600)],
            // Under /oauth/ nothing is checked: a near miss of the callback path would reach
            // the upstream if sign-in did not refuse it.
            "rules": [{"path": "/bye", "mode": "none"}, {"prefix": "/oauth/", "mode": "none"}],
            "oidc": oidc
        });
        let access_log = support::scratch_dir("oidc-access-log").join("access.log");
        let mut setup = Setup::new(config)
            .vm_env("OIDC_CLIENT_SECRET", WEB_SECRET)
            .vm_env("COOKIE_KEYS", COOKIE_KEYS)
            .cluster("idp", idp.port())
            .listen_on(port);
        if transport == Transport::Http2 {
            setup = setup.tls(&Tls::self_signed());
        }
        setup.hcm = json!({"access_log": [{
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": access_log.display().to_string()
            }
        }]});
        let envoy = Envoy::start(setup);
        Site {
            envoy,
            idp,
            access_log,
            transport,
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.envoy.port)
    }

    /// `scheme://host`: where browsers see the site.
    fn origin(&self) -> String {
        format!("{}://{}", self.transport.scheme(), self.host())
    }

    /// The name the filter gives its cookie `name` on this site (`__Host-` on https).
    fn cookie_name(&self, name: &str) -> String {
        match self.transport {
            Transport::Http1 => name.to_owned(),
            Transport::Http2 => format!("__Host-{name}"),
        }
    }

    /// A page load of `target`, with `cookie` when given: raw HTTP/1.1, or curl over TLS
    /// that must negotiate HTTP/2.
    fn browse(&self, target: &str, cookie: Option<&str>) -> Response {
        let mut request = Request::get(target).host(&self.host()).browser();
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        match self.transport {
            Transport::Http1 => self.envoy.send(&request),
            Transport::Http2 => send_h2(self.envoy.port, &request),
        }
    }

    /// A sign-in started from `target`: the provider's URL and the transaction cookie.
    fn start_sign_in(&self, target: &str) -> (String, String) {
        let response = self.browse(target, None);
        assert_eq!(response.status, 302, "{}", response.text());
        let location = response.header("location").unwrap().to_owned();
        let cookies = set_cookies(&response);
        assert_eq!(cookies.len(), 1, "{cookies:?}");
        (location, pair_of(&cookies[0]))
    }

    fn counter(&self, name: &str) -> u64 {
        let stats = self.envoy.stats("wasmcustom.tollgate.oidc.");
        stats
            .iter()
            .find(|(key, _)| key.ends_with(name))
            .map_or(0, |(_, value)| *value)
    }
}

fn set_cookies(response: &Response) -> Vec<String> {
    response
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, value)| value.clone())
        .collect()
}

/// `name=value` of a `Set-Cookie` line.
fn pair_of(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().trim().to_owned()
}

/// Query parameter `name` of `url`, decoded.
fn param(url: &str, name: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    let value = query
        .split('&')
        .find_map(|p| p.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {url}"));
    String::from_utf8(support::query::percent_decode(value.as_bytes()).unwrap()).unwrap()
}

#[test]
fn a_browser_is_sent_to_the_provider_with_pkce_and_api_clients_get_a_401() {
    let site = Site::start(json!({}));
    let (location, cookie) = site.start_sign_in("/orders?page=2");
    assert!(
        location.starts_with(&format!("{}/auth?response_type=code&", site.idp.issuer())),
        "{location}"
    );
    assert_eq!(param(&location, "client_id"), WEB_CLIENT);
    assert_eq!(
        param(&location, "redirect_uri"),
        format!("http://{}/oauth/callback", site.host())
    );
    assert_eq!(param(&location, "scope"), "openid offline_access");
    assert_eq!(param(&location, "code_challenge_method"), "S256");
    assert_eq!(param(&location, "code_challenge").len(), 43);
    assert!(cookie.starts_with("tollgate-signin=t1."), "{cookie}");
    // The provider accepts the request: its login page, not an error.
    let login = site
        .idp
        .get(location.split_once(site.idp.issuer()).unwrap().1);
    assert_eq!(login.status, 303, "{}", login.text());
    assert!(login.header("location").unwrap().contains("/interaction/"));
    // Not a browser: the JSON 401.
    let api = site.envoy.send(&Request::get("/orders").host(&site.host()));
    assert_eq!(api.status, 401);
    assert_eq!(api.code().as_deref(), Some("MISSING_CREDENTIALS"));
    wait_until("the sign-in is counted", Duration::from_secs(10), || {
        site.counter("login_started") >= 1
    });
}

#[test]
fn by_default_the_cookies_are_secure_and_host_prefixed() {
    let site = Site::start(json!({"cookie_secure": null}));
    let response = site.browse("/", None);
    assert_eq!(response.status, 302);
    let cookie = &set_cookies(&response)[0];
    assert!(cookie.starts_with("__Host-tollgate-signin="), "{cookie}");
    for part in ["; Path=/", "; HttpOnly", "; SameSite=Lax", "; Secure"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(!cookie.contains("Domain="), "{cookie}");
}

#[test]
fn a_callback_without_the_sign_ins_state_is_400_and_the_provider_is_not_called() {
    callback_without_state_is_refused(&Site::start(json!({})));
}

/// A callback without the sign-in's state (no cookie, a forged state, none, a cookie that
/// does not open) is a 400 page, the provider's token endpoint is not called, and neither
/// the code nor the state reaches the access log.
fn callback_without_state_is_refused(site: &Site) {
    let (location, cookie) = site.start_sign_in("/");
    let state = param(&location, "state");
    site.idp.reset_stats();
    let foreign = format!(
        "{}=t1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        site.cookie_name("tollgate-signin")
    );
    for (query, cookie) in [
        (format!("code=abc&state={state}"), None),
        ("code=abc&state=forged".to_owned(), Some(cookie.as_str())),
        ("code=abc".to_owned(), Some(cookie.as_str())),
        (format!("code=abc&state={state}"), Some(foreign.as_str())),
    ] {
        let response = site.browse(&format!("/oauth/callback?{query}"), cookie);
        assert_eq!(response.status, 400, "{query}: {}", response.text());
        assert!(response
            .header("content-type")
            .unwrap()
            .starts_with("text/html"));
        assert!(response.text().contains("<h1>"), "{}", response.text());
    }
    assert_eq!(site.idp.token_requests(), 0, "the provider was called");
    wait_until("the failures are counted", Duration::from_secs(10), || {
        site.counter("login_failed.state") >= 4
    });
    // The access log has neither the code nor the state.
    let access_log = || std::fs::read_to_string(&site.access_log).unwrap_or_default();
    wait_until("the access log is written", Duration::from_secs(10), || {
        access_log().matches("/oauth/callback").count() >= 4
    });
    let log = access_log();
    assert!(!log.contains("code=abc") && !log.contains(&state), "{log}");
}

#[test]
fn a_path_a_server_may_read_as_the_callback_is_refused_and_never_reaches_the_upstream() {
    let site = Site::start(json!({}));
    let (location, cookie) = site.start_sign_in("/");
    let state = param(&location, "state");
    site.idp.reset_stats();
    let spellings = [
        "/OAuth/Callback",
        "/oauth//callback",
        "/oauth/%63allback",
        "/oauth/callback/",
        "/Logout",
    ];
    for path in spellings {
        let response = site.browse(&format!("{path}?code=abc&state={state}"), Some(&cookie));
        assert_eq!(response.status, 400, "{path}: {}", response.text());
        assert!(
            response.text().contains("<h1>"),
            "{path}: {}",
            response.text()
        );
    }
    assert_eq!(site.idp.token_requests(), 0, "the provider was called");
    let access_log = || std::fs::read_to_string(&site.access_log).unwrap_or_default();
    wait_until("the access log is written", Duration::from_secs(10), || {
        access_log().lines().count() > spellings.len()
    });
    let log = access_log();
    assert!(!log.contains("code=abc") && !log.contains(&state), "{log}");
}

#[test]
fn a_provider_error_is_a_page_and_no_token_call() {
    let site = Site::start(json!({}));
    let (location, cookie) = site.start_sign_in("/");
    let state = param(&location, "state");
    site.idp.reset_stats();
    let response = site.browse(
        &format!("/oauth/callback?error=access_denied&error_description=%3Cb%3Eno%3C%2Fb%3E&state={state}"),
        Some(&cookie),
    );
    assert_eq!(response.status, 401, "{}", response.text());
    assert!(!response.text().contains("<b>"));
    assert_eq!(site.idp.token_requests(), 0);
}

#[test]
fn a_failing_token_endpoint_gives_a_page_a_person_can_read() {
    let site = Site::start(json!({}));
    for (mode, seconds) in [("500", 0), ("down", 0), ("slow", 8), ("ok", 0)] {
        site.idp.token_fault(mode, seconds);
        let (location, cookie) = site.start_sign_in("/");
        let state = param(&location, "state");
        // With the provider answering, the code is not one it issued: refused all the same.
        let response = site.browse(
            &format!("/oauth/callback?code=not-a-code&state={state}"),
            Some(&cookie),
        );
        assert_eq!(response.status, 503, "{mode}: {}", response.text());
        assert!(response
            .header("content-type")
            .unwrap()
            .starts_with("text/html"));
        assert!(response.text().contains("try again"), "{}", response.text());
        assert!(!response.text().contains("not-a-code"));
        // No session; the sign-in is over (its cookie cannot drive another exchange).
        let set = set_cookies(&response);
        assert!(
            set.iter().all(|c| c.contains("Max-Age=0")) && set.len() == 1,
            "{mode}: {set:?}"
        );
    }
    wait_until("the failures are counted", Duration::from_secs(10), || {
        site.counter("login_failed.token_endpoint") >= 4
    });
}

#[test]
fn a_tampered_or_foreign_session_cookie_is_no_session() {
    let site = Site::start(json!({}));
    for cookie in [
        "tollgate-session=t1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "tollgate-session=other.AAAA",
        "tollgate-session=",
    ] {
        let response = site.browse("/orders", Some(cookie));
        assert_eq!(response.status, 302, "{cookie}");
        assert!(response
            .header("location")
            .unwrap()
            .starts_with(site.idp.issuer()));
        let api = site.envoy.send(
            &Request::get("/orders")
                .host(&site.host())
                .header("Cookie", cookie),
        );
        assert_eq!(api.status, 401, "{cookie}");
    }
    // On a `none` path the cookie is not the filter's business.
    let open = site.browse("/bye", Some("tollgate-session=t1.AAAA; theme=dark"));
    assert_eq!(open.status, 200);
}

#[path = "e2e_oidc/browser.rs"]
mod browser;

/// `oidc.discovery` without any endpoint configured: the provider's document names another
/// issuer at first (refused: a browser gets a page to try again, an API client its 401),
/// then its own; the browser is then sent to the endpoint the document names.
#[test]
fn discovery_refuses_another_issuers_document_and_then_uses_the_providers_own() {
    let discovering = json!({
        "discovery": true,
        "authorization_endpoint": null,
        "token_endpoint": null,
        "revocation_endpoint": null,
        "end_session_endpoint": null
    });
    let site = Site::start_after(Transport::Http1, discovering, |idp| {
        idp.discovery_fault("other_issuer")
    });
    wait_until(
        "the other issuer's document is refused",
        Duration::from_secs(20),
        || {
            site.envoy
                .log()
                .contains("the discovery document was refused: the document names another issuer")
        },
    );
    let page = site.browse("/orders", None);
    assert_eq!(page.status, 503, "{}", page.text());
    assert!(
        page.text().contains("Sign-in is unavailable"),
        "{}",
        page.text()
    );
    assert!(page.header("retry-after").is_some());
    assert!(!page.text().contains("other-issuer"), "{}", page.text());
    assert!(
        !site.envoy.log().contains("other-issuer"),
        "the log quotes the document"
    );
    let api = site.envoy.send(&Request::get("/orders").host(&site.host()));
    assert_eq!(api.status, 401, "{}", api.text());
    wait_until("the page is counted", Duration::from_secs(10), || {
        site.counter("login_failed.discovery") >= 1
    });
    site.idp.discovery_fault("ok");
    let issuer = site.idp.issuer().to_owned();
    wait_until(
        "a browser is sent to the discovered endpoint",
        Duration::from_secs(30),
        || {
            let page = site.browse("/orders", None);
            page.status == 302
                && page
                    .header("location")
                    .is_some_and(|to| to.starts_with(&format!("{issuer}/auth?response_type=code&")))
        },
    );
    assert!(site.idp.discovery_fetches() >= 2);
    assert!(site
        .envoy
        .log()
        .contains("the provider's endpoints discovered"));
}
