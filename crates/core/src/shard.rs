//! Thread-per-core: a run dealt to shards up front, one thread per shard,
//! each pinned to a core of its own, with no stealing between them.
//!
//! [`deal`] splits a run's bases and its concurrency across the shards;
//! [`run_shards`] starts one thread per shard, pins it where the thread's
//! affinity allows, runs the shard's part on it and joins them all. The
//! `sharded` strategy (tokio's current-thread runtime on each shard) and
//! the compio strategies are this, each with its own runtime per thread.
//!
//! # Examples
//!
//! ```
//! use rates_core::shard::{Share, deal};
//!
//! // 5 in flight over 2 cores: 3 and 2; shard 1 takes bases 1, 3, 5, ...
//! let shares = deal(5, 100, 2);
//! assert_eq!(shares.iter().map(|s| s.concurrency).collect::<Vec<_>>(), [3, 2]);
//! assert_eq!(shares[1].base(2), Some(5));
//! assert_eq!(shares[1].bases(100), 50);
//! // Never more shards than requests in flight or bases.
//! assert_eq!(deal(1, 100, 8), [Share::whole(1)]);
//! ```

use std::thread;

use crate::{Error, ErrorKind};

/// One shard's part of a run: the bases `index`, `index + of`,
/// `index + 2 * of`, ... and at most `concurrency` of them in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    /// This shard's number, from 0.
    pub index: usize,
    /// How many shards the run is dealt to.
    pub of: usize,
    /// Requests this shard holds in flight at most (at least 1).
    pub concurrency: usize,
}

impl Share {
    /// The whole run as one shard.
    pub fn whole(concurrency: usize) -> Self {
        Self {
            index: 0,
            of: 1,
            concurrency: concurrency.max(1),
        }
    }

    /// The index (in the run's bases) of this shard's `n`-th base, where
    /// the run has at least that many; the caller checks it against the
    /// run's length.
    pub fn base(&self, n: usize) -> Option<usize> {
        n.checked_mul(self.of)?.checked_add(self.index)
    }

    /// How many of a run's `len` bases are this shard's.
    pub fn bases(&self, len: usize) -> usize {
        len.saturating_sub(self.index).div_ceil(self.of.max(1))
    }
}

/// Deals a run of `bases` bases at `concurrency` in flight to `shards`
/// shards (one per core, say): never more shards than requests in flight
/// or bases, the concurrency split as evenly as it goes (the first shards
/// take one more), the bases dealt in turn. Always at least one share.
pub fn deal(concurrency: usize, bases: usize, shards: usize) -> Vec<Share> {
    let concurrency = concurrency.max(1);
    let n = shards.min(concurrency).min(bases).max(1);
    (0..n)
        .map(|index| Share {
            index,
            of: n,
            concurrency: concurrency / n + usize::from(index < concurrency % n),
        })
        .collect()
}

/// The CPUs this thread may run on (its affinity mask), in order; one per
/// core the machine reports where the mask cannot be read.
pub fn cpus() -> Vec<usize> {
    #[cfg(target_os = "linux")]
    {
        use nix::sched::{CpuSet, sched_getaffinity};
        use nix::unistd::Pid;
        if let Ok(set) = sched_getaffinity(Pid::from_raw(0)) {
            let cpus: Vec<usize> = (0..CpuSet::count())
                .filter(|&c| set.is_set(c).unwrap_or(false))
                .collect();
            if !cpus.is_empty() {
                return cpus;
            }
        }
    }
    (0..thread::available_parallelism().map_or(1, usize::from)).collect()
}

/// Pins the calling thread to `cpu`; false where the system refuses (the
/// CPU is outside the process's mask, or not Linux), and the thread runs
/// wherever the scheduler puts it.
pub fn pin_to(cpu: usize) -> bool {
    #[cfg(target_os = "linux")]
    {
        use nix::sched::{CpuSet, sched_setaffinity};
        use nix::unistd::Pid;
        let mut set = CpuSet::new();
        set.set(cpu).is_ok() && sched_setaffinity(Pid::from_raw(0), &set).is_ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = cpu;
        false
    }
}

