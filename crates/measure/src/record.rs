//! The records: what a measured child reports, one timed run, one strategy
//! over its runs, and the export of a whole comparison.

use serde::{Deserialize, Serialize};

use crate::{TreeUsage, mad, median};

/// The version of the export's JSON shape. It changes when a field is
/// removed or changes meaning, or when a figure is added that a reader
/// should know to look for.
/// - 1: the first shape.
/// - 2: syscalls per request (`syscalls_per_request`, its spread, and why
///   it is missing where it is), counted by the kernel.
pub const SCHEMA: u32 = 2;

/// The oldest export schema this build reads: a schema-1 export reads with
/// the figures of later schemas absent.
pub const MIN_SCHEMA: u32 = 1;

/// The version of the measured-run protocol: the run description a parent
/// hands a measured child (the `rates measured-run` subcommand) and the
/// [`ChildReport`] it reads back. Two builds can be compared run against
/// run only when they speak the same version. It changes when either side
/// would misread the other: a field removed, renamed or given another
/// meaning, or a new field whose absence an older build would not notice.
/// Builds from before the version was written down speak version 1, and a
/// report without the field reads as 1.
///
/// A build speaks every version from [`MIN_PROTOCOL`] up to its own: a
/// parent hands a child the lower of their two versions, and refuses (with
/// no verdict) only when the run needs something that version cannot say.
/// - 1: the run description (strategy, bases, config, spawn time) and the
///   report of [`ChildReport`]'s first fields.
/// - 2: the config may carry a whole-run deadline and the description a
///   time after which the child fires the run's stop handle; the report
///   says how the run stopped and what it left alive.
pub const PROTOCOL: u32 = 2;

/// The oldest measured-run protocol this build still speaks.
pub const MIN_PROTOCOL: u32 = 1;

fn protocol_one() -> u32 {
    1
}

/// What the measured child prints on stdout (one JSON object) when its run
/// is over: the figures only it can know.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChildReport {
    /// The measured-run protocol the child speaks ([`PROTOCOL`]).
    #[serde(default = "protocol_one")]
    pub protocol: u32,
    /// The strategy that ran.
    pub strategy: String,
    /// Wall time of the whole `Strategy::fetch` call, in seconds.
    pub wall_s: f64,
    /// Bases that succeeded.
    pub ok: usize,
    /// Bases that failed.
    pub failed: usize,
    /// Requests sent, retries included.
    pub requests: u64,
    /// From the child's spawn (as the parent timed it) to the first base
    /// finished, in seconds.
    pub first_result_s: Option<f64>,
    /// Median latency of one request, from the attempt loop's timestamps.
    pub latency_p50_s: Option<f64>,
    /// 99th percentile of the same.
    pub latency_p99_s: Option<f64>,
    /// The child's own peak resident memory (`VmHWM`), in bytes.
    pub own_peak_rss_bytes: Option<u64>,
    /// The strategy's note on how it ran (caps, waves, substitutions).
    pub note: Option<String>,
    /// The first failure, for the report (`kind: message`).
    pub first_failure: Option<String>,
    /// Bases the run's stop left undone (protocol 2; 0 before).
    #[serde(default)]
    pub cancelled: usize,
    /// `deadline` or `cancelled` when the run was stopped (protocol 2).
    #[serde(default)]
    pub stopped: Option<String>,
    /// From the stop firing to `fetch` returning, seconds (protocol 2).
    #[serde(default)]
    pub time_to_stop_s: Option<f64>,
    /// What the run left alive in the child just after `fetch` returned,
    /// beyond what was alive before it (protocol 2): threads (a runtime
    /// pool the strategy keeps for its next run, named in `kept`, not
    /// counted), child processes and open sockets.
    #[serde(default)]
    pub left: Option<Leftovers>,
}

/// What a run left alive in its process just after it returned, beyond
/// what was alive before it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leftovers {
    /// Threads (not counting those of `kept`).
    pub threads: u64,
    /// Child processes.
    pub processes: u64,
    /// Open sockets.
    pub sockets: u64,
    /// The pool of threads the strategy keeps between runs, by thread
    /// name, and how many it had; `None` when it keeps none.
    pub kept: Option<(String, u64)>,
}

