//! The trait every strategy implements.

use std::sync::Arc;
use std::time::Instant;

use crate::{Config, CurrencyCode, Error, Report};

/// A way of fetching rates for many bases: sequential, threads, a pool,
/// processes, or an async runtime.
///
/// Implementors write [`run`](Strategy::run); callers use
/// [`fetch`](Strategy::fetch), which validates the config, answers empty input
/// without starting anything, and checks the one-outcome-per-base contract.
pub trait Strategy: Send + Sync {
    /// The registry name (`"sync"`, `"tokio"`, ...).
    fn name(&self) -> &'static str;

    /// One line on how it works, for `rates strategies`.
    fn summary(&self) -> &'static str;

    /// Whether it keeps at most `config.concurrency` requests in flight.
    fn bounded(&self) -> bool {
        true
    }

    /// The most requests it keeps in flight for `bases` bases under `config`
    /// (used to compute a scenario's ideal time for it).
    fn max_in_flight(&self, bases: usize, config: &Config) -> usize {
        config.concurrency.min(bases).max(1)
    }

    /// Why this strategy will not run `bases` bases with `config` as asked
    /// (it caps or refuses), if it will not. Reports show it beside the figures.
    fn limitation(&self, bases: usize, config: &Config) -> Option<String> {
        let _ = (bases, config);
        None
    }

    /// Fetches every base. Called by [`fetch`](Strategy::fetch) with a valid
    /// config and at least one base; must return exactly one outcome per base,
    /// in input order.
    ///
    /// # Errors
    /// Only when the run cannot happen at all (a runtime or worker program
    /// cannot start); per-base failures are outcomes.
    fn run(&self, bases: &[CurrencyCode], config: &Config) -> Result<Report, Error>;

    /// Fetches every base: one outcome per base, in input order.
    ///
    /// # Errors
    /// An invalid config, or a strategy that cannot run at all.
    fn fetch(&self, bases: &[CurrencyCode], config: &Config) -> Result<Report, Error> {
        config.validate()?;
        if bases.is_empty() {
            return Ok(Report::empty(self.name()));
        }
        // Make room for the connections it will hold (raising the soft
        // open-files limit), or hold fewer, before anything is sent.
        let wanted = self.max_in_flight(bases.len(), config);
        let files = crate::limits::open_files_for(wanted, config.files_per_connection());
        let capped;
        let config = match &files.why {
            Some(_) if self.bounded() && files.connections < config.concurrency => {
                capped = config.clone().with_concurrency(files.connections);
                &capped
            }
            _ => config,
        };
        let started = Instant::now();
        let mut report = self.run(bases, config)?;
        if let Some(why) = files.why.filter(|_| self.bounded()) {
            report.note = Some(match report.note.take() {
                Some(other) => format!("{why}; {other}"),
                None => why,
            });
        }
        if report.wall.is_zero() {
            report.wall = started.elapsed();
        }
        let in_order = report.outcomes.len() == bases.len()
            && report.outcomes.iter().zip(bases).all(|(o, b)| o.base == *b);
        if !in_order {
            return Err(Error::new(
                crate::ErrorKind::Runtime,
                format!(
                    "strategy {} broke its contract: {} outcomes for {} bases or out of order",
                    self.name(),
                    report.outcomes.len(),
                    bases.len()
                ),
            ));
        }
        Ok(report)
    }

    /// Parses `bases` and fetches them; an invalid code is rejected before
    /// any request is sent.
    ///
    /// # Errors
    /// The first invalid code, by name; then as [`fetch`](Strategy::fetch).
    fn fetch_codes(&self, bases: &[&str], config: &Config) -> Result<Report, Error> {
        let codes = bases
            .iter()
            .map(|b| CurrencyCode::new(b))
            .collect::<Result<Vec<_>, _>>()?;
        self.fetch(&codes, config)
    }
}

macro_rules! forward {
    ($($ty:ty),*) => {$(
        impl<T: Strategy + ?Sized> Strategy for $ty {
            fn name(&self) -> &'static str {
                (**self).name()
            }
            fn summary(&self) -> &'static str {
                (**self).summary()
            }
            fn bounded(&self) -> bool {
                (**self).bounded()
            }
            fn max_in_flight(&self, bases: usize, config: &Config) -> usize {
                (**self).max_in_flight(bases, config)
            }
            fn limitation(&self, bases: usize, config: &Config) -> Option<String> {
                (**self).limitation(bases, config)
            }
            fn run(&self, bases: &[CurrencyCode], config: &Config) -> Result<Report, Error> {
                (**self).run(bases, config)
            }
        }
    )*};
}

forward!(&T, Box<T>, Arc<T>);
