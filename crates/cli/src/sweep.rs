//! `rates sweep`: its flags; the work is `rates_report::sweep`'s.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use rates_report::sweep::SweepOptions;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  rates sweep --strategies sync,threads,pool,tokio --vary bases=10,100,1000 --latency 20ms --out DIR
  rates sweep --vary work=0,10us,100us,1ms --bases 200 --concurrency 16 --out DIR
  rates sweep --vary concurrency=1,10,100,1k --bases 1k --latency 50ms --out DIR")]
pub(crate) struct SweepArgs {
    // The options, defined once in the library (help, defaults, parsing).
    #[command(flatten)]
    options: SweepOptions,
}

pub(crate) fn run(a: SweepArgs) -> Result<ExitCode> {
    rates_report::sweep::run(&a.options)
}
