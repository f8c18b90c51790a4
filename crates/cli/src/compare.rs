//! `rates compare`: every strategy on named scenarios, each timed run in a
//! process of its own, reported in tables, exports, charts and a results
//! folder.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use rates_core::{Config, Strategy};
use rates_measure::{Affinity, Export, Options, ScenarioInfo};
use rates_registry::Scenario;
use rates_server::RatesServer;

use crate::args;
use crate::bench::{Bench, progress_line};
use crate::gate::{self, Rules};
use crate::paired;
use crate::report::{export, machine, out, table};

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
    #[arg(long, default_value = "10ms", value_parser = args::duration)]
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
    #[arg(long, value_enum)]
    api: Option<crate::fetch::Api>,
    /// Also trust the root certificate(s) in this PEM file for an https://
    /// --endpoint (say the one `rates serve --tls` prints).
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// CPU work per item on top of the scenario's (0, 100us, 1ms): done in
    /// each strategy's own thread, task or child process.
    #[arg(long, value_parser = args::duration)]
    work: Option<Duration>,
    /// A run taking longer is stopped and reported as an error (default: 60 s
    /// plus ten times the scenario's ideal).
    #[arg(long, value_parser = args::duration)]
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
    /// cpu and memory 5%, ctx-vol 10%, ctx-invol 50% by default.
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
    #[arg(long, default_value = "4m", value_parser = args::duration, requires = "against")]
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
    #[arg(long, value_parser = args::duration)]
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
}

/// The scenarios named by `--scenario`.
pub(crate) fn scenarios_named(list: &str) -> Result<Vec<Scenario>> {
    if list.trim() == "all" {
        return Ok(rates_registry::scenarios());
    }
    list.split(',')
        .map(|n| Ok(rates_registry::scenario(n.trim())?))
        .collect()
}

/// The strategies named by `--strategies` (all when `None`), in registry order.
pub(crate) fn strategies_named(only: Option<&str>) -> Result<Vec<Box<dyn Strategy>>> {
    let mut strategies = rates_registry::strategies();
    if let Some(only) = only {
        let wanted: Vec<&str> = only.split(',').map(str::trim).collect();
        for name in &wanted {
            rates_registry::find(name)?;
        }
        strategies.retain(|s| wanted.contains(&s.name()));
    }
    if strategies.is_empty() {
        bail!("no strategies to compare: name at least one in --strategies");
    }
    Ok(strategies)
}

/// What an export says about `scenario`.
pub(crate) fn scenario_info(scenario: &Scenario) -> ScenarioInfo {
    ScenarioInfo {
        name: scenario.name.to_owned(),
        about: scenario.about.to_owned(),
        bases: scenario.size,
        latency_s: scenario.latency.as_secs_f64(),
        concurrency: scenario.concurrency,
        rate_limit_per_s: scenario.rate_limit.map(|r| r.rate()),
        work_s: scenario.work.as_secs_f64(),
        faults: scenario.faults.iter().map(|f| format!("{f:?}")).collect(),
        tls: scenario.tls,
        cancel_after_s: scenario.cancel_after.map(|d| d.as_secs_f64()),
        deadline_s: None,
    }
}

/// How many runs, and how each is watched.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub(crate) runs: u32,
    pub(crate) warmup: u32,
    pub(crate) sample_interval: Duration,
    pub(crate) run_timeout: Option<Duration>,
    /// Where the server and the runs are pinned (`--pin`), if anywhere.
    pub(crate) affinity: Option<Affinity>,
    /// Every run's whole-run deadline (`--deadline`).
    pub(crate) deadline: Option<Duration>,
    /// Set by Ctrl-C or SIGTERM: the run being measured is stopped.
    pub(crate) interrupt: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl Plan {
    /// `runs` timed runs after `warmup`, sampled every 10 ms, unpinned.
    pub(crate) fn new(runs: u32, warmup: u32) -> Self {
        Self {
            runs,
            warmup,
            sample_interval: Duration::from_millis(10),
            run_timeout: None,
            affinity: None,
            deadline: None,
            interrupt: None,
        }
    }
}

