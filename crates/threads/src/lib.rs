//! One OS thread per base: the first thing people try.
//!
//! Every base gets a scoped thread of its own, all started at once with no
//! bound (`concurrency` is ignored), so all requests overlap and the wall
//! time is about one latency: the classic five bases take about 100 ms where
//! `sync` takes 500 ms. The price is paid per base: a kernel thread, a stack,
//! an HTTP client with its TCP connection (a file descriptor here and another
//! at the server), and the time to start the thread, which on the 2-core
//! machine this was written on is a few hundred microseconds per base with
//! the request it makes. That is nothing for five bases and fine for a few
//! thousand: 2,000 bases take about 0.6 s, and starting threads, not the
//! server, sets the pace (most threads are done before the last ones start,
//! so a server sees a few hundred requests at once, not 2,000). At 10,000
//! bases (the `scale` scenario) it still completes, in about 2.8 s with
//! about 330 MiB peak resident memory for the client alone, most of it the
//! HTTP client's per-connection buffers rather than stacks; a bounded pool
//! or an async runtime needs a fraction of the time. Further out it breaks
//! on the OS limits: the per-user thread limit (`ulimit -u`),
//! `kernel.threads-max`, `vm.max_map_count` (four mappings per running
//! thread) and the open-files limit (`ulimit -n`). Past `vm.max_map_count`
//! a thread starts and then cannot map its signal stack, which aborts the
//! whole process, so the limits are read before any thread starts
//! (the run's [`Plan`](rates_core::plan::Plan)): when the bases need more threads
//! than they allow (about 14,000 with the default `vm.max_map_count` of
//! 65,530), the bases run in waves of that many threads, each wave joined
//! before the next starts, and the report's note says why
//! ([`Config::max_threads`](rates_core::Config::max_threads) lowers the cap further). A thread that
//! cannot be started anyway is never a panic or an abort: that base's
//! outcome is an [`ErrorKind::Spawn`] error saying so, and
//! every other base still runs. A failed connection is an ordinary
//! connection error, retried like any other. Each thread gets a
//! [`STACK_SIZE`] (256 KiB) stack rather than the 2 MiB default; stack pages
//! are only committed when touched, so this barely changes resident memory,
//! but it cuts the address space reserved at 10,000 bases from 20 GiB to
//! 2.5 GiB. The shared rate limit and the retry policy still apply: a
//! throttled thread sleeps until its slot.
//!
//! ## Stopping
//!
//! When the run's [`Stop`](rates_core::Stop) fires, no more threads are
//! started, the socket of every request in flight is shut down so that its
//! blocked read returns, and every thread is joined before `fetch`
//! returns: the time to stop grows with the threads alive (each is woken
//! and joined), which `rates compare --scenario cancel` measures.
//!
//! ## Where it fits
//!
//! It wins wherever latency dominates and the bases are few, because it
//! ignores the concurrency limit (every base is in flight at once), and it
//! pays per item: a thread start, a stack and a connection per base, so CPU
//! per request and threads grow with the bases, and a run with no latency is
//! many times slower than a bounded strategy. Use it for a few hundred waits;
//! bound it (`pool`) or go async beyond.
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
//! use rates_server::RatesServer;
//! use rates_threads::ThreadPerBase;
//!
//! let server = RatesServer::start(Default::default())?;
//! let config = Config::new(&server.endpoint())?;
//! let report = ThreadPerBase::new().fetch_codes(&["USD", "EUR", "PLN"], &config)?;
//! assert!(report.all_succeeded());
//! print!("{}", report.matrix(&config.symbols));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::thread::Builder;

use rates_core::plan::Shape;
use rates_core::{CurrencyCode, Error, ErrorKind, Outcome, Outcomes, Run, Strategy, Throttle};
use rates_http::BlockingClient;

/// The stack each base's thread gets, unless changed with
/// [`ThreadPerBase::with_stack_size`]: 256 KiB.
///
/// Measured: a fetch runs in the OS minimum of 16 KiB, and a caught panic
/// whose hook prints a full backtrace fits in 64 KiB even in a debug build,
/// so this leaves a wide margin. It bounds reserved address space, not
/// resident memory: stack pages are committed only when touched.
pub const STACK_SIZE: usize = 256 * 1024;

/// The one-thread-per-base strategy (`threads` in the registry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadPerBase {
    stack_size: usize,
}

impl ThreadPerBase {
    /// The strategy with [`STACK_SIZE`] stacks.
    pub const fn new() -> Self {
        Self {
            stack_size: STACK_SIZE,
        }
    }

