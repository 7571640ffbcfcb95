//! tollgate-signin: a demo sign-in service for tollgate. It serves a login page, checks the
//! users of its configuration, and issues access and refresh tokens signed with the filter's
//! master key. Not part of the filter; for demos and the browser round-trip test.
//!
//! `tollgate-signin [--config demo/signin/signin.json] [--listen ADDR] [--trust HOST]...
//! [--database PATH]`
//! The master key is read from the environment variable named by `secret_env`, the admin key
//! of the revocation endpoints from the one named by `admin_key_env` (when set). Sessions and
//! revocations are kept in the SQLite file `database` (`--database` overrides it); several
//! instances may share one file.
//! `tollgate-signin hash-password` reads a password on stdin and prints its Argon2id hash.

mod csrf;
mod durable;
mod form;
mod pages;
mod password;
mod random;
mod ratelimit;
mod reply;
mod return_url;
mod server;
mod service;
mod settings;
mod store;

use std::io::Read;
use std::process::ExitCode;

use service::Service;
use settings::Settings;

fn fail(message: &str) -> ExitCode {
    eprintln!("tollgate-signin: {message}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("hash-password") {
        return hash_password();
    }
    let mut config = "demo/signin/signin.json".to_string();
    let mut listen = None;
    let mut trusted = Vec::new();
    let mut database = None;
    while let Some(flag) = args.next() {
        let Some(value) = args.next() else {
            return fail(&format!("{flag} needs a value"));
        };
        match flag.as_str() {
            "--config" => config = value,
            "--listen" => listen = Some(value),
            "--trust" => trusted.push(value),
            "--database" => database = Some(value),
            _ => return fail(&format!("unknown option {flag}")),
        }
    }
    let mut settings = match Settings::load(&config) {
        Ok(settings) => settings,
        Err(e) => return fail(&e),
    };
    settings.trusted_hosts.extend(trusted);
    if let Some(listen) = listen {
        settings.listen = listen;
    }
    if let Some(database) = database {
        settings.database = database;
    }
    let secret = match master_key(&settings) {
        Ok(secret) => secret,
        Err(e) => return fail(&e),
    };
    let admin_key = match admin_key(&settings) {
        Ok(key) => key,
        Err(e) => return fail(&e),
    };
    let service = match Service::new(settings, &secret) {
        Ok(service) => service,
        Err(e) => return fail(&e),
    };
    let service = match admin_key {
        Some(key) => service.with_admin_key(&key),
        None => service,
    };
    // Each password check runs on a blocking thread and allocates Argon2's 19 MiB; few such
    // threads (the server admits four checks at once) keep memory from growing with them.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(serve(service))
}

async fn serve(service: Service) -> ExitCode {
    let listen = service.settings.listen.clone();
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(listener) => listener,
        Err(e) => return fail(&format!("cannot listen on {listen}: {e}")),
    };
    match listener.local_addr() {
        Ok(addr) => println!("listening on http://{addr}"),
        Err(_) => println!("listening on {listen}"),
    }
    server::run(listener, service, server::Limits::default(), stop_signal()).await;
    ExitCode::SUCCESS
}

/// Completes on SIGINT or SIGTERM.
async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// The master key from the variable `secret_env` names, checked by the filter's own rules
/// (length, whitespace, not a public key, not repetitive). Errors never quote it.
fn master_key(settings: &Settings) -> Result<String, String> {
    let secret = match &settings.kid {
        Some(kid) => serde_json::json!({"key_env": settings.secret_env, "kid": kid}),
        None => serde_json::json!({"key_env": settings.secret_env}),
    };
    let config = serde_json::json!({"secrets": [secret], "default_mode": "none"});
    let env = |name: &str| std::env::var(name).ok();
    tollgate_core::config::Config::parse(config.to_string().as_bytes(), &env).map_err(|e| {
        format!(
            "the master key in {} is refused: {}",
            settings.secret_env, e.problem
        )
    })?;
    std::env::var(&settings.secret_env).map_err(|_| format!("{} is not set", settings.secret_env))
}

/// The admin key from the variable `admin_key_env` names: none without that setting, or
/// (with a warning) when the variable is unset or empty: the admin endpoints then answer 401.
/// A key shorter than 32 bytes is refused. Errors never quote it.
fn admin_key(settings: &Settings) -> Result<Option<String>, String> {
    let Some(name) = &settings.admin_key_env else {
        return Ok(None);
    };
    let key = std::env::var(name).unwrap_or_default();
    let key = key.trim();
    if key.is_empty() {
        eprintln!("tollgate-signin: {name} (admin_key_env) is not set: no admin can revoke");
        return Ok(None);
    }
    if key.len() < 32 {
        return Err(format!("the admin key in {name} is shorter than 32 bytes"));
    }
    Ok(Some(key.to_owned()))
}

/// `hash-password`: one password on stdin (a trailing newline is dropped), its hash on stdout.
fn hash_password() -> ExitCode {
    let mut input = String::new();
    if std::io::stdin()
        .take(4096)
        .read_to_string(&mut input)
        .is_err()
    {
        return fail("cannot read the password from stdin (it must be UTF-8)");
    }
    let password = input
        .strip_suffix('\n')
        .map(|p| p.strip_suffix('\r').unwrap_or(p))
        .unwrap_or(&input);
    if password.is_empty() {
        return fail("the password is empty");
    }
    match password::hash(password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}
