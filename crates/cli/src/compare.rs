//! `rates compare`: its flags; the work is `rates_report::compare`'s.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use rates_report::compare::CompareOptions;
use rates_report::parse;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  rates compare                                   classic, every strategy, two tables and a summary
  rates compare --scenario fanout --runs 3 --export-json a.json --export-csv a.csv
  rates compare --scenario all --out results/my-run   exports, SVG charts and REPORT.md
  rates compare --scenario fanout --strategies tokio,threads --json
  rates compare --scenario fanout --runs 3 --export-json b.json
  rates compare --scenario fanout --runs 3 --baseline b.json      exit code 3 on a regression
  rates compare --scenario classic,fanout,throttled --baseline results/baseline
  rates compare --scenario fanout --save-baseline       refresh results/baseline/fanout.json
  rates compare --scenario gate --against ../base/target/release/rates
                                 paired: this build (B) against another (A), run against run
  rates compare --scenario overhead --strategies tokio --against self \
      --env-a TOKIO_WORKER_THREADS=1          two settings of one build, paired
  rates compare --scenario overhead --pin     server on some cores, the runs on the others

Paired comparison (--against): each strategy's runs alternate between A and B
(A B, then B A, ...) against the one server, so a slow minute hits both. Each
pair gives the ratio B/A of every figure: wall time, CPU per request, peak
memory of the tree, voluntary and involuntary context switches. The estimate
is the median ratio with a distribution-free 95% interval; pairs are added
until every gated interval is narrower than its threshold, or --max-time runs
out. Verdicts: REGRESSED (interval wholly above 1, median past the threshold),
improved, same (interval within the threshold), inconclusive.

