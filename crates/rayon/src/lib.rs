//! Rayon's data parallelism: `par_iter` over the bases on a dedicated pool.
//!
//! [`Rayon`] builds a `rayon::ThreadPool` of `concurrency` threads for the
//! run (never the global pool) and maps the bases through it with
//! `par_iter`, which keeps the outcomes in input order. Rayon is made for
//! CPU-bound work, and blocking I/O on its workers is usually the wrong
//! tool. It assumes a task keeps its thread busy: its global pool has one
//! thread per core, so a thread blocked on a socket is a core's worth of
//! capacity doing nothing, for every other rayon user in the process too;
//! and its idle workers hunt for work by spinning over every other worker's
//! queue before they sleep, which costs little with a few threads per core
//! and a great deal with hundreds. The numbers, on a 2-core machine:
//!
//! - On the global pool, `fanout` (500 bases, 20 ms, ideal 200 ms) takes
//!   about 5.2 s, 26 times the ideal, with only two requests ever in flight;
//!   `classic` takes 1.5 times its ideal.
//! - On a dedicated pool of 50, `fanout` takes 1.10 to 1.13 times the ideal,
//!   level with the std-only `pool` (the async runtimes: about 1.05), and
//!   `classic` is within 1.02 of its ideal.
//! - On a dedicated pool of 1,000 (`scale`: 10,000 bases, 50 ms), the idle
//!   workers' hunting burns about 18 s of CPU in one run where `pool` burns
//!   about 1 s, and the run takes 7 to 10 s against `pool`'s 1.7 s and
//!   tokio's 0.6 s.
//!
//! Past [`MAX_THREADS`] (1,000) the strategy caps its pool and says why.
//!
//! So rayon works here only as a plain, modest thread pool with no data
//! parallelism left to exploit. Each base is its own task
//! (`with_max_len(1)`), so no base waits in a chunk behind one sleeping out
//! a `Retry-After` while other threads are idle; rayon's adaptive splitting
//! usually splits that finely anyway, and the benches show no difference
//! either way. The pool is built per run rather than cached: a few dozen
//! threads start in well under a millisecond, no idle threads outlive the
//! run, and every run pays the same start-up as the other strategies. All
//! threads share one HTTP client (a keep-alive pool of `concurrency`
//! connections) and the rate limit's [`Throttle`]; a throttled thread sleeps
//! until its slot. A panic while fetching a base is caught and becomes that
//! base's outcome.
//!
//! ## Stopping
//!
//! When the run's [`Stop`](rates_core::Stop) fires, the tasks not begun
//! cancel their bases without sending, the socket of each request in flight
//! is shut down, and the pool's threads (started with std's builder for
//! this) are joined before `fetch` returns; rayon's own drop would only ask
//! them to end.
//!
//! ## Where it fits
//!
//! Level with `pool` at modest concurrency; at a thousand threads its idle
//! workers' hunting for work costs many times pool's CPU per request. Use
//! rayon for CPU-bound data parallelism, not as a pool of blocked threads.
//!
//! Measured figures (time, CPU, memory, threads, time to stop, on every
//! scenario), with the machine and the command that made them, are in the
//! repository's `results/` folder (its `README.md` says which run is which);
//! `rates compare` makes them afresh on any machine.
//!
//! # Examples
//!
//! ```
//! use rates_core::{Config, Strategy};
//! use rates_rayon::Rayon;
//! use rates_server::RatesServer;
//!
//! let server = RatesServer::start(Default::default())?;
//! let config = Config::new(&server.endpoint())?.with_concurrency(2);
//! let report = Rayon.fetch_codes(&["USD", "EUR", "PLN"], &config)?;
//! assert!(report.all_succeeded());
//! assert!(server.stats().peak_in_flight <= 2);
//! print!("{}", report.matrix(&config.symbols));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use rates_core::plan::{Cap, Shape};
use rates_core::{CurrencyCode, Error, ErrorKind, Outcome, Outcomes, Run, Strategy, Throttle};
use std::sync::{Arc, Mutex};

use rates_http::BlockingClient;
use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};

/// The rayon strategy (`rayon` in the registry).
#[derive(Clone, Copy, Debug, Default)]
pub struct Rayon;

impl Strategy for Rayon {
    fn name(&self) -> &'static str {
        "rayon"
    }

    fn shape(&self) -> Shape {
        Shape::Threads {
            cap: Some(Cap {
                most: MAX_THREADS,
                why: "past that its idle workers' hunting for work, not the network, sets the \
                      pace; use `pool` or an async strategy such as `tokio` for more in flight",
            }),
        }
    }

    fn run(&self, run: &Run<'_>) -> Result<Option<String>, Error> {
        let (config, outcomes) = (run.config, run.outcomes);
        let threads = run.plan.in_flight;
        let (pool, joins) = dedicated_pool(threads)?;
        let client = BlockingClient::new(config, threads);
        let throttle = Throttle::for_limit(config.rate_limit);
        fetch_all(&pool, outcomes, |base| {
            client.fetch(base, config, throttle.as_ref())
        });
        // Dropping a rayon pool only asks its threads to end: they are
        // joined here, so that none outlives the run.
        drop(pool);
        joins.join();
        Ok(None)
    }
}

