//! The async concurrency model, written once for every runtime: N worker
//! tasks, each with one keep-alive connection, taking the next base until
//! none is left.
//!
//! [`fetch_all`] starts `min(concurrency, bases)` worker tasks on any
//! [`AsyncRuntime`] (tokio, smol, async-std: the `rates-tokio`,
//! `rates-smol` and `rates-async-std` strategies are this driver on their
//! runtime). Each worker owns one [`AsyncClient`] (one keep-alive
//! connection), takes the next base index from a shared counter, fetches it
//! (the shared attempt machine on the runtime's own timer) and puts the
//! outcome in that base's place of the run's [`Outcomes`]. Requests in
//! flight never exceed the concurrency. The run ends when every worker has
//! dropped its end of a channel, so a worker that dies never hangs the run,
//! and its base reads as a worker crash instead of being lost. When the
//! run's stop handle fires, each worker drops its request (or wait) and
//! its connection at once.
//!
//! # Examples
//!
//! ```
//! use std::{io, sync::Arc, time::Duration};
//! use rates_core::Config;
//! use rates_http::AsyncRuntime;
//! use smol_hyper::rt::FuturesIo;
//!
//! #[derive(Clone)]
//! struct Smol(Arc<smol::Executor<'static>>);
//!
//! impl AsyncRuntime for Smol {
//!     type Io = FuturesIo<smol::net::TcpStream>;
//!     fn name(&self) -> &'static str {
//!         "my-smol"
//!     }
//!     async fn connect(&self, host: &str, port: u16) -> io::Result<Self::Io> {
//!         Ok(FuturesIo::new(smol::net::TcpStream::connect((host, port)).await?))
//!     }
//!     async fn sleep(&self, duration: Duration) {
//!         smol::Timer::after(duration).await;
//!     }
//!     fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
//!         self.0.spawn(task).detach();
//!     }
//! }
//!
//! let server = rates_server::RatesServer::start(Default::default())?;
//! let config = Config::new(&server.endpoint())?;
//! let bases = rates_core::parse_codes("USD,EUR")?;
//! let executor = Arc::new(smol::Executor::new());
//! // One place per base; a strategy's `run` is handed these by `Strategy::fetch`.
//! let outcomes = Arc::new(rates_core::Outcomes::new(&bases, None));
//! let run = rates_async::fetch_all(Smol(Arc::clone(&executor)), &config, Arc::clone(&outcomes));
//! smol::block_on(executor.run(run))?;
//! assert!(outcomes.report("my-smol", Duration::ZERO).all_succeeded());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rates_core::shard::Share;
use rates_core::{Config, Error, Outcomes, Throttle};
use rates_http::{AsyncClient, AsyncRuntime, ClientSetup};

/// The shared state of one [`fetch_all`] run.
#[derive(Debug)]
struct Run {
    config: Config,
    throttle: Option<Arc<Throttle>>,
    /// The bases this run takes (every one, or a shard's).
    share: Share,
    /// How many of the share's bases have been taken.
    next: AtomicUsize,
    outcomes: Arc<Outcomes>,
}

/// Workers spawned at once before the spawning task yields.
///
/// async-executor (smol, async-std) runs tasks first in, first out, and a
/// task woken by its connection is queued behind every task spawned before
/// it: spawning 1,000 workers in one go (the `scale` scenario) had every
/// one connect before the first request went out, about 40 ms later
/// (strace: 281 connects before the first request with smol, 106 with
/// tokio, whose woken tasks jump the queue). Spawning in waves lets the
/// first connected workers send while the rest are spawned.
const SPAWN_WAVE: usize = 64;

