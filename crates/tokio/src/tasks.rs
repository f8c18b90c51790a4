//! Tokio tasks over the shared async client.

use std::sync::Arc;

use rates_core::{Config, CurrencyCode, Error, Report, Run, Strategy};
use tokio::runtime::Handle;

use crate::runtime::{self, OwnedRuntime, TokioRuntime};

/// Fetches every base with tokio tasks on the current runtime: one outcome
/// per base, in input order.
///
/// Starts `min(concurrency, bases)` tasks, each with one keep-alive
/// connection, so at most `concurrency` requests are in flight. Timeouts,
/// backoff and the rate limit wait on tokio's timer. Works on any tokio
/// runtime built with I/O and timers (`enable_all()`); on a current-thread
/// runtime every task shares the one thread.
///
/// # Errors
/// [`InvalidInput`](rates_core::ErrorKind::InvalidInput) for an invalid
/// config; [`Runtime`](rates_core::ErrorKind::Runtime) when it is not awaited
/// inside a tokio runtime, or the runtime lacks I/O or timers. Per-base
/// failures are outcomes.
pub async fn fetch(bases: &[CurrencyCode], config: &Config) -> Result<Report, Error> {
    let handle = runtime::current("rates_tokio::fetch")?;
    rates_core::fetch_async(
        &Tokio::new(),
        bases,
        config,
        |config, outcomes| async move {
            rates_async::fetch_all(TokioRuntime { handle }, &config, outcomes).await?;
            Ok(None)
        },
    )
    .await
}

/// The tokio strategy (`tokio` in the registry): tasks on a multi-threaded
/// runtime it owns (one worker thread per core, or as many as tokio's own
/// [`TOKIO_WORKER_THREADS`](crate::WORKER_THREADS_ENV) says), built on first
/// use and kept until it is dropped.
///
/// Inside a tokio runtime, `.await` [`fetch`] instead: the trait's
/// [`run`](Strategy::run) blocks the calling thread and refuses to do so
/// there.
#[derive(Debug)]
pub struct Tokio {
    runtime: OwnedRuntime,
}

impl Tokio {
    /// The strategy; its runtime starts on the first run.
    ///
    /// A `TOKIO_WORKER_THREADS` that is not a whole number of at least 1
    /// fails that run with an [`InvalidInput`](rates_core::ErrorKind::InvalidInput)
    /// error naming it (tokio itself would panic).
    pub fn new() -> Self {
        Self {
            runtime: OwnedRuntime::new(runtime::multi_thread),
        }
    }
}

impl Default for Tokio {
    fn default() -> Self {
        Self::new()
    }
}

impl Strategy for Tokio {
    fn name(&self) -> &'static str {
        "tokio"
    }

    /// Its runtime's threads, built on the first run and kept for the next
    /// (until the strategy is dropped).
    fn kept_threads(&self) -> Option<&'static str> {
        Some("rates-tokio")
    }

    /// # Errors
    /// [`Runtime`](rates_core::ErrorKind::Runtime) when called on a thread
    /// that is inside a tokio runtime (`.await` [`fetch`] there instead), or
    /// when the runtime cannot start.
    fn run(&self, run: &Run<'_>) -> Result<Option<String>, Error> {
        let (config, outcomes) = (run.config, run.outcomes);
        if Handle::try_current().is_ok() {
            return Err(runtime::nested(self.name(), "rates_tokio::fetch"));
        }
        let runtime = self.runtime.get()?;
        let handle = runtime.handle().clone();
        runtime.block_on(rates_async::fetch_all(
            TokioRuntime { handle },
            config,
            Arc::clone(outcomes),
        ))?;
        Ok(None)
    }
}
