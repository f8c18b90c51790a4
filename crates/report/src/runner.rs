//! Measured runs: every timed run of a strategy in a fresh `rates` child
//! process of its own, against a server in this process, so every resource
//! figure is the strategy's alone. `compare`, `sweep` and `map` are loops
//! over one bench that measures every strategy in turn.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use rates_core::{Config, CurrencyCode, Strategy};
use rates_measure::paired::{Figure, Pair};
use rates_measure::{Affinity, Export, ScenarioInfo};
use rates_measure::{ChildReport, MIN_PROTOCOL, Options, PROTOCOL, RunRecord, StrategyResult};
use rates_server::RatesServer;

use crate::draw::{fmt, machine};
use crate::registry::Registry;
use crate::scenario::Scenario;
use serde::{Deserialize, Serialize};

/// The environment variable a measuring parent sets in each measured child
/// (besides the `measured-run` argument the `rates` CLI reads).
pub const CHILD_ENV: &str = "RATES_MEASURED_RUN";

/// Does a child's work when this process was started as one, and returns
/// its exit code: a measured run ([`CHILD_ENV`] set by the runner), or a
/// worker of the `process` strategy. `None` in any other process, which
/// goes on as the program it is.
pub fn child_if_asked() -> Option<std::process::ExitCode> {
    if let Some(code) = rates_registry::worker_if_asked() {
        return Some(code);
    }
    match std::env::var_os(CHILD_ENV) {
        Some(v) if v == "protocol" => Some(child_main(true)),
        Some(_) => Some(child_main(false)),
        None => None,
    }
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
    /// Fire the run's stop handle this long after the run starts
    /// (protocol 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cancel_after_ms: Option<u64>,
    /// The parent's pid, so the child can tell that it is still its child
    /// (protocol 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) parent_pid: Option<u32>,
}

