//! This process's CPU time and peak memory, what it has alive (threads,
//! child processes, sockets), and ending it with its parent.

use std::time::Duration;

/// CPU time and peak resident memory of this process so far.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    /// CPU time in user mode.
    pub user: Duration,
    /// CPU time in the kernel.
    pub system: Duration,
    /// The largest resident set so far, bytes.
    pub peak_rss_bytes: u64,
}

/// The syscalls of this process from the moment it is started (`rates fetch
/// --resources`, started before the runtime's threads), or why they cannot
/// be counted.
#[derive(Debug)]
pub struct Syscalls(Result<rates_measure::OwnSyscalls, String>);

impl Syscalls {
    /// Starts counting this thread's syscalls and those of every thread
    /// and process it starts from now on.
    pub fn start() -> Self {
        Self(rates_measure::OwnSyscalls::start())
    }

    /// The count so far, or why there is none.
    ///
    /// # Errors
    /// The reason the counter could not be opened or read, with the fix.
    pub fn read(&mut self) -> Result<u64, String> {
        match &mut self.0 {
            Ok(c) => c.read(),
            Err(why) => Err(why.clone()),
        }
    }
}

impl Usage {
    /// Now, or `None` where the platform cannot say.
    pub fn now() -> Option<Self> {
        use nix::sys::resource::{UsageWho, getrusage};
        let u = getrusage(UsageWho::RUSAGE_SELF).ok()?;
        let tv = |t: nix::sys::time::TimeVal| {
            Duration::from_secs(u64::try_from(t.tv_sec()).unwrap_or(0))
                + Duration::from_micros(u64::try_from(t.tv_usec()).unwrap_or(0))
        };
        Some(Self {
            user: tv(u.user_time()),
            system: tv(u.system_time()),
            peak_rss_bytes: own_peak_rss().unwrap_or_else(|| {
                // ru_maxrss is in KiB on Linux; after an exec it also counts
                // the peak of the process that spawned this one, which is
                // why VmHWM is preferred where there is one.
                u64::try_from(u.max_rss()).unwrap_or(0) * 1024
            }),
        })
    }
}

/// This process's own peak resident memory (`VmHWM`: the high-water mark
/// of its address space, which starts afresh at exec).
#[cfg(target_os = "linux")]
pub fn own_peak_rss() -> Option<u64> {
    procfs::process::Process::myself()
        .ok()?
        .status()
        .ok()?
        .vmhwm
        .map(|kb| kb * 1024)
}

/// Not available off Linux.
#[cfg(not(target_os = "linux"))]
pub fn own_peak_rss() -> Option<u64> {
    None
}

/// What this process has alive: threads, child processes, open sockets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Alive {
    /// Each thread's name (`comm`).
    threads: Vec<String>,
    processes: u64,
    sockets: u64,
}

#[cfg(target_os = "linux")]
impl Alive {
    /// Now, from /proc; `None` where it cannot be read.
    pub fn now() -> Option<Self> {
        let me = procfs::process::Process::myself().ok()?;
        let threads = me
            .tasks()
            .ok()?
            .flatten()
            .filter_map(|t| t.stat().ok().map(|s| s.comm))
            .collect();
        let pid = me.pid;
        let processes = procfs::process::all_processes()
            .ok()?
            .flatten()
            .filter_map(|p| p.stat().ok())
            .filter(|s| s.ppid == pid)
            .count() as u64;
        let sockets = me
            .fd()
            .ok()?
            .flatten()
            .filter(|fd| matches!(fd.target, procfs::process::FDTarget::Socket(_)))
            .count() as u64;
        Some(Self {
            threads,
            processes,
            sockets,
        })
    }
}

#[cfg(not(target_os = "linux"))]
impl Alive {
    /// Unavailable off Linux.
    pub fn now() -> Option<Self> {
        None
    }
}

impl Alive {
    /// What is alive now beyond `before`, not counting the threads named
    /// `kept*` (a runtime pool the strategy keeps for its next run), which
    /// are named with their count instead.
    pub fn beyond(&self, before: &Self, kept: Option<&str>) -> rates_measure::Leftovers {
        // The kernel keeps the first 15 bytes of a thread's name.
        let is_kept = |name: &String| kept.is_some_and(|k| name.starts_with(&k[..k.len().min(15)]));
        let count = |a: &Self| a.threads.iter().filter(|n| !is_kept(n)).count() as u64;
        let kept_now = self.threads.iter().filter(|n| is_kept(n)).count() as u64;
        rates_measure::Leftovers {
            threads: count(self).saturating_sub(count(before)),
            processes: self.processes.saturating_sub(before.processes),
            sockets: self.sockets.saturating_sub(before.sockets),
            kept: kept
                .filter(|_| kept_now > 0)
                .map(|k| (k.to_owned(), kept_now)),
        }
    }
}

/// Has the kernel kill this process (SIGKILL) when the thread that started
/// it ends: a measured child is started by its comparison's main thread, so
/// when the comparison is killed its run goes too, rather than going on
/// against a server that is gone (its `process` workers then see their
/// input close, and exit). `parent` is the pid the parent gave: if this
/// process is already another's child, the parent died before the request
/// took hold, and this process exits now. No thread is needed for it.
#[cfg(target_os = "linux")]
pub fn die_with_parent(parent: Option<u32>) {
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    if parent.is_some_and(|p| p != std::os::unix::process::parent_id()) {
        std::process::exit(3);
    }
}

/// Off Linux, the child outlives a killed parent until its run ends.
#[cfg(not(target_os = "linux"))]
pub fn die_with_parent(_parent: Option<u32>) {}