/// One timed run: the child's report, the tree's usage, and what the server
/// saw.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// What the child reported.
    pub child: ChildReport,
    /// What its process tree cost.
    pub usage: TreeUsage,
    /// From just before the child was spawned to the first request the
    /// server saw, in seconds.
    pub startup_s: Option<f64>,
    /// Most requests in flight at the server.
    pub peak_in_flight: usize,
    /// Most requests the server saw in any one second.
    pub busiest_second: usize,
    /// Connections the server accepted, when it counts them.
    pub connections: Option<u64>,
}

impl RunRecord {
    /// CPU (user + system) of the tree per request sent, in microseconds.
    pub fn cpu_per_request_us(&self) -> Option<f64> {
        let cpu = self.usage.cpu_user_s? + self.usage.cpu_sys_s?;
        (self.child.requests > 0).then(|| cpu * 1e6 / self.child.requests as f64)
    }

    /// Syscalls of the tree (start-up included) per request sent.
    pub fn syscalls_per_request(&self) -> Option<f64> {
        let n = self.usage.syscalls?;
        (self.child.requests > 0).then(|| n as f64 / self.child.requests as f64)
    }
}

/// One strategy on one scenario, over its timed runs: a row of every report
/// and export. Figures of one run are summarised by their median over the
/// runs, except the peaks of counts (threads, processes, in flight), which
/// are the most seen in any run. `None` is "not measured" (skipped, or
/// unavailable on this platform), never zero.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StrategyResult {
    /// The strategy.
    pub strategy: String,
    /// Median wall time of one run, seconds.
    pub median_s: Option<f64>,
    /// Fastest run.
    pub min_s: Option<f64>,
    /// Slowest run.
    pub max_s: Option<f64>,
    /// Median absolute deviation of the runs' wall times.
    pub mad_s: Option<f64>,
    /// The ideal no run can beat, seconds (0 where the scenario has none).
    pub ideal_s: f64,
    /// `median_s / ideal_s`, where there is an ideal.
    pub ratio_to_ideal: Option<f64>,
    /// User CPU seconds of the process tree, per run.
    pub cpu_user_s: Option<f64>,
    /// System CPU seconds of the process tree, per run.
    pub cpu_sys_s: Option<f64>,
    /// CPU (user + system) per request, microseconds.
    pub cpu_per_request_us: Option<f64>,
    /// The spread (MAD) of `cpu_per_request_us` over the runs.
    pub cpu_per_request_mad_us: Option<f64>,
    /// Syscalls of the process tree per request sent (start-up included),
    /// counted by the kernel: the median over the runs (schema 2).
    #[serde(default)]
    pub syscalls_per_request: Option<f64>,
    /// The spread (MAD) of `syscalls_per_request` over the runs.
    #[serde(default)]
    pub syscalls_per_request_mad: Option<f64>,
    /// Why there is no syscall count, when there is none (the counter
    /// could not be opened: the reason and its fix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls_unavailable: Option<String>,
    /// Peak resident memory of the whole tree, bytes.
    pub peak_rss_bytes: Option<u64>,
    /// The spread (MAD) of `peak_rss_bytes` over the runs.
    pub peak_rss_mad_bytes: Option<u64>,
    /// Peak resident memory of the strategy's own process alone, bytes.
    pub parent_peak_rss_bytes: Option<u64>,
    /// Most OS threads alive in the tree.
    pub peak_threads: Option<u64>,
    /// Most processes alive in the tree.
    pub peak_processes: Option<u64>,
    /// Voluntary context switches of the tree, per run.
    pub voluntary_ctx_switches: Option<u64>,
    /// Involuntary context switches of the tree, per run.
    pub involuntary_ctx_switches: Option<u64>,
    /// From spawn to the first request at the server, seconds.
    pub startup_s: Option<f64>,
    /// From spawn to the first finished base, seconds.
    pub first_result_s: Option<f64>,
    /// Median latency of one request, seconds.
    pub latency_p50_s: Option<f64>,
    /// 99th percentile latency of one request, seconds.
    pub latency_p99_s: Option<f64>,
    /// Bases that succeeded in the last run.
    pub ok: usize,
    /// Bases that failed in the last run.
    pub failed: usize,
    /// Requests sent per run (median).
    pub requests: Option<u64>,
    /// Most requests in flight at the server in any run.
    pub peak_in_flight: Option<usize>,
    /// Most requests the server saw in any one second, in any run.
    pub busiest_second: Option<usize>,
    /// Connections the server accepted per run (median), where counted.
    pub connections: Option<u64>,
    /// Every timed run's wall time, seconds, in the order run.
    pub runs_s: Vec<f64>,
    /// Every timed run, whole.
    pub runs: Vec<RunRecord>,
    /// Why it was not run, when it was not.
    pub skipped: Option<String>,
    /// Why it failed to run, when it did.
    pub error: Option<String>,
    /// The strategy's note on how it ran (caps, waves).
    pub note: Option<String>,
    /// Bases the run's stop left undone, in the last run (scenarios that
    /// stop their runs).
    #[serde(default)]
    pub cancelled: usize,
    /// From the stop to `fetch` returning, seconds: the median over the runs.
    #[serde(default)]
    pub time_to_stop_s: Option<f64>,
    /// The longest of those.
    #[serde(default)]
    pub time_to_stop_max_s: Option<f64>,
    /// The most threads, processes and sockets any run left alive.
    #[serde(default)]
    pub left: Option<Leftovers>,
    /// For an external strategy (a program that speaks the job protocol of
    /// docs/EXTERNAL.md), its command; absent for a built-in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<String>,
}

