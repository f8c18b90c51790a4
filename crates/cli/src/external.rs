//! The flags that make external programs strategies (`compare`, `sweep`,
//! `map`); the work is `rates_report::external`'s.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use rates_core::Strategy as _;

/// External strategies: programs in any language that speak the job
/// protocol of docs/EXTERNAL.md.
#[derive(Debug, Args)]
pub(crate) struct ExternalArgs {
    /// An external strategy: NAME=COMMAND or NAME:SHAPE=COMMAND (SHAPE:
    /// one-at-a-time, tasks (the default), threads, thread-per-base or
    /// processes), run with `sh -c 'exec COMMAND'` in the current folder;
    /// repeatable. Name it in --strategies to measure it.
    #[arg(long, value_name = "NAME=COMMAND")]
    external: Vec<String>,
    /// A clients file of external strategies (TOML, one table per program;
    /// default: clients/clients.toml when it exists).
    #[arg(long, value_name = "FILE")]
    clients: Option<PathBuf>,
}

impl ExternalArgs {
    /// Reads and registers the external strategies these flags give.
    pub(crate) fn load(&self) -> Result<()> {
        rates_report::external::load(self.clients.as_deref(), &self.external)?;
        Ok(())
    }
}

/// `rates strategies --external`: the external strategies of `clients`
/// (or of the default clients file).
pub(crate) fn list(clients: Option<&std::path::Path>) -> Result<()> {
    let list = rates_report::external::load(clients, &[])?;
    if list.is_empty() {
        eprintln!(
            "no external strategies: no {} here and no --clients FILE (docs/EXTERNAL.md)",
            rates_report::external::DEFAULT_CLIENTS
        );
    }
    for e in list {
        let about = if e.about().is_empty() {
            e.command_line()
        } else {
            e.about()
        };
        println!("{:<15} {:<16} {about}", e.name(), e.shape_name());
    }
    Ok(())
}
