//! Rates strategies on tokio: async tasks ([`Tokio`], `tokio` in the
//! registry), the blocking client run through `spawn_blocking`
//! ([`TokioBlocking`], `tokio-blocking`), and thread-per-core on tokio's
//! current-thread runtime ([`Sharded`], `sharded`).
//!
//! [`Tokio`] starts `min(concurrency, bases)` tasks on a multi-threaded
//! runtime; each keeps one HTTP/1.1 connection alive (the shared async
//! client of `rates-http`) and takes bases one after another, so requests in
//! flight never exceed the concurrency. A task waiting for an answer costs
//! its future's state on the heap (about 1.5 KiB) plus its connection's one
//! 1 KiB buffer, and no thread, so ten thousand requests in flight fit in
//! tens of MiB on one worker thread per core. A thread per request would
//! instead hold a kernel thread and a stack each (2 MiB reserved for a Rust
//! thread) and pay a context switch per wake-up, as `tokio-blocking` below
//! does for each call in flight. Async stops helping where the work is not
//! waiting: CPU-bound work (decoding every body) gets no more parallelism
//! than the runtime's worker threads, and a blocking call on a worker (a
//! thread sleep, a blocking client) stalls every task queued on that
//! worker. Every wait here is on tokio's timer.
//!
//! [`TokioBlocking`] is the `run_in_executor` pattern: code with no async
//! version (here the shared blocking client) runs on tokio's blocking thread
//! pool through `spawn_blocking`, at most `concurrency` calls at once, and
//! the results are gathered with async. It costs a thread per call in
//! flight, like a thread pool, and is bounded by the blocking pool's size.
//!
//! [`Sharded`] runs the same tasks as [`Tokio`] with no work stealing: the
//! run is dealt to one current-thread runtime per core up front, each on a
//! pinned thread of its own, so the two differ only in scheduling.
//!
//! Programs already on tokio `.await` [`fetch`] (or [`fetch_via_spawn_blocking`])
//! on their own runtime; the [`Strategy`](rates_core::Strategy) impls own a
//! runtime and block on it, and refuse, with an error that says what to do
//! instead, to block a thread that is already inside a tokio runtime.
//!
//! ## Stopping
//!
//! When the run's [`Stop`](rates_core::Stop) fires, every worker task's
//! future is dropped at its next poll (its request, its wait and its
//! connection with it), so `fetch` returns within milliseconds. The
//! runtime the strategy built on its first run is kept for the next (its
//! threads are named `rates-tokio`); `tokio-blocking`'s calls already in
//! the blocking pool have their sockets shut down and are waited for.
//!
//! ## Where it fits
//!
//! The cheapest model that keeps up: a few threads and little memory even
//! with thousands of requests in flight, and the least CPU per request when
//! there is no latency. CPU work on its executor delays the tasks behind it:
//! with CPU work per item, `tokio-blocking` (which runs it in the blocking
//! pool) answers each request sooner.
//!
//! Measured figures (time, CPU, memory, threads, time to stop, on every
//! scenario), with the machine and the command that made them, are in the
//! repository's `results/` folder (its `README.md` says which run is which);
//! `rates compare` makes them afresh on any machine.
//!
//! # Examples
//!
//! From synchronous code, through the shared trait:
//!
//! ```
//! use rates_core::{Config, Strategy};
//! use rates_server::RatesServer;
//! use rates_tokio::Tokio;
//!
//! let server = RatesServer::start(Default::default())?;
//! let config = Config::new(&server.endpoint())?.with_concurrency(2);
//! let report = Tokio::new().fetch_codes(&["USD", "EUR", "PLN"], &config)?;
//! assert!(report.all_succeeded());
//! print!("{}", report.matrix(&config.symbols));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! From a program that already runs tokio:
//!
//! ```
//! use rates_core::Config;
//! use rates_server::RatesServer;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let server = RatesServer::start(Default::default())?;
//!     let config = Config::new(&server.endpoint())?;
//!     let bases = rates_core::parse_codes("USD,EUR")?;
//!     let report = rates_tokio::fetch(&bases, &config).await?;
//!     assert!(report.all_succeeded());
//!     Ok(())
//! }
//! ```
//!
//! Streaming each outcome as it completes (asyncio's `as_completed`), and
//! stopping the run: on a deadline, or from another task or thread with
//! [`Stop::cancel`](rates_core::Stop::cancel). The bases not done are
//! `cancelled`; those fetched keep their rates; when `fetch` returns, every
//! task, connection and thread of the run is gone.
//!
//! ```
//! use std::sync::mpsc;
//! use std::time::Duration;
//! use rates_core::{Config, OnOutcome, Stop, Strategy};
//! use rates_server::{RatesServer, ServerConfig};
//!
//! // A slow server: 100 ms an answer, 2 in flight, 6 bases: 300 ms in all,
//! // cut at 250 ms.
//! let server = RatesServer::start(ServerConfig::default().with_latency(Duration::from_millis(100)))?;
//! let (done, arrived) = mpsc::channel();
//! let done = std::sync::Mutex::new(done);
//! let stop = Stop::new();
//! let config = Config::new(&server.endpoint())?
//!     .with_concurrency(2)
//!     .with_deadline(Some(Duration::from_millis(250)))
//!     .with_stop(stop.clone()) // `stop.cancel()` from anywhere stops it too
//!     .with_on_outcome(OnOutcome::new(move |index, outcome| {
//!         let _ = done.lock().unwrap().send((index, outcome.result.is_ok()));
//!     }));
//! let report = rates_tokio::Tokio::new()
//!     .fetch_codes(&["USD", "EUR", "PLN", "NOK", "CZK", "GBP"], &config)?;
//! // Each base was fetched (the first waves) or cancelled by the deadline.
//! assert_eq!(report.successes().count() + report.cancelled(), 6);
//! assert_eq!(report.stopped, Some(rates_core::StopCause::Deadline));
//! println!("{} fetched, {} cancelled", report.successes().count(), report.cancelled());
//! // Every outcome was streamed once, as it was known.
//! let streamed: Vec<(usize, bool)> = arrived.try_iter().collect();
//! assert_eq!(streamed.len(), 6);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod blocking;
mod runtime;
mod sharded;
mod tasks;

pub use blocking::{BLOCKING_THREADS, TokioBlocking, fetch_via_spawn_blocking};
pub use runtime::WORKER_THREADS_ENV;
pub use sharded::Sharded;
pub use tasks::{Tokio, fetch};
