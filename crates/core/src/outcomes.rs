//! One place per base for a run's outcomes, filled by index.

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::{Config, CurrencyCode, Error, ErrorKind, Outcome, Progress, Report, Stop, panic_error};

/// Receives each base's outcome the moment it is known: the base's index
/// in the input and its outcome, in the order outcomes complete, from
/// whichever thread or task completed it ([`Config::on_outcome`]). Exactly
/// once per base, the bases a stop left undone included.
///
/// ```
/// use std::sync::mpsc;
/// use rates_core::OnOutcome;
///
/// let (tx, rx) = mpsc::channel();
/// let tx = std::sync::Mutex::new(tx);
/// let on_outcome = OnOutcome::new(move |index, outcome| {
///     let _ = tx.lock().unwrap().send((index, outcome.base));
/// });
/// # let _ = (on_outcome, rx);
/// ```
#[derive(Clone)]
pub struct OnOutcome(Arc<OutcomeFn>);

/// What an [`OnOutcome`] calls: the base's index and its outcome.
type OutcomeFn = dyn Fn(usize, &Outcome) + Send + Sync;

impl OnOutcome {
    /// Calls `f` with each base's index and outcome as it completes.
    pub fn new(f: impl Fn(usize, &Outcome) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Hands it one outcome.
    pub fn send(&self, index: usize, outcome: &Outcome) {
        (self.0)(index, outcome);
    }
}

impl fmt::Debug for OnOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OnOutcome(..)")
    }
}

/// Two are equal when they are clones of one another.
impl PartialEq for OnOutcome {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// One run, as [`Strategy::fetch`](crate::Strategy::fetch) hands it to a
/// strategy's [`run`](crate::Strategy::run).
#[derive(Clone, Copy, Debug)]
pub struct Run<'a> {
    /// The bases, in input order (at least one).
    pub bases: &'a [CurrencyCode],
    /// The config, valid; its concurrency lowered to what the plan holds.
    pub config: &'a Config,
    /// The run's plan: how many requests it holds in flight (threads,
    /// workers, tasks), and why no more (reported with the run).
    pub plan: &'a crate::plan::Plan,
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
/// Once the run's [`Stop`] has fired, a place left empty reads as
/// [`Cancelled`](ErrorKind::Cancelled) instead, and so does an error put
/// after it (the run cannot tell an error the stop caused, a socket shut
/// down or a worker killed, from one that came on its own just then); a
/// success put after it is kept. Each outcome is also handed to the run's
/// [`OnOutcome`], if any, as it is put.
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
    on_outcome: Option<OnOutcome>,
    stop: Option<Stop>,
}

impl Outcomes {
    /// Empty places for `bases`; each outcome put counts in `progress`.
    pub fn new(bases: &[CurrencyCode], progress: Option<Progress>) -> Self {
        Self {
            bases: bases.into(),
            slots: bases.iter().map(|_| Mutex::new(None)).collect(),
            progress,
            on_outcome: None,
            stop: None,
        }
    }

    /// Empty places for `bases` under `config`: outcomes count in its
    /// progress, go to its [`OnOutcome`], and read as cancelled once its
    /// stop handle has fired.
    pub fn for_run(bases: &[CurrencyCode], config: &Config) -> Self {
        Self {
            on_outcome: config.on_outcome.clone(),
            stop: config.stop.clone(),
            ..Self::new(bases, config.progress.clone())
        }
    }

    /// The stop handle of the run: the one given, or one that never fires.
    pub fn stop(&self) -> &Stop {
        self.stop.as_ref().unwrap_or_else(|| Stop::never())
    }

    /// The run's stop handle, when it has one.
    pub fn stop_handle(&self) -> Option<&Stop> {
        self.stop.as_ref()
    }

