//! `rates profile`: why one strategy costs what it costs, on one scenario.
//!
//! Three runs of the strategy, each in a process of its own against the
//! scenario's embedded server, after one warm-up:
//! 1. a measured run, as `rates compare` measures one: CPU, syscalls and
//!    context switches per request of the whole process tree;
//! 2. the same under `perf stat`, counting every `syscalls:sys_enter_NAME`
//!    tracepoint over the tree: syscalls by name;
//! 3. the same under `perf record` sampling the `cpu-clock` software event
//!    with DWARF call stacks: the flamegraph, and where the time went.
//!
//! Runs 2 and 3 are slowed by perf; their figures are shares and counts,
//! never times. Hardware counters are not needed (cpu-clock is a software
//! event).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use rates_core::Strategy as _;
use rates_measure::RunRecord;

use crate::registry::{ExternalOptions, Registry};
use crate::runner::{Session, Setup, Timing};

/// `--scenario`'s default: all client work, runs short enough to profile.
pub const DEFAULT_SCENARIO: &str = "gate";
/// `--frequency`'s default: samples per second of CPU.
pub const DEFAULT_FREQUENCY: u32 = 9_999;

/// How long `perf script` may take to turn a profile into text.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

/// What `rates profile` is asked.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct ProfileOptions {
    /// The strategy to profile: a built-in one (`rates strategies`) or an
    /// external one (--external, --clients).
    #[cfg_attr(feature = "cli", arg(long))]
    pub strategy: String,
    /// The scenario it runs (`rates scenarios`).
    #[cfg_attr(feature = "cli", arg(long, default_value = DEFAULT_SCENARIO))]
    pub scenario: String,
    /// The folder for flamegraph.svg, stacks.folded, syscalls.csv,
    /// profile.json and summary.txt (created if missing).
    #[cfg_attr(feature = "cli", arg(long, value_name = "DIR"))]
    pub out: PathBuf,
    /// CPU samples per second of each thread's CPU time (perf record -F).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT_FREQUENCY, value_parser = clap::value_parser!(u32).range(10..=20_000)))]
    pub frequency: u32,
    /// External programs as strategies (--external, --clients).
    #[cfg_attr(feature = "cli", command(flatten))]
    pub external: ExternalOptions,
}

/// Where a frame's code belongs, for the summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    /// The kernel (syscalls, scheduling, the network stack).
    Kernel,
    /// The async runtime, the thread pool or the scheduler's user side.
    Runtime,
    /// HTTP and TCP in user space: the shared client, TLS, sockets.
    Transport,
    /// Decoding the answer: JSON, the rates.
    Decode,
    /// The strategy's own crate.
    Strategy,
    /// Allocation and libc's other functions.
    Libc,
    /// Everything else (the standard library, start-up).
    Other,
}

impl Group {
    /// The group of a frame of a folded stack (`name_[k]` for a kernel one)
    /// of `strategy`'s run.
    pub fn of(frame: &str, strategy: &str) -> Self {
        // Its crate (`rates_tokio` for tokio-blocking, `rates_compio` for
        // compio-uring) or its module (`rates_tokio::sharded`).
        let name = strategy.replace('-', "_");
        let first = name.split('_').next().unwrap_or(&name);
        let own = [
            format!("rates_{name}::"),
            format!("rates_{first}::"),
            format!("::{name}::"),
        ];
        let any = |patterns: &[&str]| patterns.iter().any(|p| frame.contains(p));
        if frame.ends_with("_[k]") {
            Self::Kernel
        } else if own.iter().any(|p| frame.contains(p.as_str())) {
            Self::Strategy
        } else if any(&["serde", "rates_core::rates", "rates_core::parse", "json"]) {
            Self::Decode
        } else if any(&[
            "rates_http",
            "rates_async",
            "httparse",
            "rustls",
            "ring::",
            "std::net",
            "tcp",
            "socket",
        ]) {
            Self::Transport
        } else if any(&[
            "tokio",
            "mio::",
            "async_io",
            "async_executor",
            "compio",
            "io_uring",
            "async_task",
            "async_std",
            "async_global",
            "polling::",
            "smol",
            "rayon",
            "crossbeam",
            "futures",
            "parking",
            "rates_pool",
            "rates_process",
            "pthread",
            "futex",
            "epoll",
        ]) {
            Self::Runtime
        } else if any(&[
            "malloc",
            "free",
            "realloc",
            "__rust_alloc",
            "__rust_dealloc",
            "alloc::alloc",
            "memcpy",
            "memmove",
            "memset",
            "__libc",
        ]) {
            Self::Libc
        } else {
            Self::Other
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Kernel => "kernel",
            Self::Runtime => "runtime",
            Self::Transport => "transport (http)",
            Self::Decode => "decode",
            Self::Strategy => "the strategy's own code",
            Self::Libc => "libc and allocation",
            Self::Other => "other",
        }
    }
}

