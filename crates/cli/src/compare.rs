//! `rates compare`: every strategy on named scenarios, each timed run in a
//! process of its own, reported in tables, exports, charts and a results
//! folder.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use rates_core::Strategy;
use rates_measure::{Export, Options, ScenarioInfo};
use rates_registry::Scenario;
use rates_server::RatesServer;

use crate::args;
use crate::bench::{Bench, progress_line};
use crate::gate::{self, Rules};
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

Exit codes: 0 all ran, 1 a strategy failed bases or could not run, 2 bad input,
3 the gate found a regression.")]
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
    #[arg(long, value_name = "FILE|DIR")]
    baseline: Option<PathBuf>,
    /// How much worse a gated figure may get: `10%`, or per metric
    /// `cpu=20%,memory=15%` (ratio, cpu, memory, wall). A change counts only
    /// if it also exceeds twice the runs' spread (their MADs combined).
    #[arg(long, default_value = "10%", value_name = "SHARE")]
    max_regression: String,
    /// Also gate these metrics (`wall`: absolute median wall time, which only
    /// means something on the machine that made the baseline). Ratio to
    /// ideal, CPU per request and peak memory are always gated.
    #[arg(long, value_name = "METRICS")]
    gate: Option<String>,
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
    }
}

/// How many runs, and how each is watched.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    pub(crate) runs: u32,
    pub(crate) warmup: u32,
    pub(crate) sample_interval: Duration,
    pub(crate) run_timeout: Option<Duration>,
}

impl CompareArgs {
    fn plan(&self) -> Plan {
        Plan {
            runs: self.runs,
            warmup: self.warmup,
            sample_interval: self.sample_interval,
            run_timeout: self.run_timeout,
        }
    }
}

/// Measures every strategy on `scenario`, against the embedded server or
/// the given endpoint (with a CA to trust).
pub(crate) fn measure_scenario(
    scenario: &Scenario,
    (endpoint, ca_cert_pem): (Option<&str>, Option<&str>),
    strategies: &[Box<dyn Strategy>],
    plan: &Plan,
) -> Result<Export> {
    let Plan {
        runs,
        warmup,
        sample_interval,
        run_timeout,
    } = *plan;
    let server = match endpoint {
        Some(_) => None,
        None => Some(
            RatesServer::start(scenario.server_config()).context("starting the embedded server")?,
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
    let bases = scenario.bases();
    let longest_ideal = strategies
        .iter()
        .map(|s| scenario.ideal(s.as_ref(), &config))
        .filter(|d| *d <= rates_registry::MAX_IDEAL)
        .max()
        .unwrap_or_default();
    let bench = Bench {
        server: server.as_ref(),
        config: config.clone(),
        bases,
        options: Options {
            interval: sample_interval,
            timeout: run_timeout.unwrap_or(Duration::from_secs(60) + longest_ideal * 10),
        },
        rate_limited: scenario.rate_limit.is_some(),
    };
    eprintln!(
        "scenario {}: {}; {} strategies, {} warm-up + {} timed runs each, each run in a \
         process of its own",
        scenario.name,
        scenario.about,
        strategies.len(),
        warmup,
        runs
    );
    let results = bench.measure_all(
        strategies,
        runs,
        warmup,
        |s| scenario.skip_reason(s, &config),
        |s| scenario.ideal(s, &config).as_secs_f64(),
        progress_line,
    );
    let mut machine = machine::describe();
    machine.load_after = machine::load();
    Ok(Export {
        schema: rates_measure::SCHEMA,
        tool: format!("rates {}", env!("CARGO_PKG_VERSION")),
        scenario: scenario_info(scenario),
        runs,
        warmup,
        sample_interval_ms: u64::try_from(sample_interval.as_millis()).unwrap_or(u64::MAX),
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

pub(crate) fn run(a: &CompareArgs) -> Result<ExitCode> {
    // Every input is checked before anything starts.
    let inputs = Inputs::check(a)?;
    let started = machine::describe();
    let mut exports = Vec::new();
    let mut regressed = false;
    for (i, scenario) in inputs.scenarios.iter().enumerate() {
        let mut export =
            measure_scenario(scenario, inputs.target(), &inputs.strategies, &a.plan())?;
        let gate_report = match inputs.baselines.get(i) {
            Some((base, file)) => {
                if let Some(warning) = gate::check_comparable(base, &export, file)? {
                    eprintln!("{warning}");
                }
                let (lines, rerun) = gate_with_rerun(
                    a,
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
        show(a, &export, gate_report.as_ref(), &inputs.rules)?;
        write_scenario(a, scenario, &export)?;
        exports.push(export);
    }
    write_manifests(a, started, &exports)?;
    let code = exit_code(&exports);
    Ok(if code == ExitCode::SUCCESS && regressed {
        ExitCode::from(3)
    } else {
        code
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
        let rules = Rules::parse(a.gate.as_deref(), &a.max_regression)?;
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
        for dir in [&a.out, &a.save_baseline].into_iter().flatten() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the folder {}", dir.display()))?;
        }
        Ok(Self {
            scenarios,
            endpoint,
            ca_cert_pem,
            strategies,
            rules,
            baselines,
        })
    }

    /// Where requests go: the external endpoint and its extra CA, if any.
    fn target(&self) -> (Option<&str>, Option<&str>) {
        (self.endpoint.as_deref(), self.ca_cert_pem.as_deref())
    }
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
) -> Result<()> {
    if let Some(dir) = &a.out {
        let mut machine = started.clone();
        machine.load_after = machine::load();
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
    a: &CompareArgs,
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
        &a.plan(),
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
