//! The command line: `tollgate explain|test|check` and their options, read by clap (derive).
//! clap answers `--help` and `--version`, and refuses an unknown option, a missing value or
//! an option another command takes with its usage text (exit 2).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// What every command's help ends with: the files `--config` and `--env-file` take.
const FILES: &str = "\
FILE is the plugin's JSON configuration, an Envoy YAML configuration holding the tollgate Wasm
filter, or an Istio WasmPlugin. Secrets named by *_env keys come from the environment, or from
--env-file (KEY=VALUE lines), which overrides it.

Exit status: 0 success (check: the configuration loads, with or without warnings); 1 a case
failed (test) or the filter would refuse the configuration (check); 2 a usage error, a file
that cannot be read, a configuration refused (explain, test) or a cases-file error.";

/// A tollgate configuration tried before it reaches a mesh, with the filter's own decision.
#[derive(Debug, Parser)]
#[command(
    name = "tollgate",
    version = tollgate_core::VERSION,
    propagate_version = true,
    arg_required_else_help = true,
    after_help = FILES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// One request through the decision, every step shown.
    #[command(after_help = FILES)]
    Explain(ExplainArgs),
    /// A file of requests, each with the answer it must get.
    #[command(after_help = FILES)]
    Test(TestArgs),
    /// The configuration check the filter runs when it loads, and its warnings.
    #[command(after_help = FILES)]
    Check(ConfigArgs),
}

/// Where the configuration comes from.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// The configuration: plugin JSON, Envoy YAML or Istio WasmPlugin.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// KEY=VALUE lines for the *_env keys (over the environment).
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// Which tollgate filter (or WasmPlugin) of a file holding several.
    #[arg(long, value_name = "NAME")]
    pub filter: Option<String>,
}

/// One request to explain.
#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub source: ConfigArgs,
    /// The clock, in unix seconds (default: now).
    #[arg(long, value_name = "UNIX")]
    pub now: Option<u64>,
    /// A jwks_uri issuer's keys from a file, as if fetched: NAME is the issuer's `name`, FILE
    /// its public JWKS (repeat for more issuers).
    #[arg(long = "jwks", value_name = "NAME=FILE")]
    pub jwks: Vec<String>,
    /// The explanation as JSON.
    #[arg(long)]
    pub json: bool,
    /// The request's method (GET, POST, …).
    #[arg(value_name = "METHOD")]
    pub method: String,
    /// The request's path and query (/api/orders?page=2).
    #[arg(value_name = "TARGET")]
    pub target: String,
    /// A request header, `Name: value` (repeat for more; `Host` becomes `:authority`).
    #[arg(short = 'H', long = "header", value_name = "'Name: value'")]
    pub headers: Vec<String>,
}

/// A cases file to run.
#[derive(Debug, Clone, Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub source: ConfigArgs,
    /// The clock, in unix seconds (default: now).
    #[arg(long, value_name = "UNIX")]
    pub now: Option<u64>,
    /// A jwks_uri issuer's keys from a file, as if fetched: NAME is the issuer's `name`, FILE
    /// its public JWKS (repeat for more issuers).
    #[arg(long = "jwks", value_name = "NAME=FILE")]
    pub jwks: Vec<String>,
    /// The cases file (YAML or JSON).
    #[arg(value_name = "CASES")]
    pub cases: PathBuf,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use clap::CommandFactory;

    fn parse(text: &str) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("tollgate").chain(text.split(' ')))
            .map(|cli| cli.command)
    }

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn explain_with_headers_and_inline_values() {
        let Command::Explain(e) =
            parse("explain --config=c.json -H Accept:x GET /a --json --now 5").unwrap()
        else {
            panic!("not explain")
        };
        assert_eq!(e.source.config, PathBuf::from("c.json"));
        assert_eq!((e.method.as_str(), e.target.as_str()), ("GET", "/a"));
        assert_eq!(e.headers, ["Accept:x"]);
        assert!(e.json);
        assert_eq!(e.now, Some(5));
    }

    #[test]
    fn usage_errors() {
        for wrong in [
            "explain GET /a",
            "test --config c",
            "check --config c --bogus",
            "check --config c --now 5",
            "check -c c",
            "explain --config c --json=false GET /a",
            "frob --config c",
        ] {
            assert!(parse(wrong).is_err(), "{wrong}");
        }
    }
}
