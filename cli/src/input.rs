//! Reading the files the command is given, bounded.

use crate::error::CliError;

/// The largest file read (a configuration, an env file, a cases file): `/dev/zero` or a
/// log given by mistake is refused, not read into memory.
pub const MAX_FILE_BYTES: u64 = 8 << 20;

/// The text of `path`, at most [`MAX_FILE_BYTES`].
pub fn read_text(path: &std::path::Path) -> Result<String, CliError> {
    use std::io::Read;
    let cannot =
        |e: std::io::Error| CliError::input(format!("{}: cannot read: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(CliError::input(format!(
            "{}: larger than {MAX_FILE_BYTES} bytes",
            path.display()
        )));
    }
    String::from_utf8(bytes)
        .map_err(|_| CliError::input(format!("{}: not UTF-8 text", path.display())))
}
