//! `rates map`: its flags; the work is `rates_report::map`'s.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use rates_report::map::MapOptions;
use rates_report::parse;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  rates map --out DIR                                  the defaults: a few minutes on 2 cores
  rates map --latency 0,10ms --work 0,1ms --strategies tokio,pool,process --out DIR")]
pub(crate) struct MapArgs {
    /// Server latencies, the rows.
    #[arg(long, default_value = "0,1ms,10ms,100ms", value_delimiter = ',', value_parser = parse::duration)]
    latency: Vec<Duration>,
    /// CPU work per item, the columns.
    #[arg(long, default_value = "0,10us,100us,1ms", value_delimiter = ',', value_parser = parse::duration)]
    work: Vec<Duration>,
    /// Bases per run at every cell.
    #[arg(long, default_value_t = 100)]
    bases: usize,
    /// Most requests in flight at every cell.
    #[arg(long, default_value_t = 10)]
    concurrency: usize,
    /// Strategies (comma-separated); default: all registered.
    #[arg(long)]
    strategies: Option<String>,
    /// Timed runs per strategy and cell (three, so that a winner can be
    /// told from a tie within the runs' spread).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,
    /// Untimed warm-up runs per strategy and cell.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=100))]
    warmup: u32,
    /// Strategies within this share of the winner's time count as "close"
    /// for the cheapest-in-CPU and cheapest-in-memory maps.
    #[arg(long, default_value = "10%", value_parser = parse::share)]
    within: f64,
    /// The folder for map.csv, map.json and the heatmaps.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    external: crate::external::ExternalArgs,
}

impl MapArgs {
    fn options(self) -> MapOptions {
        MapOptions {
            latency: self.latency,
            work: self.work,
            bases: self.bases,
            concurrency: self.concurrency,
            strategies: self.strategies,
            runs: self.runs,
            warmup: self.warmup,
            within: self.within,
            out: self.out,
        }
    }
}

pub(crate) fn run(a: MapArgs) -> Result<ExitCode> {
    a.external.load()?;
    rates_report::map::run(&a.options())
}