impl CompareArgs {
    fn plan(&self, affinity: Option<&Affinity>) -> Plan {
        Plan {
            runs: self.runs,
            warmup: self.warmup,
            sample_interval: self.sample_interval,
            run_timeout: self.run_timeout,
            affinity: affinity.cloned(),
            deadline: self.deadline,
            interrupt: None,
        }
    }
}

/// A scenario ready to measure: its server (the embedded one, unless an
/// endpoint was given), the client config, and how each run is watched.
pub(crate) struct Setup {
    server: Option<RatesServer>,
    config: Config,
    options: Options,
    rate_limited: bool,
    bases: Vec<rates_core::CurrencyCode>,
    cancel_after: Option<Duration>,
}

impl Setup {
    /// Starts the server for `scenario` (unless `endpoint` is given) and
    /// makes the config every strategy's runs share.
    pub(crate) fn new(
        scenario: &Scenario,
        (endpoint, ca_cert_pem): (Option<&str>, Option<&str>),
        strategies: &[Box<dyn Strategy>],
        plan: &Plan,
    ) -> Result<Self> {
        let server = match endpoint {
            Some(_) => None,
            None => Some(
                RatesServer::start(scenario.server_config())
                    .context("starting the embedded server")?,
            ),
        };
        let mut config = match (endpoint, &server) {
            (Some(e), _) => scenario.client_config(e)?,
            (None, Some(s)) => scenario.client_config_for(s)?,
            (None, None) => unreachable!("a server was started when no endpoint was given"),
        };
        // Each run's child holds only its own end of each connection; the
        // embedded server's ends are in this process.
        config.server_in_process = false;
        if let Some(pem) = ca_cert_pem {
            config.ca_cert_pem = Some(pem.to_owned());
        }
        config.deadline = plan.deadline;
        let longest_ideal = strategies
            .iter()
            .map(|s| scenario.ideal(s.as_ref(), &config))
            .filter(|d| *d <= rates_registry::MAX_IDEAL)
            .max()
            .unwrap_or_default();
        Ok(Self {
            server,
            config,
            options: Options {
                interval: plan.sample_interval,
                timeout: plan
                    .run_timeout
                    .unwrap_or(Duration::from_secs(60) + longest_ideal * 10),
                affinity: plan.affinity.as_ref().map(|a| a.runs.clone()),
                interrupt: plan.interrupt.clone(),
            },
            rate_limited: scenario.rate_limit.is_some(),
            bases: scenario.bases(),
            cancel_after: scenario.cancel_after,
        })
    }

    /// The client config every run gets.
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// The bench that runs measured children against this set-up.
    pub(crate) fn bench(&self) -> Bench<'_> {
        Bench {
            server: self.server.as_ref(),
            config: self.config.clone(),
            bases: self.bases.clone(),
            options: self.options.clone(),
            rate_limited: self.rate_limited,
            cancel_after: self.cancel_after,
        }
    }
}

/// The machine now, with where the runs were pinned.
pub(crate) fn machine_now(plan: &Plan) -> rates_measure::Machine {
    let mut machine = machine::describe();
    machine.affinity.clone_from(&plan.affinity);
    machine
}

/// Measures every strategy on `scenario`, against the embedded server or
/// the given endpoint (with a CA to trust).
pub(crate) fn measure_scenario(
    scenario: &Scenario,
    target: (Option<&str>, Option<&str>),
    strategies: &[Box<dyn Strategy>],
    plan: &Plan,
) -> Result<Export> {
    let Plan { runs, warmup, .. } = *plan;
    let setup = Setup::new(scenario, target, strategies, plan)?;
    let config = setup.config();
    eprintln!(
        "scenario {}: {}; {} strategies, {} warm-up + {} timed runs each, each run in a \
         process of its own",
        scenario.name,
        scenario.about,
        strategies.len(),
        warmup,
        runs
    );
    let results = setup.bench().measure_all(
        strategies,
        runs,
        warmup,
        |s| scenario.skip_reason(s, config),
        |s| scenario.ideal(s, config).as_secs_f64(),
        progress_line,
    );
    let mut machine = machine_now(plan);
    machine.load_after = machine::load();
    let mut info = scenario_info(scenario);
    info.deadline_s = plan.deadline.map(|d| d.as_secs_f64());
    Ok(Export {
        schema: rates_measure::SCHEMA,
        tool: format!("rates {}", env!("CARGO_PKG_VERSION")),
        scenario: info,
        runs,
        warmup,
        sample_interval_ms: u64::try_from(plan.sample_interval.as_millis()).unwrap_or(u64::MAX),
        machine,
        results,
    })
}

