//! Running a command as a measured process tree.

use std::io::{self, Read as _, Write as _};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The most of a child's stdout kept (a line per base of a million-base
/// run of an external program fits).
const MAX_STDOUT: u64 = 256 << 20;

/// How a run is measured.
#[derive(Clone, Debug)]
pub struct Options {
    /// How often the tree's memory, threads and processes are sampled.
    pub interval: Duration,
    /// The run is killed (its whole process group) after this long.
    pub timeout: Duration,
    /// The CPUs (0-based, as the kernel numbers them) the child and every
    /// thread and process it starts may run on; `None`: wherever the
    /// calling thread may. Set with `sched_setaffinity`, inherited by the
    /// whole tree.
    pub affinity: Option<Vec<usize>>,
    /// When this flag is set (say by a Ctrl-C handler), the run is stopped
    /// at the next sample: its whole process group is killed and reaped,
    /// and the result says [`interrupted`](Measured::interrupted).
    pub interrupt: Option<Arc<AtomicBool>>,
}

impl Default for Options {
    /// Samples every 10 ms; gives up after 10 minutes.
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(10),
            timeout: Duration::from_secs(600),
            affinity: None,
            interrupt: None,
        }
    }
}

/// What the kernel said about a whole process tree. `None` means the figure
/// is unavailable on this platform (only Linux gives them all), never zero.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TreeUsage {
    /// User CPU seconds of the child and every descendant it reaped (exact).
    pub cpu_user_s: Option<f64>,
    /// System CPU seconds, the same way (exact).
    pub cpu_sys_s: Option<f64>,
    /// Most resident memory held by the tree at one sample: the sum of RSS
    /// over every process in it, in bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Most resident memory of the child process alone, at one sample.
    pub root_peak_rss_bytes: Option<u64>,
    /// Most threads alive in the tree at one sample (every process's threads,
    /// main threads included).
    pub peak_threads: Option<u64>,
    /// Most processes alive in the tree at one sample (the child included).
    pub peak_processes: Option<u64>,
    /// Voluntary context switches (waits) of the tree (exact).
    pub voluntary_ctx_switches: Option<u64>,
    /// Involuntary context switches (preemptions) of the tree (exact).
    pub involuntary_ctx_switches: Option<u64>,
    /// Samples taken.
    pub samples: u64,
    /// Syscalls the tree made, counted by the kernel from the child's
    /// first instruction to its exit, every thread and process it started
    /// included (exact; Linux with perf events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls: Option<u64>,
    /// Why `syscalls` is `None`: the counter could not be opened (tracefs
    /// not mounted, `perf_event_paranoid`, a container), with the fix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls_unavailable: Option<String>,
}

/// A finished, measured run.
#[derive(Debug)]
pub struct Measured {
    /// How the child ended (killed by the timeout: see `timed_out`).
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// When each line of `stdout` arrived, since the spawn (a last line
    /// without a newline included).
    pub stdout_line_times: Vec<Duration>,
    /// The last 8 KiB it wrote to stderr.
    pub stderr_tail: String,
    /// The tree's figures.
    pub usage: TreeUsage,
    /// When the child was spawned (just before).
    pub spawned_at: Instant,
    /// From spawn to reaping.
    pub wall: Duration,
    /// True when the timeout killed it.
    pub timed_out: bool,
    /// True when [`Options::interrupt`] stopped it.
    pub interrupted: bool,
}