/// Runs `shard` for each of `shares` on a thread of its own, named
/// `{name}-{index}` and pinned to the `index`-th CPU of the caller's
/// affinity mask (in turn, when there are more shards than CPUs), and
/// joins them all before it returns: nothing of the run outlives it.
///
/// A shard whose thread cannot be started runs on the calling thread
/// after the others have started (unpinned: the caller's own mask is left
/// as it was), so every base is still fetched.
///
/// # Errors
/// The first error a shard returns; a shard that panics is a
/// [`Runtime`](ErrorKind::Runtime) error (its bases are left for the
/// report to read as a worker crash).
pub fn run_shards<F>(name: &str, shares: &[Share], shard: F) -> Result<(), Error>
where
    F: Fn(Share) -> Result<(), Error> + Sync,
{
    let cpus = cpus();
    let shard = &shard;
    thread::scope(|scope| {
        let mut threads = Vec::with_capacity(shares.len());
        let mut inline = Vec::new();
        for &share in shares {
            let cpu = cpus[share.index % cpus.len()];
            let started = thread::Builder::new()
                .name(format!("{name}-{}", share.index))
                .spawn_scoped(scope, move || {
                    pin_to(cpu);
                    shard(share)
                });
            match started {
                Ok(handle) => threads.push(handle),
                Err(_) => inline.push(share),
            }
        }
        let mut result = inline.into_iter().try_for_each(shard);
        for handle in threads {
            let joined = handle.join().unwrap_or_else(|payload| {
                Err(Error::new(
                    ErrorKind::Runtime,
                    format!(
                        "a {name} shard's thread panicked: {}",
                        crate::panic_error(&*payload)
                    ),
                ))
            });
            if result.is_ok() {
                result = joined;
            }
        }
        result
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn every_base_is_dealt_to_exactly_one_shard() {
        for (concurrency, bases, cores) in
            [(64, 1000, 2), (5, 7, 3), (3, 2, 8), (1, 1, 1), (10, 10, 4)]
        {
            let shares = deal(concurrency, bases, cores);
            assert!(shares.len() <= cores.min(concurrency).min(bases));
            assert_eq!(
                shares.iter().map(|s| s.concurrency).sum::<usize>(),
                concurrency
            );
            assert!(shares.iter().all(|s| s.concurrency >= 1));
            let mut seen = vec![0; bases];
            for share in &shares {
                let mut n = 0;
                while let Some(i) = share.base(n).filter(|&i| i < bases) {
                    seen[i] += 1;
                    n += 1;
                }
                assert_eq!(n, share.bases(bases), "{share:?}");
            }
            assert!(
                seen.iter().all(|&c| c == 1),
                "{concurrency} {bases} {cores}: {seen:?}"
            );
        }
    }

    #[test]
    fn shards_run_on_threads_of_their_own_and_are_joined() {
        let names = Mutex::new(Vec::new());
        let shares = deal(4, 100, 2);
        run_shards("rates-test-shard", &shares, |share| {
            let name = thread::current().name().map(str::to_owned);
            names.lock().unwrap().push((share.index, name));
            Ok(())
        })
        .unwrap();
        let mut names = names.into_inner().unwrap();
        names.sort();
        assert_eq!(
            names,
            [
                (0, Some("rates-test-shard-0".to_owned())),
                (1, Some("rates-test-shard-1".to_owned()))
            ]
        );
    }

    #[test]
    fn a_failing_or_panicking_shard_is_an_error() {
        let shares = deal(2, 10, 2);
        let err = run_shards("rates-test-fail", &shares, |share| {
            if share.index == 1 {
                panic!("shard one broke");
            }
            Ok(())
        })
        .unwrap_err();
        assert!(err.to_string().contains("shard one broke"), "{err}");
        let err = run_shards("rates-test-fail", &shares, |_| {
            Err(Error::new(ErrorKind::Runtime, "no runtime"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("no runtime"), "{err}");
    }
}