/// The most threads the strategy gives its pool, whatever the concurrency.
///
/// Past about a thousand threads rayon's own scheduling (idle workers
/// hunting for work) costs more than the waiting it overlaps. Measured on 2
/// cores, 20,000 bases at 50 ms: 4.3 s with 256 threads, 6.1 s with 1,000,
/// 15.5 s with 2,000 (24 s of CPU); 14,735 threads fetched 2,540 of
/// 1,000,000 bases in 300 s while burning 430 s of CPU. 1,000 keeps the
/// `scale` scenario as it was and stops larger asks from stalling the run.
pub const MAX_THREADS: usize = 1_000;

/// A rayon pool of its own, `threads` wide, its threads named `rates-rayon-N`,
/// started with std's builder so that they can be joined ([`Joins`]).
fn dedicated_pool(threads: usize) -> Result<(ThreadPool, Joins), Error> {
    let joins = Joins::default();
    let handles = Arc::clone(&joins.0);
    let pool = ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("rates-rayon-{i}"))
        .spawn_handler(move |thread| {
            let mut builder = std::thread::Builder::new();
            if let Some(name) = thread.name() {
                builder = builder.name(name.to_owned());
            }
            if let Some(size) = thread.stack_size() {
                builder = builder.stack_size(size);
            }
            let handle = builder.spawn(|| thread.run())?;
            handles
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(handle);
            Ok(())
        })
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::Spawn,
                format!(
                    "could not start a rayon pool of {threads} threads: {e}; lower the concurrency"
                ),
            )
        })?;
    Ok((pool, joins))
}

/// The threads of a dedicated pool, to join once the pool is dropped.
#[derive(Debug, Default)]
struct Joins(Arc<Mutex<Vec<std::thread::JoinHandle<()>>>>);

impl Joins {
    /// Waits for every thread of the (dropped) pool to end.
    fn join(self) {
        let handles = std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for handle in handles {
            let _ = handle.join();
        }
    }
}

/// Runs `fetch` for every base of `outcomes` on `pool`, one base per task.
fn fetch_all(
    pool: &ThreadPool,
    outcomes: &Outcomes,
    fetch: impl Fn(CurrencyCode) -> Outcome + Sync,
) {
    pool.install(|| {
        (0..outcomes.len())
            .into_par_iter()
            .with_max_len(1)
            .for_each(|i| outcomes.fill(i, &fetch));
    });
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Mutex;
    use std::time::Duration;

    use rates_core::Config;
    use rates_server::{RatesServer, ServerConfig};

    use super::*;

    #[test]
    fn every_base_runs_on_the_dedicated_pool_in_order_and_a_panic_is_its_own() {
        let (pool, _joins) = dedicated_pool(3).unwrap();
        let bases = rates_core::generated_codes(30);
        let threads = Mutex::new(BTreeSet::new());
        let run = Outcomes::new(&bases, None);
        fetch_all(&pool, &run, |base| {
            let name = std::thread::current().name().map(str::to_owned);
            threads.lock().unwrap().insert(name);
            assert!(base != bases[7], "lost {base}");
            Outcome::failed(base, 7, Error::status(404, None))
        });
        let outcomes = run.report("rayon", Duration::ZERO).outcomes;
        let names = threads.into_inner().unwrap();
        assert!(names.len() <= 3, "{names:?}");
        for name in &names {
            let name = name.as_deref().unwrap_or("unnamed");
            assert!(name.starts_with("rates-rayon-"), "ran on {name}");
        }
        assert_eq!(outcomes.len(), 30);
        for (i, (outcome, base)) in outcomes.iter().zip(&bases).enumerate() {
            assert_eq!(outcome.base, *base, "out of order");
            let err = outcome.result.as_ref().unwrap_err();
            if i == 7 {
                assert!(err.is_panic(), "{err}");
            } else {
                assert_eq!(outcome.attempts, 7);
            }
        }
    }

    #[test]
    fn the_pool_is_capped_with_a_reason() {
        let config = |c| {
            Config::new("http://127.0.0.1:1/?b={base}")
                .unwrap()
                .with_concurrency(c)
        };
        let unknown = rates_core::limits::MachineLimits::default();
        let plan = |bases, concurrency| Rayon.plan(bases, &config(concurrency), &unknown);
        assert_eq!(plan(10_000, 1_000).in_flight, 1_000);
        assert_eq!(plan(10_000, 1_000).note, None);
        assert_eq!(plan(1_000_000, 100_000).in_flight, MAX_THREADS);
        let why = plan(1_000_000, 100_000).note.unwrap();
        assert!(
            why.contains("at most 1000 requests in flight instead of the 100000"),
            "{why}"
        );
        assert_eq!(plan(50, 100_000).in_flight, 50);
    }

    #[test]
    fn more_requests_overlap_than_the_machine_has_cores() {
        // The global pool would have one thread per core; the dedicated one
        // has `concurrency`, and the server sees them all at once.
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let concurrency = cores + 4;
        let server =
            RatesServer::start(ServerConfig::default().with_latency(Duration::from_millis(40)))
                .unwrap();
        let config = Config::new(&server.endpoint())
            .unwrap()
            .with_concurrency(concurrency);
        let bases = rates_core::generated_codes(concurrency * 4);
        let report = Rayon.fetch(&bases, &config).unwrap();
        assert!(report.all_succeeded());
        let peak = server.stats().peak_in_flight;
        assert!(
            peak > cores && peak <= concurrency,
            "peak {peak}, {cores} cores, concurrency {concurrency}"
        );
    }
}