/// What a profile found: the measured run's figures per request, the
/// syscalls by name, and where the CPU samples fell.
#[derive(Debug, Default, serde::Serialize)]
pub struct Profile {
    /// The strategy and the scenario.
    pub strategy: String,
    /// The scenario's name.
    pub scenario: String,
    /// Requests the measured run sent.
    pub requests: u64,
    /// The measured run's wall time, seconds.
    pub wall_s: f64,
    /// CPU of the tree per request, microseconds.
    pub cpu_per_request_us: Option<f64>,
    /// Syscalls of the tree per request (the kernel's counter).
    pub syscalls_per_request: Option<f64>,
    /// Voluntary and involuntary context switches per request.
    pub ctx_per_request: (Option<f64>, Option<f64>),
    /// Each syscall's count per request in the `perf stat` run, most first.
    pub syscalls_by_name: Vec<(String, f64)>,
    /// Why syscalls by name are missing, when they are.
    pub syscalls_by_name_missing: Option<String>,
    /// CPU time sampled, nanoseconds (each sample weighs its period).
    pub sampled_ns: u64,
    /// Samples per second of CPU time.
    pub frequency: u32,
    /// The share of samples in the kernel.
    pub kernel_share: f64,
    /// Each group's share of the samples by self time, most first.
    pub groups: Vec<(Group, f64)>,
    /// The frames with the most self time: (frame, its group, its share).
    pub top_frames: Vec<(String, Group, f64)>,
}

/// Runs `rates profile` with `a`: prints the summary and writes the folder.
///
/// # Errors
/// Bad input (an unknown strategy or scenario, a strategy the scenario
/// skips), perf missing (naming the package), a run that fails.
pub fn run(a: &ProfileOptions) -> Result<ExitCode> {
    check_perf()?;
    let registry = Registry::new(a.external.read()?);
    let strategies = registry.named(Some(&a.strategy))?;
    if strategies.len() != 1 || a.strategy.contains(',') {
        bail!("--strategy names one strategy, like --strategy tokio");
    }
    let scenario = crate::scenario(&a.scenario)?;
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("--out: creating the folder {}", a.out.display()))?;
    let out = a
        .out
        .canonicalize()
        .with_context(|| format!("--out {}", a.out.display()))?;
    let name = strategies[0].name();
    let session = Session::new(Timing::new(1, 1), registry);
    let mut setup = Setup::new(&session, &scenario, &strategies)?;
    if let Some(why) = &setup.skips[0] {
        bail!("{name} does not run on {}: {why}", scenario.name);
    }
    eprintln!(
        "profile of {name} on {}: {}; a warm-up, a measured run, a run under perf stat \
         (syscalls by name), a run under perf record (CPU samples at {} Hz)",
        scenario.name, scenario.about, a.frequency
    );
    setup.measure_once(name).context("the warm-up run")?;
    let measured = setup.measure_once(name).context("the measured run")?;
    let mut profile = Profile::of_run(name, scenario.name, &measured);
    let requests = measured.child.requests.max(1) as f64;
    match rates_measure::tracefs() {
        Ok(tracefs) => {
            let stat = out.join("perf-stat.csv");
            setup.run_under(perf_stat(&stat, &tracefs));
            setup
                .measure_once(name)
                .context("the run under perf stat")?;
            let counts = read_perf_stat(&stat)?;
            write_syscalls_csv(&out.join("syscalls.csv"), &counts, requests)?;
            profile.syscalls_by_name = per_request(&counts, requests);
        }
        Err(why) => profile.syscalls_by_name_missing = Some(why),
    }
    let data = out.join("perf.data");
    setup.run_under(perf_record(&data, a.frequency));
    setup
        .measure_once(name)
        .context("the run under perf record")?;
    setup.run_under(Vec::new());
    let folded = fold(&data)?;
    std::fs::write(out.join("stacks.folded"), &folded)?;
    profile.frequency = a.frequency;
    profile.read_samples(&folded, name);
    flamegraph(
        &folded,
        &out.join("flamegraph.svg"),
        &format!(
            "{name} on {}: CPU samples of the whole process tree (cpu-clock, {} Hz)",
            scenario.name, a.frequency
        ),
    )?;
    let _ = std::fs::remove_file(&data);
    let text = profile.summary();
    std::fs::write(out.join("summary.txt"), &text)?;
    std::fs::write(
        out.join("profile.json"),
        serde_json::to_string_pretty(&profile)?,
    )?;
    print!("{text}");
    eprintln!(
        "wrote {}: flamegraph.svg, stacks.folded, syscalls.csv, profile.json, summary.txt",
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Fails, naming the package, when `perf` cannot be run.
fn check_perf() -> Result<()> {
    match Command::new("perf").arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => bail!(
            "rates profile needs perf for its CPU samples and its syscalls by name: install it \
             (Debian: apt-get install linux-perf)"
        ),
    }
}

