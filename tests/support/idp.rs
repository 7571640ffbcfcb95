//! A real OpenID Connect provider for the issuers tests: npm's `oidc-provider`, run by
//! `tests/idp/server.mjs` (see that file for what it serves), under `node` (`$NODE` or the
//! `node` of the PATH). `make test-tools` installs its node_modules.
//!
//! Its access tokens are JWTs (`typ: at+jwt`) for the audience [`AUDIENCE`], issued through
//! the real token endpoint by the client credentials grant: the client [`RS256_CLIENT`]'s are
//! signed with RS256, [`ES256_CLIENT`]'s with ES256. Its JWKS is at [`Idp::jwks_path`]: every
//! request there is counted ([`Idp::jwks_fetches`]) and can be made to fail ([`Idp::fault`]).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{
    free_port, manifest_dir, scratch_dir, try_send_raw, Envoy, Request, Response, Setup, K,
};

/// The `aud` of every access token.
pub const AUDIENCE: &str = "api://tollgate-tests";
/// The client whose tokens are signed with RS256.
pub const RS256_CLIENT: &str = "tollgate-rs256";
/// The client whose tokens are signed with ES256.
pub const ES256_CLIENT: &str = "tollgate-es256";
/// The scope a token is asked for (the resource server grants `read write admin`).
pub const SCOPE: &str = "read write";

/// The browser client of [`Idp::start_web`], and its secret (as in `tests/idp/server.mjs`).
pub const WEB_CLIENT: &str = "tollgate-web";
pub const WEB_SECRET: &str = "idp-test-secret-web-5Rq8Zt2Lm7Xc4Vb9";

/// The clients' secrets (as in `tests/idp/server.mjs`).
const RS256_SECRET: &str = "idp-test-secret-rs256-4qV8mZ2xKp7LwN3c";
const ES256_SECRET: &str = "idp-test-secret-es256-9tH5yR1bQj6DfS8e";

/// The client of `alg` and its secret.
pub fn client_for(alg: &str) -> (&'static str, &'static str) {
    match alg {
        "RS256" => (RS256_CLIENT, RS256_SECRET),
        "ES256" => (ES256_CLIENT, ES256_SECRET),
        other => panic!("the test provider signs with RS256 or ES256, not {other}"),
    }
}

/// How the JWKS path answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The provider's key set.
    Ok,
    /// The connection is closed without an answer.
    Down,
    /// 500 with a small JSON error.
    Status500,
    /// 200 whose body is not JSON.
    Garbage,
    /// 200 with the real key set padded to 10 MiB (a reader that took it whole would find
    /// the keys).
    Huge,
    /// The real key set, after this many seconds.
    Slow(u32),
    /// After this many seconds, the key set as it was when this fault was set.
    Stale(u32),
}

impl Fault {
    fn query(self) -> String {
        match self {
            Fault::Ok => "mode=ok".into(),
            Fault::Down => "mode=down".into(),
            Fault::Status500 => "mode=500".into(),
            Fault::Garbage => "mode=garbage".into(),
            Fault::Huge => "mode=huge".into(),
            Fault::Slow(seconds) => format!("mode=slow&seconds={seconds}"),
            Fault::Stale(seconds) => format!("mode=stale&seconds={seconds}"),
        }
    }
}

/// A running provider; stopped when dropped (and when the test process exits, as its
/// standard input closes).
pub struct Idp {
    child: Child,
    /// Held open: the server exits when it closes.
    _stdin: ChildStdin,
    port: u16,
    issuer: String,
    /// Holds `idp.err`, the server's stderr.
    pub dir: PathBuf,
}

fn node_binary() -> PathBuf {
    std::env::var_os("NODE").map_or_else(|| PathBuf::from("node"), PathBuf::from)
}

impl Idp {
    /// Starts the provider on a port the system chooses; the issuer is
    /// `http://127.0.0.1:<port>`.
    pub fn start() -> Idp {
        Idp::launch(0, None)
    }

