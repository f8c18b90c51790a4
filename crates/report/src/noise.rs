//! Other work on the machine while a scenario is measured: the machine's
//! busy CPU time (`/proc/stat`, every CPU, steal included) against what the
//! measurement itself used (this process, which hosts the embedded server,
//! and every measured run's process tree, reaped). The difference, as a
//! share of the machine, is what a load average misses on a VM.

use std::time::Instant;

use rates_measure::Busy;

/// Counters taken when measuring began.
#[derive(Debug)]
pub(crate) struct Watch {
    start: Instant,
    machine: Option<f64>,
    ours: Option<f64>,
}

impl Watch {
    /// Starts watching now.
    pub(crate) fn start() -> Self {
        Self {
            start: Instant::now(),
            machine: machine().map(|(busy, _)| busy),
            ours: measuring_s(),
        }
    }

    /// What other work took since the start, of every CPU of the machine
    /// (not only those this process may use); `None` where the counters
    /// cannot be read.
    pub(crate) fn finish(&self) -> Option<Busy> {
        let (busy, cores) = machine()?;
        let ours = measuring_s()? - self.ours?;
        Some(Busy::judge(
            self.start.elapsed().as_secs_f64(),
            busy - self.machine?,
            ours,
            cores,
        ))
    }
}

/// Seconds every CPU of the machine has spent busy since boot, and how
/// many CPUs it has.
#[cfg(target_os = "linux")]
fn machine() -> Option<(f64, usize)> {
    use procfs::{CurrentSI as _, KernelStats};
    let stats = KernelStats::current().ok()?;
    let t = stats.total;
    let ticks = t.user
        + t.nice
        + t.system
        + t.irq.unwrap_or(0)
        + t.softirq.unwrap_or(0)
        + t.steal.unwrap_or(0);
    Some((
        ticks as f64 / procfs::ticks_per_second() as f64,
        stats.cpu_time.len(),
    ))
}

#[cfg(not(target_os = "linux"))]
fn machine() -> Option<(f64, usize)> {
    None
}

/// CPU seconds of this process and of its children reaped so far.
fn measuring_s() -> Option<f64> {
    use nix::sys::resource::{UsageWho, getrusage};
    let secs = |who| {
        getrusage(who).ok().map(|u| {
            let tv = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
            tv(u.user_time()) + tv(u.system_time())
        })
    };
    Some(secs(UsageWho::RUSAGE_SELF)? + secs(UsageWho::RUSAGE_CHILDREN)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn the_counters_move_with_work_done_here() {
        let watch = Watch::start();
        // About 200 ms of CPU of our own: counted as the measurement's.
        rates_core::Work::calibrated(std::time::Duration::from_millis(200)).run(b"x");
        let busy = watch
            .finish()
            .expect("/proc/stat and getrusage are readable");
        assert!(busy.measuring_cpu_s >= 0.1, "{busy:?}");
        assert!(busy.machine_cpu_s > 0.0, "{busy:?}");
        assert!((0.0..=1.0).contains(&busy.other_share), "{busy:?}");
    }
}
