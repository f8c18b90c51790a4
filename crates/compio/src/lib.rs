//! Rates strategies on compio, thread-per-core: io_uring's completion-based
//! I/O ([`Compio::uring`], `compio-uring` in the registry), and the same
//! code on compio's epoll driver as its control ([`Compio::epoll`],
//! `compio-epoll`).
//!
//! Each run is dealt to one shard per core up front
//! ([`rates_core::shard`]: the bases in turn, the in-flight limit split),
//! and each shard runs its part on a compio runtime of its own, on a thread
//! pinned to its core where the affinity mask allows: compio's runtime is
//! single-threaded by design (its tasks and sockets are not `Send`), so
//! thread-per-core is its native shape, as it is for every completion-based
//! runtime in Rust. A shard that finishes early does not help the others.
//!
//! Every request goes through the shared HTTP/1.1 framing in its
//! completion form (`rates_http::CompletionClient`): the request is written
//! from the connection's one buffer, handed to the kernel with it, and the
//! response is parsed from the buffer the read's completion returns. No
//! readiness layer sits in the hot path.
//!
//! ## Why compio
//!
//! Of the completion-based runtimes for Rust, compio was the one with
//! recent releases when this was written (0.19 in late 2026, with its
//! driver, runtime, net and TLS crates released together); tokio-uring has
//! no maintainer (tokio-rs/tokio-uring#336), glommio asked for maintainers,
//! and monoio's last release was in 2024. compio also has what a fair
//! comparison needs: its driver can be told to use epoll instead of
//! io_uring (`ProactorBuilder::driver_type`), so the control runs the same
//! runtime, the same executor and the same strategy code with only the
//! I/O driver changed. `compio-uring` against `compio-epoll` is io_uring's
//! effect; `compio-epoll` against `sharded` (tokio's current-thread
//! runtime per core, the same shape) is the runtime's.
//!
//! ## When io_uring is unavailable
//!
//! Where the kernel refuses io_uring (an old kernel, a seccomp filter as in
//! many containers, `/proc/sys/kernel/io_uring_disabled`, a memlock
//! limit), `compio-uring` says why through
//! [`Strategy::unavailable`]: reports,
//! sweeps, the benches and the conformance suite skip it with the kernel's
//! reason, and a run of it fails with that reason. It never falls back to
//! epoll behind the reader's back. [`DISABLE_ENV`]`=off` makes it
//! unavailable on purpose, to see (and test) that path.
//!
//! ## Stopping
//!
//! When the run's stop handle fires, each worker's request (or wait) is
//! dropped, which cancels its operation in the driver, and its connection
//! with it; the shards' runtimes and threads are gone when the run returns.
//!
//! Measured figures (time, CPU, syscalls, memory, time to stop, on every
//! scenario) are in the repository's `results/` folder; `rates compare`
//! makes them afresh on any machine.
//!
//! # Examples
//!
//! ```
//! use rates_core::{Config, Strategy};
//! use rates_server::RatesServer;
//! use rates_compio::Compio;
//!
//! let server = RatesServer::start(Default::default())?;
//! let config = Config::new(&server.endpoint())?.with_concurrency(4);
//! // The control runs anywhere; io_uring where the kernel allows it.
//! for strategy in [Compio::epoll(), Compio::uring()] {
//!     if let Some(why) = strategy.unavailable() {
//!         println!("{}: {why}", strategy.name());
//!         continue;
//!     }
//!     let report = strategy.fetch_codes(&["USD", "EUR", "PLN"], &config)?;
//!     assert!(report.all_succeeded());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cell::Cell;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};

use compio::driver::{DriverType, ProactorBuilder};
use compio::runtime::{Runtime, RuntimeBuilder};
use rates_core::shard::{self, Share};
use rates_core::{Config, Error, ErrorKind, Outcomes, Run, Strategy, Throttle};
use rates_http::{CompletionClient, CompletionSetup};

