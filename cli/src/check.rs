//! `tollgate check`: the configuration check `on_configure` runs, with its messages.

use crate::config_source::Loaded;

/// The lines `check` prints, and whether the configuration loads.
pub fn check(loaded: &Loaded) -> (String, bool) {
    let version = tollgate_core::VERSION;
    let mut out = format!("read: {}\n", loaded.origin);
    let ok = match loaded.parse() {
        Ok(config) => {
            out.push_str(&format!(
                "tollgate {version} configured: {}\n",
                config.summary()
            ));
            true
        }
        Err(e) => {
            out.push_str(&format!("tollgate {version}: configuration refused: {e}\n"));
            false
        }
    };
    (out, ok)
}
