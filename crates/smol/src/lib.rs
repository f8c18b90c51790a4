//! A rates strategy on smol: tasks on an `async-executor`, `smol::net`
//! sockets and `async-io` timers ([`Smol`], `smol` in the registry).
//!
//! It runs the same async client as every async strategy (`rates-http`):
//! `min(concurrency, bases)` tasks, each keeping one HTTP/1.1 connection
//! alive and taking bases one after another, so requests in flight never
//! exceed the concurrency. Only the runtime differs from tokio: smol is a
//! set of small crates (an executor with a global queue and per-thread
//! local queues, one reactor thread shared by everything, timers kept by
//! that reactor), and the strategy runs its executor on threads of its own
//! for the length of a run: one per core, or as many as `SMOL_THREADS` says
//! (smol's own setting, which its global executor reads too).
//!
//! A task waiting for an answer costs its future's state on the heap (a few
//! KiB) plus its connection's one 1 KiB buffer, and no thread, so ten
//! thousand requests in flight fit in tens of MiB. A thread per request would instead
//! hold a kernel thread and a stack each (2 MiB reserved for a Rust thread)
//! and pay a context switch per wake-up.
//! Async stops helping where the work is not waiting: CPU-bound work
//! (decoding the bodies) gets no more parallelism than the executor's
//! threads, and a blocking call on an executor thread stalls every task
//! behind it (smol's answer is `smol::unblock`, a thread pool). Every wait
//! here is on `async-io`'s timer.
//!
//! ## Stopping
//!
//! When the run's [`Stop`](rates_core::Stop) fires, every worker task's
//! future is dropped at its next poll (its request, its wait and its
//! connection with it), and the executor's helper threads are joined before
//! `fetch` returns. async-io's reactor thread is process-wide and stays.
//!
//! ## Where it fits
//!
//! Next to tokio in time and memory, at somewhat more CPU per request,
//! spent in async-io's reactor (which re-arms interest with `epoll_ctl` at
//! each wait) and in the executor's threads waking each other. The shared
//! client spawns its workers in waves, since async-executor queues a woken
//! task behind every task spawned before it.
//!
//! Measured figures (time, CPU, memory, threads, time to stop, on every
//! scenario), with the machine and the command that made them, are in the
//! repository's `results/` folder (its `README.md` says which run is which);
//! `rates compare` makes them afresh on any machine.
//!
//! # Examples
//!
//! Through the shared trait:
//!
//! ```
//! use rates_core::{Config, Strategy};
//! use rates_server::RatesServer;
//! use rates_smol::Smol;
//!
//! let server = RatesServer::start(Default::default())?;
//! let config = Config::new(&server.endpoint())?.with_concurrency(2);
//! let report = Smol::new().fetch_codes(&["USD", "EUR", "PLN"], &config)?;
//! assert!(report.all_succeeded());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! From a program that already runs smol, on an executor of its own:
//!
//! ```
//! use std::sync::Arc;
//! use rates_core::Config;
//! use rates_server::RatesServer;
//!
//! let server = RatesServer::start(Default::default())?;
//! let config = Config::new(&server.endpoint())?;
//! let bases = rates_core::parse_codes("USD,EUR")?;
//! let executor = Arc::new(smol::Executor::new());
//! let report = smol::block_on(rates_smol::fetch_on(&executor, &bases, &config))?;
//! assert!(report.all_succeeded());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod io;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rates_core::{Config, CurrencyCode, Error, ErrorKind, Outcomes, Report, Run, Strategy};
use rates_http::AsyncRuntime;
use smol::{Executor, Timer};

use crate::io::SmolIo;

/// Where tasks go: smol's global executor, or one the caller owns.
#[derive(Clone, Debug)]
enum Spawner {
    Global,
    Executor(Arc<Executor<'static>>),
}

/// smol's TCP, timer and spawn, for the shared client.
#[derive(Clone, Debug)]
struct SmolRuntime {
    spawner: Spawner,
}

impl AsyncRuntime for SmolRuntime {
    type Io = SmolIo;

    fn name(&self) -> &'static str {
        "smol"
    }