/// Runs `cmd` as a child (in a new process group, so a timeout can end its
/// whole tree), writes `stdin` to it and closes it, samples its tree every
/// `options.interval` until it exits, and returns what it printed and what
/// it cost. The waits between samples sleep.
///
/// Call it from one thread at a time in a process that reaps no other
/// children meanwhile: the CPU figures are the change in this process's
/// `RUSAGE_CHILDREN` across the run.
///
/// With [`Options::affinity`], the calling thread is moved to those CPUs
/// just before the spawn (a child inherits its parent thread's affinity,
/// and with it every thread and process it starts) and moved back at once.
///
/// # Errors
/// The command cannot be started, or its pipes fail, or the affinity cannot
/// be set (a CPU this process may not use).
pub fn measure(
    mut cmd: Command,
    stdin: Option<Vec<u8>>,
    options: &Options,
) -> io::Result<Measured> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        cmd.process_group(0);
    }
    let attach = crate::counters::Attach::prepare(&mut cmd);
    let before = platform::children_usage();
    let spawned_at = Instant::now();
    let spawned = match &options.affinity {
        Some(cpus) => {
            let own = allowed_cpus()?;
            pin_this_thread(cpus)?;
            let spawned = cmd.spawn();
            pin_this_thread(&own)?;
            spawned
        }
        None => cmd.spawn(),
    };
    let syscalls = attach.spawned();
    let mut child = spawned?;
    let pid = child.id();
    let stdout = child.stdout.take().map(|out| {
        thread::spawn(move || {
            // Line by line, each line's arrival time noted: when an external
            // program printed its first and last result.
            let mut reader = io::BufReader::new(out.take(MAX_STDOUT));
            let mut buf = Vec::new();
            let mut times = Vec::new();
            while let Ok(n) = io::BufRead::read_until(&mut reader, b'\n', &mut buf) {
                if n == 0 {
                    break;
                }
                times.push(spawned_at.elapsed());
            }
            (buf, times)
        })
    });
    let stderr = child.stderr.take().map(|mut err| {
        thread::spawn(move || {
            let mut tail: Vec<u8> = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n) = err.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                tail.extend_from_slice(&chunk[..n]);
                if tail.len() > 8192 {
                    tail.drain(..tail.len() - 8192);
                }
            }
            String::from_utf8_lossy(&tail).into_owned()
        })
    });

    // Written from a thread of its own, so that a child that does not read
    // its input cannot block this one (it is still timed out and killed;
    // the write then ends with EPIPE, which is not our error).
    let writer = match (stdin, child.stdin.take()) {
        (Some(bytes), Some(mut pipe)) => Some(thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        })),
        _ => None,
    };

    let mut peaks = Peaks::default();
    let mut timed_out = false;
    let mut interrupted = false;
    let status = loop {
        if let Some(sample) = platform::sample_tree(pid) {
            peaks.add(&sample);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if spawned_at.elapsed() >= options.timeout {
            timed_out = true;
            break kill_group(&mut child)?;
        }
        if options
            .interrupt
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::Acquire))
        {
            interrupted = true;
            break kill_group(&mut child)?;
        }
        thread::sleep(options.interval);
    };
    let wall = spawned_at.elapsed();
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    let after = platform::children_usage();
    let (stdout, stdout_line_times) = stdout
        .map(|t| t.join().unwrap_or_default())
        .unwrap_or_default();
    let stderr_tail = stderr
        .map(|t| t.join().unwrap_or_default())
        .unwrap_or_default();
    let mut usage = platform::usage_between(before, after);
    peaks.fill(&mut usage);
    match syscalls.read() {
        Ok(n) => usage.syscalls = Some(n),
        Err(why) => usage.syscalls_unavailable = Some(why),
    }
    Ok(Measured {
        status,
        stdout,
        stdout_line_times,
        stderr_tail,
        usage,
        spawned_at,
        wall,
        timed_out,
        interrupted,
    })
}

/// The CPUs the calling thread may run on, in ascending order.
///
/// # Errors
/// Where the platform has no CPU affinity (only Linux is supported), or the
/// kernel refuses.
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    platform::allowed_cpus()
}

/// Restricts the calling thread to `cpus`; threads it starts afterwards,
/// and processes it spawns, inherit the set.
///
/// # Errors
/// An empty set, a CPU this process may not use, or a platform without CPU
/// affinity.
pub fn pin_this_thread(cpus: &[usize]) -> io::Result<()> {
    if cpus.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an empty set of CPUs",
        ));
    }
    platform::pin_this_thread(cpus)
}

/// Kills the child's whole process group, then reaps the child.
fn kill_group(child: &mut Child) -> io::Result<ExitStatus> {
    #[cfg(unix)]
    {
        let pgid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    }
    let _ = child.kill();
    child.wait()
}

/// One look at the tree.
#[derive(Debug, Default)]
struct Sample {
    rss_bytes: u64,
    root_rss_bytes: u64,
    threads: u64,
    processes: u64,
}

#[derive(Debug, Default)]
struct Peaks {
    samples: u64,
    rss: u64,
    root_rss: u64,
    threads: u64,
    processes: u64,
}

impl Peaks {
    fn add(&mut self, s: &Sample) {
        self.samples += 1;
        self.rss = self.rss.max(s.rss_bytes);
        self.root_rss = self.root_rss.max(s.root_rss_bytes);
        self.threads = self.threads.max(s.threads);
        self.processes = self.processes.max(s.processes);
    }

    fn fill(&self, usage: &mut TreeUsage) {
        usage.samples = self.samples;
        if self.samples > 0 {
            usage.peak_rss_bytes = Some(self.rss);
            usage.root_peak_rss_bytes = Some(self.root_rss);
            usage.peak_threads = Some(self.threads);
            usage.peak_processes = Some(self.processes);
        }
    }
}

#[cfg(target_os = "linux")]
mod platform {
    use std::collections::HashMap;

    use super::Sample;

