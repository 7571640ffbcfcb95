//! `--jwks NAME=FILE`: the keys of a `jwks_uri` issuer read from a file and installed as if
//! the filter had fetched them, so that its tokens are checked offline.

use std::path::Path;

use tollgate_core::config::Config;
use tollgate_core::verify::jwks::KeySet;
use tollgate_core::worker::WorkerState;

use crate::error::CliError;

/// The keys given with `--jwks`, by issuer index.
#[derive(Debug, Clone, Default)]
pub struct FetchedKeys {
    sets: Vec<(usize, KeySet)>,
}

impl FetchedKeys {
    /// Reads every `NAME=FILE` of `args` for `config`'s issuers. An unknown name, an issuer
    /// whose keys are not fetched, a name given twice, or a file that is not a public JWKS
    /// with a usable key is an error naming the flag; no key material is ever quoted.
    pub fn read(config: &Config, args: &[String]) -> Result<FetchedKeys, CliError> {
        let mut fetched = FetchedKeys::default();
        for arg in args {
            let bad = |why: String| CliError::input(format!("--jwks {arg}: {why}"));
            let (name, file) = arg
                .split_once('=')
                .filter(|(n, f)| !n.is_empty() && !f.is_empty())
                .ok_or_else(|| bad("expected NAME=FILE".to_owned()))?;
            let issuers = &config.issuers.list;
            let (index, issuer) = issuers
                .iter()
                .enumerate()
                .find(|(_, i)| &*i.name == name)
                .ok_or_else(|| {
                    let names: Vec<&str> = issuers.iter().map(|i| &*i.name).collect();
                    bad(format!(
                        "no issuer is named {name:?} (the configuration's issuers: {})",
                        if names.is_empty() {
                            "none".to_owned()
                        } else {
                            names.join(", ")
                        }
                    ))
                })?;
            if issuer.remote().is_none() {
                return Err(bad(format!(
                    "issuer {name:?} has its keys in the configuration (jwks or jwks_env); --jwks is for a jwks_uri issuer"
                )));
            }
            if fetched.of(index).is_some() {
                return Err(bad(format!("issuer {name:?} is given twice")));
            }
            let text = crate::input::read_text(Path::new(file))
                .map_err(|e| bad(format!("cannot use the file: {e}")))?;
            if KeySet::holds_private_material(text.as_bytes()) == Some(true) {
                return Err(bad(
                    "the file holds private key members (d, p, q, k, …): give the provider's public JWKS"
                        .to_owned(),
                ));
            }
            let set = KeySet::parse(text.as_bytes(), &issuer.algorithms)
                .map_err(|e| bad(format!("{file}: {e}")))?;
            if set.keys.is_empty() {
                return Err(bad(format!(
                    "{file}: the JWKS holds no key usable for issuer {name:?} ({} skipped: algorithm, use, size)",
                    set.skipped
                )));
            }
            fetched.sets.push((index, set));
        }
        Ok(fetched)
    }

    /// The keys given for issuer `index`.
    pub fn of(&self, index: usize) -> Option<&KeySet> {
        self.sets.iter().find(|(i, _)| *i == index).map(|(_, s)| s)
    }

    /// Installs the keys in `worker`, as the first fetch would.
    pub fn install(&self, worker: &mut WorkerState) {
        for (index, set) in &self.sets {
            worker.issuer_keys.install(*index, set.clone(), 1);
        }
    }
}