    /// Sleeps `duration` on this thread, waking early when the run is
    /// stopped: true when the whole duration passed.
    pub fn sleep(&self, duration: Duration) -> bool {
        match &self.stop {
            Some(stop) => stop.sleep(duration),
            None => {
                std::thread::sleep(duration);
                true
            }
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
    pub fn put(&self, index: usize, mut outcome: Outcome) {
        let mut slot = self.slots[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            if let (Err(e), Some(cause)) = (&outcome.result, self.stop().cause()) {
                if !e.is_cancelled() {
                    outcome.result = Err(Error::cancelled(cause));
                }
            }
            if let Some(on_outcome) = &self.on_outcome {
                on_outcome.send(index, &outcome);
            }
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
    /// taken out of its place; a place left empty becomes a cancelled
    /// outcome when the run was stopped, else a worker-crash one (either is
    /// handed to the [`OnOutcome`] too).
    pub fn report(&self, strategy: &str, wall: Duration) -> Report {
        for (index, &base) in self.bases.iter().enumerate() {
            let empty = self.slots[index]
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_none();
            if empty {
                let error = match self.stop().cause() {
                    Some(cause) => Error::cancelled(cause),
                    None => Error::new(
                        ErrorKind::WorkerCrash,
                        "no outcome was reported: the worker holding this base was lost",
                    ),
                };
                self.put(index, Outcome::failed(base, 0, error));
            }
        }
        let outcomes = self
            .slots
            .iter()
            .zip(self.bases.iter())
            .map(|(slot, &base)| {
                slot.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take()
                    .unwrap_or_else(|| {
                        Outcome::failed(base, 0, Error::new(ErrorKind::WorkerCrash, "lost"))
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

    #[test]
    fn a_stopped_run_reads_its_undone_and_failed_bases_as_cancelled_and_streams_each_once() {
        let bases = crate::parse_codes("USD,EUR,PLN,NOK").unwrap();
        let stop = Stop::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = Arc::clone(&seen);
        let config = Config::new("http://127.0.0.1:1/?b={base}")
            .unwrap()
            .with_stop(stop.clone())
            .with_on_outcome(OnOutcome::new(move |i, o| {
                s.lock().unwrap().push((i, o.result.is_ok()));
            }));
        let outcomes = Outcomes::for_run(&bases, &config);
        let ok = |base| Outcome {
            base,
            attempts: 1,
            result: Ok(crate::Rates {
                base,
                date: String::new(),
                rates: std::collections::BTreeMap::new(),
            }),
        };
        outcomes.fill(2, ok);
        outcomes.fill(0, |base| Outcome::failed(base, 2, Error::status(500, None)));
        stop.fire(crate::StopCause::Deadline);
        // After the stop: an error reads as cancelled, a success is kept.
        outcomes.fill(3, |base| {
            Outcome::failed(base, 1, Error::new(ErrorKind::Connection, "shut"))
        });
        outcomes.fill(1, ok);
        let report = outcomes.report("t", Duration::ZERO);
        let kinds: Vec<Option<ErrorKind>> = report
            .outcomes
            .iter()
            .map(|o| o.result.as_ref().err().map(Error::kind))
            .collect();
        let late = Some(ErrorKind::Cancelled(crate::StopCause::Deadline));
        assert_eq!(kinds, [Some(ErrorKind::Status(500)), None, None, late]);
        assert_eq!(report.outcomes[3].attempts, 1, "attempts made are kept");
        let mut seen = seen.lock().unwrap().clone();
        seen.sort_unstable();
        assert_eq!(seen, [(0, false), (1, true), (2, true), (3, false)]);
        // A place never filled: cancelled, and streamed.
        let two = crate::parse_codes("USD,EUR").unwrap();
        let count = Arc::new(Mutex::new(0));
        let c = Arc::clone(&count);
        let config = config.with_on_outcome(OnOutcome::new(move |_, _| *c.lock().unwrap() += 1));
        let outcomes = Outcomes::for_run(&two, &config);
        let report = outcomes.report("t", Duration::ZERO);
        assert!(
            report
                .outcomes
                .iter()
                .all(|o| o.result.as_ref().unwrap_err().is_cancelled())
        );
        assert_eq!(*count.lock().unwrap(), 2);
    }
}
