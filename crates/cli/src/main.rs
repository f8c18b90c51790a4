//! `rates`: fetch exchange rates with any concurrency strategy, serve the mock
//! rates API, and compare the strategies side by side.

mod compare;
mod external;
mod fetch;
mod history;
mod map;
mod profile;
mod redraw;
mod serve;
mod sweep;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Fetch exchange rates for many base currencies with one of several
/// concurrency strategies (sequential, threads, pools, processes, async
/// runtimes), and measure what each costs and delivers.
///
/// Without --endpoint, `fetch` and `compare` start the embedded mock rates
/// API on 127.0.0.1 (fetch: 100 ms latency by default; compare: the
/// scenario's). Everything runs offline.
#[derive(Debug, Parser)]
#[command(
    name = "rates",
    version,
    max_term_width = 100,
    after_help = "Examples:
  rates fetch                                  the classic matrix, one base after another
  rates fetch --strategy tokio --bases 10000 --concurrency 1000
  rates compare --scenario fanout --runs 10    every strategy: time and costs, two tables
  rates compare --scenario all --out DIR       a results folder: exports, SVG charts, REPORT.md
  rates sweep --vary bases=10,100,1k --out DIR one knob varied: CSV, JSON, line charts
  rates map --out DIR                          which strategy wins at which latency x CPU work
  rates history results/                       each strategy's figures over the committed runs
  rates serve --port 8080 --latency 50ms..150ms --rate-limit 2/s --error-rate 5%
  rates serve --tls --port 8443                prints the certificate to pass to fetch --ca-cert
  rates fetch --api frankfurter                the real API over HTTPS (needs the network)

Environment:
  TOKIO_WORKER_THREADS, SMOL_THREADS, ASYNC_STD_THREAD_COUNT
                                               executor threads of tokio, smol, async-std
                                               (default: one per core)
  RATES_PROCESS_FORK_SERVER=0                  process: run the program for every worker
                                               instead of forking them from one copy"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fetch rates and print the classic matrix and the time elapsed.
    Fetch(fetch::FetchArgs),
    /// Run every strategy on named scenarios, each timed run in a process of
    /// its own, and report what each took and cost: tables, exports, SVG
    /// charts; optionally gated against a baseline.
    Compare(Box<compare::CompareArgs>),
    /// Vary one knob (bases, concurrency, latency, work) over a list of
    /// values and measure the strategies at each: CSV, JSON, line charts.
    Sweep(sweep::SweepArgs),
    /// The decision map: every strategy at every cell of latency x CPU work;
    /// heatmaps of the fastest and of the cheapest close to it.
    Map(map::MapArgs),
    /// Profile one strategy on one scenario: why it costs what it costs
    /// (syscalls by name, a CPU flamegraph, where the time went).
    Profile(profile::ProfileArgs),
    /// Draw a results folder's tables, charts and REPORT.md again from its
    /// JSON exports (nothing is measured).
    Report(redraw::ReportArgs),
    /// Print how each strategy's figures moved over the results runs in a
    /// folder, and chart them.
    History(history::HistoryArgs),
    /// Run the mock rates API in the foreground.
    Serve(serve::ServeArgs),
    /// List the built-in strategies, one line each; with --external,
    /// the external programs instead (name, shape, what it is).
    Strategies(StrategiesArgs),
    /// List the named benchmark scenarios, one line each.
    Scenarios,
    /// Run one measured run (a spec on stdin, a JSON report on stdout);
    /// started by `rates compare` itself.
    #[command(hide = true)]
    MeasuredRun(MeasuredRunArgs),
}

/// `rates strategies`'s flags.
#[derive(Debug, clap::Args)]
struct StrategiesArgs {
    /// List the external strategies (of clients/clients.toml, or of
    /// --clients) instead of the built-in ones: name, shape, what it is.
    #[arg(long)]
    external: bool,
    /// The clients file to list (default: clients/clients.toml).
    #[arg(long, value_name = "FILE", requires = "external")]
    clients: Option<std::path::PathBuf>,
}

/// The hidden `rates measured-run` subcommand's flags.
#[derive(Debug, clap::Args)]
struct MeasuredRunArgs {
    /// Print the newest measured-run protocol this build speaks, and exit.
    #[arg(long)]
    protocol: bool,
}

fn main() -> ExitCode {
    // The `process` strategy starts this executable again as its workers.
    if let Some(code) = rates_report::child_if_asked() {
        return code;
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Fetch(a) => fetch::run(&a),
        Command::Compare(a) => compare::run(*a),
        Command::Serve(a) => serve::run(&a),
        Command::History(a) => history::run(a),
        Command::Report(a) => redraw::run(a),
        Command::Sweep(a) => sweep::run(a),
        Command::Map(a) => map::run(a),
        Command::Profile(a) => profile::run(a),
        Command::Strategies(a) if a.external => {
            external::list(a.clients.as_deref()).map(|()| ExitCode::SUCCESS)
        }
        Command::Strategies(_) => {
            for (name, summary) in rates_registry::summaries() {
                println!("{name:<15} {summary}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::MeasuredRun(a) => return rates_report::runner::child_main(a.protocol),
        Command::Scenarios => {
            for s in rates_report::scenarios() {
                println!("{:<10} {}", s.name, s.about);
            }
            Ok(ExitCode::SUCCESS)
        }
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {}", rates_report::names::named(&format!("{e:#}")));
        ExitCode::from(2)
    })
}