/// The syscalls counted by name: those an HTTP client, its runtime and its
/// process start-up make. Each is a tracepoint perf must switch on, about
/// 20 ms each, so not all 400 of them (`other` is the rest).
const BY_NAME: &[&str] = &[
    "read",
    "write",
    "readv",
    "writev",
    "recvfrom",
    "sendto",
    "recvmsg",
    "sendmsg",
    "recvmmsg",
    "sendmmsg",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_ctl",
    "epoll_create1",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "futex",
    "io_uring_enter",
    "io_uring_setup",
    "io_uring_register",
    "connect",
    "socket",
    "close",
    "shutdown",
    "getsockopt",
    "setsockopt",
    "getsockname",
    "getpeername",
    "fcntl",
    "ioctl",
    "mmap",
    "munmap",
    "mprotect",
    "madvise",
    "brk",
    "clone",
    "clone3",
    "execve",
    "exit",
    "exit_group",
    "wait4",
    "waitid",
    "kill",
    "nanosleep",
    "clock_nanosleep",
    "sched_yield",
    "eventfd2",
    "pipe2",
    "dup2",
    "dup3",
    "openat",
    "statx",
    "newfstatat",
    "lseek",
    "rt_sigaction",
    "rt_sigprocmask",
    "sigaltstack",
    "prctl",
    "sched_getaffinity",
    "sched_setaffinity",
    "getrandom",
    "set_robust_list",
    "rseq",
    "timerfd_create",
    "timerfd_settime",
    "getpid",
    "gettid",
    "getppid",
    "prlimit64",
];

/// `perf stat` counting the entry tracepoints of [`BY_NAME`] (those this
/// kernel has) and of every syscall over the tree.
fn perf_stat(file: &Path, tracefs: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["perf", "stat", "-x", ",", "-o"]
        .iter()
        .map(OsString::from)
        .collect();
    args.push(file.into());
    let events: Vec<String> = BY_NAME
        .iter()
        .filter(|n| {
            tracefs
                .join(format!("events/syscalls/sys_enter_{n}"))
                .is_dir()
        })
        .map(|n| format!("syscalls:sys_enter_{n}"))
        .chain(std::iter::once("raw_syscalls:sys_enter".to_owned()))
        .collect();
    args.push("-e".into());
    args.push(events.join(",").into());
    args.push("--".into());
    args
}

