//! Browser sign-in through a real OpenID provider (npm's `oidc-provider`, `tests/idp`) in a
//! real Envoy: the redirect with PKCE, the callback's refusals (no call to the provider
//! without the sign-in's state), a failing token endpoint, tampered cookies, and the whole
//! round trip in headless Chromium (sign-in, a second tab, logout).

// Tests may panic, unwrap and index: a failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use support::idp::{issuer_entry, Idp, WEB_CLIENT, WEB_SECRET};
use support::{wait_until, Envoy, Request, Response, Setup};

/// The cookie keys (one `kid:key`, 32 bytes in base64url).
const COOKIE_KEYS: &str = "t1:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1-f4CBgoM";

/// Envoy with browser sign-in through a provider of its own, both on loopback.
struct Site {
    envoy: Envoy,
    idp: Idp,
    /// Envoy's access log (the default format: the path as the filter left it).
    access_log: std::path::PathBuf,
}

impl Site {
    /// `oidc_extra` overrides keys of `oidc`.
    fn start(oidc_extra: Value) -> Site {
        let port = support::free_port();
        let origin = format!("http://127.0.0.1:{port}");
        let idp = Idp::start_web(
            Idp::free_port(),
            &format!("{origin}/oauth/callback"),
            &format!("{origin}/bye"),
        );
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
            "cookie_key_env": "COOKIE_KEYS",
            "cookie_secure": false
        });
        for (key, value) in oidc_extra.as_object().unwrap() {
            oidc[key] = value.clone();
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
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.envoy.port)
    }

    /// A page load of `target`, with `cookie` when given.
    fn browse(&self, target: &str, cookie: Option<&str>) -> Response {
        let mut request = Request::get(target).host(&self.host()).browser();
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        self.envoy.send(&request)
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
    let site = Site::start(json!({}));
    let (location, cookie) = site.start_sign_in("/");
    let state = param(&location, "state");
    site.idp.reset_stats();
    for (query, cookie) in [
        (format!("code=abc&state={state}"), None),
        ("code=abc&state=forged".to_owned(), Some(cookie.as_str())),
        ("code=abc".to_owned(), Some(cookie.as_str())),
        (
            format!("code=abc&state={state}"),
            Some("tollgate-signin=t1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        ),
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
        access_log().lines().count() >= spellings.len() + 1
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

fn chromium() -> String {
    let path = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&path).exists(),
        "Chromium is not installed at {path}: the sign-in round trip cannot run"
    );
    path
}

#[test]
fn a_browser_signs_in_at_the_provider_shares_the_session_and_logs_out() {
    let browser = chromium();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/oidc-roundtrip.mjs");
    let site = Site::start(json!({}));
    // Access tokens that expire while the browser is on the site: the session is refreshed.
    site.idp.set_token_ttl(3);
    let page = format!("http://{}/app/dashboard?tab=orders", site.host());
    let out = Command::new("node")
        .arg(&script)
        .args([&page, "alice"])
        .env("CHROMIUM", &browser)
        .output()
        .expect("node runs the browser");
    assert!(
        out.status.success(),
        "the browser run failed:\n{}\n{}\nEnvoy:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        site.envoy.log()
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("{report}");
    assert!(
        report["login_url"]
            .as_str()
            .unwrap()
            .contains("/interaction/"),
        "{report}"
    );
    assert_eq!(report["back_at"], page.as_str(), "{report}");
    let seen = &report["upstream"];
    assert_eq!(
        upstream_header(seen, "x-auth-user"),
        Some("alice".into()),
        "{report}"
    );
    assert_eq!(
        upstream_header(seen, "x-auth-type"),
        Some("access_token".into())
    );
    assert_eq!(upstream_header(seen, "x-auth-name"), Some("idp".into()));
    assert_eq!(upstream_header(seen, "authorization"), None, "{report}");
    let cookie = upstream_header(seen, "cookie").unwrap_or_default();
    assert!(
        !cookie.contains("tollgate-"),
        "the session reached the upstream: {cookie}"
    );
    assert_eq!(
        upstream_header(&report["second_tab"], "x-auth-user"),
        Some("alice".into())
    );
    let names: Vec<&str> = report["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"tollgate-session") && names.contains(&"tollgate-refresh"),
        "{names:?}"
    );
    assert!(report["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["httpOnly"] == true));
    // The access token expired: the page reloaded until the session's cookie was renewed,
    // the identity unchanged.
    assert_eq!(report["refreshed"], true, "{report}");
    assert_eq!(
        upstream_header(&report["after_refresh"], "x-auth-user"),
        Some("alice".into())
    );
    assert!(
        report["after_logout_url"]
            .as_str()
            .unwrap()
            .ends_with("/bye"),
        "{report}"
    );
    assert!(
        report["cookies_after_logout"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| !c["name"].as_str().unwrap().starts_with("tollgate-")),
        "{report}"
    );
    assert!(
        report["revisit_url"]
            .as_str()
            .unwrap()
            .contains("/interaction/"),
        "{report}"
    );
    // The cookies of before the logout, put back: once their access token has expired, the
    // refresh token (revoked at logout) is refused and the browser must sign in again.
    assert!(
        report["old_cookies_url"]
            .as_str()
            .unwrap()
            .contains("/interaction/"),
        "{report}"
    );
    wait_until(
        "the session's events are counted",
        Duration::from_secs(10),
        || {
            site.counter("login_completed") >= 1
                && site.counter("logged_out") >= 1
                && site.counter("refreshed") >= 1
                && site.counter("refresh_failed") >= 1
        },
    );
    let log = site.envoy.log();
    for secret in [WEB_SECRET, COOKIE_KEYS] {
        assert!(!log.contains(secret));
    }
}

/// The single value of `name` an upstream answer (echo-upstream's JSON) shows.
fn upstream_header(seen: &Value, name: &str) -> Option<String> {
    let values: Vec<String> = seen["headers"]
        .as_array()?
        .iter()
        .filter(|pair| pair[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .map(|pair| pair[1].as_str().unwrap().to_owned())
        .collect();
    assert!(values.len() <= 1, "{name}: {values:?}");
    values.into_iter().next()
}
