//! The command's errors: a one-line message and the exit status it leads to.

use std::fmt;

/// Exit status of a usage, configuration-file or cases-file error.
pub const USAGE: u8 = 2;

/// An error that ends the command.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub status: u8,
}

impl CliError {
    /// A usage, file or configuration error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            status: USAGE,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