fn med(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = values.flatten().collect();
    median(&v)
}

fn spread(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = values.flatten().collect();
    mad(&v)
}

fn max_of<T: Ord + Copy>(values: impl Iterator<Item = Option<T>>) -> Option<T> {
    values.flatten().max()
}

/// The least CPU of a run (user + system) whose user/system split is
/// shown. The total is exact (the scheduler's clock); the split is the
/// kernel's tick samples of user and system mode scaled to it, so below
/// about 50 ticks (at 250 Hz, 4 ms each) one tick more or less moves it by
/// several percent, and a very short run may show all of its CPU as system
/// time. Measured here: per-task counters cannot split it (the kernel's
/// task-clock counts kernel time with kernel time excluded).
pub const SPLIT_MIN_CPU_S: f64 = 0.2;

impl StrategyResult {
    /// CPU (user + system) of one run, seconds: the median runs' sum.
    pub fn cpu_s(&self) -> Option<f64> {
        Some(self.cpu_user_s? + self.cpu_sys_s?)
    }

    /// Whether the user/system split is worth showing: the run used at
    /// least [`SPLIT_MIN_CPU_S`] of CPU.
    pub fn cpu_split_known(&self) -> bool {
        self.cpu_s().is_some_and(|c| c >= SPLIT_MIN_CPU_S)
    }

    /// A row for a strategy that was not run, saying why.
    pub fn skipped(strategy: &str, ideal_s: f64, why: String) -> Self {
        Self {
            strategy: strategy.to_owned(),
            ideal_s,
            skipped: Some(why),
            ..Self::default()
        }
    }

