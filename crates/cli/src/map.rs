//! `rates map`: its flags; the work is `rates_report::map`'s.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use rates_report::map::MapOptions;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  rates map --out DIR                                  the defaults: a few minutes on 2 cores
  rates map --latency 0,10ms --work 0,1ms --strategies tokio,pool,process --out DIR")]
pub(crate) struct MapArgs {
    // The options, defined once in the library (help, defaults, parsing).
    #[command(flatten)]
    options: MapOptions,
}

pub(crate) fn run(a: MapArgs) -> Result<ExitCode> {
    rates_report::map::run(&a.options)
}