/// `perf record` sampling cpu-clock with DWARF call stacks over the tree.
fn perf_record(file: &Path, frequency: u32) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["perf", "record", "-q", "-e", "cpu-clock", "-F"]
        .iter()
        .map(OsString::from)
        .collect();
    args.push(frequency.to_string().into());
    for a in ["--call-graph", "dwarf,16384", "-o"] {
        args.push(a.into());
    }
    args.push(file.into());
    args.push("--".into());
    args
}

/// Each syscall's count from `perf stat -x ,`'s file (those counted at
/// least once).
fn read_perf_stat(file: &Path) -> Result<BTreeMap<String, u64>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading perf stat's {}", file.display()))?;
    Ok(parse_perf_stat(&text))
}

/// The counts of `perf stat -x ,` lines (`COUNT,UNIT,EVENT,...`), by
/// syscall name, with `other` for those of every syscall
/// (`raw_syscalls:sys_enter`) not counted by name; lines that are not
/// counts (comments, `<not counted>`) are skipped.
fn parse_perf_stat(text: &str) -> BTreeMap<String, u64> {
    let mut all = None;
    let mut counts: BTreeMap<String, u64> = text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(',');
            let count: u64 = fields.next()?.trim().parse().ok()?;
            let event = fields.nth(1)?.trim();
            if event == "raw_syscalls:sys_enter" {
                all = Some(count);
                return None;
            }
            let name = event.strip_prefix("syscalls:sys_enter_")?;
            (count > 0).then(|| (name.to_owned(), count))
        })
        .collect();
    if let Some(all) = all {
        let named: u64 = counts.values().sum();
        if all > named {
            counts.insert("other".to_owned(), all - named);
        }
    }
    counts
}

/// `counts` per request, most first.
fn per_request(counts: &BTreeMap<String, u64>, requests: f64) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = counts
        .iter()
        .map(|(n, c)| (n.clone(), *c as f64 / requests))
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

fn write_syscalls_csv(file: &Path, counts: &BTreeMap<String, u64>, requests: f64) -> Result<()> {
    let mut w = csv::Writer::from_path(file)?;
    w.write_record(["syscall", "count", "per_request"])?;
    for (name, per) in per_request(counts, requests) {
        let count = counts[&name].to_string();
        w.write_record([name, count, format!("{per:.4}")])?;
    }
    w.flush()?;
    Ok(())
}

/// The folded stacks (`frame;frame;... COUNT` lines) of a `perf record`
/// file, kernel frames marked `_[k]`.
fn fold(data: &Path) -> Result<String> {
    let mut cmd = Command::new("perf");
    cmd.arg("script").arg("-i").arg(data);
    let options = rates_measure::Options {
        timeout: SCRIPT_TIMEOUT,
        ..rates_measure::Options::default()
    };
    let script = rates_measure::measure(cmd, None, &options).context("running perf script")?;
    if script.timed_out || !script.status.success() {
        bail!(
            "perf script on {} failed: {}",
            data.display(),
            script.stderr_tail.trim()
        );
    }
    let mut folder = inferno::collapse::perf::Folder::from({
        let mut o = inferno::collapse::perf::Options::default();
        o.annotate_kernel = true;
        o
    });
    let mut folded = Vec::new();
    inferno::collapse::Collapse::collapse(&mut folder, &script.stdout[..], &mut folded)
        .context("folding perf script's stacks")?;
    let folded = String::from_utf8(folded).context("folded stacks")?;
    Ok(merge_numbered_threads(&folded))
}

/// `folded` with threads named by a number or a code (`rates-USD`,
/// `worker-12`) merged under one name (`rates-*`): one tower per kind of
/// thread, not one per base.
fn merge_numbered_threads(folded: &str) -> String {
    let mut merged: BTreeMap<String, u64> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for line in folded.lines() {
        let Some((stack, count)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(count) = count.parse::<u64>() else {
            continue;
        };
        let (thread, rest) = stack.split_once(';').unwrap_or((stack, ""));
        let thread = match thread.rsplit_once('-') {
            Some((kind, id))
                if !id.is_empty()
                    && id
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) =>
            {
                format!("{kind}-*")
            }
            _ => thread.to_owned(),
        };
        let key = if rest.is_empty() {
            thread
        } else {
            format!("{thread};{rest}")
        };
        let slot = merged.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            0
        });
        *slot += count;
    }
    order
        .into_iter()
        .map(|k| format!("{k} {}\n", merged[&k]))
        .collect()
}