    /// The row summarising `runs` (at least one) against `ideal_s`.
    pub fn from_runs(strategy: &str, ideal_s: f64, runs: Vec<RunRecord>) -> Self {
        let walls: Vec<f64> = runs.iter().map(|r| r.child.wall_s).collect();
        let median_s = median(&walls);
        let u = |f: fn(&RunRecord) -> Option<f64>| med(runs.iter().map(f));
        let as_u64 = |x: Option<f64>| x.map(|v| v.round() as u64);
        let last = runs.last().cloned().unwrap_or_default();
        Self {
            strategy: strategy.to_owned(),
            median_s,
            min_s: walls.iter().copied().reduce(f64::min),
            max_s: walls.iter().copied().reduce(f64::max),
            mad_s: mad(&walls),
            ideal_s,
            ratio_to_ideal: median_s.filter(|_| ideal_s > 0.0).map(|m| m / ideal_s),
            cpu_user_s: u(|r| r.usage.cpu_user_s),
            cpu_sys_s: u(|r| r.usage.cpu_sys_s),
            cpu_per_request_us: u(RunRecord::cpu_per_request_us),
            cpu_per_request_mad_us: spread(runs.iter().map(RunRecord::cpu_per_request_us)),
            syscalls_per_request: u(RunRecord::syscalls_per_request),
            syscalls_per_request_mad: spread(runs.iter().map(RunRecord::syscalls_per_request)),
            syscalls_unavailable: runs
                .iter()
                .find_map(|r| r.usage.syscalls_unavailable.clone()),
            // The tree's sampled peak, but never below the child's own
            // exact high-water mark (a peak between two samples).
            peak_rss_bytes: as_u64(u(|r| {
                r.usage
                    .peak_rss_bytes
                    .map(|b| b.max(r.child.own_peak_rss_bytes.unwrap_or(0)) as f64)
            })),
            peak_rss_mad_bytes: as_u64(spread(
                runs.iter()
                    .map(|r| r.usage.peak_rss_bytes.map(|b| b as f64)),
            )),
            parent_peak_rss_bytes: as_u64(u(|r| {
                // The child's own ru_maxrss is exact; the sampled root peak
                // is the fallback where it is missing.
                r.child
                    .own_peak_rss_bytes
                    .or(r.usage.root_peak_rss_bytes)
                    .map(|b| b as f64)
            })),
            peak_threads: max_of(runs.iter().map(|r| r.usage.peak_threads)),
            peak_processes: max_of(runs.iter().map(|r| r.usage.peak_processes)),
            voluntary_ctx_switches: as_u64(u(|r| r.usage.voluntary_ctx_switches.map(|c| c as f64))),
            involuntary_ctx_switches: as_u64(u(|r| {
                r.usage.involuntary_ctx_switches.map(|c| c as f64)
            })),
            startup_s: u(|r| r.startup_s),
            first_result_s: u(|r| r.child.first_result_s),
            latency_p50_s: u(|r| r.child.latency_p50_s),
            latency_p99_s: u(|r| r.child.latency_p99_s),
            ok: last.child.ok,
            failed: last.child.failed,
            requests: as_u64(u(|r| Some(r.child.requests as f64))),
            peak_in_flight: max_of(runs.iter().map(|r| Some(r.peak_in_flight))),
            busiest_second: max_of(runs.iter().map(|r| Some(r.busiest_second))),
            connections: as_u64(u(|r| r.connections.map(|c| c as f64))),
            runs_s: walls,
            note: runs.iter().find_map(|r| r.child.note.clone()),
            cancelled: last.child.cancelled,
            time_to_stop_s: u(|r| r.child.time_to_stop_s),
            time_to_stop_max_s: runs
                .iter()
                .filter_map(|r| r.child.time_to_stop_s)
                .reduce(f64::max),
            left: runs
                .iter()
                .filter_map(|r| r.child.left.clone())
                .reduce(|a, b| Leftovers {
                    threads: a.threads.max(b.threads),
                    processes: a.processes.max(b.processes),
                    sockets: a.sockets.max(b.sockets),
                    kept: a.kept.or(b.kept),
                }),
            external: None,
            error: None,
            skipped: None,
            runs,
        }
    }

    /// True when it ran at least once.
    pub fn ran(&self) -> bool {
        self.median_s.is_some()
    }
}

/// The scenario a comparison ran, as exported.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScenarioInfo {
    /// Its name (`classic`, ...), or `custom`.
    pub name: String,
    /// One line on it.
    pub about: String,
    /// Number of bases.
    pub bases: usize,
    /// Server latency per answer, seconds.
    pub latency_s: f64,
    /// Client concurrency (most requests in flight).
    pub concurrency: usize,
    /// Client rate limit, requests per second.
    pub rate_limit_per_s: Option<f64>,
    /// CPU work per item, seconds (0 for none).
    #[serde(default)]
    pub work_s: f64,
    /// The faults the server injects, described.
    pub faults: Vec<String>,
    /// Whether requests went over TLS.
    #[serde(default)]
    pub tls: bool,
    /// Each run's stop handle fired this long after the run started,
    /// seconds (the `cancel` scenario).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_after_s: Option<f64>,
    /// Each run's whole-run deadline, seconds (`--deadline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_s: Option<f64>,
}

