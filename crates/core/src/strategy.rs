//! The trait every strategy implements.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use crate::limits::MachineLimits;
use crate::plan::{Plan, Shape};
use crate::{Config, CurrencyCode, Error, Outcomes, Report, Run, StopCause, StopTimer};

/// A way of fetching rates for many bases: sequential, threads, a pool,
/// processes, or an async runtime.
///
/// Implementors write [`run`](Strategy::run), which holds only the
/// concurrency model and hands back outcomes by index; callers use
/// [`fetch`](Strategy::fetch), which owns the rest of a run, once for every
/// strategy (async code that cannot block uses [`fetch_async`]).
pub trait Strategy: Send + Sync {
    /// The registry name (`"sync"`, `"tokio"`, ...).
    fn name(&self) -> &'static str;

    /// How it holds its requests in flight, which says what bounds it (the
    /// concurrency, OS threads, processes): tasks, by default. The plan of
    /// each run follows from it ([`plan`](Strategy::plan)).
    fn shape(&self) -> Shape {
        Shape::Tasks
    }

    /// The plan of a run of `bases` bases under `config` within `limits`:
    /// how many requests it holds in flight, whether the concurrency bounds
    /// it, and why it holds fewer than asked. [`fetch`](Strategy::fetch)
    /// works it out once per run (reading the limits once).
    fn plan(&self, bases: usize, config: &Config, limits: &MachineLimits) -> Plan {
        Plan::new(self.name(), self.shape(), bases, config, limits)
    }

    /// Whether a run can be stopped part-way, by its stop handle or its
    /// deadline: true for every built-in strategy. A program that cannot
    /// be told to stop, only killed (an external one of job protocol 1),
    /// says false, and is skipped where runs are stopped part-way.
    fn stoppable(&self) -> bool {
        true
    }

    /// The name (a prefix) of the threads of a pool this strategy keeps
    /// after a run returns, for its next run or because it does not own
    /// it (a runtime it builds once, a process-wide executor); `None` when
    /// every thread a run starts is joined before it returns. Whatever
    /// else a run starts (threads, child processes, connections) is gone
    /// when [`fetch`](Strategy::fetch) returns, stopped or not.
    fn kept_threads(&self) -> Option<&'static str> {
        None
    }

    /// Why this strategy cannot run on this machine at all, in the words of
    /// the system that refused it (a kernel without io_uring, a seccomp
    /// filter), or `None` when it can: the default. Reports, sweeps, the
    /// benches and the conformance suite skip a strategy that says why,
    /// with that reason; [`run`](Strategy::run) of one still fails with a
    /// [`Runtime`](crate::ErrorKind::Runtime) error saying the same.
    fn unavailable(&self) -> Option<String> {
        None
    }

    /// Fetches every base into `outcomes` (one place per base, by index)
    /// with this strategy's concurrency model, and returns a note on how it
    /// ran (a cap, a substitution), if any.
    ///
    /// Called by [`fetch`](Strategy::fetch), which owns everything around
    /// it: a valid config, at least one base, the wall time, the report;
    /// `outcomes` turns a panic into its base's outcome
    /// ([`Outcomes::fill`]), counts progress, and reads a base left without
    /// an outcome as a worker crash.
    ///
    /// # Errors
    /// Only when the run cannot happen at all (a runtime or worker program
    /// cannot start); per-base failures are outcomes.
    fn run(&self, run: &Run<'_>) -> Result<Option<String>, Error>;

    /// Fetches every base: one outcome per base, in input order.
    ///
    /// Validates the config, answers empty input without starting anything,
    /// makes room for the connections it will hold, times the run and
    /// builds the report around [`run`](Strategy::run).
    ///
    /// # Errors
    /// An invalid config, or a strategy that cannot run at all.
    fn fetch(&self, bases: &[CurrencyCode], config: &Config) -> Result<Report, Error> {
        let Some(run) = Started::begin(self, bases, config)? else {
            return Ok(Report::empty(self.name()));
        };
        let note = self.run(&Run {
            bases,
            config: run.config(),
            plan: &run.plan,
            outcomes: &run.outcomes,
        })?;
        Ok(run.finish(self.name(), note))
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
            fn shape(&self) -> Shape {
                (**self).shape()
            }
            fn plan(&self, bases: usize, config: &Config, limits: &MachineLimits) -> Plan {
                (**self).plan(bases, config, limits)
            }
            fn kept_threads(&self) -> Option<&'static str> {
                (**self).kept_threads()
            }
            fn stoppable(&self) -> bool {
                (**self).stoppable()
            }
            fn unavailable(&self) -> Option<String> {
                (**self).unavailable()
            }
            fn run(&self, run: &Run<'_>) -> Result<Option<String>, Error> {
                (**self).run(run)
            }
        }
    )*};
}