/// Draws `folded` as a flamegraph SVG.
fn flamegraph(folded: &str, file: &Path, title: &str) -> Result<()> {
    let mut options = inferno::flamegraph::Options::default();
    options.title = title.to_owned();
    options.count_name = "ns of CPU".to_owned();
    // Frames narrower than this are left out: a profile with deep
    // interpreter stacks stays a file a browser opens at once.
    options.min_width = 0.5;
    let svg =
        std::fs::File::create(file).with_context(|| format!("creating {}", file.display()))?;
    inferno::flamegraph::from_lines(&mut options, folded.lines(), svg)
        .with_context(|| format!("drawing {}", file.display()))
}

impl Profile {
    fn of_run(strategy: &str, scenario: &str, r: &RunRecord) -> Self {
        let requests = r.child.requests.max(1) as f64;
        let per = |v: Option<u64>| v.map(|c| c as f64 / requests);
        Self {
            strategy: strategy.to_owned(),
            scenario: scenario.to_owned(),
            requests: r.child.requests,
            wall_s: r.child.wall_s,
            cpu_per_request_us: r.cpu_per_request_us(),
            syscalls_per_request: r.syscalls_per_request(),
            ctx_per_request: (
                per(r.usage.voluntary_ctx_switches),
                per(r.usage.involuntary_ctx_switches),
            ),
            ..Self::default()
        }
    }

    /// The samples of `folded`: the kernel's share, each group's share by
    /// self time (a stack's last frame), and the frames with the most.
    fn read_samples(&mut self, folded: &str, strategy: &str) {
        let mut by_frame: BTreeMap<&str, u64> = BTreeMap::new();
        let mut total = 0u64;
        for line in folded.lines() {
            let Some((stack, count)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(count) = count.parse::<u64>() else {
                continue;
            };
            let leaf = stack.rsplit(';').next().unwrap_or(stack);
            *by_frame.entry(leaf).or_default() += count;
            total += count;
        }
        self.sampled_ns = total;
        let share = |n: u64| n as f64 / total.max(1) as f64;
        let mut groups: BTreeMap<Group, u64> = BTreeMap::new();
        for (frame, n) in &by_frame {
            *groups.entry(Group::of(frame, strategy)).or_default() += n;
        }
        self.kernel_share = share(groups.get(&Group::Kernel).copied().unwrap_or(0));
        self.groups = groups.into_iter().map(|(g, n)| (g, share(n))).collect();
        self.groups.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut frames: Vec<(&str, u64)> = by_frame.into_iter().collect();
        frames.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        self.top_frames = frames
            .into_iter()
            .take(15)
            .map(|(f, n)| (f.to_owned(), Group::of(f, strategy), share(n)))
            .collect();
    }

    /// The summary as text.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let opt = |v: Option<f64>, digits: usize| {
            v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.digits$}"))
        };
        let _ = writeln!(
            s,
            "{} on {}: {} requests in {:.3} s (the measured run, no perf)\n\
             per request: CPU {} us, syscalls {}, context switches {} voluntary, {} involuntary\n",
            self.strategy,
            self.scenario,
            self.requests,
            self.wall_s,
            opt(self.cpu_per_request_us, 1),
            opt(self.syscalls_per_request, 2),
            opt(self.ctx_per_request.0, 3),
            opt(self.ctx_per_request.1, 3),
        );
        let _ = writeln!(
            s,
            "Syscalls by name, per request (the run under perf stat):"
        );
        match &self.syscalls_by_name_missing {
            Some(why) => {
                let _ = writeln!(s, "  n/a: {why}");
            }
            None => {
                for (name, per) in self.syscalls_by_name.iter().take(12) {
                    let _ = writeln!(s, "  {name:<20} {per:>8.3}");
                }
            }
        }
        let _ = writeln!(
            s,
            "\nCPU samples (the run under perf record): {:.1} ms of CPU, about {} samples; {:.0}% \
             in the kernel, {:.0}% in user space\nBy where the time was spent (a sample's \
             innermost frame):",
            self.sampled_ns as f64 / 1e6,
            (self.sampled_ns as f64 * f64::from(self.frequency) / 1e9).round(),
            self.kernel_share * 100.0,
            (1.0 - self.kernel_share) * 100.0
        );
        for (group, share) in &self.groups {
            let _ = writeln!(s, "  {:<26} {:>5.1}%", group.name(), share * 100.0);
        }
        let _ = writeln!(s, "\nTop frames by their own time:");
        for (frame, group, share) in &self.top_frames {
            let _ = writeln!(
                s,
                "  {:>5.1}%  {:<16} {}",
                share * 100.0,
                group.name(),
                shorten(frame, 110)
            );
        }
        s
    }
}

