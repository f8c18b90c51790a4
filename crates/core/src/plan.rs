//! A run's plan: how many requests it holds in flight, whether the
//! concurrency bounds it, and why it holds fewer than asked, worked out once
//! per run from how the strategy holds its requests ([`Shape`]), the config
//! and the machine's limits ([`MachineLimits`], read once).

use crate::Config;
use crate::limits::{self, DEFAULT_STACK_SIZE, MachineLimits};

/// How a strategy holds its requests in flight, which says what bounds it.
/// A strategy says only this ([`Strategy::shape`](crate::Strategy::shape));
/// [`Plan::new`] works out the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Shape {
    /// One request at a time, on the calling thread.
    OneAtATime,
    /// A task per request in flight, `concurrency` of them: no OS thread
    /// each, a connection each.
    Tasks,
    /// An OS thread and a connection per request in flight, `concurrency`
    /// of them, with std's default stacks: the machine's thread and
    /// open-files limits cap them, and so does the strategy's own cap.
    Threads {
        /// The strategy's own cap, if it has one.
        cap: Option<Cap>,
    },
    /// An OS thread and a connection for every base, all at once,
    /// whatever the concurrency (unbounded): the machine's limits split the
    /// bases into waves.
    ThreadPerBase {
        /// Each thread's stack, bytes.
        stack: usize,
    },
    /// A worker process (and a connection) per request in flight, at most
    /// the strategy's cap.
    Processes {
        /// The strategy's cap.
        cap: Cap,
    },
}

/// A strategy's own cap on what it holds in flight, and why it has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap {
    /// At most this many.
    pub most: usize,
    /// What would go wrong past it, and what to use instead (a clause that
    /// follows "because").
    pub why: &'static str,
}

/// The plan of one run: see the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Requests in flight at most (at least 1): threads for the thread
    /// strategies, workers for the process pool, tasks for async ones.
    pub in_flight: usize,
    /// Whether the concurrency bounds it (all but thread-per-base).
    pub bounded: bool,
    /// Why fewer than asked are held, naming the binding limit and the way
    /// out (`None` when all are).
    pub note: Option<String>,
    /// The soft open-files limit to raise to before the run, to hold its
    /// connections (never above the hard limit).
    pub raise_open_files_to: Option<u64>,
}

