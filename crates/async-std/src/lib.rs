//! A rates strategy on async-std tasks ([`AsyncStd`], `async-std` in the
//! registry). **async-std is discontinued upstream in favour of smol**; it
//! stays here as a comparison row, not as a recommendation.
//!
//! It runs the same async client as every async strategy (`rates-http`):
//! `min(concurrency, bases)` tasks, each keeping one HTTP/1.1 connection
//! alive and taking bases one after another, so requests in flight never
//! exceed the concurrency. Only the runtime differs: async-std's global
//! executor (`async-global-executor`, one thread per core unless
//! `ASYNC_STD_THREAD_COUNT` says otherwise), its `TcpStream` and its
//! `task::sleep`.
//!
//! Read its numbers in that light: async-std is built on smol's parts
//! (`async-executor` for tasks, `async-io` for the reactor and timers), so
//! it shares smol's reactor and timer, and any gap between the two rows is
//! the cost of async-std's wrappers and its global executor, not a different
//! I/O model.
//!
//! A task waiting for an answer costs its future's state on the heap (a few
//! KiB) plus its connection's one 1 KiB buffer, and no thread, where a thread per request would hold a kernel
//! thread and a stack each (2 MiB reserved for a Rust thread) and pay a
//! context switch per wake-up. Async stops helping where the work is not waiting:
//! CPU-bound work (decoding the bodies) gets no more parallelism than the
//! executor's threads, and a blocking call on an executor thread stalls the
//! tasks behind it (async-std's answer is `task::spawn_blocking`). Every
//! wait here is on async-std's timer.
//!
//! ## Stopping
//!
//! When the run's [`Stop`](rates_core::Stop) fires, every worker task's
//! future is dropped at its next poll (its request, its wait and its
//! connection with it). The tasks run on async-std's global executor, whose
//! threads (and async-io's reactor) are process-wide: they are not the
//! strategy's to stop, and stay.
//!
//! ## Where it fits
//!
//! smol's figures with another executor; it is discontinued upstream, so
//! prefer smol for new code. Its runs start from `block_on`, outside its
//! executor; the shared client spawns its workers from a task of the
//! executor, so that they start as promptly as smol's.
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
//! use rates_async_std::AsyncStd;
//!
//! let server = RatesServer::start(Default::default())?;
//! let config = Config::new(&server.endpoint())?.with_concurrency(2);
//! let report = AsyncStd.fetch_codes(&["USD", "EUR", "PLN"], &config)?;
//! assert!(report.all_succeeded());
//!
//! // In a program already on async-std:
//! let bases = rates_core::parse_codes("USD,EUR")?;
//! let report = async_std::task::block_on(rates_async_std::fetch(&bases, &config))?;
//! assert!(report.all_succeeded());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_std::net::TcpStream;
use rates_core::{Config, CurrencyCode, Error, Report, Run, Strategy};
use rates_http::AsyncRuntime;
use smol_hyper::rt::FuturesIo;

/// async-std's TCP, timer and spawn, for the shared client.
#[derive(Clone, Copy, Debug)]
struct AsyncStdRuntime;

impl AsyncRuntime for AsyncStdRuntime {
    type Io = FuturesIo<TcpStream>;

    fn name(&self) -> &'static str {
        "async-std"
    }

    async fn connect(&self, host: &str, port: u16) -> io::Result<Self::Io> {
        let stream = TcpStream::connect((host, port)).await?;
        stream.set_nodelay(true)?;
        Ok(FuturesIo::new(stream))
    }

    async fn sleep(&self, duration: Duration) {
        async_std::task::sleep(duration).await;
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        // Dropping the handle detaches the task.
        drop(async_std::task::spawn(task));
    }
}

/// Fetches every base with tasks on async-std's global executor: one
/// outcome per base, in input order.
///
/// Await it from any executor, for example `async_std::task::block_on`.
///
/// # Errors
/// [`InvalidInput`](rates_core::ErrorKind::InvalidInput) for an invalid
/// config. Per-base failures are outcomes.
pub async fn fetch(bases: &[CurrencyCode], config: &Config) -> Result<Report, Error> {
    rates_core::fetch_async(&AsyncStd, bases, config, |config, outcomes| async move {
        rates_async::fetch_all(AsyncStdRuntime, &config, outcomes).await?;
        Ok(None)
    })
    .await
}

/// The async-std strategy (`async-std` in the registry): tasks on async-std's
/// global executor, the calling thread blocked until they are done.
#[derive(Clone, Copy, Debug, Default)]
pub struct AsyncStd;

impl Strategy for AsyncStd {
    fn name(&self) -> &'static str {
        "async-std"
    }

    /// async-std's global executor (`async-std/runtime`) and async-io's
    /// reactor (`async-io`): process-wide, started on first use, not the
    /// strategy's to stop.
    fn kept_threads(&self) -> Option<&'static str> {
        Some("async")
    }

    fn run(&self, run: &Run<'_>) -> Result<Option<String>, Error> {
        let (config, outcomes) = (run.config, run.outcomes);
        async_std::task::block_on(rates_async::fetch_all(
            AsyncStdRuntime,
            config,
            Arc::clone(outcomes),
        ))?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rates_server::{RatesServer, ServerConfig};

    use super::*;

    #[test]
    fn fetches_in_order_within_the_bound() {
        let server =
            RatesServer::start(ServerConfig::default().with_latency(Duration::from_millis(5)))
                .unwrap();
        let config = Config::new(&server.endpoint()).unwrap().with_concurrency(3);
        let bases = rates_core::parse_codes("USD,EUR,PLN,NOK,CZK,GBP,CHF").unwrap();
        let report = async_std::task::block_on(fetch(&bases, &config)).unwrap();
        assert_eq!(report.strategy, "async-std");
        let got: Vec<_> = report.outcomes.iter().map(|o| o.base).collect();
        assert_eq!(got, bases);
        assert!(report.all_succeeded());
        let stats = server.stats();
        assert_eq!(stats.requests, 7);
        assert!(stats.peak_in_flight <= 3, "{}", stats.peak_in_flight);
    }
}
