//! A rates strategy: a pool of child worker processes over pipes.
//!
//! The parent starts P worker processes (P = the concurrency, at most
//! [`MAX_PROCESSES`]) in parallel, and one thread per worker hands it bases
//! one at a time. Each worker runs the shared blocking client and performs
//! one HTTP attempt per request; the parent keeps each base's attempt loop
//! (throttle slots, retries, backoff), so the rate limit and the retry
//! policy are global. Parent and worker share no memory: each request and
//! each reply is one JSON line over the worker's stdin and stdout. That
//! isolation is what this row of the comparison buys: a worker that
//! crashes, hangs or answers garbage is killed, reaped and replaced, and
//! its base is retried on the new worker, so nothing is lost and the parent
//! never waits on a pipe without a timeout. It costs a process start per
//! worker (about a millisecond of CPU each; reported as
//! [`Report::startup`](rates_core::Report::startup) and overlapped with the
//! first requests), a few MiB of resident memory per worker (reported as
//! [`Report::workers_peak_rss_bytes`](rates_core::Report::workers_peak_rss_bytes)),
//! two pipe hops and a JSON round trip per request, and two parent threads
//! per worker. It is close to threads when a few workers wait on the
//! network (`classic`); start-up shows when many workers have a short run
//! (`fanout`), per-request overhead shows when nothing waits (`overhead`),
//! and it will not run a thousand processes: past [`MAX_PROCESSES`] it
//! caps the pool and says so in the report.
//!
//! The worker program is found by [`locate_worker`]: [`Config::worker`],
//! else the `RATES_WORKER` environment variable, else a `rates-worker`
//! binary (or the test and bench crates' copies of it) beside the running
//! executable, where cargo builds it for tests and benches. A program can also be its own worker by calling
//! [`worker_main`] from a hidden subcommand, as below and as the `rates`
//! binary does.
//!
//! ## Measured
//!
//! On the committed run (`results/2026-11-22T1944-*`, 2-core VM): 1.42x the ideal on `fanout` (starting 50
//! workers), 399 us of CPU per request (tokio: 46 us) and 315 MiB across 51 processes;
//! capped at 64 workers (405 MiB) on `scale`. Rust has no GIL, so CPU work per item
//! does not need processes: with 1 ms per item (`rates map`) it finishes in 88 ms
//! where tokio and rayon take 61 and 81 ms. Use it for isolation (a crashing or leaking
//! worker is replaced), not for speed.
//!
//! # Examples
//!
//! ```rust,standalone_crate
//! use rates_core::{Config, Strategy};
//! use rates_process::{Processes, worker_in_current_exe, worker_main};
//! use rates_server::RatesServer;
//!
//! fn main() -> Result<std::process::ExitCode, Box<dyn std::error::Error>> {
//!     // This program is its own worker: run with `worker`, it serves the pool.
//!     if std::env::args().nth(1).as_deref() == Some("worker") {
//!         return Ok(worker_main());
//!     }
//!     let server = RatesServer::start(Default::default())?;
//!     let mut config = Config::new(&server.endpoint())?.with_concurrency(3);
//!     config.worker = Some(worker_in_current_exe(&["worker"])?);
//!
//!     let report = Processes.fetch_codes(&["USD", "EUR", "PLN"], &config)?;
//!     assert!(report.all_succeeded());
//!     print!("{}", report.matrix(&config.symbols));
//!     println!("3 workers started in {:?}", report.startup.unwrap_or_default());
//!     Ok(std::process::ExitCode::SUCCESS)
//! }
//! ```
//!
//! [`Config::worker`]: rates_core::Config::worker

mod locate;
mod pool;
mod protocol;
mod worker;

use rates_core::{Config, CurrencyCode, Error, Report, Strategy};

pub use locate::{WORKER_BIN, WORKER_ENV, locate_worker, worker_in_current_exe};
pub use pool::ProcessPool;
pub use rates_core::WorkerCommand;
pub use worker::worker_main;

/// The registry name.
const NAME: &str = "process";

/// The most worker processes the strategy starts, whatever the concurrency.
///
/// 64 covers every scenario but `scale` (the largest, `overhead`, asks for
/// 64 in flight). Past it, a process per request in flight stops paying:
/// each one costs a process start, a few MiB of memory, two threads in the
/// parent and a connection, while a 2-core machine gains nothing from more
/// of them; the strategy caps the pool and says so.
pub const MAX_PROCESSES: usize = 64;

/// The process-pool strategy (`process` in the registry): a [`ProcessPool`]
/// of `min(concurrency, bases, MAX_PROCESSES)` workers per run, started for
/// the run and shut down after it ([`ProcessPool::run_once`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Processes;

impl Processes {
    /// How many workers a run of `bases` bases under `config` uses.
    pub fn pool_size(bases: usize, config: &Config) -> usize {
        config.concurrency.min(bases).clamp(1, MAX_PROCESSES)
    }
}

impl Strategy for Processes {
    fn name(&self) -> &'static str {
        NAME
    }

    fn summary(&self) -> &'static str {
        "a pool of child worker processes (one per request in flight, at most 64), \
         JSON lines over pipes"
    }

    fn max_in_flight(&self, bases: usize, config: &Config) -> usize {
        Self::pool_size(bases, config)
    }

    fn limitation(&self, bases: usize, config: &Config) -> Option<String> {
        let asked = config.concurrency.min(bases);
        (asked > MAX_PROCESSES).then(|| {
            format!(
                "process caps its pool at {MAX_PROCESSES} worker processes instead of the \
                 {asked} in flight asked for: a process per request in flight would cost \
                 {asked} process starts and their memory for no gain"
            )
        })
    }

    fn run(&self, bases: &[CurrencyCode], config: &Config) -> Result<Report, Error> {
        let mut report =
            ProcessPool::run_once(config, Self::pool_size(bases.len(), config), bases)?;
        if let Some(cap) = self.limitation(bases.len(), config) {
            report.note = Some(match report.note.take() {
                Some(other) => format!("{cap}; {other}"),
                None => cap,
            });
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(concurrency: usize) -> Config {
        Config::new("http://127.0.0.1:1/rates?base={base}")
            .unwrap()
            .with_concurrency(concurrency)
    }

    #[test]
    fn the_pool_is_capped_with_a_reason() {
        assert_eq!(Processes.max_in_flight(5, &config(4)), 4);
        assert_eq!(Processes.max_in_flight(2, &config(4)), 2);
        assert_eq!(Processes.max_in_flight(10_000, &config(64)), 64);
        assert_eq!(
            Processes.max_in_flight(10_000, &config(1_000)),
            MAX_PROCESSES
        );
        assert_eq!(Processes.limitation(10_000, &config(64)), None);
        assert_eq!(Processes.limitation(50, &config(1_000)), None);
        let why = Processes.limitation(10_000, &config(1_000)).unwrap();
        assert!(why.contains("64") && why.contains("1000"), "{why}");
    }
}
