//! What the machine allows a run: OS threads and open files.
//!
//! A strategy that starts an OS thread per request in flight, or holds a
//! connection per request in flight, hits OS limits long before it runs out
//! of bases to fetch. Some of those limits fail cleanly (`spawn` returns an
//! error, `connect` gets `EMFILE`), but one does not: past
//! `vm.max_map_count`, a new thread's `spawn` succeeds and the thread then
//! cannot map its signal stack, which std treats as fatal (the whole
//! process aborts). So the limits are read *before* anything starts, and a
//! run is capped under them with the reason in its report.
//!
//! [`MachineLimits::read`] reads them (Linux: `/proc` and `getrlimit`;
//! elsewhere every limit is unknown and a conservative default applies).
//! The arithmetic on them ([`MachineLimits::thread_budget`],
//! [`plan_open_files`]) is pure, so it is tested on constructed inputs.
//!
//! ```
//! use rates_core::limits::MachineLimits;
//!
//! let limits = MachineLimits {
//!     max_map_count: Some(65_530),
//!     maps_in_use: Some(530),
//!     ..MachineLimits::default()
//! };
//! let budget = limits.thread_budget(256 * 1024);
//! assert_eq!(budget.max, 14_625); // 90% of the 65,000 free map entries, 4 per thread
//! assert!(budget.why.contains("vm.max_map_count"));
//! ```

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::Config;

/// Memory map entries one thread costs: its stack and the stack's guard
/// page, and the signal stack std maps for it and that stack's guard page.
pub const MAPS_PER_THREAD: u64 = 4;

/// Resident memory budgeted per thread: its touched stack pages and a
/// blocking HTTP client's buffers. Measured at about 26 KiB a thread (787 MiB
/// for 30,000 threads); budgeted at more than twice that.
pub const RESIDENT_PER_THREAD: u64 = 64 * 1024;

/// The stack std gives a thread unless told otherwise (and so the threads
/// of `pool` and `rayon`): 2 MiB.
pub const DEFAULT_STACK_SIZE: usize = 2 << 20;

/// Threads allowed when no limit can be read (not Linux): enough for every
/// scenario, far from any default OS limit.
pub const UNKNOWN_THREAD_BUDGET: usize = 4_096;

/// File descriptors kept free for everything but connections: the
/// standard streams, pipes, epoll instances, the runtime's own.
pub const RESERVED_FILES: u64 = 64;

/// The OS limits that bound how many threads and connections a run can
/// hold, as read at one moment. `None` is "no limit" or "unknown".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MachineLimits {
    /// `kernel.threads-max`: threads the whole system may hold.
    pub threads_max: Option<u64>,
    /// Threads the whole system holds now (`/proc/loadavg`).
    pub threads_in_use: Option<u64>,
    /// `RLIMIT_NPROC` (`ulimit -u`), soft: processes and threads of this
    /// user. Counted against every thread of the system, which is an upper
    /// bound of this user's.
    pub nproc: Option<u64>,
    /// `vm.max_map_count`: memory map entries one process may hold.
    pub max_map_count: Option<u64>,
    /// Map entries this process holds now (`/proc/self/maps`).
    pub maps_in_use: Option<u64>,
    /// `MemAvailable` from `/proc/meminfo`, bytes.
    pub available_memory: Option<u64>,
    /// `RLIMIT_AS` (`ulimit -v`), soft, bytes of address space.
    pub address_space: Option<u64>,
    /// `RLIMIT_NOFILE` (`ulimit -n`): (soft, hard).
    pub open_files: Option<(u64, u64)>,
    /// File descriptors this process holds now (`/proc/self/fd`).
    pub files_in_use: Option<u64>,
    /// Descriptors one client connection costs this process: 2 while a
    /// server runs in it (it holds the other end, see
    /// [`ServerInProcess`]), else 1 (0 reads as 1).
    pub files_per_connection: u64,
}

/// How many servers this process holds ([`ServerInProcess`]).
static SERVERS_IN_PROCESS: AtomicUsize = AtomicUsize::new(0);

/// A server running in this process, as long as this lives: every
/// connection a client of this process makes to it costs two descriptors
/// of the process's open-files limit, not one. An embedded server holds
/// one while it runs.
#[derive(Debug)]
#[must_use = "the server counts while this lives"]
pub struct ServerInProcess(());

