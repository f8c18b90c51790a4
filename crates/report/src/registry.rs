//! Every strategy a command can name, built-in and external, as one value
//! handed down (no process-wide state): looked up, listed and resolved from
//! `--strategies` in one way.

use anyhow::{Result, bail};
use rates_core::Strategy;

use crate::external::{External, Externals};

pub use crate::external::ExternalOptions;

/// The built-in strategies ([`rates_registry`]) and the external programs
/// a command was given.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    external: Vec<External>,
    /// The names given with `--external` on this command line: a command
    /// that is not asked to measure one of them says so.
    flagged: Vec<String>,
}

impl Registry {
    /// The built-in strategies and `external` (a later one replaces an
    /// earlier one of the same name).
    pub fn with_external(external: Vec<External>) -> Self {
        let mut list: Vec<External> = Vec::new();
        for e in external {
            list.retain(|k| k.name() != e.name());
            list.push(e);
        }
        Self {
            external: list,
            flagged: Vec::new(),
        }
    }

    /// The built-in strategies and the external ones a command was given
    /// (read by [`ExternalOptions::read`]); a name given with `--external`
    /// must then be named to be measured.
    pub fn new(external: Externals) -> Self {
        Self {
            flagged: external.flagged,
            ..Self::with_external(external.list)
        }
    }

    /// The external strategies, in the order given.
    pub fn external(&self) -> &[External] {
        &self.external
    }

    /// The external strategy called `name`, if there is one.
    pub fn find_external(&self, name: &str) -> Option<&External> {
        self.external.iter().find(|e| e.name() == name)
    }

    /// Whether `name` is a strategy here, built-in or external.
    pub fn knows(&self, name: &str) -> bool {
        self.find_external(name).is_some() || rates_registry::find(name).is_ok()
    }

    /// The strategies named by `--strategies` (all built-in ones when
    /// `None` or `all`, which may also stand in a list: `all,mine`; `all+`
    /// adds every external one): built-in ones in the registry's order,
    /// then the external ones named, in the order named.
    ///
    /// # Errors
    /// A name that is neither, naming both kinds; an empty list; an
    /// external program given with `--external` but not named (it would
    /// not be measured), with how to name it.
    pub fn named(&self, only: Option<&str>) -> Result<Vec<Box<dyn Strategy>>> {
        let strategies = self.resolve(only)?;
        if let Some(missed) = self
            .flagged
            .iter()
            .find(|f| !strategies.iter().any(|s| s.name() == f.as_str()))
        {
            let listed = only.map_or_else(|| "all".to_owned(), |o| o.trim().to_owned());
            bail!(
                "--external {missed} is given but --strategies does not name it, so it would \
                 not be measured: add it, as in --strategies {listed},{missed}"
            );
        }
        Ok(strategies)
    }

    /// [`named`](Self::named) without the check of `--external` flags (for
    /// a re-run of some of the strategies already measured).
    pub(crate) fn resolve(&self, only: Option<&str>) -> Result<Vec<Box<dyn Strategy>>> {
        let mut strategies = rates_registry::strategies();
        match only.map(str::trim) {
            None | Some("all") => {}
            Some("all+") => {
                for e in &self.external {
                    strategies.push(Box::new(e.clone()));
                }
            }
            Some(only) => {
                let wanted: Vec<&str> = only.split(',').map(str::trim).collect();
                let all = wanted.contains(&"all");
                let mut externals: Vec<Box<dyn Strategy>> = Vec::new();
                for name in wanted.iter().filter(|n| **n != "all") {
                    if let Some(e) = self.find_external(name) {
                        externals.push(Box::new(e.clone()));
                        continue;
                    }
                    rates_registry::find(name).map_err(|e| {
                        if self.external.is_empty() {
                            anyhow::anyhow!(e)
                        } else {
                            let names: Vec<&str> =
                                self.external.iter().map(External::name).collect();
                            anyhow::anyhow!("{e}, or an external one: {}", names.join(", "))
                        }
                    })?;
                }
                strategies.retain(|s| all || wanted.contains(&s.name()));
                strategies.extend(externals);
            }
        }
        if strategies.is_empty() {
            bail!("no strategies to compare: name at least one in --strategies");
        }
        Ok(strategies)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn flag(spec: &str) -> External {
        External::parse_flag(spec).unwrap()
    }

    #[test]
    fn one_registry_resolves_built_in_and_external_names() {
        let r = Registry::with_external(vec![flag("x=true"), flag("y=true"), flag("x=false")]);
        let names: Vec<&str> = r.external().iter().map(External::name).collect();
        assert_eq!(names, ["y", "x"], "a later x replaces the first");
        assert_eq!(r.find_external("x").unwrap().command_line(), "false");
        assert!(r.knows("tokio") && r.knows("y") && !r.knows("nope"));
        let picked: Vec<&str> = r
            .named(Some("x,tokio,sync"))
            .unwrap()
            .iter()
            .map(|s| s.name())
            .collect();
        assert_eq!(picked, ["sync", "tokio", "x"]);
        assert_eq!(
            r.named(Some("all+")).unwrap().len(),
            rates_registry::names().len() + 2
        );
        let Err(e) = r.named(Some("nope")) else {
            panic!("an unknown name is refused")
        };
        let e = e.to_string();
        assert!(
            e.contains("nope") && e.contains("or an external one: y, x"),
            "{e}"
        );
        // Two registries, two sets of external strategies: nothing shared.
        assert!(Registry::default().find_external("x").is_none());
    }

    #[test]
    fn an_external_flag_that_is_not_named_is_refused_with_how_to_name_it() {
        let options = ExternalOptions {
            external: vec!["mine=true".to_owned()],
            clients: Some(PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../clients/clients.toml"
            ))),
        };
        let r = Registry::new(options.read().unwrap());
        for only in [None, Some("tokio"), Some("all")] {
            let Err(e) = r.named(only) else {
                panic!("{only:?}: --external mine was silently left out")
            };
            let e = e.to_string();
            assert!(
                e.contains("--external mine is given but --strategies does not name it")
                    && e.contains(",mine"),
                "{e}"
            );
        }
        let names = |only| -> Vec<String> {
            r.named(Some(only))
                .unwrap()
                .iter()
                .map(|s| s.name().to_owned())
                .collect()
        };
        assert_eq!(names("tokio,mine"), ["tokio", "mine"]);
        let all = names("all,mine");
        assert_eq!(all.len(), rates_registry::names().len() + 1, "{all:?}");
        // Programs of the clients file need not be named: only flags do.
        assert!(names("all+").contains(&"py-asyncio".to_owned()));
    }
}