    /// Uses `bytes` of stack per thread (the OS rounds it up to its minimum
    /// and page size). A stack the OS cannot reserve makes every base a
    /// [`ErrorKind::Spawn`] outcome.
    #[must_use]
    pub const fn with_stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// The stack each thread gets.
    pub const fn stack_size(&self) -> usize {
        self.stack_size
    }
}

impl Default for ThreadPerBase {
    fn default() -> Self {
        Self::new()
    }
}

impl Strategy for ThreadPerBase {
    fn name(&self) -> &'static str {
        "threads"
    }

    fn shape(&self) -> Shape {
        Shape::ThreadPerBase {
            stack: self.stack_size,
        }
    }

    fn run(&self, run: &Run<'_>) -> Result<Option<String>, Error> {
        let (bases, config, outcomes) = (run.bases, run.config, run.outcomes);
        let throttle = Throttle::for_limit(config.rate_limit);
        let throttle = throttle.as_ref();
        // As many at once as the plan holds: every base, unless an OS
        // limit or `Config::max_threads` says fewer (its note says why).
        let wave = run.plan.in_flight.max(1);
        // Each wave's threads are all joined (their stacks and maps freed)
        // before the next wave starts.
        for start in (0..bases.len()).step_by(wave) {
            if outcomes.stop().is_stopped() {
                // The bases of the waves not started read as cancelled.
                break;
            }
            let end = (start + wave).min(bases.len());
            each_on_its_own_thread(outcomes, start..end, self.stack_size, |base| {
                // Its own client: its own connection, reused for its retries and
                // closed as soon as it is done, so finished bases hold no sockets.
                BlockingClient::new(config, 1).fetch(base, config, throttle)
            });
        }
        Ok(None)
    }
}

/// Runs `fetch` for the bases at `indices` on a scoped thread each, all
/// started before any is joined. A thread that cannot start is a spawn
/// error for its base; a panic is caught where the base is fetched
/// ([`Outcomes::fill`]).
fn each_on_its_own_thread(
    outcomes: &Outcomes,
    indices: std::ops::Range<usize>,
    stack_size: usize,
    fetch: impl Fn(CurrencyCode) -> Outcome + Sync,
) {
    let fetch = &fetch;
    let asked = indices.len();
    std::thread::scope(|scope| {
        // Threads are joined, not only waited for: the scope alone waits for
        // their closures, and a thread can outlive its closure briefly. A
        // joinable thread keeps its stack until it is joined, so each is
        // joined as soon as it says it is done (its place on a channel)
        // while the spawning goes on, then the rest at the end.
        let (done_tx, done_rx) = std::sync::mpsc::channel::<usize>();
        let mut started: Vec<Option<std::thread::ScopedJoinHandle<'_, ()>>> =
            Vec::with_capacity(asked);
        let join_done = |started: &mut Vec<Option<_>>| {
            for place in done_rx.try_iter() {
                if let Some(handle) = started.get_mut(place).and_then(Option::take) {
                    // None can panic past `fill`.
                    let _ = std::thread::ScopedJoinHandle::join(handle);
                }
            }
        };
        for i in indices {
            if outcomes.stop().is_stopped() {
                // No thread is started for the rest: they read as cancelled.
                break;
            }
            let base = outcomes.bases()[i];
            let place = started.len();
            let done = done_tx.clone();
            let spawned = Builder::new()
                .name(format!("rates-{base}"))
                .stack_size(stack_size)
                .spawn_scoped(scope, move || {
                    outcomes.fill(i, fetch);
                    let _ = done.send(place);
                });
            match spawned {
                Ok(handle) => started.push(Some(handle)),
                Err(e) => {
                    started.push(None);
                    outcomes.put(i, spawn_failed(base, asked, &e));
                }
            }
            join_done(&mut started);
        }
        for handle in started.into_iter().flatten() {
            let _ = handle.join();
        }
    });
}

