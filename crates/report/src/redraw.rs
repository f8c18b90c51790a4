//! `rates report DIR`: a results folder's tables, charts and REPORT.md drawn
//! again from its JSON exports, without measuring anything (after a change
//! to how reports are drawn, or to draw a folder another machine made).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use rates_measure::Machine;

use crate::draw::{export, out};

/// What `rates report` is asked to redraw.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct RedrawOptions {
    /// A folder written by `rates compare --out` (manifest.json and one
    /// SCENARIO.json export per scenario).
    pub dir: PathBuf,
}

/// Runs `rates report` with `a`: draws the charts and `REPORT.md` of a
/// results folder again from its exports, measuring nothing. Exit 0.
pub fn run(a: &RedrawOptions) -> Result<ExitCode> {
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