/// Fetches every base of `outcomes` on `runtime`, putting each base's
/// outcome in its place; [`Strategy::fetch`](rates_core::Strategy::fetch)
/// (or [`fetch_async`](rates_core::fetch_async)) makes the report around it.
///
/// Starts `min(concurrency, bases)` worker tasks (from a task of the
/// runtime's own, in waves of 64), each with its own keep-alive connection, so requests in flight never exceed the configured
/// concurrency. Timeouts, the body cap, the rate limit and retries behave as
/// in the blocking strategies; every wait is on the runtime's timer.
///
/// When the config's stop handle fires, no worker takes another base and
/// each drops its request in flight (or its wait) and its connection at
/// once; the bases left are the report's to read as cancelled.
///
/// The returned future waits for the workers; it needs no particular
/// executor itself, but the workers run wherever `runtime` spawns them.
///
/// # Errors
/// A CA certificate that cannot be read
/// ([`InvalidInput`](rates_core::ErrorKind::InvalidInput)); per-base
/// failures (a certificate that is not trusted among them) are outcomes.
pub async fn fetch_all<R: AsyncRuntime>(
    runtime: R,
    config: &Config,
    outcomes: Arc<Outcomes>,
) -> Result<(), Error> {
    let throttle = Throttle::for_limit(config.rate_limit).map(Arc::new);
    let share = Share::whole(config.concurrency);
    fetch_share(runtime, config, outcomes, share, throttle).await
}

/// [`fetch_all`] for one shard of a run dealt across threads
/// ([`rates_core::shard`]): only the bases of `share`, with at most
/// `share.concurrency` workers, sharing the run's `throttle` (one for the
/// whole run, so the rate limit holds across the shards).
///
/// # Errors
/// As [`fetch_all`].
pub async fn fetch_share<R: AsyncRuntime>(
    runtime: R,
    config: &Config,
    outcomes: Arc<Outcomes>,
    share: Share,
    throttle: Option<Arc<Throttle>>,
) -> Result<(), Error> {
    let setup = ClientSetup::new(config)?;
    let workers = share.concurrency.min(share.bases(outcomes.len()));
    let run = Arc::new(Run {
        config: config.clone(),
        throttle,
        share,
        next: AtomicUsize::new(0),
        outcomes,
    });
    // Nothing is ever sent: `recv` returns once every worker has dropped its
    // sender, whether it finished or its task was dropped.
    let (alive, all_done) = async_channel::bounded::<()>(1);
    // The workers are spawned by a task of the runtime's own, so that its
    // yields between waves hand the executor to the workers already
    // spawned: a caller outside the executor (`block_on`, as async-std's
    // strategy and `#[async_std::main]` run it) that yields is polled again
    // at once, and spawned all 10,000 workers of `huge` before any sent a
    // request (async-std: 0.48 s from start to the first request at the
    // server, against 36 ms this way).
    let spawner = {
        let runtime = runtime.clone();
        async move {
            for n in 0..workers {
                if run.config.stopped().is_some() {
                    break;
                }
                if n > 0 && n % SPAWN_WAVE == 0 {
                    // Let the workers spawned so far run before spawning
                    // more (see SPAWN_WAVE).
                    futures_lite::future::yield_now().await;
                }
                let client = AsyncClient::with_setup(runtime.clone(), &setup);
                runtime.spawn(worker(client, Arc::clone(&run), alive.clone()));
            }
        }
    };
    runtime.spawn(spawner);
    let _ = all_done.recv().await;
    Ok(())
}

/// Takes bases until there are none left, or the run's stop handle fires:
/// then the request in flight (or the wait) is dropped with its connection,
/// and its base is left for the report to read as cancelled. `alive` is
/// dropped on the way out, after the client and its connection: parameters
/// are dropped in reverse order, so without the explicit drops `alive`
/// went first, and `fetch_all` could return while a worker on another
/// thread still held its socket open (a stopped tokio run was seen leaving
/// one socket, once in three runs of `cancel`).
async fn worker<R: AsyncRuntime>(
    mut client: AsyncClient<R>,
    run: Arc<Run>,
    alive: async_channel::Sender<()>,
) {
    let work = async {
        loop {
            let n = run.next.fetch_add(1, Ordering::Relaxed);
            let Some((i, &base)) = run
                .share
                .base(n)
                .and_then(|i| Some((i, run.outcomes.bases().get(i)?)))
            else {
                return;
            };
            let outcome = client
                .fetch(base, &run.config, run.throttle.as_deref())
                .await;
            run.outcomes.put(i, outcome);
        }
    };
    match &run.config.stop {
        // One race for the worker's whole life: polling the stop's side
        // costs an atomic load while it has not fired.
        Some(stop) => {
            futures_lite::future::or(work, async {
                stop.stopped().await;
            })
            .await;
        }
        None => work.await,
    }
    drop(client);
    drop(run);
    drop(alive);
}