/// Exit code 1 when a strategy lost bases or could not run; skipped ones
/// are not failures.
pub(crate) fn exit_code(exports: &[Export]) -> ExitCode {
    let clean = exports
        .iter()
        .flat_map(|e| &e.results)
        .all(|r| r.failed == 0 && r.error.is_none());
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
pub(crate) fn pin() -> Result<Affinity> {
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

pub(crate) fn run(a: &CompareArgs) -> Result<ExitCode> {
    // Every input is checked before anything starts.
    let inputs = Inputs::check(a)?;
    let affinity = if a.pin { Some(pin()?) } else { None };
    // Ctrl-C or SIGTERM stops the run being measured (its whole process
    // group, reaped) and reports what completed.
    let interrupts = crate::interrupt::Interrupts::watch(|| {})?;
    let mut plan = a.plan(affinity.as_ref());
    plan.interrupt = Some(interrupts.flag());
    if let Some(against) = &a.against {
        return run_paired(a, &inputs, against, &plan, &interrupts);
    }
    let started = machine_now(&plan);
    let mut exports = Vec::new();
    let mut regressed = false;
    for (i, scenario) in inputs.scenarios.iter().enumerate() {
        let mut export = measure_scenario(scenario, inputs.target(), &inputs.strategies, &plan)?;
        let interrupted = interrupts.exit_code().is_some();
        let gate_report = match inputs.baselines.get(i).filter(|_| !interrupted) {
            Some((base, file)) => {
                if let Some(warning) = gate::check_comparable(base, &export, file)? {
                    eprintln!("{warning}");
                }
                let (lines, rerun) = gate_with_rerun(
                    &plan,
                    scenario,
                    inputs.target(),
                    base,
                    &mut export,
                    &inputs.rules,
                )?;
                regressed |= lines.iter().any(|l| l.regressed);
                Some((lines, rerun, file.clone()))
            }
            None => None,
        };
        let ran = export.results.iter().any(|r| r.ran());
        if ran || !interrupted {
            show(a, &export, gate_report.as_ref(), &inputs.rules)?;
            write_scenario(a, scenario, &export)?;
            exports.push(export);
        }
        if interrupted {
            break;
        }
    }
    if let Some(code) = interrupts.exit_code() {
        let why = format!(
            "interrupted: {} of {} scenario(s) measured, the last one perhaps in part",
            exports.len(),
            inputs.scenarios.len()
        );
        eprintln!("{why}");
        if exports.is_empty() {
            inputs.remove_empty_out_dir();
        } else {
            write_manifests(a, started, &exports, Some(why))?;
        }
        return Ok(code);
    }
    write_manifests(a, started, &exports, None)?;
    let code = exit_code(&exports);
    Ok(if code == ExitCode::SUCCESS && regressed {
        ExitCode::from(3)
    } else {
        code
    })
}

/// `compare --against`: every scenario in pairs of A and B.
fn run_paired(
    a: &CompareArgs,
    inputs: &Inputs,
    against: &Path,
    plan: &Plan,
    interrupts: &crate::interrupt::Interrupts,
) -> Result<ExitCode> {
    let stopping =
        a.deadline.is_some() || inputs.scenarios.iter().any(|s| s.cancel_after.is_some());
    let setup = paired::against(&paired::Flags {
        against,
        env_a: &a.env_a,
        env_b: &a.env_b,
        max_regression: a.max_regression.as_deref(),
        gate: a.gate.as_deref(),
        min_pairs: a.min_pairs,
        max_pairs: a.max_pairs,
        max_time: a.max_time,
        accept: a.accept.as_deref(),
        needed: if stopping { 2 } else { 1 },
    })?;
    if let Some(accepted) = a.accept.as_ref() {
        for x in &setup.rules.accepted {
            eprintln!(
                "accepted ({}): {} {} up to {:+.0}%: {}",
                accepted.display(),
                x.strategy,
                x.figure,
                x.allowed * 100.0,
                x.reason
            );
        }
    }
    if let Some(why) = setup.mismatch {
        println!("{why}");
        return Ok(ExitCode::SUCCESS);
    }
    let started = machine_now(plan);
    let mut exports = Vec::new();
    for scenario in &inputs.scenarios {
        let export = paired::measure_paired(
            scenario,
            inputs.target(),
            &inputs.strategies,
            plan,
            &setup.rules,
        )?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&export)?);
        } else {
            print!("{}", paired::table(&export, false));
        }
        if let Some(p) = &a.export_json {
            export::write(p, serde_json::to_string_pretty(&export)?.as_bytes())?;
        }
        if let Some(dir) = &a.out {
            let file = dir.join(format!("{}-paired.json", scenario.name));
            export::write(&file, serde_json::to_string_pretty(&export)?.as_bytes())?;
        }
        exports.push(export);
    }
    let interrupted = interrupts.exit_code();
    let pairs_taken = exports
        .iter()
        .flat_map(|e| &e.strategies)
        .any(|s| !s.pairs.is_empty());
    if let Some(dir) = &a.out {
        if interrupted.is_some() && !pairs_taken {
            inputs.remove_empty_out_dir();
        } else {
            let mut machine = started;
            machine.load_after = machine::load();
            machine.incomplete = interrupted
                .is_some()
                .then(|| "interrupted: the pairs taken before it are judged".to_owned());
            export::write(
                &dir.join("manifest.json"),
                serde_json::to_string_pretty(&machine)?.as_bytes(),
            )?;
            let md: String = exports.iter().map(|e| paired::table(e, true)).collect();
            export::write(&dir.join("PAIRED.md"), md.as_bytes())?;
            eprintln!("wrote {}", dir.join("PAIRED.md").display());
        }
    }
    if let Some(code) = interrupted {
        return Ok(code);
    }
    let failed = exports.iter().flat_map(|e| &e.strategies).any(|s| {
        let (fa, fb) = s.failed();
        s.error.is_some() || fa + fb > 0
    });
    let regressed = exports
        .iter()
        .flat_map(|e| &e.strategies)
        .any(rates_measure::paired::PairedStrategy::regressed);
    Ok(if failed {
        ExitCode::FAILURE
    } else if regressed {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

/// A `compare` command's inputs, every one checked before anything runs.
struct Inputs {
    scenarios: Vec<Scenario>,
    endpoint: Option<String>,
    ca_cert_pem: Option<String>,
    strategies: Vec<Box<dyn Strategy>>,
    rules: Rules,
    /// Each scenario's baseline and the file it came from (with --baseline).
    baselines: Vec<(Export, PathBuf)>,
    /// The `--out` folder, when this command created it.
    created_out: Option<PathBuf>,
}

impl Inputs {
    fn check(a: &CompareArgs) -> Result<Self> {
        let mut scenarios = scenarios_named(&a.scenario)?;
        for s in &mut scenarios {
            if let Some(work) = a.work {
                s.work = work;
            }
            if a.api.is_some() {
                // A free public service: politely, whatever the scenario says.
                s.concurrency = s.concurrency.min(crate::fetch::API_CONCURRENCY);
                s.rate_limit =
                    rates_core::RateLimit::per_second(crate::fetch::API_RATE_PER_SECOND).ok();
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
        let strategies = strategies_named(a.strategies.as_deref())?;
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
                         table, --json, --export-json FILE or --out DIR"
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
        Ok(Self {
            scenarios,
            endpoint,
            ca_cert_pem,
            strategies,
            rules,
            baselines,
            created_out,
        })
    }

    /// Removes the `--out` folder this command created, when nothing was
    /// written into it (an interrupted run that completed nothing).
    fn remove_empty_out_dir(&self) {
        if let Some(dir) = &self.created_out {
            // Only an empty folder is removed.
            if std::fs::remove_dir(dir).is_ok() {
                eprintln!("removed {}: nothing completed", dir.display());
            }
        }
    }

    /// Where requests go: the external endpoint and its extra CA, if any.
    fn target(&self) -> (Option<&str>, Option<&str>) {
        (self.endpoint.as_deref(), self.ca_cert_pem.as_deref())
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

/// A scenario's gate verdict: the lines, the strategies re-run, the baseline file.
type GateReport = (Vec<gate::Line>, Vec<String>, PathBuf);

/// Prints one scenario's tables (or JSON) and its gate verdict.
fn show(
    a: &CompareArgs,
    export: &Export,
    gate_report: Option<&GateReport>,
    rules: &Rules,
) -> Result<()> {
    if a.json {
        println!("{}", serde_json::to_string_pretty(export)?);
    } else {
        println!("{}", table::terminal(export));
    }
    if let Some((lines, rerun, file)) = gate_report {
        let out = if a.json { eprint } else { print };
        out(format_args!(
            "{}",
            table::gate(&export.scenario.name, file, lines, rerun, rules)
        ));
    }
    Ok(())
}

/// Writes one scenario's exports where asked: single files, the results
/// folder, the baseline folder.
fn write_scenario(a: &CompareArgs, scenario: &Scenario, export: &Export) -> Result<()> {
    if let Some(p) = &a.export_json {
        export::write_json(export, p)?;
    }
    if let Some(p) = &a.export_csv {
        export::write_csv(export, p)?;
    }
    if let Some(p) = &a.export_markdown {
        export::write_markdown(export, p)?;
    }
    if let Some(dir) = &a.out {
        out::write_scenario(dir, export)?;
    }
    if let Some(dir) = &a.save_baseline {
        let file = dir.join(format!("{}.json", scenario.name));
        export::write_json(export, &file)?;
        eprintln!("saved the baseline {}", file.display());
    }
    Ok(())
}

/// Writes the results folder's REPORT.md and the baseline folder's
/// manifest, with the machine's load after the runs.
fn write_manifests(
    a: &CompareArgs,
    started: rates_measure::Machine,
    exports: &[Export],
    incomplete: Option<String>,
) -> Result<()> {
    if let Some(dir) = &a.out {
        let mut machine = started.clone();
        machine.load_after = machine::load();
        machine.incomplete = incomplete;
        out::write_report(dir, &machine, exports)?;
        eprintln!("wrote {}", dir.join("REPORT.md").display());
    }
    if let Some(dir) = &a.save_baseline {
        let mut machine = started;
        machine.load_after = machine::load();
        export::write(
            &dir.join("manifest.json"),
            serde_json::to_string_pretty(&machine)?.as_bytes(),
        )?;
    }
    Ok(())
}

fn print(args: std::fmt::Arguments<'_>) {
    print!("{args}");
}

fn eprint(args: std::fmt::Arguments<'_>) {
    eprint!("{args}");
}

/// Judges `export` against `base`; strategies that look regressed are
/// measured once more and judged on the re-run. Returns the lines and the
/// strategies re-run.
fn gate_with_rerun(
    plan: &Plan,
    scenario: &Scenario,
    (endpoint, ca_cert_pem): (Option<&str>, Option<&str>),
    base: &Export,
    export: &mut Export,
    rules: &Rules,
) -> Result<(Vec<gate::Line>, Vec<String>)> {
    let lines = gate::judge(base, export, rules);
    let mut suspects: Vec<String> = lines
        .iter()
        .filter(|l| l.regressed)
        .map(|l| l.strategy.clone())
        .collect();
    suspects.dedup();
    if suspects.is_empty() {
        return Ok((lines, suspects));
    }
    eprintln!(
        "{} looked regressed: measuring once more before the verdict",
        suspects.join(", ")
    );
    let again = measure_scenario(
        scenario,
        (endpoint, ca_cert_pem),
        &strategies_named(Some(&suspects.join(",")))?,
        plan,
    )?;
    for row in again.results {
        if let Some(slot) = export
            .results
            .iter_mut()
            .find(|r| r.strategy == row.strategy)
        {
            *slot = row;
        }
    }
    Ok((gate::judge(base, export, rules), suspects))
}
