//! `rates report`: its flags; the work is `rates_report::redraw`'s.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use rates_report::redraw::RedrawOptions;

#[derive(Debug, Args)]
#[command(after_help = "Example:
  rates report results/my-run        after `rates compare --out results/my-run`")]
pub(crate) struct ReportArgs {
    // The options, defined once in the library (help, defaults, parsing).
    #[command(flatten)]
    options: RedrawOptions,
}

pub(crate) fn run(a: ReportArgs) -> Result<ExitCode> {
    // External strategies keep the colours of the clients file's order.
    rates_report::redraw::run(&a.options)
}
