//! Measured runs: every timed run of a strategy in a fresh `rates` child
//! process of its own, against a server in this process, so every resource
//! figure is the strategy's alone. `compare`, `sweep` and `map` are loops
//! over [`Bench::measure_all`].

use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use rates_core::{Config, CurrencyCode, Strategy};
use rates_measure::{ChildReport, Options, PROTOCOL, RunRecord, StrategyResult};
use rates_server::RatesServer;
use serde::{Deserialize, Serialize};

/// The hidden `rates measured-run` subcommand's flags.
#[derive(Debug, clap::Args)]
pub(crate) struct MeasuredRunArgs {
    /// Print the measured-run protocol this build speaks, and exit.
    #[arg(long)]
    protocol: bool,
}

fn protocol_one() -> u32 {
    1
}

/// What the parent hands the measured child on stdin (protocol
/// [`PROTOCOL`]; a spec without the field is version 1).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RunSpec {
    #[serde(default = "protocol_one")]
    pub(crate) protocol: u32,
    pub(crate) strategy: String,
    pub(crate) bases: Vec<CurrencyCode>,
    pub(crate) config: Config,
    /// The parent's clock (Unix nanoseconds) just before the spawn.
    pub(crate) spawned_unix_ns: u128,
}

fn unix_ns(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// The hidden `rates measured-run` subcommand: one run, one JSON report on
/// stdout; with `--protocol`, the protocol version alone.
pub(crate) fn child_main(args: &MeasuredRunArgs) -> ExitCode {
    if args.protocol {
        println!("{PROTOCOL}");
        return ExitCode::SUCCESS;
    }
    let started = (Instant::now(), SystemTime::now());
    let result = (|| -> Result<ChildReport> {
        let mut input = String::new();
        std::io::stdin()
            .take(256 << 20)
            .read_to_string(&mut input)
            .context("reading the run spec")?;
        let spec: RunSpec = serde_json::from_str(&input).context("decoding the run spec")?;
        if spec.protocol != PROTOCOL {
            bail!(
                "the parent speaks measured-run protocol {}, this build {PROTOCOL}: compare \
                 builds of one protocol",
                spec.protocol
            );
        }
        let strategy = rates_registry::find(&spec.strategy)?;
        let mut config = spec.config;
        let progress = rates_core::Progress::default();
        config.progress = Some(progress.clone());
        let report = strategy.fetch(&spec.bases, &config)?;
        // From the parent's spawn to this process's start, then on this
        // process's monotonic clock.
        let spawn_to_start = (unix_ns(started.1).saturating_sub(spec.spawned_unix_ns)) as f64 / 1e9;
        let first_result_s = progress
            .first_done_at()
            .map(|t| spawn_to_start + t.saturating_duration_since(started.0).as_secs_f64());
        Ok(ChildReport {
            protocol: PROTOCOL,
            strategy: spec.strategy,
            wall_s: report.wall.as_secs_f64(),
            ok: report.successes().count(),
            failed: report.failures().count(),
            requests: report.total_attempts(),
            first_result_s,
            latency_p50_s: progress.latency_quantile(0.5).map(|d| d.as_secs_f64()),
            latency_p99_s: progress.latency_quantile(0.99).map(|d| d.as_secs_f64()),
            own_peak_rss_bytes: crate::resources::own_peak_rss(),
            note: report.note.clone(),
            first_failure: report.failures().next().map(|o| o.to_string()),
        })
    })();
    match result.and_then(|r| Ok(serde_json::to_string(&r)?)) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// A build of `rates` that runs measured children, and the environment
/// settings of its runs.
#[derive(Clone, Debug)]
pub(crate) struct Program {
    pub(crate) exe: PathBuf,
    pub(crate) env: Vec<(String, String)>,
}

impl Program {
    /// This very build, with no settings of its own.
    pub(crate) fn this() -> Result<Self> {
        Ok(Self {
            exe: std::env::current_exe().context("finding the rates executable")?,
            env: Vec::new(),
        })
    }
}

/// One measured set-up: a server, a config, bases, and how to measure.
#[derive(Debug)]
pub(crate) struct Bench<'a> {
    /// The embedded server, whose view (start-up, requests in flight) the
    /// records include; `None` for an external server.
    pub(crate) server: Option<&'a RatesServer>,
    pub(crate) config: Config,
    pub(crate) bases: Vec<CurrencyCode>,
    pub(crate) options: Options,
    pub(crate) rate_limited: bool,
}

/// Which run of how many, for the progress lines.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Phase {
    Warmup,
    Timed(u32, u32),
}

