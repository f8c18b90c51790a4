//! Blocking code inside async: the blocking client through `spawn_blocking`.

use std::sync::Arc;

use rates_core::plan::{Cap, Shape};
use rates_core::{
    Config, CurrencyCode, Error, ErrorKind, Outcomes, Report, Run, Strategy, Throttle,
};
use rates_http::BlockingClient;
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::runtime::{self, OwnedRuntime};

/// The size of the blocking thread pool [`TokioBlocking`] owns (tokio's
/// default): at most this many blocking calls run at once, whatever the
/// concurrency.
pub const BLOCKING_THREADS: usize = 512;

/// Fetches every base by running the blocking client on the current tokio
/// runtime's blocking pool (`spawn_blocking`), at most `concurrency` calls
/// at once, and gathering the results with async: one outcome per base, in
/// input order.
///
/// This is how code with no async version joins an async program (Python's
/// `run_in_executor`): each call in flight holds a blocking-pool thread,
/// so it scales like a thread pool, bounded by both `concurrency` and the
/// runtime's `max_blocking_threads` (512 unless configured).
///
/// # Errors
/// [`InvalidInput`](rates_core::ErrorKind::InvalidInput) for an invalid
/// config; [`Runtime`](rates_core::ErrorKind::Runtime) when it is not awaited
/// inside a tokio runtime. Per-base failures are outcomes.
pub async fn fetch_via_spawn_blocking(
    bases: &[CurrencyCode],
    config: &Config,
) -> Result<Report, Error> {
    let handle = Handle::try_current().map_err(|_| {
        Error::new(
            ErrorKind::Runtime,
            "rates_tokio::fetch_via_spawn_blocking must be awaited inside a tokio runtime \
             (it uses spawn_blocking): run it under #[tokio::main] or Runtime::block_on, \
             or use the TokioBlocking strategy from synchronous code",
        )
    })?;
    let strategy = TokioBlocking::new();
    rates_core::fetch_async(&strategy, bases, config, |config, outcomes| async move {
        spawn_all(handle, &config, &outcomes).await?;
        Ok(None)
    })
    .await
}

/// Runs the blocking client for every base of `outcomes` on `handle`'s
/// blocking pool, at most `concurrency` calls at once, and waits for them.
/// A call that was cancelled (the runtime shutting down) leaves its base
/// without an outcome: a worker crash.
async fn spawn_all(handle: Handle, config: &Config, outcomes: &Arc<Outcomes>) -> Result<(), Error> {
    let limit = config
        .concurrency
        .min(outcomes.len())
        .min(Semaphore::MAX_PERMITS);
    let permits = Arc::new(Semaphore::new(limit));
    let client = BlockingClient::new(config, limit.min(BLOCKING_THREADS));
    let config = Arc::new(config.clone());
    let throttle = Throttle::for_limit(config.rate_limit).map(Arc::new);
    let mut calls = JoinSet::new();
    for i in 0..outcomes.len() {
        let permit = Arc::clone(&permits)
            .acquire_owned()
            .await
            .map_err(|_| Error::new(ErrorKind::Runtime, "the concurrency semaphore was closed"))?;
        while calls.try_join_next().is_some() {}
        let client = client.clone();
        let config = Arc::clone(&config);
        let throttle = throttle.clone();
        let outcomes = Arc::clone(outcomes);
        calls.spawn_blocking_on(
            move || {
                outcomes.fill(i, |base| client.fetch(base, &config, throttle.as_deref()));
                drop(permit);
            },
            &handle,
        );
    }
    while calls.join_next().await.is_some() {}
    Ok(())
}

/// Blocking code inside async (`tokio-blocking` in the registry): the shared
/// blocking client run through `spawn_blocking` on a runtime it owns, at most
/// `concurrency` calls at once, gathered with async.
///
/// Its runtime's blocking pool holds [`BLOCKING_THREADS`] threads, so at most
/// that many requests are in flight; it says so (see
/// [`plan`](Strategy::plan)) when asked for more. Inside a tokio
/// runtime, `.await` [`fetch_via_spawn_blocking`] instead.
#[derive(Debug)]
pub struct TokioBlocking {
    runtime: OwnedRuntime,
}

impl TokioBlocking {
    /// The strategy; its runtime starts on the first run.
    pub fn new() -> Self {
        Self {
            runtime: OwnedRuntime::new(runtime::for_blocking),
        }
    }
}

impl Default for TokioBlocking {
    fn default() -> Self {
        Self::new()
    }
}

impl Strategy for TokioBlocking {
    fn name(&self) -> &'static str {
        "tokio-blocking"
    }

    /// Its runtime's blocking pool, built on the first run and kept for the
    /// next (idle threads linger until tokio retires them).
    fn kept_threads(&self) -> Option<&'static str> {
        Some("rates-tokio-blocking")
    }

    /// A blocking thread per call in flight: what the OS allows, and at
    /// most the runtime's blocking pool, [`BLOCKING_THREADS`].
    fn shape(&self) -> Shape {
        Shape::Threads {
            cap: Some(Cap {
                most: BLOCKING_THREADS,
                why: "tokio's blocking pool holds that many threads",
            }),
        }
    }

    /// # Errors
    /// [`Runtime`](rates_core::ErrorKind::Runtime) when called on a thread
    /// that is inside a tokio runtime (`.await` [`fetch_via_spawn_blocking`]
    /// there instead), or when the runtime cannot start.
    fn run(&self, run: &Run<'_>) -> Result<Option<String>, Error> {
        let (config, outcomes) = (run.config, run.outcomes);
        if Handle::try_current().is_ok() {
            return Err(runtime::nested(
                self.name(),
                "rates_tokio::fetch_via_spawn_blocking",
            ));
        }
        let runtime = self.runtime.get()?;
        // Each call in flight holds a blocking thread: the config's
        // concurrency is the plan's, under what the OS allows and the
        // blocking pool holds, so the pool never fails to start a thread.
        let handle = runtime.handle().clone();
        runtime.block_on(spawn_all(handle, config, outcomes))?;
        Ok(None)
    }
}