    /// Every process on the machine with its parent, RSS and thread count,
    /// then the ones under `root`. A process that exits while being read is
    /// skipped. `/proc/PID/task/*/children` would be cheaper but is not
    /// reliable while children exit (proc(5)), so the parent links are read.
    pub(super) fn sample_tree(root: u32) -> Option<Sample> {
        let page = procfs::page_size();
        let root = i32::try_from(root).ok()?;
        let mut by_parent: HashMap<i32, Vec<(i32, u64, u64)>> = HashMap::new();
        let mut root_entry = None;
        for process in procfs::process::all_processes().ok()?.flatten() {
            let Ok(stat) = process.stat() else { continue };
            let threads = u64::try_from(stat.num_threads).unwrap_or(0);
            let entry = (stat.pid, stat.rss * page, threads);
            if stat.pid == root {
                root_entry = Some(entry);
            }
            by_parent.entry(stat.ppid).or_default().push(entry);
        }
        let (_, root_rss, root_threads) = root_entry?;
        let mut sample = Sample {
            rss_bytes: root_rss,
            root_rss_bytes: root_rss,
            threads: root_threads,
            processes: 1,
        };
        let mut stack = vec![root];
        // Bounded: each pid is visited once, as a child of its one parent.
        while let Some(pid) = stack.pop() {
            for &(child, rss, threads) in by_parent.get(&pid).map_or(&[][..], Vec::as_slice) {
                sample.rss_bytes += rss;
                sample.threads += threads;
                sample.processes += 1;
                stack.push(child);
            }
        }
        Some(sample)
    }

    pub(super) use super::unix::{children_usage, usage_between};

    pub(super) fn allowed_cpus() -> std::io::Result<Vec<usize>> {
        use nix::sched::{CpuSet, sched_getaffinity};
        let set = sched_getaffinity(nix::unistd::Pid::from_raw(0))?;
        Ok((0..CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .collect())
    }

    pub(super) fn pin_this_thread(cpus: &[usize]) -> std::io::Result<()> {
        use nix::sched::{CpuSet, sched_setaffinity};
        let mut set = CpuSet::new();
        for &cpu in cpus {
            set.set(cpu).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "CPU {cpu} is past the {} this platform numbers",
                        CpuSet::count()
                    ),
                )
            })?;
        }
        // Pid 0 is the calling thread.
        sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("cannot run on CPUs {cpus:?}: {e}"),
            )
        })
    }
}

#[cfg(not(target_os = "linux"))]
fn no_affinity() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "CPU affinity is only supported on Linux",
    )
}

#[cfg(all(unix, not(target_os = "linux")))]
mod platform {
    use super::Sample;

    /// Sampling needs `/proc`: memory, threads and processes are unavailable.
    pub(super) fn sample_tree(_root: u32) -> Option<Sample> {
        None
    }

    pub(super) use super::unix::{children_usage, usage_between};

    pub(super) fn allowed_cpus() -> std::io::Result<Vec<usize>> {
        Err(super::no_affinity())
    }

    pub(super) fn pin_this_thread(_: &[usize]) -> std::io::Result<()> {
        Err(super::no_affinity())
    }
}

#[cfg(not(unix))]
mod platform {
    use super::{Sample, TreeUsage};

    pub(super) fn sample_tree(_root: u32) -> Option<Sample> {
        None
    }

    pub(super) fn allowed_cpus() -> std::io::Result<Vec<usize>> {
        Err(super::no_affinity())
    }

    pub(super) fn pin_this_thread(_: &[usize]) -> std::io::Result<()> {
        Err(super::no_affinity())
    }

    pub(super) fn children_usage() -> Option<()> {
        None
    }

    pub(super) fn usage_between(_: Option<()>, _: Option<()>) -> TreeUsage {
        TreeUsage::default()
    }
}

#[cfg(unix)]
mod unix {
    use nix::sys::resource::{Usage, UsageWho, getrusage};

    use super::TreeUsage;

    pub(crate) fn children_usage() -> Option<Usage> {
        getrusage(UsageWho::RUSAGE_CHILDREN).ok()
    }

    fn secs(t: nix::sys::time::TimeVal) -> f64 {
        t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6
    }

    /// What the children reaped between `before` and `after` used.
    pub(crate) fn usage_between(before: Option<Usage>, after: Option<Usage>) -> TreeUsage {
        let (Some(b), Some(a)) = (before, after) else {
            return TreeUsage::default();
        };
        let count =
            |x: std::ffi::c_long, y: std::ffi::c_long| u64::try_from(y.saturating_sub(x)).ok();
        TreeUsage {
            cpu_user_s: Some((secs(a.user_time()) - secs(b.user_time())).max(0.0)),
            cpu_sys_s: Some((secs(a.system_time()) - secs(b.system_time())).max(0.0)),
            voluntary_ctx_switches: count(
                b.voluntary_context_switches(),
                a.voluntary_context_switches(),
            ),
            involuntary_ctx_switches: count(
                b.involuntary_context_switches(),
                a.involuntary_context_switches(),
            ),
            ..TreeUsage::default()
        }
    }
}