    async fn connect(&self, host: &str, port: u16) -> std::io::Result<Self::Io> {
        let addrs = smol::net::resolve((host, port)).await?;
        SmolIo::connect(addrs, host).await
    }

    async fn sleep(&self, duration: Duration) {
        Timer::after(duration).await;
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        match &self.spawner {
            Spawner::Global => smol::spawn(task).detach(),
            Spawner::Executor(executor) => executor.spawn(task).detach(),
        }
    }
}

/// Fetches every base with tasks on smol's global executor (run by
/// `SMOL_THREADS` background threads, one by default): one outcome per base,
/// in input order.
///
/// Await it from any executor, for example `smol::block_on`.
///
/// # Errors
/// [`InvalidInput`](rates_core::ErrorKind::InvalidInput) for an invalid
/// config. Per-base failures are outcomes.
pub async fn fetch(bases: &[CurrencyCode], config: &Config) -> Result<Report, Error> {
    rates_core::fetch_async(&Smol::new(), bases, config, |config, outcomes| async move {
        let runtime = SmolRuntime {
            spawner: Spawner::Global,
        };
        rates_async::fetch_all(runtime, &config, outcomes).await?;
        Ok(None)
    })
    .await
}

/// Fetches every base with tasks on `executor`: one outcome per base, in
/// input order.
///
/// The returned future runs `executor` itself while it waits, so the run
/// completes even if no other thread runs it; threads that do run it
/// (`executor.run(...)`) share the work.
///
/// # Errors
/// [`InvalidInput`](rates_core::ErrorKind::InvalidInput) for an invalid
/// config. Per-base failures are outcomes.
pub async fn fetch_on(
    executor: &Arc<Executor<'static>>,
    bases: &[CurrencyCode],
    config: &Config,
) -> Result<Report, Error> {
    rates_core::fetch_async(&Smol::new(), bases, config, |config, outcomes| async move {
        fill_on(executor, &config, outcomes).await?;
        Ok(None)
    })
    .await
}

/// Fetches every base of `outcomes` with tasks on `executor`, running it
/// while it waits.
async fn fill_on(
    executor: &Arc<Executor<'static>>,
    config: &Config,
    outcomes: Arc<Outcomes>,
) -> Result<(), Error> {
    let runtime = SmolRuntime {
        spawner: Spawner::Executor(Arc::clone(executor)),
    };
    executor
        .run(rates_async::fetch_all(runtime, config, outcomes))
        .await
}

/// smol's own setting for the number of executor threads (its global
/// executor reads it); [`Smol::new`] reads it too.
pub const THREADS_ENV: &str = "SMOL_THREADS";

/// The smol strategy (`smol` in the registry): an `async-executor` run by
/// the calling thread and `threads - 1` helper threads for the length of
/// each run (one thread per core by default).
#[derive(Clone, Debug)]
pub struct Smol {
    /// The executor threads, or why [`THREADS_ENV`] could not say.
    threads: Result<usize, String>,
}

impl Smol {
    /// The strategy with one executor thread per core, or as many as
    /// [`SMOL_THREADS`](THREADS_ENV) says when it is set. A value that is
    /// not a whole number of at least 1 fails each run with an
    /// [`InvalidInput`](rates_core::ErrorKind::InvalidInput) error naming it
    /// (smol's global executor would quietly use one thread instead).
    pub fn new() -> Self {
        let threads = match std::env::var_os(THREADS_ENV) {
            None => Ok(std::thread::available_parallelism().map_or(2, usize::from)),
            Some(value) => value
                .to_str()
                .and_then(|v| v.parse::<usize>().ok())
                .filter(|&n| n > 0)
                .ok_or_else(|| {
                    format!(
                        "{THREADS_ENV}={} is not a number of executor threads: set it to a \
                         whole number of at least 1, or unset it for one thread per core",
                        value.to_string_lossy()
                    )
                }),
        };
        Self { threads }
    }

    /// The strategy with `threads` executor threads (at least one: the
    /// calling thread), whatever [`THREADS_ENV`] says.
    pub fn with_threads(threads: usize) -> Self {
        Self {
            threads: Ok(threads.max(1)),
        }
    }
}

