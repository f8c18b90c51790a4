//! This process's CPU time and peak memory.

use std::time::Duration;

/// CPU time and peak resident memory of this process so far.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Usage {
    pub(crate) user: Duration,
    pub(crate) system: Duration,
    pub(crate) peak_rss_bytes: u64,
}

impl Usage {
    /// Now, or `None` where the platform cannot say.
    pub(crate) fn now() -> Option<Self> {
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
pub(crate) fn own_peak_rss() -> Option<u64> {
    procfs::process::Process::myself()
        .ok()?
        .status()
        .ok()?
        .vmhwm
        .map(|kb| kb * 1024)
}

/// Not available off Linux.
#[cfg(not(target_os = "linux"))]
pub(crate) fn own_peak_rss() -> Option<u64> {
    None
}
