//! A rates strategy: a pool of child worker processes over pipes.
//!
//! The parent starts P worker processes (P = the concurrency, at most
//! [`MAX_PROCESSES`]) in parallel, and one thread per worker hands it bases
//! from a shared queue. Each worker runs the shared blocking client and
//! performs one HTTP attempt per request, one request at a time on its one
//! connection; the parent keeps each base's attempt loop (throttle slots,
//! retries, backoff), so the rate limit and the retry policy are global:
//! the parent reserves each attempt's slot in the shared throttle, the
//! worker sends at it and says when it sent, and the parent records that
//! send ([`BaseFetch::sending_elsewhere`]), so at most R requests reach the
//! server in any second, as with every strategy. Parent and worker share no
//! memory: each request and each reply is one short text line over the worker's
//! stdin and stdout. While requests are fast (under 5 ms each, no rate
//! limit) a worker gets them in batches: up to 8 in one write, a second
//! batch queued behind the first, and the replies of a batch written out
//! together, so the pipe round trip's wake-ups are paid per batch rather
//! than per request; requests of 5 ms or more, and every request under a
//! rate limit, go one at a time, and near the end of the queue each worker
//! takes at most its share of what is left. That isolation is what this
//! row of the comparison buys: a worker that crashes, hangs or answers
//! garbage is killed, reaped and replaced, and every request it had not
//! answered is retried on the new worker, so nothing is lost and the
//! parent never waits on a pipe without a timeout (`poll(2)` bounds every
//! read). It costs a process per worker: forked from a fork server, one
//! copy of the worker program started for the pool that forks the others
//! (see [`FORK_SERVER_ENV`]; running the program for every worker cost
//! about a millisecond of CPU each, a fork a fraction of that), overlapped
//! with the first requests ([`ProcessPool::startup`] says how long a pool
//! took to start); a few MiB of resident memory per worker
//! (a pool's [`shutdown`](ProcessPool::shutdown) returns the workers'
//! peaks, and `rates compare` measures the whole process tree), a round
//! trip through the pipes per batch of requests (a compact text line per
//! request and per reply,
//! a response's body after its line as raw bytes), and a parent thread per
//! worker. It is close to
//! threads when a few workers wait on the network (`classic`); start-up
//! shows when many workers have a short run (`fanout`), per-request
//! overhead shows when nothing waits (`overhead`), and it will not run a
//! thousand processes: past [`MAX_PROCESSES`] it caps the pool and says so
//! in the report.
//!
//! The worker program is a [`WorkerCommand`], a parameter of the strategy
//! ([`Processes::new`]). By default it is the running executable itself,
//! started again with [`WORKER_ENV`] set: every program that runs the
//! strategy calls [`worker_if_asked`] first thing in `main`, as below, as
//! the `rates` binary, the conformance suite and the benches do. There is
//! no separate worker binary.
//!
//! ## Stopping
//!
//! When the run's [`Stop`](rates_core::Stop) fires, each driver thread,
//! waiting on its worker's output, wakes on a pipe the stop writes to,
//! closes the worker's input (the worker exits once its request is done),
//! and kills and reaps it after a 50 ms grace; the fork server goes with the
//! pool. A worker forked from the fork server (the default) is killed by the
//! kernel when the pool's process dies, even by SIGKILL mid-request.
//!
//! ## Where it fits
//!
//! The dearest model in memory (a copy of the program per worker) and in
//! CPU per request (every request and answer crosses two pipes), and the
//! only one that isolates: a worker that crashes or leaks is replaced and
//! its attempt retried. Forking the workers from one started copy (the fork
//! server) makes their start a fraction of running the program for each.
//! Rust has no GIL, so CPU work per item does not need processes. Use it
//! for isolation, not for speed.
//!
//! Measured figures (time, CPU, memory, threads, time to stop, on every
//! scenario), with the machine and the command that made them, are in the
//! repository's `results/` folder (its `README.md` says which run is which);
//! `rates compare` makes them afresh on any machine.
//!
//! # Examples
//!
//! ```rust,standalone_crate
//! use rates_core::{Config, Strategy};
//! use rates_process::{ProcessPool, Processes, WorkerCommand, worker_if_asked};
//! use rates_server::RatesServer;
//!
//! fn main() -> Result<std::process::ExitCode, Box<dyn std::error::Error>> {
//!     // Started as a worker by the strategy below, this program serves the pool.
//!     if let Some(code) = worker_if_asked() {
//!         return Ok(code);
//!     }
//!     let server = RatesServer::start(Default::default())?;
//!     let config = Config::new(&server.endpoint())?.with_concurrency(3);
//!
//!     let report = Processes::default().fetch_codes(&["USD", "EUR", "PLN"], &config)?;
//!     assert!(report.all_succeeded());
//!     print!("{}", report.matrix(&config.symbols));
//!
//!     // A pool of its own says how long its workers took to start.
//!     let pool = ProcessPool::start(WorkerCommand::current_exe()?, &config, 3)?;
//!     println!("3 workers started in {:?}", pool.startup());
//!     println!("their peak memory: {:?} bytes", pool.shutdown());
//!     Ok(std::process::ExitCode::SUCCESS)
//! }
//! ```