impl ServerInProcess {
    /// Counts a server in this process until the result is dropped.
    pub fn count() -> Self {
        SERVERS_IN_PROCESS.fetch_add(1, Ordering::Relaxed);
        Self(())
    }
}

impl Drop for ServerInProcess {
    fn drop(&mut self) {
        SERVERS_IN_PROCESS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How many threads a run may start at once, and which limit says so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadBudget {
    /// At most this many threads at once (at least 1).
    pub max: usize,
    /// The binding limit, with its figures and how to raise it.
    pub why: String,
}

impl fmt::Display for ThreadBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at most {} threads: {}", self.max, self.why)
    }
}

impl MachineLimits {
    /// Reads the limits of this machine and process now. On other systems
    /// than Linux every limit is unknown.
    pub fn read() -> Self {
        #[cfg(target_os = "linux")]
        let mut limits = linux::read();
        #[cfg(not(target_os = "linux"))]
        let mut limits = Self::default();
        limits.files_per_connection = 1 + u64::from(SERVERS_IN_PROCESS.load(Ordering::Relaxed) > 0);
        limits
    }

    /// Whether no limit at all is known (not Linux, or `/proc` unreadable).
    pub fn is_unknown(&self) -> bool {
        Self {
            files_per_connection: 0,
            ..self.clone()
        } == Self::default()
    }

    /// How many more threads with `stack_size`-byte stacks this process can
    /// start and hold at once, with headroom: 90% of what each limit leaves
    /// free, the smallest of them. Open files are not counted here (see
    /// [`plan_open_files`]): a thread without a connection costs none.
    pub fn thread_budget(&self, stack_size: usize) -> ThreadBudget {
        let mut best: Option<(u64, String)> = None;
        let mut consider = |max: u64, why: String| {
            if best.as_ref().is_none_or(|(b, _)| max < *b) {
                best = Some((max, why));
            }
        };
        let free = |limit: u64, used: Option<u64>| limit.saturating_sub(used.unwrap_or(0)) / 10 * 9;
        if let Some(max) = self.max_map_count {
            consider(
                free(max, self.maps_in_use) / MAPS_PER_THREAD,
                format!(
                    "vm.max_map_count is {max} ({} in use) and each thread takes \
                     {MAPS_PER_THREAD} memory maps (stack, guard page, signal stack and its \
                     guard); raise it with `sysctl -w vm.max_map_count=N`",
                    self.maps_in_use.unwrap_or(0)
                ),
            );
        }
        if let Some(max) = self.threads_max {
            consider(
                free(max, self.threads_in_use),
                format!(
                    "kernel.threads-max is {max} ({} threads running on the system); raise it \
                     with `sysctl -w kernel.threads-max=N`",
                    self.threads_in_use.unwrap_or(0)
                ),
            );
        }
        if let Some(max) = self.nproc {
            consider(
                free(max, self.threads_in_use),
                format!(
                    "the per-user process and thread limit (ulimit -u) is {max} ({} threads \
                     running on the system); raise it with `ulimit -u`",
                    self.threads_in_use.unwrap_or(0)
                ),
            );
        }
        if let Some(bytes) = self.available_memory {
            consider(
                bytes / 2 / RESIDENT_PER_THREAD,
                format!(
                    "{} MiB of memory is available and a thread is budgeted {} KiB resident \
                     (half the available memory at most)",
                    bytes >> 20,
                    RESIDENT_PER_THREAD >> 10
                ),
            );
        }
        if let Some(bytes) = self.address_space {
            let stack = (stack_size as u64).max(16 * 1024);
            consider(
                bytes / 2 / stack,
                format!(
                    "the address space limit (ulimit -v) is {} MiB and each thread reserves a \
                     {} KiB stack (half the address space at most); raise it with `ulimit -v`",
                    bytes >> 20,
                    stack >> 10
                ),
            );
        }
        let (max, why) = best.unwrap_or_else(|| {
            (
                UNKNOWN_THREAD_BUDGET as u64,
                format!(
                    "the OS limits on threads cannot be read on this system, so at most \
                     {UNKNOWN_THREAD_BUDGET} are started at once"
                ),
            )
        });
        ThreadBudget {
            max: usize::try_from(max).unwrap_or(usize::MAX).max(1),
            why,
        }
    }
}