    /// Starts the provider on `port` (known in advance: say from [`free_port`], for an
    /// Envoy configured before the provider is up).
    pub fn start_on(port: u16) -> Idp {
        assert_ne!(
            port, 0,
            "start_on needs a port; Idp::start lets the system choose"
        );
        Idp::launch(port, None)
    }

    /// Starts the provider with another issuer (`iss` of its tokens and of its discovery
    /// document). An issuer with a path serves the provider, its JWKS included, under that
    /// path; the control API stays at `/control`.
    pub fn start_with_issuer(port: u16, issuer: &str) -> Idp {
        Idp::launch(port, Some(issuer))
    }

    /// Starts the provider on `port` with the browser client [`WEB_CLIENT`]: the
    /// authorization code flow back to `redirect_uri`, RP-initiated logout back to
    /// `post_logout_uri` (see `tests/idp/server.mjs`).
    pub fn start_web(port: u16, redirect_uri: &str, post_logout_uri: &str) -> Idp {
        Idp::launch_with(
            port,
            None,
            &[
                "--web-redirect",
                redirect_uri,
                "--web-post-logout",
                post_logout_uri,
            ],
        )
    }

    /// A port that was free a moment ago, for [`Idp::start_on`].
    pub fn free_port() -> u16 {
        free_port()
    }

    /// The provider `make run` starts: the issuer `issuer` on `port`, its browser client
    /// coming back to `redirect_uri` (and `post_logout_uri`), with the secret `secret` given
    /// as `--web-secret-env` names it, the variable `secret_env`.
    pub fn start_demo(
        port: u16,
        issuer: &str,
        redirect_uri: &str,
        post_logout_uri: &str,
        (secret_env, secret): (&str, &str),
    ) -> Idp {
        Idp::launch_env(
            port,
            Some(issuer),
            &[
                "--web-redirect",
                redirect_uri,
                "--web-post-logout",
                post_logout_uri,
                "--web-secret-env",
                secret_env,
            ],
            &[(secret_env, secret)],
        )
    }

    fn launch(port: u16, issuer: Option<&str>) -> Idp {
        Idp::launch_with(port, issuer, &[])
    }

    fn launch_with(port: u16, issuer: Option<&str>, extra: &[&str]) -> Idp {
        Idp::launch_env(port, issuer, extra, &[])
    }