//! [`BaseFetch::sending_elsewhere`]: rates_core::BaseFetch::sending_elsewhere

mod child;
mod command;
mod fork_server;
mod pool;
mod protocol;
mod role;
mod worker;

use rates_core::plan::{Cap, Shape};
use rates_core::{Error, Run, Strategy};

pub use command::{WORKER_ENV, WorkerCommand};
pub use fork_server::FORK_SERVER_ENV;
pub use pool::ProcessPool;
pub use protocol::WIRE;
pub use role::worker_if_asked;

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
/// the run and shut down after it, each driver starting its worker and
/// retiring it as soon as no base is left for it.
///
/// Its workers run [`worker`](Processes::worker): by default
/// ([`Processes::default`]) the running executable, whose `main` must call
/// [`worker_if_asked`] first.
#[derive(Clone, Debug, Default)]
pub struct Processes {
    /// The worker command; `None`: the running executable.
    worker: Option<WorkerCommand>,
}

impl Processes {
    /// The strategy, running `worker` as its worker processes.
    pub fn new(worker: WorkerCommand) -> Self {
        Self {
            worker: Some(worker),
        }
    }

    /// The command its workers run.
    ///
    /// # Errors
    /// As [`WorkerCommand::current_exe`], for the default command.
    pub fn worker(&self) -> Result<WorkerCommand, Error> {
        match &self.worker {
            Some(command) => Ok(command.clone()),
            None => WorkerCommand::current_exe(),
        }
    }
}

impl Strategy for Processes {
    fn name(&self) -> &'static str {
        NAME
    }

    /// A worker process per request in flight, at most [`MAX_PROCESSES`].
    fn shape(&self) -> Shape {
        Shape::Processes {
            cap: Cap {
                most: MAX_PROCESSES,
                why: "a process per request in flight would cost a process start and its \
                      memory each for no gain",
            },
        }
    }

    fn run(&self, run: &Run<'_>) -> Result<Option<String>, Error> {
        ProcessPool::run_once(self.worker()?, run.config, run.plan.in_flight, run.outcomes)
    }
}

#[cfg(test)]
mod tests {
    use rates_core::Config;
    use rates_core::limits::MachineLimits;

    use super::*;

    fn config(concurrency: usize) -> Config {
        Config::new("http://127.0.0.1:1/rates?base={base}")
            .unwrap()
            .with_concurrency(concurrency)
    }

    #[test]
    fn the_pool_is_capped_with_a_reason() {
        let plan = |bases, concurrency| {
            Processes::default().plan(bases, &config(concurrency), &MachineLimits::default())
        };
        assert_eq!(plan(5, 4).in_flight, 4);
        assert_eq!(plan(2, 4).in_flight, 2);
        assert_eq!(plan(10_000, 64).in_flight, 64);
        assert_eq!(plan(10_000, 1_000).in_flight, MAX_PROCESSES);
        assert_eq!(plan(10_000, 64).note, None);
        assert_eq!(plan(50, 1_000).note, None);
        let why = plan(10_000, 1_000).note.unwrap();
        assert!(why.contains("64") && why.contains("1000"), "{why}");
    }
}