Exit codes: 0 all ran (with --against: no figure regressed, or the builds speak
other protocols and there is no verdict), 1 a strategy failed bases or could not
run, 2 bad input, 3 the gate found a regression.")]
pub(crate) struct CompareArgs {
    /// Scenario(s) to run: a name, a comma-separated list, or `all` (see
    /// `rates scenarios`).
    #[arg(long, default_value = "classic")]
    scenario: String,
    /// Timed runs per strategy; figures are medians over them.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    runs: u32,
    /// Untimed warm-up runs per strategy before timing starts.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=100))]
    warmup: u32,
    /// Only these strategies (comma-separated); default: all registered.
    #[arg(long)]
    strategies: Option<String>,
    /// Print the JSON export on stdout instead of the tables.
    #[arg(long)]
    json: bool,
    /// Write the JSON export (schema 1) of the scenario to FILE.
    #[arg(long, value_name = "FILE")]
    export_json: Option<PathBuf>,
    /// Write one CSV row per strategy to FILE.
    #[arg(long, value_name = "FILE")]
    export_csv: Option<PathBuf>,
    /// Write the tables as Markdown to FILE.
    #[arg(long, value_name = "FILE")]
    export_markdown: Option<PathBuf>,
    /// Write a results folder: manifest.json, the three exports and four
    /// SVG charts per scenario, and REPORT.md.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// How often each run's process tree is sampled for memory, threads and
    /// processes.
    #[arg(long, default_value = "10ms", value_parser = parse::duration)]
    sample_interval: Duration,
    /// Run against this server (a URL template with {base}) instead of the
    /// embedded one, say `rates serve` in a process of its own; it must
    /// behave as the scenario says (latency, faults). Start-up and the
    /// server's view of requests in flight are then not measured.
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// Run against a real rates API over HTTPS (needs the network), as
    /// `fetch --api` does: the scenario's bases at most 2 in flight and 5
    /// requests/s, whatever the scenario says. With --endpoint, against that
    /// server answering in the API's shape instead.
    #[arg(long, value_parser = str::parse::<rates_report::Api>)]
    api: Option<rates_report::Api>,
    /// Also trust the root certificate(s) in this PEM file for an https://
    /// --endpoint (say the one `rates serve --tls` prints).
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// CPU work per item on top of the scenario's (0, 100us, 1ms): done in
    /// each strategy's own thread, task or child process.
    #[arg(long, value_parser = parse::duration)]
    work: Option<Duration>,
    /// A run taking longer is stopped and reported as an error (default: 60 s
    /// plus ten times the scenario's ideal).
    #[arg(long, value_parser = parse::duration)]
    run_timeout: Option<Duration>,
    /// Gate against a baseline: a JSON export of the same scenario, or a
    /// folder of them (`results/baseline`, one `SCENARIO.json` each). Exits
    /// with 3 when a strategy regressed (see --max-regression).
    #[arg(long, value_name = "FILE|DIR", conflicts_with = "against")]
    baseline: Option<PathBuf>,
    /// How much worse a gated figure may get. Against a --baseline: `10%`
    /// (the default), or per metric `cpu=20%,memory=15%` (ratio, cpu,
    /// memory, wall); a change counts only if it also exceeds twice the
    /// runs' spread (their MADs combined). With --against, per figure: wall,
    /// cpu 5%, memory 10%, ctx-vol 25%, ctx-invol 50% by default.
    #[arg(long, value_name = "SHARE")]
    max_regression: Option<String>,
    /// Against a --baseline: also gate these metrics (`wall`: absolute
    /// median wall time, which only means something on the machine that
    /// made the baseline; ratio to ideal, CPU per request and peak memory
    /// are always gated). With --against: the figures that decide the exit
    /// code (default all: wall, cpu, memory, ctx-vol, ctx-invol).
    #[arg(long, value_name = "METRICS")]
    gate: Option<String>,
    /// Paired comparison: BUILD is A, the baseline (another build of
    /// `rates`, or `self` for this one); this build is B, the candidate.
    /// Each strategy's runs alternate between the two; exits 3 when a gated
    /// figure regressed.
    #[arg(long, value_name = "BUILD")]
    against: Option<PathBuf>,
    /// With --against: NAME=VALUE in the environment of A's runs only
    /// (repeatable), to compare two settings of one build.
    #[arg(long = "env-a", value_name = "NAME=VALUE", requires = "against")]
    env_a: Vec<String>,
    /// With --against: NAME=VALUE in the environment of B's runs only
    /// (repeatable).
    #[arg(long = "env-b", value_name = "NAME=VALUE", requires = "against")]
    env_b: Vec<String>,
    /// With --against: pairs always taken per strategy, whatever the time
    /// (6 is the fewest that give a 95% interval).
    #[arg(long, default_value_t = 10, requires = "against",
          value_parser = clap::value_parser!(u32).range(6..=10_000))]
    min_pairs: u32,
    /// With --against: the most pairs taken per strategy.
    #[arg(long, default_value_t = 200, requires = "against",
          value_parser = clap::value_parser!(u32).range(6..=10_000))]
    max_pairs: u32,
    /// With --against: the time budget of each scenario (warm-up included);
    /// past it, no strategy takes more than --min-pairs.
    #[arg(long, default_value = "4m", value_parser = parse::duration, requires = "against")]
    max_time: Duration,
    /// With --against: a file of regressions accepted on purpose, one per
    /// line, `STRATEGY FIGURE CHANGE REASON` (`process cpu +8% a new check`;
    /// STRATEGY may be `*`); a regression within its allowance is
    /// `accepted`, and printed with its reason.
    #[arg(long, value_name = "FILE", requires = "against")]
    accept: Option<PathBuf>,
    /// Stop each run after this long (like 2s): the bases it has not done
    /// by then are `cancelled`; the report says how long stopping took and
    /// what was left alive. Distinct from --run-timeout, which kills a run
    /// that does not finish.
    #[arg(long, value_parser = parse::duration)]
    deadline: Option<Duration>,
    /// Pin the server (this process) to some CPUs and every measured run's
    /// process tree to the others (half each, the runs taking the odd one
    /// out), as pyperf's --affinity does; recorded as `affinity` in the
    /// manifest and exports.
    #[arg(long)]
    pin: bool,
    /// Write each scenario's JSON export as the new baseline into DIR
    /// (default results/baseline), with the machine's manifest.
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = "results/baseline")]
    save_baseline: Option<PathBuf>,
    #[command(flatten)]
    external: crate::external::ExternalArgs,
}

impl CompareArgs {
    fn options(self) -> CompareOptions {
        CompareOptions {
            scenario: self.scenario,
            runs: self.runs,
            warmup: self.warmup,
            strategies: self.strategies,
            json: self.json,
            export_json: self.export_json,
            export_csv: self.export_csv,
            export_markdown: self.export_markdown,
            out: self.out,
            sample_interval: self.sample_interval,
            endpoint: self.endpoint,
            api: self.api,
            ca_cert: self.ca_cert,
            work: self.work,
            run_timeout: self.run_timeout,
            baseline: self.baseline,
            max_regression: self.max_regression,
            gate: self.gate,
            against: self.against,
            env_a: self.env_a,
            env_b: self.env_b,
            min_pairs: self.min_pairs,
            max_pairs: self.max_pairs,
            max_time: self.max_time,
            accept: self.accept,
            deadline: self.deadline,
            pin: self.pin,
            save_baseline: self.save_baseline,
        }
    }
}

pub(crate) fn run(a: CompareArgs) -> Result<ExitCode> {
    a.external.load()?;
    rates_report::compare::run(&a.options())
}