impl Bench<'_> {
    /// One run of `strategy` in a child process of its own, by this build.
    pub(crate) fn measure_once(&self, strategy: &str) -> Result<RunRecord> {
        self.measure_with(&Program::this()?, strategy)
    }

    /// One run of `strategy` in a child process of its own, by `program`.
    pub(crate) fn measure_with(&self, program: &Program, strategy: &str) -> Result<RunRecord> {
        let mut cmd = Command::new(&program.exe);
        cmd.arg("measured-run");
        cmd.envs(program.env.iter().map(|(k, v)| (k, v)));
        let mut config = self.config.clone();
        config.progress = None;
        let spec = RunSpec {
            protocol: PROTOCOL,
            strategy: strategy.to_owned(),
            bases: self.bases.clone(),
            config,
            spawned_unix_ns: unix_ns(SystemTime::now()),
        };
        let input = serde_json::to_vec(&spec)?;
        if let Some(server) = self.server {
            server.reset_stats();
        }
        let measured = rates_measure::measure(cmd, Some(input), &self.options)
            .context("starting a measured `rates measured-run` child")?;
        let stats = self.server.map(RatesServer::stats).unwrap_or_default();
        if measured.timed_out {
            bail!(
                "{strategy} did not finish within {:.0} s and was stopped (raise --run-timeout)",
                self.options.timeout.as_secs_f64()
            );
        }
        if !measured.status.success() {
            let tail = measured.stderr_tail.trim();
            bail!(
                "{strategy} could not run ({}): {}",
                measured.status,
                tail.lines().last().unwrap_or("no message")
            );
        }
        let child: ChildReport = serde_json::from_slice(&measured.stdout).with_context(|| {
            format!(
                "{strategy}: the measured child printed no report: {}",
                measured.stderr_tail.trim()
            )
        })?;
        Ok(RunRecord {
            child,
            usage: measured.usage,
            startup_s: stats.arrivals.first().map(|a| a.0.as_secs_f64()),
            peak_in_flight: stats.peak_in_flight,
            busiest_second: if self.rate_limited && self.server.is_some() {
                stats.max_in_window(Duration::from_secs(1))
            } else {
                0
            },
            connections: self.server.map(|_| stats.connections),
        })
    }

    /// Every strategy in `strategies`, `warmup` untimed then `runs` timed
    /// runs each, in rotating order: round r starts at strategy r mod k, so
    /// none always goes first (cold) or last (warm). `skip` says why a
    /// strategy is not run at all; `ideal` gives each one's ideal in seconds.
    pub(crate) fn measure_all(
        &self,
        strategies: &[Box<dyn Strategy>],
        runs: u32,
        warmup: u32,
        skip: impl Fn(&dyn Strategy) -> Option<String>,
        ideal: impl Fn(&dyn Strategy) -> f64,
        mut progress: impl FnMut(&str, Phase, &Result<RunRecord>),
    ) -> Vec<StrategyResult> {
        let k = strategies.len();
        let mut records: Vec<Vec<RunRecord>> = vec![Vec::new(); k];
        let mut errors: Vec<Option<String>> = strategies.iter().map(|s| skip(s.as_ref())).collect();
        let skipped: Vec<bool> = errors.iter().map(Option::is_some).collect();
        for round in 0..(warmup + runs) {
            for i in 0..k {
                let idx = (i + round as usize) % k;
                if errors[idx].is_some() {
                    continue;
                }
                let name = strategies[idx].name();
                let phase = if round < warmup {
                    Phase::Warmup
                } else {
                    Phase::Timed(round - warmup + 1, runs)
                };
                let result = self.measure_once(name);
                progress(name, phase, &result);
                match result {
                    Ok(r) if matches!(phase, Phase::Timed(..)) => records[idx].push(r),
                    Ok(_) => {}
                    Err(e) => errors[idx] = Some(format!("{e:#}")),
                }
            }
        }
        strategies
            .iter()
            .zip(records)
            .zip(errors)
            .zip(skipped)
            .map(|(((s, recs), error), was_skipped)| {
                let ideal = ideal(s.as_ref());
                if was_skipped {
                    return StrategyResult::skipped(s.name(), ideal, error.unwrap_or_default());
                }
                let mut row = if recs.is_empty() {
                    StrategyResult {
                        strategy: s.name().to_owned(),
                        ideal_s: ideal,
                        ..StrategyResult::default()
                    }
                } else {
                    StrategyResult::from_runs(s.name(), ideal, recs)
                };
                row.error = error;
                row
            })
            .collect()
    }
}

/// A progress line for one run on stderr.
pub(crate) fn progress_line(name: &str, phase: Phase, result: &Result<RunRecord>) {
    let what = match phase {
        Phase::Warmup => "warm-up".to_owned(),
        Phase::Timed(i, n) => format!("run {i}/{n}"),
    };
    match result {
        Ok(r) => eprintln!(
            "  {what:<9} {name:<15} {:>8.3}s  {} ok, {} failed",
            r.child.wall_s, r.child.ok, r.child.failed
        ),
        Err(e) => eprintln!("  {what:<9} {name:<15} error: {e:#}"),
    }
}
