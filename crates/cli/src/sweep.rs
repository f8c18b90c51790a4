//! `rates sweep`: its flags; the work is `rates_report::sweep`'s.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use rates_report::parse;
use rates_report::sweep::SweepOptions;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  rates sweep --strategies sync,threads,pool,tokio --vary bases=10,100,1000 --latency 20ms --out DIR
  rates sweep --vary work=0,10us,100us,1ms --bases 200 --concurrency 16 --out DIR
  rates sweep --vary concurrency=1,10,100,1k --bases 1k --latency 50ms --out DIR")]
pub(crate) struct SweepArgs {
    /// The knob and its values: bases=10,100,1k | concurrency=1,10,100 |
    /// latency=0,1ms,10ms | work=0,10us,1ms.
    #[arg(long, value_parser = rates_report::sweep::Vary::parse)]
    vary: rates_report::sweep::Vary,
    /// Strategies (comma-separated); default: all registered.
    #[arg(long)]
    strategies: Option<String>,
    /// Bases per run, where not varied.
    #[arg(long, default_value_t = 100)]
    bases: usize,
    /// Most requests in flight, where not varied.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Server latency per answer, where not varied.
    #[arg(long, default_value = "20ms", value_parser = parse::duration)]
    latency: Duration,
    /// CPU work per item, where not varied.
    #[arg(long, default_value = "0", value_parser = parse::duration)]
    work: Duration,
    /// Timed runs per strategy and point.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,
    /// Untimed warm-up runs per strategy and point.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=100))]
    warmup: u32,
    /// The folder for sweep.csv, sweep.json and the SVG charts.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    external: crate::external::ExternalArgs,
}

impl SweepArgs {
    fn options(self) -> SweepOptions {
        SweepOptions {
            vary: self.vary,
            strategies: self.strategies,
            bases: self.bases,
            concurrency: self.concurrency,
            latency: self.latency,
            work: self.work,
            runs: self.runs,
            warmup: self.warmup,
            out: self.out,
        }
    }
}

pub(crate) fn run(a: SweepArgs) -> Result<ExitCode> {
    a.external.load()?;
    rates_report::sweep::run(&a.options())
}