/// The machine and conditions a run was taken in.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// When the run started (UTC, RFC 3339).
    pub date: String,
    /// The commit of the working tree (`unknown` outside git), `-dirty` when
    /// its tracked files outside `results/` had changes (a run that saves a
    /// baseline into `results/` does not mark itself dirty).
    pub commit: String,
    /// The compiler the `rates` binary was built with.
    pub rustc: String,
    /// Operating system and architecture.
    pub os: String,
    /// Kernel release.
    pub kernel: String,
    /// CPU model.
    pub cpu: String,
    /// Logical cores.
    pub cores: usize,
    /// Total memory, bytes.
    pub memory_bytes: u64,
    /// One-minute load average before the run.
    pub load_before: Option<f64>,
    /// One-minute load average after the run.
    pub load_after: Option<f64>,
    /// The exact command line.
    pub command: String,
    /// The CPUs the server and the measured runs were pinned to (`--pin`);
    /// `None` when nothing was pinned.
    #[serde(default)]
    pub affinity: Option<Affinity>,
    /// Why the command stopped before it was done (`interrupted: Ctrl-C
    /// ...`), when it did: the results hold only what completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
    /// How much of the machine's CPU other work than the measurement took
    /// while it ran; `None` where it could not be read (or in exports
    /// older than this field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy: Option<Busy>,
}

/// The machine's CPU time while a scenario was measured, against what the
/// measurement itself used (this process, with the embedded server, and
/// every measured run's process tree). The rest is other work: other
/// processes, and on a VM the time the hypervisor gave to other guests
/// (`steal`), which a load average does not show.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Busy {
    /// Wall time the scenario took, seconds.
    pub elapsed_s: f64,
    /// CPU time every CPU of the machine spent busy (`/proc/stat`: user,
    /// nice, system, irq, softirq, steal), seconds.
    pub machine_cpu_s: f64,
    /// CPU time of the measurement (`getrusage` of this process and its
    /// reaped children), seconds.
    pub measuring_cpu_s: f64,
    /// (machine - measuring) / (elapsed x cores), 0 to 1: the share of
    /// the machine that other work took.
    pub other_share: f64,
    /// What the figures are worth when the share is over
    /// [`BUSY_SHARE`], and what to do; `None` below it.
    pub warning: Option<String>,
}

/// Other work past this share of the machine's CPU makes a warning.
pub const BUSY_SHARE: f64 = 0.10;

impl Busy {
    /// Judges the figures: the share other work took, and a warning past
    /// [`BUSY_SHARE`].
    pub fn judge(elapsed_s: f64, machine_cpu_s: f64, measuring_cpu_s: f64, cores: usize) -> Self {
        let capacity = elapsed_s * cores.max(1) as f64;
        let other = (machine_cpu_s - measuring_cpu_s).max(0.0);
        let other_share = if capacity > 0.0 {
            (other / capacity).min(1.0)
        } else {
            0.0
        };
        let warning = (other_share > BUSY_SHARE).then(|| {
            format!(
                "the machine was busy: other work than this measurement took {:.0}% of its CPU \
                 time ({other:.1} s of {capacity:.1} s over {elapsed_s:.1} s on {cores} cores); \
                 times and their spread may be inflated, and a ranking within a few percent \
                 may not hold: re-run on an idle machine, or compare two builds with `rates \
                 compare --against`, whose paired runs share the noise",
                other_share * 100.0
            )
        });
        Self {
            elapsed_s,
            machine_cpu_s,
            measuring_cpu_s,
            other_share,
            warning,
        }
    }
}

/// Where a pinned comparison ran: the server's threads on some CPUs, every
/// measured run (its whole process tree) on the others.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Affinity {
    /// The CPUs of the process that hosts the embedded server (and samples
    /// the runs).
    pub server: Vec<usize>,
    /// The CPUs of each measured run's process tree.
    pub runs: Vec<usize>,
}

