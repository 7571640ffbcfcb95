//! `tollgate`: a configuration tried before it reaches a mesh.
//!
//! - `tollgate explain`: one request through the real decision, step by step.
//! - `tollgate test`: a file of requests and the answers they must get.
//! - `tollgate check`: the configuration check the filter runs when it loads.
//!
//! Every answer comes from `tollgate_core::decision::decide`, the code the filter runs.
//! Exit status: 0 success (`check`: the configuration loads, warnings or not); 1 a failed
//! case or a refused configuration (`check`); 2 a usage, file or configuration error
//! ([`error::CliError`]).

mod args;
mod cases;
mod check;
mod config_source;
mod envoy_routes;
mod error;
mod explain;
mod fetched_keys;
mod filter_off;
mod input;
mod provider_token;
mod redact;
mod request;
mod run_cases;
mod yaml;

use std::io::Write;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use args::{Cli, Command};
use clap::Parser;
use error::CliError;
use fetched_keys::FetchedKeys;
use redact::Redactor;
use tollgate_core::config::Config;
use tollgate_core::credential::Locations;

fn main() -> ExitCode {
    // clap reads the arguments as the OS gives them: a value that is not UTF-8 is refused
    // without being quoted (it may hold a credential).
    let result = match Cli::try_parse() {
        Ok(cli) => run(cli.command),
        Err(e) => Err(CliError::Usage(e)),
    };
    match result {
        Ok(status) => ExitCode::from(status),
        // --help and --version come this way too: clap prints them on stdout, exit 0.
        Err(CliError::Usage(e)) => {
            let _ = e.print();
            ExitCode::from(if e.use_stderr() { error::USAGE } else { 0 })
        }
        Err(e) => {
            eprintln!("tollgate: {e}");
            ExitCode::from(e.status())
        }
    }
}

fn print(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| CliError::Output(format!("cannot write the output: {e}")))
}

fn now_or(given: Option<u64>) -> u64 {
    given.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    })
}

/// The configuration, or the filter's own refusal as the error.
fn configured(loaded: &config_source::Loaded, redactor: &Redactor) -> Result<Config, CliError> {
    loaded.parse().map_err(|e| {
        CliError::Refused(redactor.clean(&format!(
            "{}: tollgate {}: configuration refused: {e}",
            loaded.origin,
            tollgate_core::VERSION
        )))
    })
}

fn run(command: Command) -> Result<u8, CliError> {
    match command {
        Command::Check(source) => {
            let loaded = config_source::load(&source)?;
            let redactor = Redactor::new(&loaded.secrets);
            let (text, ok) = check::check(&loaded);
            print(&redactor.clean(&text))?;
            Ok(if ok { 0 } else { 1 })
        }
        Command::Explain(e) => {
            let loaded = config_source::load(&e.source)?;
            let mut redactor = Redactor::new(&loaded.secrets);
            let config = configured(&loaded, &redactor)?;
            let fetched = FetchedKeys::read(&config, &e.jwks)?;
            let headers: Vec<(String, String)> = e
                .headers
                .iter()
                .map(|h| request::header_line(h))
                .collect::<Result<_, _>>()?;
            let list = request::headers(&e.method, &e.target, &headers);
            redactor.learn_request(
                &list,
                Locations {
                    query_param: &config.token_query_param,
                    cookie: &config.token_cookie,
                },
            );
            let mut explanation = explain::explain_with(&config, &list, now_or(e.now), &fetched);
            if let Some(token) = &explanation.session_token {
                redactor.add_credential(token);
            }
            explanation.filter_skipped = filter_off::skip(&loaded, &list);
            let text = if e.json {
                let cannot =
                    |err: serde_json::Error| CliError::Output(format!("cannot write JSON: {err}"));
                let value = serde_json::to_value(&explanation).map_err(cannot)?;
                let json =
                    serde_json::to_string_pretty(&redactor.clean_json(value)).map_err(cannot)?;
                format!("{json}\n")
            } else {
                let text = format!(
                    "{}configuration: {}\n{}",
                    explanation.skip_line(),
                    loaded.origin,
                    explanation.render_steps()
                );
                redactor.clean(&text)
            };
            print(&text)?;
            Ok(0)
        }
        Command::Test(t) => {
            let loaded = config_source::load(&t.source)?;
            let mut redactor = Redactor::new(&loaded.secrets);
            let config = configured(&loaded, &redactor)?;
            let fetched = FetchedKeys::read(&config, &t.jwks)?;
            // A cases file's errors may quote its values: masked like every other output.
            let cases = cases::load(&t.cases).map_err(|e| e.map_message(|m| redactor.clean(m)))?;
            let materials = cases::Materials {
                now: now_or(t.now),
                key: config.verifier.current_key(),
                env: &loaded.env,
                config: &config,
                fetched: &fetched,
                dir: t.cases.parent().unwrap_or(std::path::Path::new("")),
            };
            let file = t.cases.display().to_string();
            let report = run_cases::run(&loaded, &cases, &materials, &mut redactor, &file)
                .map_err(|e| CliError::input(redactor.clean(&e)))?;
            print(&report.text)?;
            Ok(if report.failed > 0 { 1 } else { 0 })
        }
    }
}
