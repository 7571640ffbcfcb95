//! The command line: `tollgate explain|test|check` and their options.

use std::path::PathBuf;

use crate::error::CliError;

/// How to use the command, printed by `tollgate help` and after a usage error.
pub const USAGE: &str = "\
usage:
  tollgate explain --config FILE [--env-file FILE] [--filter NAME] [--now UNIX] [--json]
                   METHOD TARGET [-H 'Name: value']...
  tollgate test    --config FILE [--env-file FILE] [--filter NAME] [--now UNIX] CASES
  tollgate check   --config FILE [--env-file FILE] [--filter NAME]

FILE is the plugin's JSON configuration, an Envoy YAML configuration holding the tollgate Wasm
filter, or an Istio WasmPlugin. Secrets named by *_env keys come from the environment, or from
--env-file (KEY=VALUE lines), which overrides it.";

/// Where the configuration comes from.
#[derive(Debug, Clone, Default)]
pub struct ConfigArgs {
    pub config: PathBuf,
    pub env_file: Option<PathBuf>,
    /// Which tollgate filter (or WasmPlugin) of a file holding several.
    pub filter: Option<String>,
}

/// One request to explain.
#[derive(Debug, Clone)]
pub struct ExplainArgs {
    pub source: ConfigArgs,
    pub method: String,
    pub target: String,
    /// `Name: value`, as given to `-H`.
    pub headers: Vec<String>,
    pub json: bool,
    pub now: Option<u64>,
}

/// A cases file to run.
#[derive(Debug, Clone)]
pub struct TestArgs {
    pub source: ConfigArgs,
    pub cases: PathBuf,
    pub now: Option<u64>,
}

/// What to do.
#[derive(Debug, Clone)]
pub enum Command {
    Explain(ExplainArgs),
    Test(TestArgs),
    Check(ConfigArgs),
    Help,
}

/// Reads the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, CliError> {
    let mut args = args.into_iter();
    let Some(command) = args.next() else {
        return Err(CliError::usage("no command given"));
    };
    if matches!(command.as_str(), "help" | "--help" | "-h") {
        return Ok(Command::Help);
    }
    let mut source = ConfigArgs::default();
    let mut config = None;
    let mut headers = Vec::new();
    let mut json = false;
    let mut now = None;
    let mut positional = Vec::new();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| CliError::usage(format!("{name} needs a value")))
        };
        match flag.as_str() {
            "--config" | "-c" => config = Some(PathBuf::from(value("--config")?)),
            "--env-file" => source.env_file = Some(PathBuf::from(value("--env-file")?)),
            "--filter" => source.filter = Some(value("--filter")?),
            "-H" | "--header" => headers.push(value("-H")?),
            "--now" => {
                let text = value("--now")?;
                now = Some(text.parse().map_err(|_| {
                    CliError::usage(format!("--now: {text:?} is not a unix time in seconds"))
                })?);
            }
            "--json" => json = true,
            "--help" | "-h" => return Ok(Command::Help),
            other if other.starts_with('-') && other.len() > 1 => {
                return Err(CliError::usage(format!("unknown option {other}")))
            }
            _ => positional.push(arg),
        }
    }
    source.config =
        config.ok_or_else(|| CliError::usage(format!("{command}: --config FILE is required")))?;
    let unused = |what: &str, given: bool| {
        if given {
            Err(CliError::usage(format!(
                "{command}: {what} is only for explain"
            )))
        } else {
            Ok(())
        }
    };
    match command.as_str() {
        "explain" => {
            let mut positional = positional.into_iter();
            let (Some(method), Some(target), None) =
                (positional.next(), positional.next(), positional.next())
            else {
                return Err(CliError::usage(
                    "explain: give METHOD and TARGET (e.g. GET /api/orders)",
                ));
            };
            Ok(Command::Explain(ExplainArgs {
                source,
                method,
                target,
                headers,
                json,
                now,
            }))
        }
        "test" => {
            unused("-H", !headers.is_empty())?;
            unused("--json", json)?;
            let mut positional = positional.into_iter();
            let (Some(cases), None) = (positional.next(), positional.next()) else {
                return Err(CliError::usage("test: give one CASES file"));
            };
            Ok(Command::Test(TestArgs {
                source,
                cases: PathBuf::from(cases),
                now,
            }))
        }
        "check" => {
            unused("-H", !headers.is_empty())?;
            unused("--json", json)?;
            if let Some(extra) = positional.first() {
                return Err(CliError::usage(format!(
                    "check: unexpected argument {extra:?}"
                )));
            }
            Ok(Command::Check(source))
        }
        other => Err(CliError::usage(format!(
            "unknown command {other:?} (expected explain, test or check)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn explain_with_headers_and_inline_values() {
        let Command::Explain(e) = parse(words(
            "explain --config=c.json -H Accept:x GET /a --json --now 5",
        ))
        .unwrap() else {
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
        assert!(parse(words("explain GET /a")).is_err());
        assert!(parse(words("test --config c")).is_err());
        assert!(parse(words("check --config c --bogus")).is_err());
        assert!(parse(words("frob --config c")).is_err());
    }
}
