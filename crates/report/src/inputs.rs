//! What `rates compare` is asked ([`CompareOptions`], the flags with their
//! defaults) and its inputs, every one checked before anything runs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::scenario::Scenario;
use anyhow::{Context as _, Result, bail};
use rates_core::Strategy;
use rates_measure::{Affinity, Export};

use crate::draw::export;
use crate::gate::{self, Rules};
use crate::registry::Registry;
use crate::runner::{Session, Timing};

/// `--scenario`'s default.
pub const DEFAULT_SCENARIO: &str = "classic";
/// `--runs`' default: timed runs per strategy.
pub const DEFAULT_RUNS: u32 = 5;
/// `--warmup`'s default: untimed runs per strategy.
pub const DEFAULT_WARMUP: u32 = 1;
/// `--sample-interval`'s default.
pub const DEFAULT_SAMPLE_INTERVAL: &str = "10ms";
/// `--min-pairs`' default.
pub const DEFAULT_MIN_PAIRS: u32 = 10;
/// `--max-pairs`' default.
pub const DEFAULT_MAX_PAIRS: u32 = 200;
/// `--max-time`'s default: a paired comparison's budget per scenario.
pub const DEFAULT_MAX_TIME: &str = "4m";

/// What a comparison is asked to do: the `rates compare` flags, as the
/// library takes them (see `rates compare --help` for each);
/// [`Default`] gives the flags' defaults.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct CompareOptions {
    /// Scenario(s) to run: a name, a comma-separated list, or `all` (see
    /// `rates scenarios`).
    #[cfg_attr(feature = "cli", arg(long, default_value = DEFAULT_SCENARIO))]
    pub scenario: String,
    /// Timed runs per strategy; figures are medians over them.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT_RUNS, value_parser = clap::value_parser!(u32).range(1..=1000)))]
    pub runs: u32,
    /// Untimed warm-up runs per strategy before timing starts.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT_WARMUP, value_parser = clap::value_parser!(u32).range(0..=100)))]
    pub warmup: u32,
    /// Only these strategies (comma-separated); default: all registered.
    #[cfg_attr(feature = "cli", arg(long))]
    pub strategies: Option<String>,
    /// Print the JSON export on stdout instead of the tables.
    #[cfg_attr(feature = "cli", arg(long))]
    pub json: bool,
    /// Write the JSON export (schema 1) of the scenario to FILE.
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE"))]
    pub export_json: Option<PathBuf>,
    /// Write one CSV row per strategy to FILE.
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE"))]
    pub export_csv: Option<PathBuf>,
    /// Write the tables as Markdown to FILE.
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE"))]
    pub export_markdown: Option<PathBuf>,
    /// Write every scenario's figures in Bencher's Metric Format (BMF JSON,
    /// for `bencher run --adapter json`) to FILE: a benchmark per scenario
    /// and strategy, measures latency, cpu-per-request, peak-memory,
    /// syscalls-per-request, context-switches (see docs/CI.md).
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE"))]
    pub export_bencher: Option<PathBuf>,
    /// Write every scenario's figures as github-action-benchmark's
    /// `customSmallerIsBetter` JSON to FILE (see docs/CI.md).
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE"))]
    pub export_benchmark_action: Option<PathBuf>,
    /// Write a results folder: manifest.json, the three exports and four
    /// SVG charts per scenario, and REPORT.md.
    #[cfg_attr(feature = "cli", arg(long, value_name = "DIR"))]
    pub out: Option<PathBuf>,
    /// How often each run's process tree is sampled for memory, threads and
    /// processes.
    #[cfg_attr(feature = "cli", arg(long, default_value = DEFAULT_SAMPLE_INTERVAL, value_parser = crate::parse::duration))]
    pub sample_interval: Duration,
    /// Run against this server (a URL template with {base}) instead of the
    /// embedded one, say `rates serve` in a process of its own; it must
    /// behave as the scenario says (latency, faults). Start-up and the
    /// server's view of requests in flight are then not measured.
    #[cfg_attr(feature = "cli", arg(long, value_name = "URL"))]
    pub endpoint: Option<String>,
    /// Run against a real rates API over HTTPS (needs the network), as
    /// `fetch --api` does: the scenario's bases at most 2 in flight and 5
    /// requests/s, whatever the scenario says. With --endpoint, against that
    /// server answering in the API's shape instead.
    #[cfg_attr(feature = "cli", arg(long, value_parser = str::parse::<crate::api::Api>))]
    pub api: Option<crate::api::Api>,
    /// Also trust the root certificate(s) in this PEM file for an https://
    /// --endpoint (say the one `rates serve --tls` prints).
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE"))]
    pub ca_cert: Option<PathBuf>,
    /// CPU work per item on top of the scenario's (0, 100us, 1ms): done in
    /// each strategy's own thread, task or child process.
    #[cfg_attr(feature = "cli", arg(long, value_parser = crate::parse::duration))]
    pub work: Option<Duration>,
    /// A run taking longer is stopped and reported as an error (default: 60 s
    /// plus ten times the scenario's ideal).
    #[cfg_attr(feature = "cli", arg(long, value_parser = crate::parse::duration))]
    pub run_timeout: Option<Duration>,
    /// Gate against a baseline: a JSON export of the same scenario, or a
    /// folder of them (`results/baseline`, one `SCENARIO.json` each). Exits
    /// with 3 when a strategy regressed (see --max-regression).
    #[cfg_attr(
        feature = "cli",
        arg(long, value_name = "FILE|DIR", conflicts_with = "against")
    )]
    pub baseline: Option<PathBuf>,
    /// How much worse a gated figure may get. Against a --baseline: `10%`
    /// (the default), or per metric `cpu=20%,memory=15%` (ratio, cpu,
    /// memory, wall); a change counts only if it also exceeds twice the
    /// runs' spread (their MADs combined). With --against, per figure: the
    /// default thresholds listed under "Paired comparison" below.
    #[cfg_attr(feature = "cli", arg(long, value_name = "SHARE"))]
    pub max_regression: Option<String>,
    /// Against a --baseline: also gate these metrics (`wall`: absolute
    /// median wall time, which only means something on the machine that
    /// made the baseline; ratio to ideal, CPU per request and peak memory
    /// are always gated). With --against: the figures that decide the exit
    /// code (default all: wall, cpu, memory, ctx-vol, ctx-invol, syscalls).
    #[cfg_attr(feature = "cli", arg(long, value_name = "METRICS"))]
    pub gate: Option<String>,
    /// Paired comparison: BUILD is A, the baseline (another build of
    /// `rates`, or `self` for this one); this build is B, the candidate.
    /// Each strategy's runs alternate between the two; exits 3 when a gated
    /// figure regressed.
    #[cfg_attr(feature = "cli", arg(long, value_name = "BUILD"))]
    pub against: Option<PathBuf>,
    /// With --against: NAME=VALUE in the environment of A's runs only
    /// (repeatable), to compare two settings of one build.
    #[cfg_attr(
        feature = "cli",
        arg(long = "env-a", value_name = "NAME=VALUE", requires = "against")
    )]
    pub env_a: Vec<String>,
    /// With --against: NAME=VALUE in the environment of B's runs only
    /// (repeatable).
    #[cfg_attr(
        feature = "cli",
        arg(long = "env-b", value_name = "NAME=VALUE", requires = "against")
    )]
    pub env_b: Vec<String>,
    /// With --against: pairs always taken per strategy, whatever the time
    /// (6 is the fewest that give a 95% interval).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT_MIN_PAIRS, requires = "against", value_parser = clap::value_parser!(u32).range(6..=10_000)))]
    pub min_pairs: u32,
    /// With --against: the most pairs taken per strategy.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT_MAX_PAIRS, requires = "against", value_parser = clap::value_parser!(u32).range(6..=10_000)))]
    pub max_pairs: u32,
    /// With --against: the time budget of each scenario (warm-up included);
    /// past it, no strategy takes more than --min-pairs.
    #[cfg_attr(feature = "cli", arg(long, default_value = DEFAULT_MAX_TIME, value_parser = crate::parse::duration, requires = "against"))]
    pub max_time: Duration,
    /// With --against: a file of regressions accepted on purpose, one per
    /// line, `STRATEGY FIGURE CHANGE REASON` (`process cpu +8% a new check`;
    /// STRATEGY may be `*`); a regression within its allowance is
    /// `accepted`, and printed with its reason.
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE", requires = "against"))]
    pub accept: Option<PathBuf>,
    /// Stop each run after this long (like 2s): the bases it has not done
    /// by then are `cancelled`; the report says how long stopping took and
    /// what was left alive. Distinct from --run-timeout, which kills a run
    /// that does not finish.
    #[cfg_attr(feature = "cli", arg(long, value_parser = crate::parse::duration))]
    pub deadline: Option<Duration>,
    /// Pin the server (this process) to some CPUs and every measured run's
    /// process tree to the others (half each, the runs taking the odd one
    /// out), as pyperf's --affinity does; recorded as `affinity` in the
    /// manifest and exports.
    #[cfg_attr(feature = "cli", arg(long))]
    pub pin: bool,
    /// Write each scenario's JSON export as the new baseline into DIR
    /// (default results/baseline), with the machine's manifest.
    #[cfg_attr(feature = "cli", arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = "results/baseline"))]
    pub save_baseline: Option<PathBuf>,
    /// External programs as strategies (--external, --clients).
    #[cfg_attr(feature = "cli", command(flatten))]
    pub external: crate::registry::ExternalOptions,
}