impl Default for Smol {
    fn default() -> Self {
        Self::new()
    }
}

impl Strategy for Smol {
    fn name(&self) -> &'static str {
        "smol"
    }

    /// async-io's reactor thread (`async-io`): process-wide, started on
    /// first use, not the strategy's to stop (its executor's threads are
    /// the run's, and joined).
    fn kept_threads(&self) -> Option<&'static str> {
        Some("async-io")
    }

    fn run(&self, run: &Run<'_>) -> Result<Option<String>, Error> {
        let (config, outcomes) = (run.config, run.outcomes);
        let threads = self
            .threads
            .clone()
            .map_err(|why| Error::new(ErrorKind::InvalidInput, why))?;
        let executor = Arc::new(Executor::new());
        // Helpers run the executor until `stop` is dropped: `recv` then
        // fails and their `run` returns.
        let (stop, stopped) = smol::channel::bounded::<()>(1);
        std::thread::scope(|scope| {
            let mut helpers = Vec::with_capacity(threads);
            for n in 1..threads {
                let executor = &executor;
                let stopped = stopped.clone();
                let helper = std::thread::Builder::new()
                    .name(format!("rates-smol-{n}"))
                    .spawn_scoped(scope, move || {
                        let _ = smol::block_on(executor.run(stopped.recv()));
                    });
                match helper {
                    Ok(handle) => helpers.push(handle),
                    // The calling thread runs every task anyway; go on with
                    // fewer helpers rather than fail the run.
                    Err(_) => break,
                }
            }
            let filled = smol::block_on(fill_on(&executor, config, Arc::clone(outcomes)));
            drop(stop);
            // Joined, not only finished: none outlives the run.
            for handle in helpers {
                let _ = handle.join();
            }
            filled
        })?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rates_core::Strategy;
    use rates_server::{RatesServer, ServerConfig};

    use super::*;

    fn server(latency_ms: u64) -> RatesServer {
        RatesServer::start(ServerConfig::default().with_latency(Duration::from_millis(latency_ms)))
            .unwrap()
    }

    #[test]
    fn global_executor_fetches_in_order() {
        let server = server(1);
        let config = Config::new(&server.endpoint()).unwrap().with_concurrency(4);
        let bases = rates_core::parse_codes("USD,EUR,PLN,NOK,CZK").unwrap();
        let report = smol::block_on(fetch(&bases, &config)).unwrap();
        assert_eq!(report.strategy, "smol");
        let got: Vec<_> = report.outcomes.iter().map(|o| o.base).collect();
        assert_eq!(got, bases);
        assert!(report.all_succeeded());
        assert!(server.stats().peak_in_flight <= 4);
    }

    #[test]
    fn fetch_on_makes_progress_with_nobody_else_running_the_executor() {
        let server = server(0);
        let config = Config::new(&server.endpoint()).unwrap().with_concurrency(3);
        let bases = rates_core::parse_codes("USD EUR PLN NOK").unwrap();
        let executor = Arc::new(Executor::new());
        let report = smol::block_on(fetch_on(&executor, &bases, &config)).unwrap();
        assert!(report.all_succeeded());
        assert_eq!(server.stats().requests, 4);
    }

    #[test]
    fn one_executor_thread_is_enough() {
        let server = server(0);
        let config = Config::new(&server.endpoint()).unwrap().with_concurrency(2);
        let names = ["USD", "EUR", "PLN", "NOK", "CZK", "GBP", "CHF", "JPY"];
        let report = Smol::with_threads(1).fetch_codes(&names, &config).unwrap();
        assert!(report.all_succeeded());
        assert_eq!(report.total_attempts(), 8);
        assert_eq!(server.stats().requests, 8);
    }

    #[test]
    fn invalid_config_is_an_error_not_a_hang() {
        let config = Config::new("http://127.0.0.1:1/?b={base}")
            .unwrap()
            .with_concurrency(0);
        let bases = rates_core::parse_codes("USD").unwrap();
        let err = smol::block_on(fetch(&bases, &config)).unwrap_err();
        assert!(
            err.is_invalid_input() && err.to_string().contains("concurrency"),
            "{err}"
        );
    }
}