/// How many of `asked` OS threads, each holding one connection, a run
/// under `config` may hold at once within `limits`: `None` when all of them
/// fit, else the cap and the binding limit. It takes the smallest of the
/// machine's [`thread_budget`](MachineLimits::thread_budget), the open
/// files once the soft limit is raised to the hard one
/// ([`plan_open_files`]), and [`Config::max_threads`].
pub fn thread_cap_under(
    limits: &MachineLimits,
    asked: usize,
    stack_size: usize,
    config: &Config,
) -> Option<ThreadBudget> {
    let mut budget = limits.thread_budget(stack_size);
    if let Some((soft, hard)) = limits.open_files {
        let plan = plan_open_files(
            asked.min(budget.max),
            limits.files_per_connection,
            limits.files_in_use.unwrap_or(0),
            soft,
            hard,
        );
        if let Some(why) = plan.why.filter(|_| plan.connections < budget.max) {
            budget = ThreadBudget {
                max: plan.connections,
                why: format!("each thread holds a connection and {why}"),
            };
        }
    }
    if let Some(max) = config.max_threads.filter(|&m| m < budget.max) {
        budget = ThreadBudget {
            max: max.max(1),
            why: format!("the configured thread limit is {max} (max_threads)"),
        };
    }
    (asked > budget.max).then_some(budget)
}

/// What to do about the open-files limit before holding `wanted`
/// connections: see [`plan_open_files`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenFilesPlan {
    /// Raise the soft limit to this first (never above the hard limit).
    pub raise_to: Option<u64>,
    /// Connections that fit once raised: `wanted`, or fewer.
    pub connections: usize,
    /// Why fewer than `wanted` fit, naming the limit and the way out.
    pub why: Option<String>,
}

/// Plans for holding `wanted` connections of `files_each` descriptors
/// each (two when the server shares the process), with `in_use`
/// descriptors already open, under the open-files limit (`soft`, `hard`):
/// raise the soft limit as far as needed (at most to the hard one), and
/// cap the connections when even the hard limit is too low.
/// [`RESERVED_FILES`] descriptors are kept free for everything else.
///
/// ```
/// use rates_core::limits::plan_open_files;
///
/// // 1,000 connections fit under a soft limit of 1,024 raised to 4,096.
/// let plan = plan_open_files(1_000, 1, 10, 1_024, 4_096);
/// assert_eq!((plan.raise_to, plan.connections), (Some(1_074), 1_000));
/// // 10,000 do not: capped under the hard limit, with the reason.
/// let plan = plan_open_files(10_000, 1, 10, 1_024, 4_096);
/// assert_eq!((plan.raise_to, plan.connections), (Some(4_096), 4_022));
/// assert!(plan.why.unwrap().contains("ulimit -n"));
/// ```
pub fn plan_open_files(
    wanted: usize,
    files_each: u64,
    in_use: u64,
    soft: u64,
    hard: u64,
) -> OpenFilesPlan {
    let files_each = files_each.max(1);
    let needed = (wanted as u64)
        .saturating_mul(files_each)
        .saturating_add(in_use)
        .saturating_add(RESERVED_FILES);
    let limit = needed.min(hard.max(soft));
    let raise_to = (limit > soft).then_some(limit);
    if needed <= limit {
        return OpenFilesPlan {
            raise_to,
            connections: wanted,
            why: None,
        };
    }
    let fit = limit.saturating_sub(in_use + RESERVED_FILES) / files_each;
    let connections = usize::try_from(fit).unwrap_or(usize::MAX).max(1);
    OpenFilesPlan {
        raise_to,
        connections,
        why: Some(format!(
            "the open-files limit (ulimit -n) is {hard} at most and {wanted} connections \
             need {needed} descriptors ({files_each} each{}, {in_use} already open, \
             {RESERVED_FILES} kept free), so at most {connections} are held at once; raise \
             the hard limit (`ulimit -Hn`, or LimitNOFILE= for a service) to hold them all",
            if files_each > 1 {
                ": the server shares this process"
            } else {
                ""
            }
        )),
    }
}