forward!(&T, Box<T>, Arc<T>);

/// [`Strategy::fetch`] for async code: the same run around `run`, a future
/// instead of a blocking call. Async strategies export their `async fn`
/// through it, with `run` their part of a run, given the (possibly capped)
/// config and the outcomes to fill.
///
/// # Errors
/// An invalid config, or what `run` returns.
pub async fn fetch_async<S, F, Fut>(
    strategy: &S,
    bases: &[CurrencyCode],
    config: &Config,
    run: F,
) -> Result<Report, Error>
where
    S: Strategy + ?Sized,
    F: FnOnce(Config, Arc<Outcomes>) -> Fut,
    Fut: Future<Output = Result<Option<String>, Error>>,
{
    let Some(started) = Started::begin(strategy, bases, config)? else {
        return Ok(Report::empty(strategy.name()));
    };
    let note = run(started.config().clone(), Arc::clone(&started.outcomes)).await?;
    Ok(started.finish(strategy.name(), note))
}

/// A run between its checks and its report.
struct Started<'a> {
    /// The config, its concurrency lowered to what the plan holds, with a
    /// stop handle when it has a deadline.
    config: Cow<'a, Config>,
    /// The run's plan.
    plan: Plan,
    outcomes: Arc<Outcomes>,
    at: Instant,
    /// Fires the stop handle at the deadline, unless the run ends first.
    /// Fires the stop handle at the run's deadline; ended with the run.
    deadline: Option<StopTimer>,
}

impl<'a> Started<'a> {
    /// Validates `config` and makes room for the connections the run will
    /// hold (raising the soft open-files limit), or holds fewer, before
    /// anything is sent; `None` for empty input.
    fn begin<S: Strategy + ?Sized>(
        strategy: &S,
        bases: &[CurrencyCode],
        config: &'a Config,
    ) -> Result<Option<Self>, Error> {
        config.validate()?;
        if bases.is_empty() {
            return Ok(None);
        }
        let mut plan = match &config.plan {
            Some(plan) => plan.clone(),
            None => strategy.plan(bases.len(), config, &MachineLimits::read()),
        };
        // Room for the run's connections under the open-files limit.
        if let Some(to) = plan.raise_open_files_to {
            if let Err(e) = crate::limits::raise_soft_open_files(to) {
                let failed = format!(
                    "raising the soft open-files limit to {to} failed ({e}): connections past \
                     it fail as connection errors"
                );
                plan.note = Some(match plan.note {
                    Some(note) => format!("{note}; {failed}"),
                    None => failed,
                });
            }
        }
        let mut config = if plan.bounded && plan.in_flight < config.concurrency {
            Cow::Owned(config.clone().with_concurrency(plan.in_flight))
        } else {
            Cow::Borrowed(config)
        };
        // A deadline needs a stop handle to fire, if the caller gave none.
        if config.deadline.is_some() && config.stop.is_none() {
            config.to_mut().stop_handle();
        }
        let deadline = match (config.deadline, &config.stop) {
            (Some(d), Some(stop)) => Some(StopTimer::start(stop.clone(), d, StopCause::Deadline)?),
            _ => None,
        };
        Ok(Some(Self {
            outcomes: Arc::new(Outcomes::for_run(bases, &config)),
            config,
            plan,
            at: Instant::now(),
            deadline,
        }))
    }

    fn config(&self) -> &Config {
        &self.config
    }

    fn finish(self, strategy: &str, note: Option<String>) -> Report {
        drop(self.deadline);
        let stop = self.config.stop();
        let mut report = self.outcomes.report(strategy, self.at.elapsed());
        report.stopped = stop.cause();
        report.time_to_stop = stop.fired_at().map(|at| at.elapsed());
        report.note = match (self.plan.note, note) {
            (Some(plan), Some(other)) => Some(format!("{plan}; {other}")),
            (plan, other) => plan.or(other),
        };
        report
    }
}