fn spawn_failed(base: CurrencyCode, bases: usize, e: &std::io::Error) -> Outcome {
    Outcome::failed(
        base,
        0,
        Error::new(
            ErrorKind::Spawn,
            format!(
                "could not start a thread for this base ({bases} threads asked for): {e}; \
                 raise the OS limits (ulimit -u, kernel.threads-max, vm.max_map_count) or use \
                 a bounded strategy such as `pool`"
            ),
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rates_server::{RatesServer, ServerConfig};

    use rates_core::Config;
    use rates_core::limits::MachineLimits;

    use super::*;

    fn server(latency_ms: u64) -> RatesServer {
        RatesServer::start(ServerConfig::default().with_latency(Duration::from_millis(latency_ms)))
            .unwrap()
    }

    #[test]
    fn two_thousand_bases_each_accounted_for_in_order() {
        let server = server(20);
        let config = Config::new(&server.endpoint()).unwrap();
        let bases = rates_core::generated_codes(2_000);
        let report = ThreadPerBase::new().fetch(&bases, &config).unwrap();
        assert_eq!(report.outcomes.len(), bases.len());
        for (outcome, base) in report.outcomes.iter().zip(&bases) {
            assert_eq!(outcome.base, *base, "out of order");
            let rates = outcome
                .result
                .as_ref()
                .unwrap_or_else(|e| panic!("{base}: {e}"));
            assert_eq!(rates.base, *base);
        }
        let stats = server.stats();
        assert_eq!(stats.requests, 2_000, "each base requested exactly once");
        assert!(stats.per_base.values().all(|n| *n == 1));
        // Unbounded: many requests overlapped (every thread is started
        // before any is joined), never more than one per base.
        assert!(stats.peak_in_flight > 1, "{}", stats.peak_in_flight);
        assert!(stats.peak_in_flight <= 2_000);
    }

    #[test]
    fn a_thread_that_cannot_start_is_a_spawn_outcome_for_its_base() {
        let server = server(0);
        let config = Config::new(&server.endpoint()).unwrap();
        let bases = rates_core::generated_codes(3);
        // No OS can reserve a petabyte of stack: every spawn fails.
        let strategy = ThreadPerBase::new().with_stack_size(1 << 50);
        let report = strategy.fetch(&bases, &config).unwrap();
        assert_eq!(report.outcomes.len(), 3);
        for (outcome, base) in report.outcomes.iter().zip(&bases) {
            assert_eq!(outcome.base, *base);
            let err = outcome.result.as_ref().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Spawn, "{err}");
            assert!(
                err.to_string().contains("could not start a thread"),
                "{err}"
            );
            assert!(outcome.to_string().starts_with(base.as_str()), "{outcome}");
            assert_eq!(outcome.attempts, 0);
        }
        assert_eq!(server.stats().requests, 0);
    }

    #[test]
    fn a_panicking_thread_is_a_panic_outcome_for_its_base_alone() {
        let bases = rates_core::generated_codes(5);
        let run = Outcomes::new(&bases, None);
        each_on_its_own_thread(&run, 0..5, STACK_SIZE, |base| {
            assert!(base != bases[2], "lost {base}");
            Outcome::failed(base, 7, Error::status(404, None))
        });
        let outcomes = run.report("threads", Duration::ZERO).outcomes;
        assert_eq!(outcomes.len(), 5);
        for (i, (outcome, base)) in outcomes.iter().zip(&bases).enumerate() {
            assert_eq!(outcome.base, *base);
            let err = outcome.result.as_ref().unwrap_err();
            if i == 2 {
                assert!(err.is_panic(), "{err}");
                assert!(err.to_string().contains("lost AAC"), "{err}");
            } else {
                assert_eq!(err.status_code(), Some(404), "{err}");
                assert_eq!(outcome.attempts, 7);
            }
        }
    }

    #[test]
    fn more_bases_than_allowed_threads_run_in_waves_each_accounted_for_in_order() {
        let server = server(5);
        let config = Config::new(&server.endpoint())
            .unwrap()
            .with_max_threads(Some(64));
        let bases = rates_core::generated_codes(300);
        let strategy = ThreadPerBase::new();
        let plan = strategy.plan(300, &config, &MachineLimits::read());
        assert_eq!(plan.in_flight, 64);
        let why = plan.note.unwrap();
        assert!(why.contains("5 waves of at most 64 threads"), "{why}");
        assert!(why.contains("max_threads"), "{why}");
        let report = strategy.fetch(&bases, &config).unwrap();
        assert_eq!(report.outcomes.len(), 300);
        for (outcome, base) in report.outcomes.iter().zip(&bases) {
            assert_eq!(outcome.base, *base, "out of order");
            assert!(outcome.result.is_ok(), "{outcome}");
        }
        assert!(
            report.note.as_deref().is_some_and(|n| n.starts_with(&why)),
            "{:?}",
            report.note
        );
        let stats = server.stats();
        assert_eq!(stats.requests, 300, "each base requested exactly once");
        assert!(stats.peak_in_flight <= 64, "{}", stats.peak_in_flight);
    }

    #[test]
    fn unbounded_by_declaration() {
        let config = Config::new("http://127.0.0.1:1/?b={base}").unwrap();
        let s = ThreadPerBase::default();
        let plan = s.plan(2_000, &config, &MachineLimits::default());
        assert!(!plan.bounded);
        assert_eq!((plan.in_flight, plan.note), (2_000, None));
        assert_eq!(s.stack_size(), STACK_SIZE);
    }
}
