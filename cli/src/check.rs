//! `tollgate check`: the configuration check `on_configure` runs, with its messages, and
//! warnings about the Envoy routes beside the filter (which leave the exit status 0).

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
            // Warnings about the routes beside the filter; the configuration still loads.
            if let Some(routes) = &loaded.route_config {
                for line in crate::envoy_routes::findings(routes, &config.rules) {
                    out.push_str(&line);
                    out.push('\n');
                }
            }
            true
        }
        Err(e) => {
            out.push_str(&format!("tollgate {version}: configuration refused: {e}\n"));
            false
        }
    };
    (out, ok)
}
