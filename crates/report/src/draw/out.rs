//! `--out DIR`: a results folder from one command.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use rates_measure::{Export, Machine};
use serde::Serialize;

use super::{chart, export, table};

/// What `manifest.json` holds.
#[derive(Debug, Serialize)]
struct Manifest<'a> {
    schema: u32,
    tool: String,
    /// Why the results are partial (an interrupted command), when they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    incomplete: Option<&'a str>,
    machine: &'a Machine,
    scenarios: Vec<&'a str>,
    files: Vec<String>,
}

/// Writes the exports and charts of one scenario into `dir`; returns the
/// chart files written.
pub(crate) fn write_scenario(dir: &Path, export: &Export) -> Result<Vec<PathBuf>> {
    let name = &export.scenario.name;
    export::write_json(export, &dir.join(format!("{name}.json")))?;
    export::write_csv(export, &dir.join(format!("{name}.csv")))?;
    export::write_markdown(export, &dir.join(format!("{name}.md")))?;
    let mut charts = Vec::new();
    for (kind, c) in chart::charts(export) {
        let path = dir.join(format!("{name}-{kind}.svg"));
        c.draw(&path)
            .with_context(|| format!("drawing {}", path.display()))?;
        charts.push(path);
    }
    Ok(charts)
}

/// Writes `manifest.json`, `REPORT.md` and `REPORT.html` (self-contained:
/// the charts inline) for every scenario in `exports`.
pub(crate) fn write_report(dir: &Path, machine: &Machine, exports: &[Export]) -> Result<()> {
    let mut files: Vec<String> = Vec::new();
    let mut md = String::new();
    let _ = writeln!(md, "# rates compare: results\n");
    if let Some(why) = &machine.incomplete {
        let _ = writeln!(md, "**Incomplete**: {why}.\n");
    }
    let _ = writeln!(
        md,
        "{} One-minute load average {} before the first scenario and {} after the last \
         (the runs' own threads count in it; the share of the machine other work took is \
         each scenario's). Command:\n\n```sh\n{}\n```\n",
        super::machine::taken(machine),
        super::fmt::opt(machine.load_before, |l| format!("{l:.2}")),
        super::fmt::opt(machine.load_after, |l| format!("{l:.2}")),
        machine.command
    );
    let _ = writeln!(
        md,
        "Every strategy ran against the same embedded server (in the parent \
         process), each timed run in a fresh `rates` child process whose whole \
         tree was measured. On latency-bound work every bounded strategy takes \
         about the same wall time by construction; what separates them is the \
         cost columns and charts.\n"
    );
    for e in exports {
        let name = &e.scenario.name;
        for ext in ["json", "csv", "md"] {
            files.push(format!("{name}.{ext}"));
        }
        md.push_str(&table::markdown(e).replacen("## ", "## Scenario ", 1));
        md.push('\n');
        for (kind, _) in chart::charts(e) {
            let file = format!("{name}-{kind}.svg");
            let _ = writeln!(md, "![{name}: {kind}]({file})\n");
            files.push(file);
        }
        let _ = writeln!(
            md,
            "Exports: [{name}.json]({name}.json) (schema {}), [{name}.csv]({name}.csv), \
             [{name}.md]({name}.md).\n",
            rates_measure::SCHEMA
        );
    }
    let manifest = Manifest {
        schema: rates_measure::SCHEMA,
        tool: format!("rates {}", env!("CARGO_PKG_VERSION")),
        incomplete: machine.incomplete.as_deref(),
        machine,
        scenarios: exports.iter().map(|e| e.scenario.name.as_str()).collect(),
        files,
    };
    export::write(
        &dir.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)?.as_bytes(),
    )?;
    export::write(&dir.join("REPORT.md"), md.as_bytes())?;
    export::write(
        &dir.join("REPORT.html"),
        super::html::page(dir, machine, exports).as_bytes(),
    )
}
