//! The baseline: one base after another on the calling thread.
//!
//! Nothing overlaps, so the wall time is the sum of every request's latency:
//! with 100 ms per answer, five bases take 500 ms. It costs nothing beyond
//! the caller's own thread and one keep-alive connection, and it is the
//! yardstick every other strategy is measured against. It ignores
//! `concurrency` (it is always 1), but honours the rate limit and retries.
//!
//! ## Stopping
//!
//! When the run's [`Stop`](rates_core::Stop) fires (a caller, Ctrl-C, or
//! the run's deadline), the one request in flight has its socket shut
//! down, so the blocked read returns at once; the loop sends nothing more
//! and every base left reads as cancelled. It returns within milliseconds
//! (see `rates compare --scenario cancel`).
//!
//! ## Where it fits
//!
//! The cheapest in memory and threads, and N times slower whenever there is
//! latency, since one request waits behind the other. Use it when there is
//! one request, or when the server allows only one at a time.
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
//! use rates_sync::Sequential;
//!
//! let server = RatesServer::start(Default::default())?;
//! let config = Config::new(&server.endpoint())?;
//! let report = Sequential.fetch_codes(&["USD", "EUR"], &config)?;
//! assert!(report.all_succeeded());
//! print!("{}", report.matrix(&config.symbols));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use rates_core::plan::Shape;
use rates_core::{Error, Run, Strategy, Throttle};
use rates_http::BlockingClient;

/// The sequential strategy (`sync` in the registry).
#[derive(Clone, Copy, Debug, Default)]
pub struct Sequential;

impl Strategy for Sequential {
    fn name(&self) -> &'static str {
        "sync"
    }

    fn shape(&self) -> Shape {
        Shape::OneAtATime
    }

    fn run(&self, run: &Run<'_>) -> Result<Option<String>, Error> {
        let (bases, config, outcomes) = (run.bases, run.config, run.outcomes);
        let client = BlockingClient::new(config, 1);
        let throttle = Throttle::for_limit(config.rate_limit);
        for i in 0..bases.len() {
            outcomes.fill(i, |base| client.fetch(base, config, throttle.as_ref()));
        }
        Ok(None)
    }
}