impl Default for CompareOptions {
    /// `classic`, every strategy, 5 timed runs after 1 warm-up, sampled
    /// every 10 ms, the tables on stdout; paired: 10 to 200 pairs, 4 minutes.
    fn default() -> Self {
        Self {
            scenario: DEFAULT_SCENARIO.to_owned(),
            runs: DEFAULT_RUNS,
            warmup: DEFAULT_WARMUP,
            strategies: None,
            json: false,
            export_json: None,
            export_csv: None,
            export_markdown: None,
            export_bencher: None,
            export_benchmark_action: None,
            out: None,
            sample_interval: default_duration(DEFAULT_SAMPLE_INTERVAL),
            endpoint: None,
            api: None,
            ca_cert: None,
            work: None,
            run_timeout: None,
            baseline: None,
            max_regression: None,
            gate: None,
            against: None,
            env_a: Vec::new(),
            env_b: Vec::new(),
            min_pairs: DEFAULT_MIN_PAIRS,
            max_pairs: DEFAULT_MAX_PAIRS,
            max_time: default_duration(DEFAULT_MAX_TIME),
            accept: None,
            deadline: None,
            pin: false,
            save_baseline: None,
            external: crate::registry::ExternalOptions::default(),
        }
    }
}

/// A default duration constant, parsed as the flag's value is.
fn default_duration(text: &str) -> Duration {
    crate::parse::duration(text)
        .unwrap_or_else(|e| panic!("the default `{text}` is not a duration: {e}"))
}