impl Machine {
    /// A short identity for "same machine?" checks: CPU, cores, memory, OS.
    pub fn identity(&self) -> String {
        format!(
            "{} x{} {} GiB {}",
            self.cpu,
            self.cores,
            self.memory_bytes >> 30,
            self.os
        )
    }
}

/// The JSON export of one comparison (schema [`SCHEMA`]): what `rates compare
/// --export-json` writes and `--baseline` reads.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Export {
    /// Always [`SCHEMA`] for this shape.
    pub schema: u32,
    /// The tool and its version (`rates 0.1.0`).
    pub tool: String,
    /// The scenario and its parameters.
    pub scenario: ScenarioInfo,
    /// Timed runs per strategy.
    pub runs: u32,
    /// Untimed warm-up runs per strategy.
    pub warmup: u32,
    /// The sampling interval of memory, threads and processes, milliseconds.
    pub sample_interval_ms: u64,
    /// Where and when it ran.
    pub machine: Machine,
    /// One row per strategy, in registry order.
    pub results: Vec<StrategyResult>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(wall: f64, cpu: f64, rss: u64, requests: u64) -> RunRecord {
        RunRecord {
            child: ChildReport {
                wall_s: wall,
                requests,
                ok: 5,
                ..ChildReport::default()
            },
            usage: TreeUsage {
                cpu_user_s: Some(cpu),
                cpu_sys_s: Some(0.0),
                peak_rss_bytes: Some(rss),
                peak_threads: Some(3),
                ..TreeUsage::default()
            },
            ..RunRecord::default()
        }
    }

    #[test]
    fn other_work_past_a_tenth_of_the_machine_is_a_warning() {
        // 2 cores for 10 s: 20 s of capacity; 6 s busy, 2 s of it ours.
        let busy = Busy::judge(10.0, 6.0, 2.0, 2);
        assert!((busy.other_share - 0.2).abs() < 1e-9);
        let warning = busy.warning.expect("a warning at 20%");
        assert!(warning.contains("20% of its CPU"), "{warning}");
        assert!(warning.contains("--against"), "{warning}");
        // 1 s of other work in 20: 5%, quiet.
        assert!(Busy::judge(10.0, 3.0, 2.0, 2).warning.is_none());
        // Counters that disagree (ours read as more) are not negative.
        assert_eq!(Busy::judge(10.0, 1.0, 2.0, 2).other_share, 0.0);
    }

    #[test]
    fn a_row_summarises_its_runs() {
        let row = StrategyResult::from_runs(
            "x",
            0.2,
            vec![
                run(0.21, 0.001, 10, 5),
                run(0.20, 0.002, 30, 5),
                run(0.22, 0.003, 20, 5),
            ],
        );
        assert_eq!(row.median_s, Some(0.21));
        assert_eq!((row.min_s, row.max_s), (Some(0.20), Some(0.22)));
        assert!((row.ratio_to_ideal.unwrap() - 1.05).abs() < 1e-9);
        assert!((row.cpu_per_request_us.unwrap() - 400.0).abs() < 1e-6);
        assert_eq!(row.peak_rss_bytes, Some(20));
        assert_eq!(row.peak_threads, Some(3));
        assert_eq!(row.runs_s, vec![0.21, 0.20, 0.22]);
        // Unmeasured figures stay unmeasured.
        assert_eq!(row.peak_processes, None);
        assert_eq!(row.latency_p50_s, None);
    }

    #[test]
    fn the_export_names_its_schema() {
        let export = Export {
            schema: SCHEMA,
            results: vec![StrategyResult::skipped("sync", 500.0, "too slow".into())],
            ..Export::default()
        };
        let json = serde_json::to_value(&export).unwrap();
        assert_eq!(json["schema"], 2);
        assert_eq!(json["results"][0]["skipped"], "too slow");
        assert!(json["results"][0]["median_s"].is_null());
        let back: Export = serde_json::from_value(json).unwrap();
        assert_eq!(back, export);
    }
}