    fn launch_env(port: u16, issuer: Option<&str>, extra: &[&str], env: &[(&str, &str)]) -> Idp {
        let dir = manifest_dir().join("tests/idp");
        let installed = dir.join("node_modules/oidc-provider/package.json");
        assert!(
            installed.exists(),
            "no {}: run `make test-tools` (npm ci in tests/idp) for the test OpenID provider",
            installed.display()
        );
        let scratch = scratch_dir("idp");
        let mut command = Command::new(node_binary());
        command
            .arg(dir.join("server.mjs"))
            .args(["--port", &port.to_string()])
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(scratch.join("idp.err")).unwrap());
        if let Some(issuer) = issuer {
            command.args(["--issuer", issuer]);
        }
        command.args(extra).envs(env.iter().copied());
        let mut child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): the test OpenID provider needs Node.js 20 (or set NODE)",
                node_binary().display()
            )
        });
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let bound = loop {
            line.clear();
            if stdout.read_line(&mut line).unwrap_or(0) == 0 {
                let _ = child.kill();
                let _ = child.wait();
                let errors = std::fs::read_to_string(scratch.join("idp.err")).unwrap_or_default();
                panic!("the test OpenID provider did not start (port {port}):\n{errors}");
            }
            if let Some(address) = line.trim().strip_prefix("listening ") {
                break super::read_port(address)
                    .unwrap_or_else(|| panic!("the test OpenID provider said {line:?}"));
            }
        };
        // Nothing else is written to stdout; drain it anyway so that the server never blocks.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Idp {
            child,
            _stdin: stdin,
            port: bound,
            issuer: issuer.map_or_else(|| format!("http://127.0.0.1:{bound}"), str::to_owned),
            dir: scratch,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The issuer: the `iss` of the tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The path of the JWKS on [`Idp::port`] (`/jwks`, under the issuer's path if it has one).
    pub fn jwks_path(&self) -> String {
        format!("{}/jwks", self.issuer_path())
    }

    /// `http://127.0.0.1:<port><jwks_path>`.
    pub fn jwks_uri(&self) -> String {
        format!("http://127.0.0.1:{}{}", self.port, self.jwks_path())
    }

    fn issuer_path(&self) -> String {
        let rest = self
            .issuer
            .split_once("://")
            .map_or(self.issuer.as_str(), |(_, r)| r);
        rest.find('/')
            .map_or("", |i| rest[i..].trim_end_matches('/'))
            .to_owned()
    }

    /// What the server wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("idp.err")).unwrap_or_default()
    }

    /// Sends `request` to the provider's port (with `Host: 127.0.0.1:<port>` unless the
    /// request names another).
    pub fn send(&self, request: &Request) -> std::io::Result<Response> {
        try_send_raw(self.port, &request.to_bytes())
    }

    fn request(&self, method: &str, target: &str) -> Request {
        Request::new(method, target).host(&format!("127.0.0.1:{}", self.port))
    }

    /// A GET on the provider's port.
    pub fn get(&self, target: &str) -> Response {
        self.send(&self.request("GET", target))
            .unwrap_or_else(|e| panic!("GET {target} on the test OpenID provider: {e}"))
    }

    fn control(&self, method: &str, target: &str) -> Value {
        let request = self.request(method, target).header("Content-Length", "0");
        let response = self
            .send(&request)
            .unwrap_or_else(|e| panic!("{method} {target} on the test OpenID provider: {e}"));
        assert_eq!(
            response.status,
            200,
            "{method} {target}: {}",
            response.text()
        );
        response.json().unwrap()
    }

    /// The token endpoint's answer to a client credentials request of the client of `alg`
    /// (`RS256` or `ES256`; see [`client_for`]), authenticated with client_secret_basic.
    pub fn token_response(&self, alg: &str) -> Response {
        let (client, secret) = client_for(alg);
        self.token_response_of(client, secret)
    }

    /// The token endpoint's answer to a client credentials request of `client`.
    pub fn token_response_of(&self, client: &str, secret: &str) -> Response {
        let body = format!(
            "grant_type=client_credentials&scope={}&resource={}",
            SCOPE.replace(' ', "+"),
            AUDIENCE.replace(':', "%3A").replace('/', "%2F")
        );
        let request = self
            .request("POST", &format!("{}/token", self.issuer_path()))
            .header(
                "Authorization",
                format!("Basic {}", base64(format!("{client}:{secret}").as_bytes())),
            )
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body_text(&body);
        self.send(&request)
            .unwrap_or_else(|e| panic!("POST /token on the test OpenID provider: {e}"))
    }

    /// A fresh access token signed with `alg` (`RS256` or `ES256`), from the token endpoint.
    pub fn token(&self, alg: &str) -> String {
        let (client, secret) = client_for(alg);
        self.token_of(client, secret)
    }

    /// A fresh access token of `client` (any client of `tests/idp/server.mjs`).
    pub fn token_of(&self, client: &str, secret: &str) -> String {
        let response = self.token_response_of(client, secret);
        assert_eq!(
            response.status,
            200,
            "token endpoint: {}\n{}",
            response.text(),
            self.log()
        );
        response.json().unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The discovery document.
    pub fn discovery(&self) -> Value {
        let response = self.get(&format!(
            "{}/.well-known/openid-configuration",
            self.issuer_path()
        ));
        assert_eq!(response.status, 200, "discovery: {}", response.text());
        response.json().unwrap()
    }

    /// A new signing key per algorithm signs from now on. The JWKS publishes the new keys
    /// and the old ones (tokens signed before stay verifiable), or only the new ones when
    /// `drop_old`. Returns the kids of the keys now signing, as `{"RS256": .., "ES256": ..}`.
    pub fn rotate(&self, drop_old: bool) -> Value {
        let target = if drop_old {
            "/control/rotate?drop_old=1"
        } else {
            "/control/rotate"
        };
        self.control("POST", target)["signing"].clone()
    }

    /// How the JWKS path answers from now on.
    pub fn fault(&self, fault: Fault) {
        self.control("POST", &format!("/control/fault?{}", fault.query()));
    }

    /// The lifetime of the tokens issued from now on (3600 s at start).
    /// How the token endpoint answers from now on: `ok`, `down`, `500`, or `slow` (after
    /// `seconds`).
    pub fn token_fault(&self, mode: &str, seconds: u64) {
        self.control(
            "POST",
            &format!("/control/token_fault?mode={mode}&seconds={seconds}"),
        );
    }

    /// How the discovery document answers from now on: `ok`, `500`, or `other_issuer`.
    pub fn discovery_fault(&self, mode: &str) {
        self.control("POST", &format!("/control/discovery_fault?mode={mode}"));
    }

    /// Requests for the discovery document since the start or [`Idp::reset_stats`].
    pub fn discovery_fetches(&self) -> u64 {
        self.control("GET", "/control/stats")["discovery_fetches"]
            .as_u64()
            .unwrap()
    }

    pub fn set_token_ttl(&self, seconds: u64) {
        self.control("POST", &format!("/control/token_ttl?seconds={seconds}"));
    }

    /// Requests to the JWKS path since the start or [`Idp::reset_stats`], whatever the
    /// fault mode (one closed unanswered counts too).
    pub fn jwks_fetches(&self) -> u64 {
        self.control("GET", "/control/stats")["jwks_fetches"]
            .as_u64()
            .unwrap()
    }

    /// Requests to the token endpoint since the start or [`Idp::reset_stats`].
    pub fn token_requests(&self) -> u64 {
        self.control("GET", "/control/stats")["token_requests"]
            .as_u64()
            .unwrap()
    }

    pub fn reset_stats(&self) {
        self.control("POST", "/control/reset_stats");
    }

    /// Stops the provider now (as when it goes down); a new one can start on the same port
    /// with [`Idp::start_on`]. Its keys die with it.
    pub fn stop(self) {}
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Standard base64 with padding (HTTP Basic credentials).
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The decoded header and payload of a compact JWT.
pub fn decode_jwt(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut next = || {
        let part = parts.next().expect("a JWT has three parts");
        let bytes = super::base64url::decode(part.as_bytes()).expect("base64url");
        serde_json::from_slice::<Value>(&bytes).expect("JSON")
    };
    let header = next();
    let payload = next();
    (header, payload)
}

// ---------------------------------------------------------------------------------------
// The filter with the provider: Envoy with 4 workers fetches the keys through a cluster.

/// The issuer entry for `idp`, fetched through the cluster `idp`.
pub fn issuer_entry(idp: &Idp, refresh_seconds: u64) -> Value {
    json!({
        "name": "idp",
        "issuer": idp.issuer(),
        "audiences": [AUDIENCE],
        "jwks_uri": idp.jwks_uri(),
        "cluster": "idp",
        "refresh_seconds": refresh_seconds,
        "roles_claim": "realm_access.roles",
        "claims_to_headers": [{"claim": "email", "header": "x-auth-email"}],
    })
}

/// Envoy, 4 workers, trusting `issuers`, with the cluster `idp` to `idp_port`.
pub fn envoy_trusting(issuers: Value, idp_port: u16, extra: Value) -> Envoy {
    let mut config = json!({
        "secrets": [{"key": K}],
        "issuers": issuers,
        "rules": [
            {"prefix": "/public", "mode": "none"},
            {"prefix": "/orders", "mode": "required", "roles": ["reader", "user"]},
        ],
    });
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    let mut setup = Setup::new(config).cluster("idp", idp_port);
    setup.concurrency = 4;
    Envoy::start(setup)
}

pub fn bearer(token: &str) -> Request {
    Request::get("/orders").bearer(token)
}

/// Sends until `done(status)` holds or `seconds` pass; the last response.
pub fn until(envoy: &Envoy, token: &str, seconds: u64, done: impl Fn(u16) -> bool) -> Response {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let response = envoy.send(&bearer(token));
        if done(response.status) || Instant::now() > deadline {
            return response;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