/// Set to `off` to make `compio-uring` unavailable on purpose, as if the
/// kernel refused io_uring: it is then skipped with this reason wherever a
/// strategy can be skipped.
pub const DISABLE_ENV: &str = "RATES_IO_URING";

/// Which of compio's I/O drivers a strategy runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// io_uring: reads and writes submitted as operations with owned
    /// buffers, batched per turn of the loop into one `io_uring_enter`.
    IoUring,
    /// epoll, through compio's polling driver: the same operations carried
    /// out by `recv`/`send` once epoll says a socket is ready.
    Epoll,
}

/// A compio strategy: thread-per-core, on one of compio's drivers.
#[derive(Clone, Debug)]
pub struct Compio {
    driver: Driver,
    /// Shards to deal a run to; `None`: one per CPU of the affinity mask.
    shards: Option<usize>,
}

impl Compio {
    /// `compio-uring`: io_uring, one shard per CPU.
    pub fn uring() -> Self {
        Self {
            driver: Driver::IoUring,
            shards: None,
        }
    }

    /// `compio-epoll`: the same on compio's epoll driver (the control).
    pub fn epoll() -> Self {
        Self {
            driver: Driver::Epoll,
            shards: None,
        }
    }

    /// The same strategy with `shards` shards (at least one).
    #[must_use]
    pub fn with_shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards.max(1));
        self
    }

    /// The driver it runs on.
    pub fn driver(&self) -> Driver {
        self.driver
    }

    fn runtime(&self) -> Result<Runtime, Error> {
        let mut proactor = ProactorBuilder::new();
        proactor.driver_type(match self.driver {
            Driver::IoUring => DriverType::IoUring,
            Driver::Epoll => DriverType::Poll,
        });
        RuntimeBuilder::new()
            .with_proactor(proactor)
            .build()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Runtime,
                    format!("the {} runtime could not start: {e}", self.name()),
                )
            })
    }
}

/// Why this machine refuses io_uring, asked once per process: the error of
/// setting up a ring, with the system setting that explains it if there is
/// one.
fn io_uring_refused() -> Option<String> {
    static REFUSED: OnceLock<Option<String>> = OnceLock::new();
    REFUSED
        .get_or_init(|| {
            let mut proactor = ProactorBuilder::new();
            proactor.driver_type(DriverType::IoUring);
            let error = proactor.build().err()?;
            let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| v != "0")
                .map(|v| format!(", and /proc/sys/kernel/io_uring_disabled is {v}"))
                .unwrap_or_default();
            Some(format!(
                "io_uring is unavailable here: the kernel refused to set up a ring ({error}{disabled}); \
                 an old kernel, a seccomp filter (as in many containers), io_uring_disabled or a \
                 memlock limit does this. compio-epoll runs the same code on epoll"
            ))
        })
        .clone()
}

impl Strategy for Compio {
    fn name(&self) -> &'static str {
        match self.driver {
            Driver::IoUring => "compio-uring",
            Driver::Epoll => "compio-epoll",
        }
    }

    /// For `compio-uring`: why the kernel refuses io_uring, or that
    /// [`DISABLE_ENV`] turned it off.
    fn unavailable(&self) -> Option<String> {
        if self.driver != Driver::IoUring {
            return None;
        }
        if std::env::var_os(DISABLE_ENV).is_some_and(|v| v == "off") {
            return Some(format!(
                "io_uring is turned off by {DISABLE_ENV}=off (unset it to use io_uring)"
            ));
        }
        io_uring_refused()
    }

    /// # Errors
    /// [`Runtime`](ErrorKind::Runtime) when io_uring is unavailable (for
    /// `compio-uring`) or a shard's runtime cannot start.
    fn run(&self, run: &Run<'_>) -> Result<Option<String>, Error> {
        if let Some(why) = self.unavailable() {
            return Err(Error::new(ErrorKind::Runtime, why));
        }
        let (config, outcomes) = (run.config, run.outcomes);
        let setup = CompletionSetup::new(config)?;
        let cores = self.shards.unwrap_or_else(|| shard::cpus().len());
        let shares = shard::deal(config.concurrency, outcomes.len(), cores);
        let throttle = Throttle::for_limit(config.rate_limit).map(Arc::new);
        shard::run_shards(self.name(), &shares, |share| {
            let runtime = self.runtime()?;
            let shard = Rc::new(Shard {
                setup: setup.clone(),
                config: config.clone(),
                outcomes: Arc::clone(outcomes),
                throttle: throttle.clone(),
                share,
                next: Cell::new(0),
            });
            runtime.block_on(shard.run());
            Ok(())
        })?;
        Ok(None)
    }
}

