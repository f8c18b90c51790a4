//! `rates report DIR`: a results folder's tables, charts and REPORT.md drawn
//! again from its JSON exports, without measuring anything (after a change
//! to how reports are drawn, or to draw a folder another machine made).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use rates_measure::Machine;

use crate::report::{export, out};

#[derive(Debug, Args)]
#[command(after_help = "Example:
  rates report results/my-run        after `rates compare --out results/my-run`")]
pub(crate) struct ReportArgs {
    /// A folder written by `rates compare --out` (manifest.json and one
    /// SCENARIO.json export per scenario).
    dir: PathBuf,
}

pub(crate) fn run(a: &ReportArgs) -> Result<ExitCode> {
    let manifest = a.dir.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).with_context(|| {
        format!(
            "reading {}: give a folder written by `rates compare --out`",
            manifest.display()
        )
    })?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", manifest.display()))?;
    let machine: Machine =
        serde_json::from_value(value.get("machine").cloned().unwrap_or(value.clone()))
            .with_context(|| format!("{} names no machine", manifest.display()))?;
    let scenarios: Vec<String> = value
        .get("scenarios")
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .unwrap_or_default();
    if scenarios.is_empty() {
        bail!("{} lists no scenarios", manifest.display());
    }
    let mut exports = Vec::new();
    for name in &scenarios {
        let e = export::read_json(&a.dir.join(format!("{name}.json")))?;
        out::write_scenario(&a.dir, &e)?;
        exports.push(e);
    }
    out::write_report(&a.dir, &machine, &exports)?;
    eprintln!(
        "drew {} scenario(s) again from their exports: {}",
        exports.len(),
        a.dir.join("REPORT.md").display()
    );
    Ok(ExitCode::SUCCESS)
}
