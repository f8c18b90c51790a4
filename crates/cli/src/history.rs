//! `rates history`: its flags; the work is `rates_report::history`'s.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use rates_report::history::HistoryOptions;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  rates history results/                       every run under results/, ratio to ideal
  rates history results/ --metric cpu --out /tmp/h   charts in /tmp/h, not results/history")]
pub(crate) struct HistoryArgs {
    /// The folder holding run folders (each with manifest.json and
    /// SCENARIO.json exports, as `rates compare --out` writes them).
    dir: PathBuf,
    /// What to follow: ratio (to the ideal), cpu (per request), memory
    /// (peak), wall (median).
    #[arg(long, default_value = "ratio")]
    metric: String,
    /// Where the charts go (one SVG per scenario); default: a `history`
    /// folder inside DIR.
    #[arg(long)]
    out: Option<PathBuf>,
}

impl HistoryArgs {
    fn options(self) -> HistoryOptions {
        HistoryOptions {
            dir: self.dir,
            metric: self.metric,
            out: self.out,
        }
    }
}

pub(crate) fn run(a: HistoryArgs) -> Result<ExitCode> {
    // External strategies keep the colours of the clients file's order.
    rates_report::external::load(None, &[])?;
    rates_report::history::run(&a.options())
}