fn unix_ns(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// The hidden `rates measured-run` subcommand: one run, one JSON report on
/// stdout; with `--protocol`, the newest protocol version it speaks.
///
/// The child fires its run's stop handle when the spec says so
/// (`cancel_after_ms`), and is killed by the kernel when the thread that
/// started it ends (see `resources::die_with_parent`): a killed comparison
/// leaves no run going on.
pub fn child_main(protocol_only: bool) -> ExitCode {
    if protocol_only {
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
        if !(MIN_PROTOCOL..=PROTOCOL).contains(&spec.protocol) {
            bail!(
                "the parent speaks measured-run protocol {}, this build {MIN_PROTOCOL} to \
                 {PROTOCOL}: compare builds whose protocols meet",
                spec.protocol
            );
        }
        let strategy = rates_registry::find(&spec.strategy)?;
        let mut config = spec.config;
        let progress = rates_core::Progress::default();
        config.progress = Some(progress.clone());
        crate::resources::die_with_parent(spec.parent_pid);
        // A stop handle, and the count of what a run leaves alive, only for
        // runs that are to be stopped: other runs are measured without
        // either (a blocking client registers each request with a handle).
        let stopping = spec.cancel_after_ms.is_some() || config.deadline.is_some();
        let stop = stopping.then(|| config.stop_handle());
        // Counted before the canceller's thread starts and after it is
        // joined, so that only the run's own threads count.
        let before = stop.as_ref().and_then(|_| crate::resources::Alive::now());
        let canceller = match (&stop, spec.cancel_after_ms) {
            (Some(stop), Some(ms)) => Some(rates_core::StopTimer::start(
                stop.clone(),
                Duration::from_millis(ms),
                rates_core::StopCause::Cancelled,
            )?),
            _ => None,
        };
        let report = strategy.fetch(&spec.bases, &config)?;
        drop(canceller);
        let left = before.and_then(|before| {
            crate::resources::Alive::now()
                .map(|after| after.beyond(&before, strategy.kept_threads()))
        });
        // From the parent's spawn to this process's start, then on this
        // process's monotonic clock.
        let spawn_to_start = (unix_ns(started.1).saturating_sub(spec.spawned_unix_ns)) as f64 / 1e9;
        let first_result_s = progress
            .first_done_at()
            .map(|t| spawn_to_start + t.saturating_duration_since(started.0).as_secs_f64());
        let cancelled = report.cancelled();
        Ok(ChildReport {
            protocol: spec.protocol,
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
            first_failure: report
                .failures()
                .find(|o| {
                    !o.result
                        .as_ref()
                        .is_err_and(rates_core::Error::is_cancelled)
                })
                .map(|o| o.to_string()),
            cancelled,
            stopped: report.stopped.map(|c| c.name().to_owned()),
            time_to_stop_s: report.time_to_stop.map(|t| t.as_secs_f64()),
            left,
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
    /// The newest measured-run protocol it speaks.
    pub(crate) protocol: u32,
}

impl Program {
    /// This very build, with no settings of its own.
    pub(crate) fn this() -> Result<Self> {
        Ok(Self {
            exe: std::env::current_exe().context("finding the rates executable")?,
            env: Vec::new(),
            protocol: PROTOCOL,
        })
    }
}

/// A run that did not finish because the command was interrupted (Ctrl-C,
/// SIGTERM): its child was stopped with its whole process group.
#[derive(Debug)]
pub(crate) struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted: the run was stopped with its whole process group")
    }
}

impl std::error::Error for Interrupted {}

/// Which run of how many, for the progress lines.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Phase {
    Warmup,
    Timed(u32, u32),
}

impl Setup {
    /// One run of `strategy` in a child process of its own, by this build.
    pub(crate) fn measure_once(&self, strategy: &str) -> Result<RunRecord> {
        self.measure_with(&Program::this()?, strategy)
    }

    /// The measured-run protocol a run needs: 2 with a deadline or a
    /// cancel, else 1.
    pub(crate) fn protocol_needed(&self) -> u32 {
        if self.config.deadline.is_some() || self.cancel_after.is_some() {
            2
        } else {
            1
        }
    }

    /// One run of `strategy` in a child process of its own, by `program`.
    ///
    /// # Errors
    /// The child cannot start, fails, times out, or prints no report; a run
    /// the command's interruption stopped is [`Interrupted`].
    pub(crate) fn measure_with(&self, program: &Program, strategy: &str) -> Result<RunRecord> {
        if let Some(external) = self.external.iter().find(|e| e.name() == strategy) {
            return self.measure_external(external, &program.env);
        }
        let protocol = PROTOCOL.min(program.protocol);
        if protocol < self.protocol_needed() {
            bail!(
                "{} speaks measured-run protocol {protocol}, which cannot stop a run; this \
                 run needs protocol {}",
                program.exe.display(),
                self.protocol_needed()
            );
        }
        let mut cmd = match self.wrapper.split_first() {
            Some((wrapper, args)) => {
                let mut cmd = Command::new(wrapper);
                cmd.args(args).arg(&program.exe);
                cmd
            }
            None => Command::new(&program.exe),
        };
        // The argument for the `rates` CLI (and builds before the variable),
        // the variable for any program that calls `child_if_asked`.
        cmd.arg("measured-run").env(CHILD_ENV, "1");
        cmd.envs(program.env.iter().map(|(k, v)| (k, v)));
        let mut config = self.config.clone();
        config.progress = None;
        let spec = RunSpec {
            protocol,
            strategy: strategy.to_owned(),
            bases: self.bases.clone(),
            config,
            spawned_unix_ns: unix_ns(SystemTime::now()),
            cancel_after_ms: self
                .cancel_after
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            // Under a wrapper (perf), the child's parent is the wrapper.
            parent_pid: (protocol >= 2 && self.wrapper.is_empty()).then(std::process::id),
        };
        let input = serde_json::to_vec(&spec)?;
        if let Some(server) = &self.server {
            server.reset_stats();
        }
        let measured = rates_measure::measure(cmd, Some(input), &self.options)
            .context("starting a measured `rates measured-run` child")?;
        let stats = self
            .server
            .as_ref()
            .map(RatesServer::stats)
            .unwrap_or_default();
        if measured.interrupted {
            return Err(Interrupted.into());
        }
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
            connections: self.server.as_ref().map(|_| stats.connections),
        })
    }

    /// One run of an external program (docs/EXTERNAL.md), started and
    /// measured directly: its job on stdin, its lines checked (against the
    /// embedded server's rates when it is the server), with `env` added.
    ///
    /// # Errors
    /// As [`Setup::measure_with`], and output that breaks the protocol.
    fn measure_external(
        &self,
        external: &crate::external::External,
        env: &[(String, String)],
    ) -> Result<RunRecord> {
        let name = external.name();
        if self.protocol_needed() > 1 {
            bail!(
                "{name} is an external program, which protocol {} cannot stop: runs with a \
                 deadline or a cancel are for built-in strategies",
                crate::external::PROTOCOL
            );
        }
        let plan = self
            .config
            .plan
            .clone()
            .unwrap_or_else(|| external.plan(self.bases.len(), &self.config, &self.limits));
        let job = crate::external::Job::new(&self.config, &self.bases, plan.in_flight, self.work);
        let input = serde_json::to_vec(&job)?;
        let mut cmd = external.command_under(&self.wrapper);
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        if let Some(server) = &self.server {
            server.reset_stats();
        }
        let measured =
            rates_measure::measure(cmd, Some(input), &self.options).with_context(|| {
                format!("starting {name}: sh -c 'exec {}'", external.command_line())
            })?;
        let stats = self
            .server
            .as_ref()
            .map(RatesServer::stats)
            .unwrap_or_default();
        if measured.interrupted {
            return Err(Interrupted.into());
        }
        if measured.timed_out {
            bail!(
                "{name} did not finish within {:.0} s and was killed with its whole process \
                 group (a hung program; raise --run-timeout if it is only slow)",
                self.options.timeout.as_secs_f64()
            );
        }
        if !measured.status.success() {
            let tail = measured.stderr_tail.trim();
            bail!(
                "{name} exited with {} (command: {}, in {}): {}",
                measured.status,
                external.command_line(),
                external.dir().display(),
                tail.lines().last().unwrap_or("no message on stderr")
            );
        }
        let served = self
            .server
            .as_ref()
            .map(|_| crate::external::Served::new(&self.config.symbols));
        let out = crate::external::read_output(
            &measured.stdout,
            &measured.stdout_line_times,
            &self.bases,
            served.as_ref(),
        )
        .with_context(|| format!("{name} broke the job protocol"))?;
        // From `ready` (or the spawn, when it never said) to its last line.
        let begun = out.ready.unwrap_or_default();
        let wall = out.last.map_or(Duration::ZERO, |l| l.saturating_sub(begun));
        Ok(RunRecord {
            child: ChildReport {
                protocol: crate::external::PROTOCOL,
                strategy: name.to_owned(),
                wall_s: wall.as_secs_f64(),
                ok: out.ok,
                failed: out.failed,
                requests: if self.server.is_some() {
                    stats.requests
                } else {
                    out.attempts
                },
                first_result_s: out.first.map(|d| d.as_secs_f64()),
                latency_p50_s: None,
                latency_p99_s: None,
                own_peak_rss_bytes: None,
                note: plan.note.clone(),
                first_failure: out.first_failure,
                cancelled: 0,
                stopped: None,
                time_to_stop_s: None,
                left: None,
            },
            usage: measured.usage,
            startup_s: stats.arrivals.first().map(|a| a.0.as_secs_f64()),
            peak_in_flight: stats.peak_in_flight,
            busiest_second: if self.rate_limited && self.server.is_some() {
                stats.max_in_window(Duration::from_secs(1))
            } else {
                0
            },
            connections: self.server.as_ref().map(|_| stats.connections),
        })
    }

    /// Every strategy in `strategies` (the ones this set-up was made for),
    /// `warmup` untimed then `runs` timed runs each, in rotating order:
    /// round r starts at strategy r mod k, so none always goes first (cold)
    /// or last (warm). A strategy the scenario cannot run is skipped, with
    /// the reason.
    pub(crate) fn measure_all(
        &self,
        strategies: &[Box<dyn Strategy>],
        runs: u32,
        warmup: u32,
        mut progress: impl FnMut(&str, Phase, &Result<RunRecord>),
    ) -> Vec<StrategyResult> {
        let k = strategies.len();
        let mut records: Vec<Vec<RunRecord>> = vec![Vec::new(); k];
        let mut errors: Vec<Option<String>> = self.skips.clone();
        let skipped: Vec<bool> = errors.iter().map(Option::is_some).collect();
        'rounds: for round in 0..(warmup + runs) {
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
                    // Interrupted: what completed is kept, nothing more runs.
                    Err(e) if e.is::<Interrupted>() => break 'rounds,
                    Err(e) => errors[idx] = Some(format!("{e:#}")),
                }
            }
        }
        strategies
            .iter()
            .zip(&self.ideals)
            .zip(records)
            .zip(errors)
            .zip(skipped)
            .map(|((((s, &ideal), recs), error), was_skipped)| {
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
                row.external = self
                    .external
                    .iter()
                    .find(|e| e.name() == s.name())
                    .map(|e| e.command_line().to_owned());
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

/// What an export says about `scenario`.
pub fn scenario_info(scenario: &Scenario) -> ScenarioInfo {
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

/// How many runs, and how each is watched: the timing of a measurement
/// (distinct from a strategy's [`rates_core::plan::Plan`], which says how
/// many requests one run holds in flight).
#[derive(Clone, Debug)]
pub struct Timing {
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

impl Timing {
    /// `runs` timed runs after `warmup`, sampled every 10 ms, unpinned.
    pub fn new(runs: u32, warmup: u32) -> Self {
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

/// What every scenario of one command is measured with, made once and
/// handed down: how runs are timed and watched, where requests go, the
/// strategies the command can name, and the machine as described when the
/// command started.
#[derive(Debug)]
pub struct Session {
    pub(crate) timing: Timing,
    endpoint: Option<String>,
    ca_cert_pem: Option<String>,
    pub(crate) registry: Registry,
    /// The machine, with where the runs are pinned; each export adds its
    /// own load and busy share.
    pub(crate) machine: rates_measure::Machine,
}

impl Session {
    /// Runs timed by `timing` against the embedded server, with the
    /// strategies of `registry`; describes the machine now.
    pub fn new(timing: Timing, registry: Registry) -> Self {
        let mut machine = machine::describe();
        machine.affinity.clone_from(&timing.affinity);
        Self {
            timing,
            endpoint: None,
            ca_cert_pem: None,
            registry,
            machine,
        }
    }

    /// Requests go to `endpoint` (a URL template with `{base}`) instead of
    /// the embedded server, trusting `ca_cert_pem` too for https.
    #[must_use]
    pub fn with_endpoint(self, endpoint: Option<String>, ca_cert_pem: Option<String>) -> Self {
        Self {
            endpoint,
            ca_cert_pem,
            ..self
        }
    }

    /// The strategies the command can name.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Measures every one of `strategies` on `scenario`: `warmup` untimed
    /// and `runs` timed runs each, each in a process of its own.
    ///
    /// # Errors
    /// The server cannot start or the scenario's config is invalid; a
    /// strategy's failure is its row's error.
    pub fn measure(&self, scenario: &Scenario, strategies: &[Box<dyn Strategy>]) -> Result<Export> {
        let Timing { runs, warmup, .. } = self.timing;
        let setup = Setup::new(self, scenario, strategies)?;
        eprintln!(
            "scenario {}: {}; {}, {} warm-up + {} each, each run in a process of its own",
            scenario.name,
            scenario.about,
            fmt::things(strategies.len() as u64, "strategy", "strategies"),
            warmup,
            fmt::things(u64::from(runs), "timed run", "timed runs"),
        );
        let load_before = machine::load();
        let watch = crate::noise::Watch::start();
        let results = setup.measure_all(strategies, runs, warmup, progress_line);
        let mut machine = self.machine.clone();
        machine.load_before = load_before;
        machine.load_after = machine::load();
        machine.busy = watch.finish();
        if let Some(warning) = machine.busy.as_ref().and_then(|b| b.warning.as_ref()) {
            eprintln!("warning: {}: {warning}", scenario.name);
        }
        let mut info = scenario_info(scenario);
        info.deadline_s = self.timing.deadline.map(|d| d.as_secs_f64());
        Ok(Export {
            schema: rates_measure::SCHEMA,
            tool: format!("rates {}", env!("CARGO_PKG_VERSION")),
            scenario: info,
            runs,
            warmup,
            sample_interval_ms: u64::try_from(self.timing.sample_interval.as_millis())
                .unwrap_or(u64::MAX),
            machine,
            results,
        })
    }
}

/// A scenario ready to measure: its server (the embedded one, unless an
/// endpoint was given), the client config, how each run is watched, and
/// what each strategy's runs are held to (skipped or not, the ideal).
#[derive(Debug)]
pub(crate) struct Setup {
    server: Option<RatesServer>,
    pub(crate) config: Config,
    /// The external programs among the strategies measured.
    external: Vec<crate::external::External>,
    options: Options,
    rate_limited: bool,
    bases: Vec<CurrencyCode>,
    /// Each run's stop handle fires this long after its run starts (the
    /// `cancel` scenario).
    cancel_after: Option<Duration>,
    /// The scenario's CPU work per item (what an external program is asked
    /// to do; built-in runs get it calibrated in the config).
    work: Duration,
    /// The limits each run's child works within (read once, here).
    limits: rates_core::limits::MachineLimits,
    /// Why each strategy is not run at all, if it is not, in the order of
    /// the strategies the set-up was made for.
    pub(crate) skips: Vec<Option<String>>,
    /// Each strategy's ideal on this scenario, in seconds.
    ideals: Vec<f64>,
    /// A program (and its arguments) every run's command is run under:
    /// `rates profile`'s perf; empty for a plain measured run.
    wrapper: Vec<std::ffi::OsString>,
}

impl Setup {
    /// Starts the server for `scenario` (unless the session has an
    /// endpoint) and makes the config every one of `strategies`' runs
    /// shares.
    pub(crate) fn new(
        session: &Session,
        scenario: &Scenario,
        strategies: &[Box<dyn Strategy>],
    ) -> Result<Self> {
        let endpoint = session.endpoint.as_deref();
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
        // The limits a run's child works within: this machine's, and one
        // descriptor a connection (the embedded server's ends are in this
        // process, not the child's).
        let limits = rates_core::limits::MachineLimits {
            files_per_connection: 1,
            ..rates_core::limits::MachineLimits::read()
        };
        if let Some(pem) = &session.ca_cert_pem {
            config.ca_cert_pem = Some(pem.clone());
        }
        config.deadline = session.timing.deadline;
        let ideals: Vec<Duration> = strategies
            .iter()
            .map(|s| scenario.ideal(s.as_ref(), &config, &limits))
            .collect();
        let skips = strategies
            .iter()
            .map(|s| scenario.skip_reason(s.as_ref(), &config, &limits))
            .collect();
        let longest_ideal = ideals
            .iter()
            .copied()
            .filter(|d| *d <= crate::scenario::MAX_IDEAL)
            .max()
            .unwrap_or_default();
        // The external programs among `strategies`, measured by their
        // commands rather than by this build.
        let external = strategies
            .iter()
            .filter_map(|s| session.registry.find_external(s.name()).cloned())
            .collect();
        let timing = &session.timing;
        Ok(Self {
            server,
            config,
            external,
            options: Options {
                interval: timing.sample_interval,
                timeout: timing
                    .run_timeout
                    .unwrap_or(Duration::from_secs(60) + longest_ideal * 10),
                affinity: timing.affinity.as_ref().map(|a| a.runs.clone()),
                interrupt: timing.interrupt.clone(),
            },
            rate_limited: scenario.rate_limit.is_some(),
            bases: scenario.bases(),
            cancel_after: scenario.cancel_after,
            work: scenario.work,
            limits,
            skips,
            ideals: ideals.iter().map(Duration::as_secs_f64).collect(),
            wrapper: Vec::new(),
        })
    }

    /// Runs every later run's command under `wrapper` (a program and its
    /// arguments, ending with `--` where it needs one); empty: directly.
    pub(crate) fn run_under(&mut self, wrapper: Vec<std::ffi::OsString>) {
        self.wrapper = wrapper;
    }

    /// Takes pairs of runs by A and B of every one of `strategies` that is
    /// neither skipped nor unknown to A (`not_in_a` says why), after the
    /// timing's warm-up pairs: round-robin over the strategies still open,
    /// each strategy's pairs A B, then B A, in turn. A strategy stops when
    /// `settled(name, pairs)` says so (once it has `min_pairs`) or at
    /// `max_pairs`; past `max_time`, only strategies short of `min_pairs`
    /// run. Returns each strategy's pairs and why taking them stopped.
    pub(crate) fn measure_pairs<'s>(
        &self,
        strategies: &'s [Box<dyn Strategy>],
        pairing: &Pairing<'_>,
        not_in_a: impl Fn(&str) -> Option<String>,
        settled: impl Fn(&str, &[Pair]) -> bool,
    ) -> (Vec<PairTrack<'s>>, String) {
        let started = Instant::now();
        let mut tracks: Vec<PairTrack<'s>> = strategies
            .iter()
            .zip(&self.skips)
            .map(|(s, skip)| PairTrack {
                strategy: s.as_ref(),
                pairs: Vec::new(),
                skipped: not_in_a(s.name()).or_else(|| skip.clone()),
                error: None,
                settled: false,
            })
            .collect();
        for track in tracks.iter_mut().filter(|t| t.skipped.is_none()) {
            for _ in 0..pairing.warmup {
                for which in [Which::A, Which::B] {
                    if let Err(e) = self.measure_side(pairing, which, track.strategy.name()) {
                        eprintln!("  warm-up {:<15} error: {e:#}", track.strategy.name());
                        track.error = Some(format!("{e:#}"));
                    }
                }
            }
        }
        let mut round = 0usize;
        let stopped = loop {
            let open: Vec<usize> = (0..tracks.len())
                .filter(|&i| tracks[i].open(pairing.max_pairs))
                .collect();
            if open.is_empty() {
                break if tracks
                    .iter()
                    .any(|t| t.pairs.len() >= pairing.max_pairs as usize)
                {
                    format!(
                        "every strategy was settled or reached --max-pairs {}",
                        pairing.max_pairs
                    )
                } else {
                    "every gated interval narrower than its threshold".to_owned()
                };
            }
            let over_time = started.elapsed() >= pairing.max_time;
            let short = |t: &PairTrack<'_>| t.pairs.len() < pairing.min_pairs as usize;
            if over_time && !open.iter().any(|&i| short(&tracks[i])) {
                let waiting: Vec<&str> = open.iter().map(|&i| tracks[i].strategy.name()).collect();
                break format!(
                    "the time budget of {} ran out (--max-time) with {} not settled",
                    fmt::secs(pairing.max_time.as_secs_f64()),
                    waiting.join(", ")
                );
            }
            for j in 0..open.len() {
                let i = open[(j + round) % open.len()];
                // Past the budget, only strategies still short of the minimum run.
                if !over_time || short(&tracks[i]) {
                    self.take_pair(pairing, &mut tracks[i], &settled);
                }
            }
            round += 1;
        };
        (tracks, stopped)
    }

    /// One run of `strategy` by A or B.
    fn measure_side(
        &self,
        pairing: &Pairing<'_>,
        which: Which,
        strategy: &str,
    ) -> Result<RunRecord> {
        let (program, side) = match which {
            Which::A => (pairing.a, "A"),
            Which::B => (pairing.b, "B"),
        };
        self.measure_with(program, strategy)
            .with_context(|| format!("{side} ({})", program.exe.display()))
    }

    /// Takes one more pair of `track`'s strategy (A first in its even
    /// pairs, B first in its odd ones), printing it, and settles the
    /// strategy when `settled` says so.
    fn take_pair(
        &self,
        pairing: &Pairing<'_>,
        track: &mut PairTrack<'_>,
        settled: impl Fn(&str, &[Pair]) -> bool,
    ) {
        let name = track.strategy.name();
        let b_first = track.pairs.len() % 2 == 1;
        let order = if b_first {
            [Which::B, Which::A]
        } else {
            [Which::A, Which::B]
        };
        let mut records = [None, None];
        for which in order {
            match self.measure_side(pairing, which, name) {
                Ok(r) => records[usize::from(which == Which::B)] = Some(r),
                Err(e) => {
                    eprintln!(
                        "  pair {:<4} {name:<15} error: {e:#}",
                        track.pairs.len() + 1
                    );
                    track.error = Some(format!("{e:#}"));
                    return;
                }
            }
        }
        let [Some(a), Some(b)] = records else {
            return;
        };
        let pair = Pair {
            order: if b_first { "ba" } else { "ab" }.to_owned(),
            a: (&a).into(),
            b: (&b).into(),
        };
        let ratio = |f: Figure| {
            f.ratio(&pair.a, &pair.b)
                .map_or_else(|| "-".to_owned(), |r| format!("{:+.1}%", (r - 1.0) * 100.0))
        };
        let micros = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), fmt::micros);
        eprintln!(
            "  pair {:<4} {name:<15} {}  wall A {} B {} ({})  cpu/req A {} B {} ({})",
            track.pairs.len() + 1,
            pair.order.to_uppercase(),
            fmt::secs(pair.a.wall_s),
            fmt::secs(pair.b.wall_s),
            ratio(Figure::Wall),
            micros(pair.a.cpu_per_request_us),
            micros(pair.b.cpu_per_request_us),
            ratio(Figure::Cpu),
        );
        track.pairs.push(pair);
        if track.pairs.len() >= pairing.min_pairs as usize {
            track.settled = settled(name, &track.pairs);
        }
    }
}

/// How a paired comparison takes its pairs: the two builds, the warm-up,
/// how many pairs and how long.
#[derive(Debug)]
pub(crate) struct Pairing<'p> {
    pub(crate) a: &'p Program,
    pub(crate) b: &'p Program,
    /// Untimed pairs per strategy first.
    pub(crate) warmup: u32,
    pub(crate) min_pairs: u32,
    pub(crate) max_pairs: u32,
    pub(crate) max_time: Duration,
}

/// Which of A and B a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    A,
    B,
}

/// One strategy's pairs while they are taken.
pub(crate) struct PairTrack<'s> {
    pub(crate) strategy: &'s dyn Strategy,
    pub(crate) pairs: Vec<Pair>,
    pub(crate) skipped: Option<String>,
    pub(crate) error: Option<String>,
    /// Its gated intervals are all narrow: no more pairs needed.
    settled: bool,
}

impl PairTrack<'_> {
    fn open(&self, max_pairs: u32) -> bool {
        self.skipped.is_none()
            && self.error.is_none()
            && !self.settled
            && self.pairs.len() < max_pairs as usize
    }
}