/// `s` in at most `n` characters.
fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let cut: String = s.chars().take(n.saturating_sub(3)).collect();
        format!("{cut}...")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_stat_lines_give_counts_by_syscall() {
        let text = "# started on Mon Dec  7\n\n\
                    4012,,syscalls:sys_enter_write,1000,100.00,,\n\
                    0,,syscalls:sys_enter_read,1000,100.00,,\n\
                    <not counted>,,syscalls:sys_enter_futex,0,0.00,,\n\
                    8021,,syscalls:sys_enter_recvfrom,1000,100.00,,\n\
                    12100,,raw_syscalls:sys_enter,1000,100.00,,\n";
        let counts = parse_perf_stat(text);
        assert_eq!(counts.len(), 3, "{counts:?}");
        assert_eq!(counts["other"], 12_100 - 4012 - 8021);
        assert_eq!(counts["write"], 4012);
        assert_eq!(counts["recvfrom"], 8021);
        let per = per_request(&counts, 4000.0);
        assert_eq!(per[0].0, "recvfrom");
        assert!((per[0].1 - 2.005_25).abs() < 1e-9);
    }

    #[test]
    fn frames_fall_in_their_groups() {
        let g = |f: &str| Group::of(f, "tokio-blocking");
        assert_eq!(g("tcp_sendmsg_[k]"), Group::Kernel);
        assert_eq!(g("rates_tokio_blocking::fetch"), Group::Strategy);
        assert_eq!(g("serde_json::de::Deserializer::parse"), Group::Decode);
        assert_eq!(
            g("rates_http::blocking::BlockingClient::get"),
            Group::Transport
        );
        assert_eq!(
            g("tokio::runtime::scheduler::multi_thread::worker::run"),
            Group::Runtime
        );
        assert_eq!(g("__libc_malloc"), Group::Libc);
        assert_eq!(g("rates_async::worker::{{closure}}"), Group::Transport);
        assert_eq!(g("main"), Group::Other);
    }

    #[test]
    fn threads_named_by_base_or_number_are_one_tower() {
        let folded = "rates-USD;f;g 2\nrates-EUR;f;g 3\nrates-tokio;h 1\nworker-12 4\n";
        let merged = merge_numbered_threads(folded);
        assert_eq!(merged, "rates-*;f;g 5\nrates-tokio;h 1\nworker-* 4\n");
    }

    #[test]
    fn samples_are_shared_by_innermost_frame() {
        let folded = "main;rates_http::get;send_[k] 6\nmain;serde_json::parse 3\nmain 1\n";
        let mut p = Profile::default();
        p.read_samples(folded, "tokio");
        assert_eq!(p.sampled_ns, 10);
        assert!((p.kernel_share - 0.6).abs() < 1e-9);
        assert_eq!(p.groups[0], (Group::Kernel, 0.6));
        assert_eq!(p.top_frames[0].0, "send_[k]");
        assert_eq!(
            p.top_frames[1],
            ("serde_json::parse".to_owned(), Group::Decode, 0.3)
        );
    }
}
