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
    pub(crate) fn now() -> Self {
        // SAFETY: getrusage fills a struct we own; an all-zero rusage is valid.
        let usage = unsafe {
            let mut u: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_SELF, &mut u);
            u
        };
        let tv = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec.max(0) as u64)
                + Duration::from_micros(t.tv_usec.max(0) as u64)
        };
        Self {
            user: tv(usage.ru_utime),
            system: tv(usage.ru_stime),
            // Linux reports ru_maxrss in KiB.
            peak_rss_bytes: usage.ru_maxrss.max(0) as u64 * 1024,
        }
    }
}
