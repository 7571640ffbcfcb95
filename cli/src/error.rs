//! The command's errors, one enum, and the exit status each leads to.
//!
//! Exit status: 0 success (`check`: the configuration loads, warnings or not); 1 a failed case
//! (`test`) or a configuration the filter refuses (`check`); 2 any [`CliError`] (a usage
//! error, which clap reports with its usage text, a file or argument the command cannot use,
//! a configuration refused by `explain` or `test`, output that cannot be written).

use std::fmt;

/// Exit status of every [`CliError`].
pub const USAGE: u8 = 2;

/// An error that ends the command (exit [`USAGE`]).
#[derive(Debug)]
pub enum CliError {
    /// The command line itself: clap's message, printed with the usage text.
    Usage(clap::Error),
    /// A file or an argument's value the command cannot use: the configuration, the env file,
    /// the cases file, a header line.
    Input(String),
    /// The configuration, refused by the filter's own check (`explain`, `test`).
    Refused(String),
    /// The output cannot be written.
    Output(String),
}

impl CliError {
    /// A file or an argument's value the command cannot use.
    pub fn input(message: impl Into<String>) -> Self {
        CliError::Input(message.into())
    }

    /// The exit status the error leads to.
    pub fn status(&self) -> u8 {
        USAGE
    }

    /// The same error with its message rewritten (masked, say).
    pub fn map_message(self, rewrite: impl FnOnce(&str) -> String) -> Self {
        match self {
            CliError::Input(m) => CliError::Input(rewrite(&m)),
            CliError::Refused(m) => CliError::Refused(rewrite(&m)),
            CliError::Output(m) => CliError::Output(rewrite(&m)),
            usage @ CliError::Usage(_) => usage,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Input(m) | CliError::Refused(m) | CliError::Output(m) => f.write_str(m),
            CliError::Usage(e) => write!(f, "{}", e.render()),
        }
    }
}
