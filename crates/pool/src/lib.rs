//! A std-only thread pool: a fixed number of workers, a work channel in and
//! a results channel out.
//!
//! [`PoolStrategy`] starts `concurrency` workers (fewer if there are fewer
//! bases), each with its own HTTP client and so its own keep-alive
//! connection. The calling thread queues every base on the work channel;
//! idle workers take the next base, run the shared attempt loop (throttle,
//! retries, backoff) and send the outcome back with its index; the caller
//! puts the outcomes in input order. At most `concurrency` requests are ever
//! in flight, so the wall time is about `ceil(N / concurrency)` latencies,
//! and the cost is fixed at `concurrency` threads and connections however
//! many bases there are: this is the thread model that scales to any N a
//! server will serve. On a 2-core machine the `fanout` scenario (500 bases,
//! 20 ms, 50 workers, ideal 200 ms) takes 1.10 to 1.13 times the ideal
//! where the async runtimes take about 1.05: starting 50 threads and
//! opening 50 connections each run costs about 5% (a pool kept warm across
//! runs measured 1.04), and the shared HTTP client's per-request overhead
//! about 3% more. Where it breaks is very high concurrency: 1,000 blocked
//! threads cost 1,000 stacks and a context switch per response where an
//! async runtime needs a thread per core. Past what the OS allows (see
//! [`rates_core::plan::Plan`]: `vm.max_map_count`, thread and
//! open-files limits) it starts fewer workers and says why in the report.
//! The rate limit is one GCRA
//! [`Throttle`] shared by all workers; a worker waiting for its slot sleeps.
//!
//! The [`Pool`] itself is a small reusable type with no dependency beyond
//! `std` and this workspace's core crate: generic per-worker state, jobs as
//! items plus a function, panics caught per job, bounded shutdown. Its queue
//! and shutdown logic is model-checked with `loom` (`scripts/loom.sh`).
//!
//! ## Stopping
//!
//! When the run's [`Stop`](rates_core::Stop) fires, the queued bases are
//! taken and cancelled at once (nothing is sent for them), the socket of
//! each request in flight is shut down so its worker wakes, and the pool's
//! threads are joined before `fetch` returns.
//!
//! ## Where it fits
//!
//! At modest concurrency it keeps within a few percent of the ideal at a
//! fraction of `threads`' CPU; its cost per request is a context switch per
//! request (a worker blocks on its socket), which is most of its gap to the
//! async runtimes when there is no latency. With CPU work per item it keeps
//! pace with them, since its workers are real threads. Use it when a few
//! dozen requests are in flight and a runtime is not worth its dependency.
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
//! use rates_pool::PoolStrategy;
//! use rates_server::RatesServer;
//!
//! let server = RatesServer::start(Default::default())?;
//! let config = Config::new(&server.endpoint())?.with_concurrency(2);
//! let report = PoolStrategy.fetch_codes(&["USD", "EUR", "PLN"], &config)?;
//! assert!(report.all_succeeded());
//! assert!(server.stats().peak_in_flight <= 2);
//! print!("{}", report.matrix(&config.symbols));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod chan;
#[cfg(all(test, loom))]
mod loom_models;
mod pool;
mod sync;

use std::sync::Arc;

use rates_core::plan::Shape;
use rates_core::{Error, Run, Strategy, Throttle};
use rates_http::BlockingClient;

pub use pool::{Batch, Pool, SHUTDOWN_TIMEOUT};

/// The thread-pool strategy (`pool` in the registry).
#[derive(Clone, Copy, Debug, Default)]
pub struct PoolStrategy;

impl Strategy for PoolStrategy {
    fn name(&self) -> &'static str {
        "pool"
    }

    fn shape(&self) -> Shape {
        Shape::Threads { cap: None }
    }

    fn run(&self, run: &Run<'_>) -> Result<Option<String>, Error> {
        let (bases, config, outcomes) = (run.bases, run.config, run.outcomes);
        let pool = Pool::new(run.plan.in_flight, |_| BlockingClient::new(config, 1))?;
        let shared = Arc::new((
            config.clone(),
            Throttle::for_limit(config.rate_limit),
            Arc::clone(outcomes),
        ));
        let results = pool.map(0..bases.len(), move |client, i| {
            let (config, throttle, outcomes) = &*shared;
            outcomes.fill(i, |base| client.fetch(base, config, throttle.as_ref()));
        });
        // A job the pool lost (its worker gone) says why in its result.
        for (i, result) in results.into_iter().enumerate() {
            if let Err(e) = result {
                outcomes.put_error(i, e);
            }
        }
        Ok(None)
    }
}
