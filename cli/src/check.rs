//! `tollgate check`: the configuration check `on_configure` runs, with its messages and the
//! warnings the filter logs, and warnings about the Envoy routes beside the filter (warnings
//! leave the exit status 0).

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
            // The warnings the filter logs when it loads this configuration.
            for warning in config.warnings() {
                out.push_str(&format!("warning: {warning}\n"));
            }
            // Warnings about the routes beside the filter; the configuration still loads.
            if let Some(routes) = &loaded.route_config {
                for line in crate::envoy_routes::findings(routes, &config.rules) {
                    out.push_str(&line);
                    out.push('\n');
                }
            }
            // The routes (and the filter's own entry) that turn the filter off.
            if let Some(filter) = &loaded.http_filter {
                let routes = loaded.route_config.as_ref();
                for line in crate::filter_off::disabled_findings(routes, filter) {
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
