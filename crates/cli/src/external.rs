//! `rates strategies --external`; the flags that make external programs
//! strategies are the library's (`rates_report::registry::ExternalOptions`).

use std::path::Path;

use anyhow::Result;
use rates_core::Strategy as _;
use rates_report::registry::ExternalOptions;

/// `rates strategies --external`: the external strategies of `clients`
/// (or of the default clients file).
pub(crate) fn list(clients: Option<&Path>) -> Result<()> {
    let registry = rates_report::registry::Registry::new(
        ExternalOptions {
            external: Vec::new(),
            clients: clients.map(Path::to_owned),
        }
        .read()?,
    );
    let list = registry.external();
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