/// One shard's run, shared by its workers on its one thread.
struct Shard {
    setup: CompletionSetup,
    config: Config,
    outcomes: Arc<Outcomes>,
    throttle: Option<Arc<Throttle>>,
    share: Share,
    /// How many of the share's bases have been taken.
    next: Cell<usize>,
}

impl Shard {
    /// Starts the shard's workers (one per request it may hold in flight,
    /// at most one per base) and waits for them all.
    async fn run(self: Rc<Self>) {
        let workers = self
            .share
            .concurrency
            .min(self.share.bases(self.outcomes.len()));
        let mut tasks = Vec::with_capacity(workers);
        for _ in 0..workers {
            if self.config.stopped().is_some() {
                break;
            }
            tasks.push(compio::runtime::spawn(Rc::clone(&self).worker()));
        }
        for task in tasks {
            // A worker catches its requests' panics; one that still dies
            // leaves its base for the report to read as a worker crash.
            let _ = task.await;
        }
    }

    /// The next base of this shard, if any is left.
    fn take(&self) -> Option<usize> {
        let n = self.next.get();
        self.next.set(n + 1);
        self.share.base(n).filter(|&i| i < self.outcomes.len())
    }

    /// Takes bases until none is left or the run's stop fires (the request
    /// in flight, or the wait, is then dropped with its connection).
    async fn worker(self: Rc<Self>) {
        let mut client = CompletionClient::new(&self.setup);
        let work = async {
            while let Some(i) = self.take() {
                let base = self.outcomes.bases()[i];
                let outcome = client
                    .fetch(base, &self.config, self.throttle.as_deref())
                    .await;
                self.outcomes.put(i, outcome);
            }
        };
        match &self.config.stop {
            Some(stop) => {
                futures_lite::future::or(work, async {
                    stop.stopped().await;
                })
                .await;
            }
            None => work.await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rates_server::{RatesServer, ServerConfig};

    use super::*;

    fn each(check: impl Fn(Compio)) {
        for strategy in [Compio::epoll(), Compio::uring()] {
            if let Some(why) = strategy.unavailable() {
                eprintln!("{}: {why}", strategy.name());
                continue;
            }
            check(strategy);
        }
    }

    #[test]
    fn shards_fetch_every_base_once_within_the_bound() {
        each(|strategy| {
            let server =
                RatesServer::start(ServerConfig::default().with_latency(Duration::from_millis(2)))
                    .unwrap();
            let config = Config::new(&server.endpoint()).unwrap().with_concurrency(5);
            let bases = rates_core::generated_codes(101);
            let report = strategy.with_shards(3).fetch(&bases, &config).unwrap();
            assert!(report.all_succeeded(), "{}", report.strategy);
            let got: Vec<_> = report.outcomes.iter().map(|o| o.base).collect();
            assert_eq!(got, bases);
            assert_eq!(server.stats().requests, 101);
            assert!(server.stats().peak_in_flight <= 5);
            // One keep-alive connection per worker.
            assert!(server.stats().connections <= 5);
        });
    }

    #[test]
    fn names_say_the_driver() {
        assert_eq!(Compio::uring().name(), "compio-uring");
        assert_eq!(Compio::epoll().name(), "compio-epoll");
        assert_eq!(Compio::epoll().unavailable(), None);
    }
}