impl Plan {
    /// The plan for strategy `name` of `shape` running `bases` bases under
    /// `config`, within `limits`.
    ///
    /// ```
    /// use rates_core::{Config, plan::{Plan, Shape}};
    /// use rates_core::limits::MachineLimits;
    ///
    /// let config = Config::new("http://127.0.0.1:1/?b={base}")?.with_concurrency(50);
    /// let unknown = MachineLimits::default();
    /// let plan = Plan::new("tokio", Shape::Tasks, 500, &config, &unknown);
    /// assert_eq!((plan.in_flight, plan.bounded, plan.note), (50, true, None));
    /// let plan = Plan::new("sync", Shape::OneAtATime, 500, &config, &unknown);
    /// assert_eq!(plan.in_flight, 1);
    /// # Ok::<(), rates_core::Error>(())
    /// ```
    pub fn new(
        name: &str,
        shape: Shape,
        bases: usize,
        config: &Config,
        limits: &MachineLimits,
    ) -> Self {
        let asked = config.concurrency.min(bases).max(1);
        let (in_flight, bounded, mut notes) = match shape {
            Shape::OneAtATime => (1, true, Vec::new()),
            Shape::Tasks => (asked, true, Vec::new()),
            Shape::Threads { cap } => {
                let (mut threads, mut notes) =
                    match limits::thread_cap_under(limits, asked, DEFAULT_STACK_SIZE, config) {
                        None => (asked, Vec::new()),
                        Some(budget) => (
                            budget.max,
                            vec![format!(
                                "{name} starts {} threads instead of the {asked} in flight asked \
                             for, because {}; or use an async strategy such as `tokio`",
                                budget.max, budget.why
                            )],
                        ),
                    };
                if let Some(cap) = cap.filter(|c| threads > c.most) {
                    threads = cap.most;
                    notes = vec![format!(
                        "{name} holds at most {} requests in flight instead of the {asked} \
                         asked for, because {}",
                        cap.most, cap.why
                    )];
                }
                (threads, true, notes)
            }
            Shape::ThreadPerBase { stack } => {
                let all = bases.max(1);
                match limits::thread_cap_under(limits, all, stack, config) {
                    None => (all, false, Vec::new()),
                    Some(budget) => (
                        budget.max,
                        false,
                        vec![format!(
                            "{name} runs its {bases} bases in {} waves of at most {} threads, \
                             each joined before the next starts, because {}; or use a bounded \
                             strategy such as `pool` or `tokio`",
                            bases.div_ceil(budget.max),
                            budget.max,
                            budget.why
                        )],
                    ),
                }
            }
            Shape::Processes { cap } if asked > cap.most => (
                cap.most,
                true,
                vec![format!(
                    "{name} caps its pool at {} worker processes instead of the {asked} in \
                     flight asked for, because {}",
                    cap.most, cap.why
                )],
            ),
            Shape::Processes { .. } => (asked, true, Vec::new()),
        };
        // Each request in flight holds a connection: make room for them
        // under the open-files limit, or hold fewer.
        let mut in_flight = in_flight.max(1);
        let mut raise_open_files_to = None;
        if let Some((soft, hard)) = limits.open_files {
            let files = limits::plan_open_files(
                in_flight,
                limits.files_per_connection,
                limits.files_in_use.unwrap_or(0),
                soft,
                hard,
            );
            raise_open_files_to = files.raise_to;
            if let Some(why) = files.why {
                if bounded && files.connections < in_flight {
                    in_flight = files.connections;
                }
                notes.push(why);
            }
        }
        Self {
            in_flight,
            bounded,
            note: (!notes.is_empty()).then(|| notes.join("; ")),
            raise_open_files_to,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(concurrency: usize) -> Config {
        Config::new("http://127.0.0.1:1/?b={base}")
            .unwrap()
            .with_concurrency(concurrency)
    }

    const CAP: Cap = Cap {
        most: 64,
        why: "more would cost their starts for no gain",
    };

    #[test]
    fn each_shape_holds_what_it_should() {
        let unknown = MachineLimits::default();
        let c = config(100);
        let plan = |shape| Plan::new("s", shape, 1_000, &c, &unknown);
        assert_eq!(plan(Shape::OneAtATime).in_flight, 1);
        assert_eq!(plan(Shape::Tasks).in_flight, 100);
        assert_eq!(plan(Shape::Threads { cap: None }).in_flight, 100);
        let thread_per_base = plan(Shape::ThreadPerBase { stack: 1 << 18 });
        assert_eq!(
            (thread_per_base.in_flight, thread_per_base.bounded),
            (1_000, false)
        );
        let processes = plan(Shape::Processes { cap: CAP });
        assert_eq!(processes.in_flight, 64);
        assert!(processes.note.unwrap().contains("64 worker processes"));
        // Fewer bases than the concurrency: as many as the bases.
        assert_eq!(Plan::new("s", Shape::Tasks, 3, &c, &unknown).in_flight, 3);
    }

    #[test]
    fn the_machines_limits_cap_threads_and_connections() {
        let limits = MachineLimits {
            max_map_count: Some(1_000),
            maps_in_use: Some(0),
            open_files: Some((1_024, 1_024)),
            files_in_use: Some(10),
            ..MachineLimits::default()
        };
        let c = config(500);
        // 900 free map entries at 4 a thread: 225 threads.
        let threads = Plan::new("pool", Shape::Threads { cap: None }, 10_000, &c, &limits);
        assert_eq!(threads.in_flight, 225);
        assert!(threads.note.unwrap().contains("vm.max_map_count"));
        // Tasks are capped by the open files only: 1,024 - 10 - 64 = 950.
        let tasks = Plan::new("tokio", Shape::Tasks, 10_000, &config(2_000), &limits);
        assert_eq!(tasks.in_flight, 950);
        assert!(tasks.note.unwrap().contains("ulimit -n"));
        // A configured thread limit caps threads.
        let capped = config(500).with_max_threads(Some(20));
        let plan = Plan::new(
            "pool",
            Shape::Threads { cap: None },
            10_000,
            &capped,
            &limits,
        );
        assert_eq!(plan.in_flight, 20);
        assert!(plan.note.unwrap().contains("max_threads"));
        // Thread-per-base runs in waves.
        let waves = Plan::new(
            "threads",
            Shape::ThreadPerBase { stack: 1 << 18 },
            1_000,
            &c,
            &limits,
        );
        assert_eq!(waves.in_flight, 225);
        assert!(waves.note.unwrap().contains("5 waves"));
    }
}
