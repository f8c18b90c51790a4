//! One place per base for a run's outcomes, filled by index.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::{Config, CurrencyCode, Error, ErrorKind, Outcome, Progress, Report, panic_error};

/// One run, as [`Strategy::fetch`](crate::Strategy::fetch) hands it to a
/// strategy's [`run`](crate::Strategy::run).
#[derive(Clone, Copy, Debug)]
pub struct Run<'a> {
    /// The bases, in input order (at least one).
    pub bases: &'a [CurrencyCode],
    /// The config, valid; its concurrency lowered when the open-files limit
    /// is too low to hold the connections asked for.
    pub config: &'a Config,
    /// One place per base, to fill by index.
    pub outcomes: &'a Arc<Outcomes>,
}

/// The outcomes of one run: one place per base, filled by index from any
/// thread or task, first write wins.
///
/// [`Strategy::fetch`](crate::Strategy::fetch) makes one for each run and
/// hands it to the strategy's [`run`](crate::Strategy::run), which only
/// [`fill`](Outcomes::fill)s (or [`put`](Outcomes::put)s into) it. Here,
/// once for every strategy: a panic while fetching a base becomes that
/// base's outcome, every outcome put counts in the run's [`Progress`], and a
/// place left empty (a worker lost without a word) reads as a worker crash,
/// so no base is ever lost or reported twice.
///
/// ```
/// use rates_core::{Outcomes, parse_codes};
///
/// let bases = parse_codes("USD,EUR")?;
/// let outcomes = Outcomes::new(&bases, None);
/// outcomes.fill(0, |_base| panic!("a bug in a client"));
/// let report = outcomes.report("demo", std::time::Duration::ZERO);
/// assert!(report.outcomes[0].result.as_ref().unwrap_err().is_panic());
/// assert!(report.outcomes[1].result.as_ref().unwrap_err().is_worker_crash());
/// # Ok::<(), rates_core::Error>(())
/// ```
#[derive(Debug)]
pub struct Outcomes {
    bases: Box<[CurrencyCode]>,
    slots: Box<[Mutex<Option<Outcome>>]>,
    progress: Option<Progress>,
}

impl Outcomes {
    /// Empty places for `bases`; each outcome put counts in `progress`.
    pub fn new(bases: &[CurrencyCode], progress: Option<Progress>) -> Self {
        Self {
            bases: bases.into(),
            slots: bases.iter().map(|_| Mutex::new(None)).collect(),
            progress,
        }
    }

    /// The bases, in input order.
    pub fn bases(&self) -> &[CurrencyCode] {
        &self.bases
    }

    /// How many places there are.
    pub fn len(&self) -> usize {
        self.bases.len()
    }

    /// True when there are no bases.
    pub fn is_empty(&self) -> bool {
        self.bases.is_empty()
    }

    /// Puts the outcome of base `index`, unless it already has one (the first
    /// write wins), and counts it in the run's progress.
    ///
    /// # Panics
    /// When `index` is out of range.
    pub fn put(&self, index: usize, outcome: Outcome) {
        let mut slot = self.slots[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(outcome);
            if let Some(progress) = &self.progress {
                progress.finish_one();
            }
        }
    }

    /// Fetches base `index` with `fetch` and puts its outcome; a panic in
    /// `fetch` is caught and becomes the outcome (attempts unknown: 0).
    ///
    /// # Panics
    /// When `index` is out of range.
    pub fn fill(&self, index: usize, fetch: impl FnOnce(CurrencyCode) -> Outcome) {
        let base = self.bases[index];
        match catch_unwind(AssertUnwindSafe(|| fetch(base))) {
            Ok(outcome) => self.put(index, outcome),
            Err(payload) => self.put_panic(index, &*payload),
        }
    }

    /// Puts a panic, caught by the strategy (a task's or a thread's), as the
    /// outcome of base `index` (attempts unknown: 0).
    ///
    /// # Panics
    /// When `index` is out of range.
    pub fn put_panic(&self, index: usize, payload: &(dyn Any + Send)) {
        self.put(
            index,
            Outcome::failed(self.bases[index], 0, panic_error(payload)),
        );
    }

    /// Puts `error` as the outcome of base `index` (nothing was sent: 0 attempts).
    ///
    /// # Panics
    /// When `index` is out of range.
    pub fn put_error(&self, index: usize, error: Error) {
        self.put(index, Outcome::failed(self.bases[index], 0, error));
    }

    /// The report of strategy `strategy`: every outcome put, in input order,
    /// taken out of its place; a place left empty becomes a worker-crash
    /// outcome.
    pub fn report(&self, strategy: &str, wall: Duration) -> Report {
        let outcomes = self
            .bases
            .iter()
            .zip(self.slots.iter())
            .map(|(&base, slot)| {
                slot.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take()
                    .unwrap_or_else(|| {
                        Outcome::failed(
                            base,
                            0,
                            Error::new(
                                ErrorKind::WorkerCrash,
                                "no outcome was reported: the worker holding this base was lost",
                            ),
                        )
                    })
            })
            .collect();
        Report::new(strategy, outcomes, wall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_and_outcomes_count_once_in_progress() {
        let bases = crate::parse_codes("USD,EUR,PLN").unwrap();
        let progress = Progress::default();
        let outcomes = Outcomes::new(&bases, Some(progress.clone()));
        outcomes.fill(0, |base| Outcome::failed(base, 1, Error::status(500, None)));
        outcomes.fill(1, |_| panic!("bad client"));
        // A second write for a base is ignored.
        outcomes.put_error(0, Error::new(ErrorKind::Spawn, "late"));
        assert_eq!(progress.done(), 2);
        let report = outcomes.report("t", Duration::ZERO);
        let kinds: Vec<ErrorKind> = report
            .outcomes
            .iter()
            .map(|o| o.result.as_ref().unwrap_err().kind())
            .collect();
        assert_eq!(
            kinds,
            [
                ErrorKind::Status(500),
                ErrorKind::Panic,
                ErrorKind::WorkerCrash
            ]
        );
        assert_eq!(report.outcomes[0].attempts, 1);
        let order: Vec<_> = report.outcomes.iter().map(|o| o.base).collect();
        assert_eq!(order, bases);
    }
}
