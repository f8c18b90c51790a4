//! Thread-per-core on tokio: a current-thread runtime per core, each with
//! its own part of the run, and no stealing between them.

use std::sync::Arc;

use rates_core::shard::{self, Share};
use rates_core::{Error, ErrorKind, Run, Strategy, Throttle};
use tokio::runtime::{Builder, Handle};

use crate::runtime::{self, TokioRuntime};

/// The sharded strategy (`sharded` in the registry): thread-per-core on
/// epoll. Each run deals its bases to one shard per core up front
/// ([`rates_core::shard::deal`]: the bases in turn, the in-flight limit
/// split), and each shard runs them on a tokio current-thread runtime of its
/// own, on a thread pinned to its core where the affinity mask allows. A
/// shard that finishes early does not help the others.
///
/// It runs the same async client and worker driver as [`Tokio`](crate::Tokio)
/// (`rates_async::fetch_share`), on the same tokio I/O driver (epoll), so
/// the two differ only in scheduling: `tokio` steals work across its
/// worker threads and wakes them for each other, `sharded` never does.
/// That answers "is work stealing worth it?" on this job.
///
/// The rate limit is one for the whole run, shared by the shards. The
/// runtimes and their threads live for one run and are joined before it
/// returns.
///
/// # Examples
///
/// ```
/// use rates_core::{Config, Strategy};
/// use rates_server::RatesServer;
/// use rates_tokio::Sharded;
///
/// let server = RatesServer::start(Default::default())?;
/// let config = Config::new(&server.endpoint())?.with_concurrency(4);
/// let report = Sharded::with_shards(2).fetch_codes(&["USD", "EUR", "PLN"], &config)?;
/// assert!(report.all_succeeded());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Sharded {
    /// Shards to deal a run to; `None`: one per CPU of the affinity mask.
    shards: Option<usize>,
}

impl Sharded {
    /// One shard per CPU this process may run on (its affinity mask).
    pub fn new() -> Self {
        Self::default()
    }

    /// `shards` shards (at least one), whatever the machine has; more
    /// shards than CPUs share them in turn.
    pub fn with_shards(shards: usize) -> Self {
        Self {
            shards: Some(shards.max(1)),
        }
    }
}

impl Strategy for Sharded {
    fn name(&self) -> &'static str {
        "sharded"
    }

    /// # Errors
    /// [`Runtime`](ErrorKind::Runtime) when called on a thread that is
    /// inside a tokio runtime, or when a shard's runtime cannot start.
    fn run(&self, run: &Run<'_>) -> Result<Option<String>, Error> {
        let (config, outcomes) = (run.config, run.outcomes);
        if Handle::try_current().is_ok() {
            return Err(runtime::nested(self.name(), "rates_tokio::fetch"));
        }
        let cores = self.shards.unwrap_or_else(|| shard::cpus().len());
        let shares = shard::deal(config.concurrency, outcomes.len(), cores);
        let throttle = Throttle::for_limit(config.rate_limit).map(Arc::new);
        shard::run_shards("rates-sharded", &shares, |share: Share| {
            let runtime = Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| {
                    Error::new(
                        ErrorKind::Runtime,
                        format!("a sharded shard's tokio runtime could not start: {e}"),
                    )
                })?;
            let handle = runtime.handle().clone();
            runtime.block_on(rates_async::fetch_share(
                TokioRuntime { handle },
                config,
                Arc::clone(outcomes),
                share,
                throttle.clone(),
            ))
        })?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use rates_server::{RatesServer, ServerConfig};

    use super::*;

    #[test]
    fn shards_fetch_every_base_once_within_the_bound() {
        let server = RatesServer::start(
            ServerConfig::default().with_latency(std::time::Duration::from_millis(2)),
        )
        .unwrap();
        let config = rates_core::Config::new(&server.endpoint())
            .unwrap()
            .with_concurrency(5);
        let bases = rates_core::generated_codes(101);
        let report = Sharded::with_shards(3).fetch(&bases, &config).unwrap();
        assert!(report.all_succeeded());
        let got: Vec<_> = report.outcomes.iter().map(|o| o.base).collect();
        assert_eq!(got, bases);
        assert_eq!(server.stats().requests, 101);
        assert!(server.stats().peak_in_flight <= 5);
    }
}