/// Raises the soft open-files limit to `to` (a [`Plan`]'s
/// `raise_open_files_to`), keeping the hard limit.
///
/// [`Plan`]: crate::plan::Plan
///
/// # Errors
/// The OS refused; the message says why.
pub fn raise_soft_open_files(to: u64) -> Result<(), String> {
    raise_open_files(to)
}

#[cfg(target_os = "linux")]
fn raise_open_files(soft: u64) -> Result<(), String> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| e.to_string())?;
    setrlimit(Resource::RLIMIT_NOFILE, soft.min(hard), hard).map_err(|e| e.to_string())
}

#[cfg(not(target_os = "linux"))]
fn raise_open_files(_soft: u64) -> Result<(), String> {
    Err("not supported on this system".to_owned())
}

#[cfg(target_os = "linux")]
mod linux {
    use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit};

    use super::MachineLimits;

    pub(super) fn read() -> MachineLimits {
        let rlimit = |r: Resource| getrlimit(r).ok();
        let finite = |v: u64| (v != RLIM_INFINITY).then_some(v);
        MachineLimits {
            threads_max: number("/proc/sys/kernel/threads-max"),
            threads_in_use: std::fs::read_to_string("/proc/loadavg")
                .ok()
                .and_then(|s| threads_in_loadavg(&s)),
            nproc: rlimit(Resource::RLIMIT_NPROC).and_then(|(soft, _)| finite(soft)),
            max_map_count: number("/proc/sys/vm/max_map_count"),
            maps_in_use: std::fs::read("/proc/self/maps")
                .ok()
                .map(|b| b.iter().filter(|&&c| c == b'\n').count() as u64),
            available_memory: std::fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|s| available_in_meminfo(&s)),
            address_space: rlimit(Resource::RLIMIT_AS).and_then(|(soft, _)| finite(soft)),
            open_files: rlimit(Resource::RLIMIT_NOFILE),
            files_in_use: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as u64),
            files_per_connection: 1,
        }
    }

    fn number(path: &str) -> Option<u64> {
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    }

    /// The fourth field of `/proc/loadavg` is `running/total` threads.
    pub(super) fn threads_in_loadavg(s: &str) -> Option<u64> {
        s.split_whitespace().nth(3)?.split_once('/')?.1.parse().ok()
    }

    pub(super) fn available_in_meminfo(s: &str) -> Option<u64> {
        let line = s.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_limit_binds_and_is_named() {
        let limits = MachineLimits {
            threads_max: Some(192_730),
            threads_in_use: Some(111),
            nproc: Some(96_365),
            max_map_count: Some(65_530),
            maps_in_use: Some(330),
            available_memory: Some(24 << 30),
            address_space: None,
            open_files: Some((20_000, 20_000)),
            files_in_use: Some(5),
            files_per_connection: 1,
        };
        let budget = limits.thread_budget(256 * 1024);
        // (65,530 - 330) / 10 * 9 / 4
        assert_eq!(budget.max, 14_670);
        assert!(budget.why.contains("vm.max_map_count is 65530"), "{budget}");
        assert!(budget.why.contains("sysctl"), "{budget}");

        let fewer_users = MachineLimits {
            nproc: Some(1_111),
            ..limits.clone()
        };
        let budget = fewer_users.thread_budget(256 * 1024);
        assert_eq!(budget.max, 900);
        assert!(budget.why.contains("ulimit -u"), "{budget}");

        let little_memory = MachineLimits {
            available_memory: Some(256 << 20),
            ..limits.clone()
        };
        let budget = little_memory.thread_budget(256 * 1024);
        assert_eq!(budget.max, 2_048);
        assert!(budget.why.contains("256 MiB"), "{budget}");

        let small_address_space = MachineLimits {
            address_space: Some(1 << 30),
            ..limits
        };
        let budget = small_address_space.thread_budget(256 * 1024);
        assert_eq!(budget.max, 2_048);
        assert!(budget.why.contains("ulimit -v"), "{budget}");
    }

    #[test]
    fn exhausted_limits_still_allow_one_thread() {
        let limits = MachineLimits {
            threads_max: Some(100),
            threads_in_use: Some(5_000),
            ..MachineLimits::default()
        };
        assert_eq!(limits.thread_budget(1 << 20).max, 1);
    }

    #[test]
    fn unknown_limits_give_a_conservative_budget_that_says_so() {
        let limits = MachineLimits::default();
        assert!(limits.is_unknown());
        let budget = limits.thread_budget(256 * 1024);
        assert_eq!(budget.max, UNKNOWN_THREAD_BUDGET);
        assert!(budget.why.contains("cannot be read"), "{budget}");
    }

    #[test]
    fn open_files_enough_raise_or_cap() {
        // Enough already: nothing to do.
        let plan = plan_open_files(100, 1, 10, 1_024, 4_096);
        assert_eq!(
            plan,
            OpenFilesPlan {
                raise_to: None,
                connections: 100,
                why: None
            }
        );
        // The hard limit suffices: raise the soft one just that far.
        let plan = plan_open_files(2_000, 2, 10, 1_024, 1 << 20);
        assert_eq!(plan.raise_to, Some(4_074));
        assert_eq!(plan.connections, 2_000);
        assert_eq!(plan.why, None);
        // It does not: raise to the hard limit and cap under it.
        let plan = plan_open_files(100_000, 2, 10, 1_024, 20_000);
        assert_eq!(plan.raise_to, Some(20_000));
        assert_eq!(plan.connections, (20_000 - 10 - 64) / 2);
        let why = plan.why.unwrap();
        assert!(why.contains("ulimit -n") && why.contains("100000"), "{why}");
        assert!(why.contains("shares this process"), "{why}");
        // Soft already at the hard limit: no raise, just the cap.
        let plan = plan_open_files(30_000, 1, 0, 20_000, 20_000);
        assert_eq!(plan.raise_to, None);
        assert_eq!(plan.connections, 20_000 - 64);
        // Nothing left at all still allows one connection.
        assert_eq!(plan_open_files(10, 1, 5_000, 100, 100).connections, 1);
    }

    #[test]
    fn the_thread_cap_counts_files_and_the_configured_limit() {
        let limits = MachineLimits {
            max_map_count: Some(65_530),
            maps_in_use: Some(330),
            open_files: Some((1_024, 20_000)),
            files_in_use: Some(10),
            ..MachineLimits::default()
        };
        let config = Config::new("http://127.0.0.1:1/?b={base}").unwrap();
        let cap = |asked, config: &Config| thread_cap_under(&limits, asked, 256 * 1024, config);
        assert_eq!(
            cap(10_000, &config),
            None,
            "fits: the soft limit gets raised"
        );
        let by_maps = cap(60_000, &config).unwrap();
        assert_eq!(by_maps.max, 14_670);
        assert!(by_maps.why.contains("vm.max_map_count"), "{by_maps}");

        let shared = MachineLimits {
            files_per_connection: 2,
            ..limits.clone()
        };
        let by_files = thread_cap_under(&shared, 60_000, 256 * 1024, &config).unwrap();
        assert_eq!(by_files.max, (20_000 - 10 - 64) / 2);
        assert!(by_files.why.contains("ulimit -n"), "{by_files}");
        assert_eq!(thread_cap_under(&shared, 9_963, 256 * 1024, &config), None);

        let configured = config.with_max_threads(Some(500));
        let by_config = cap(2_000, &configured).unwrap();
        assert_eq!(by_config.max, 500);
        assert!(by_config.why.contains("max_threads"), "{by_config}");
        assert_eq!(cap(500, &configured), None);
    }

    #[test]
    fn a_server_in_this_process_doubles_what_a_connection_costs() {
        let before = MachineLimits::read().files_per_connection;
        let server = ServerInProcess::count();
        assert_eq!(MachineLimits::read().files_per_connection, 2);
        drop(server);
        assert_eq!(MachineLimits::read().files_per_connection, before);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn proc_files_are_parsed() {
        assert_eq!(
            linux::threads_in_loadavg("0.89 1.91 3.31 2/111 4535\n"),
            Some(111)
        );
        assert_eq!(linux::threads_in_loadavg("garbage"), None);
        assert_eq!(
            linux::available_in_meminfo("MemTotal: 10 kB\nMemAvailable:   2048 kB\n"),
            Some(2 << 20)
        );
        let here = MachineLimits::read();
        assert!(here.open_files.is_some(), "{here:?}");
        assert!(here.maps_in_use.unwrap_or(0) > 0, "{here:?}");
        assert!(here.thread_budget(256 * 1024).max >= 1);
    }
}
