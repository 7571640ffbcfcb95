//! The round trip in headless Chromium (`tests/browser/oidc-roundtrip.mjs`): sign-in at the
//! provider, back on the page with the identity, a second tab, a refresh after the access
//! token expires, logout, and the old cookies refused; over HTTP/1.1 and over HTTP/2.

use super::*;

use std::path::Path;
use std::process::Command;

fn chromium() -> String {
    let path = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&path).exists(),
        "Chromium is not installed at {path}: the sign-in round trip cannot run"
    );
    path
}

/// With the endpoints from the provider's discovery document (none configured): the
/// token endpoint (exchange, refresh), the revocation endpoint and the end of session
/// (logout) are the document's.
#[test]
fn a_browser_signs_in_at_the_provider_shares_the_session_and_logs_out() {
    let discovered = json!({
        "discovery": true,
        "authorization_endpoint": null,
        "token_endpoint": null,
        "revocation_endpoint": null,
        "end_session_endpoint": null
    });
    let site = Site::start(discovered);
    wait_until(
        "the endpoints are discovered",
        Duration::from_secs(30),
        || site.browse("/", None).status == 302,
    );
    browser_round_trip(&site);
}

/// The same over HTTP/2 (TLS, ALPN `h2`, `Secure` `__Host-` cookies): the browser's page
/// loads of the site and every request Envoy logs are HTTP/2, and a callback without the
/// sign-in's state (curl over HTTP/2) is refused without a call to the provider.
#[test]
fn over_http2_a_browser_signs_in_and_out_and_a_callback_without_state_is_refused() {
    let site = Site::start_over(Transport::Http2, json!({}));
    callback_without_state_is_refused(&site);
    // HTTP/2 lets a client send its cookies as separate `cookie` fields (RFC 9113, 8.2.3):
    // the sign-in's cookie among others still opens, and the code goes to the provider (which
    // did not issue it: a 503 page).
    let (location, cookie) = site.start_sign_in("/");
    site.idp.reset_stats();
    let callback = format!(
        "/oauth/callback?code=abc&state={}",
        param(&location, "state")
    );
    let request = Request::get(callback)
        .host(&site.host())
        .browser()
        .header("Cookie", "theme=dark")
        .header("Cookie", &cookie)
        .header("Cookie", "lang=en");
    let response = send_h2(site.envoy.port, &request);
    assert_eq!(response.status, 503, "{}", response.text());
    assert_eq!(site.idp.token_requests(), 1);
    browser_round_trip(&site);
    // Envoy writes its access log in batches: wait for the browser's page after logout.
    let access_log = || std::fs::read_to_string(&site.access_log).unwrap_or_default();
    wait_until(
        "the browser's requests are logged",
        Duration::from_secs(30),
        || access_log().contains("GET /bye "),
    );
    let log = access_log();
    assert!(log.lines().count() >= 10, "{log}");
    assert!(
        log.lines().all(|line| line.contains(" HTTP/2\"")),
        "a request was not HTTP/2:\n{log}"
    );
}

/// Runs the browser through the round trip on `site` and checks what it saw.
fn browser_round_trip(site: &Site) {
    let browser = chromium();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/oidc-roundtrip.mjs");
    // Access tokens that expire while the browser is on the site: the session is refreshed.
    site.idp.set_token_ttl(3);
    let page = format!("{}/app/dashboard?tab=orders", site.origin());
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
    // Every page load of the site came over the transport's protocol.
    let protocol = match site.transport {
        Transport::Http1 => "http/1.1",
        Transport::Http2 => "h2",
    };
    let loads = report["protocols"].as_array().unwrap();
    assert_eq!(loads.len(), 4, "{report}");
    for load in loads {
        assert_eq!(load["protocol"], protocol, "{load}");
        assert!(
            load["url"].as_str().unwrap().starts_with(&site.origin()),
            "{load}"
        );
    }
    assert!(
        report["login_url"]
            .as_str()
            .unwrap()
            .contains("/interaction/"),
        "{report}"
    );
    assert_eq!(report["back_at"], page.as_str(), "{report}");
    // Parallel requests with the same expired session: one refresh at the provider.
    assert_eq!(report["parallel_refreshed"], true, "{report}");
    assert_eq!(report["parallel_refreshes"], 1, "{report}");
    let statuses = report["parallel_statuses"].as_array().unwrap();
    assert!(statuses.iter().all(|status| status == 200), "{report}");
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
    assert_eq!(report["second_tab_url"], page.as_str(), "{report}");
    assert_eq!(
        upstream_header(&report["second_tab"], "x-auth-user"),
        Some("alice".into())
    );
    let cookies = report["cookies"].as_array().unwrap();
    let names: Vec<&str> = cookies
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for name in ["tollgate-session", "tollgate-refresh"] {
        assert!(
            names.contains(&site.cookie_name(name).as_str()),
            "{names:?}"
        );
    }
    let secure = site.transport == Transport::Http2;
    assert!(
        cookies
            .iter()
            .all(|c| c["httpOnly"] == true && c["secure"] == secure && c["path"] == "/"),
        "{report}"
    );
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
            .all(|c| !c["name"].as_str().unwrap().contains("tollgate-")),
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
