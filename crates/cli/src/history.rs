//! `rates history`: its flags; the work is `rates_report::history`'s.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use rates_report::history::HistoryOptions;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  rates history results/                       every run under results/, ratio to ideal
  rates history results/ --metric cpu --out /tmp/h   charts in /tmp/h, not results/history")]
pub(crate) struct HistoryArgs {
    // The options, defined once in the library (help, defaults, parsing).
    #[command(flatten)]
    options: HistoryOptions,
}

pub(crate) fn run(a: HistoryArgs) -> Result<ExitCode> {
    // External strategies keep the colours of the clients file's order.
    rates_report::history::run(&a.options)
}