/// The scenarios named by `--scenario`.
pub fn scenarios_named(list: &str) -> Result<Vec<Scenario>> {
    if list.trim() == "all" {
        return Ok(crate::scenario::scenarios());
    }
    list.split(',')
        .map(|n| Ok(crate::scenario::scenario(n.trim())?))
        .collect()
}

/// Exit code 1 when a strategy lost bases or could not run; skipped ones
/// are not failures, nor are bases a run's stop cancelled (the `cancel`
/// scenario, `--deadline`).
pub fn exit_code(exports: &[Export]) -> ExitCode {
    let clean = exports
        .iter()
        .flat_map(|e| &e.results)
        .all(|r| r.failed <= r.cancelled && r.error.is_none());
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// With `--pin`: this thread (and every thread it starts after, the
/// embedded server's among them) on the first half of the CPUs this process
/// may use, the measured runs on the rest.
///
/// # Errors
/// Fewer than two CPUs, or a platform without affinity.
pub fn pin() -> Result<Affinity> {
    let cpus = rates_measure::allowed_cpus().context("--pin: reading the CPUs allowed")?;
    if cpus.len() < 2 {
        bail!(
            "--pin needs at least two CPUs, one for the server and one for the runs; this \
             process may use {cpus:?}"
        );
    }
    let half = cpus.len() / 2;
    let affinity = Affinity {
        server: cpus[..half].to_vec(),
        runs: cpus[half..].to_vec(),
    };
    rates_measure::pin_this_thread(&affinity.server).context("--pin")?;
    Ok(affinity)
}

/// A `compare` command's inputs, every one checked before anything runs.
pub(crate) struct Inputs {
    pub(crate) scenarios: Vec<Scenario>,
    pub(crate) strategies: Vec<Box<dyn Strategy>>,
    /// How every scenario is measured: timing, target, registry, machine.
    pub(crate) session: Session,
    pub(crate) rules: Rules,
    /// Each scenario's baseline and the file it came from (with --baseline).
    pub(crate) baselines: Vec<(Export, PathBuf)>,
    /// The `--out` folder, when this command created it.
    created_out: Option<PathBuf>,
}

impl Inputs {
    /// Checks every input; then, with `--pin`, pins this thread, and
    /// describes the machine once for every scenario.
    pub(crate) fn check(a: &CompareOptions) -> Result<Self> {
        let mut timing = Timing {
            runs: a.runs,
            warmup: a.warmup,
            sample_interval: a.sample_interval,
            run_timeout: a.run_timeout,
            affinity: None,
            deadline: a.deadline,
            interrupt: None,
        };
        let mut scenarios = scenarios_named(&a.scenario)?;
        for s in &mut scenarios {
            if let Some(work) = a.work {
                s.work = work;
            }
            if a.api.is_some() {
                // A free public service: politely, whatever the scenario says.
                s.concurrency = s.concurrency.min(crate::api::API_CONCURRENCY);
                s.rate_limit =
                    rates_core::RateLimit::per_second(crate::api::API_RATE_PER_SECOND).ok();
                s.latency = Duration::ZERO;
            }
        }
        let endpoint = match a.api {
            Some(api) => Some(api.endpoint(a.endpoint.as_deref())),
            None => a.endpoint.clone(),
        };
        let ca_cert_pem = match &a.ca_cert {
            Some(path) => {
                rates_core::Config::new("https://127.0.0.1/?b={base}")?
                    .with_ca_cert_file(path)?
                    .ca_cert_pem
            }
            None => None,
        };
        let registry = Registry::new(a.external.read()?);
        let strategies = registry.named(a.strategies.as_deref())?;
        let single_exports = [&a.export_json, &a.export_csv, &a.export_markdown];
        if scenarios.len() > 1 && single_exports.iter().any(|e| e.is_some()) {
            bail!(
                "--export-json/--export-csv/--export-markdown write one scenario; for {} \
                 scenarios use --out DIR (one set of exports per scenario)",
                scenarios.len()
            );
        }
        if a.sample_interval.is_zero() {
            bail!("--sample-interval must be positive, like 10ms");
        }
        if a.against.is_some() {
            for (given, flag) in [
                (a.save_baseline.is_some(), "--save-baseline"),
                (a.export_csv.is_some(), "--export-csv"),
                (a.export_markdown.is_some(), "--export-markdown"),
                (a.api.is_some(), "--api"),
            ] {
                if given {
                    bail!(
                        "{flag} does not go with --against: a paired comparison writes its \
                         table, --json, --export-json FILE, --export-bencher FILE, \
                         --export-benchmark-action FILE or --out DIR"
                    );
                }
            }
        }
        let rules = match a.against {
            Some(_) => Rules::parse(None, "10%")?,
            None => Rules::parse(
                a.gate.as_deref(),
                a.max_regression.as_deref().unwrap_or("10%"),
            )?,
        };
        let mut baselines = Vec::new();
        if let Some(path) = &a.baseline {
            if scenarios.len() > 1 && !path.is_dir() {
                bail!(
                    "--baseline {} is one file; for {} scenarios give a folder holding \
                     SCENARIO.json for each (like results/baseline)",
                    path.display(),
                    scenarios.len()
                );
            }
            for s in &scenarios {
                let file = gate::baseline_file(path, s.name);
                baselines.push((export::read_json(&file)?, file));
            }
        }
        for (file, flag) in [
            (&a.export_json, "--export-json"),
            (&a.export_csv, "--export-csv"),
            (&a.export_markdown, "--export-markdown"),
            (&a.export_bencher, "--export-bencher"),
            (&a.export_benchmark_action, "--export-benchmark-action"),
        ] {
            if let Some(path) = file {
                check_output_file(flag, path)?;
            }
        }
        let mut created_out = None;
        for (dir, flag) in [(&a.out, "--out"), (&a.save_baseline, "--save-baseline")] {
            let Some(dir) = dir else { continue };
            if dir.exists() && !dir.is_dir() {
                bail!(
                    "{flag} {} is a file, not a folder: give a folder (it is created if \
                     missing)",
                    dir.display()
                );
            }
            if flag == "--out" && !dir.exists() {
                created_out = Some(dir.clone());
            }
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{flag}: creating the folder {}", dir.display()))?;
        }
        if a.pin {
            timing.affinity = Some(pin()?);
        }
        Ok(Self {
            scenarios,
            strategies,
            session: Session::new(timing, registry).with_endpoint(endpoint, ca_cert_pem),
            rules,
            baselines,
            created_out,
        })
    }

    /// Removes the `--out` folder this command created, when nothing was
    /// written into it (an interrupted run that completed nothing).
    pub(crate) fn remove_empty_out_dir(&self) {
        if let Some(dir) = &self.created_out {
            // Only an empty folder is removed.
            if std::fs::remove_dir(dir).is_ok() {
                eprintln!("removed {}: nothing completed", dir.display());
            }
        }
    }
}

/// Checks, before anything is measured, that an export can go to `path`:
/// its folder exists and it is not a folder itself.
fn check_output_file(flag: &str, path: &Path) -> Result<()> {
    if path.is_dir() {
        bail!("{flag} {} is a folder: give a file name", path.display());
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        bail!(
            "{flag} {}: the folder {} does not exist: create it first, or write elsewhere",
            path.display(),
            parent.display()
        );
    }
    Ok(())
}
