//! The parent side: a pool of worker processes and the threads that drive them.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use rates_core::{
    BaseFetch, Config, CurrencyCode, Error, ErrorKind, Outcome, Outcomes, RawResponse, Report,
    Step, Throttle,
};

use crate::child::{SHUTDOWN_GRACE, Spawner, Worker, kill_all};
use crate::command::WorkerCommand;

/// How long a worker may take to answer beyond the request's own connect
/// and request timeouts (which the worker's client enforces) before the
/// parent gives up on it.
const REPLY_MARGIN: Duration = Duration::from_secs(2);

/// A pool of worker processes: each runs the shared blocking client and
/// performs one HTTP attempt per request, while the parent owns the attempt
/// loop (rate limit, retries, backoff) for every base.
///
/// Children are started in parallel by [`start`](ProcessPool::start) (or,
/// in the [`Processes`](crate::Processes) strategy's runs, by each run's
/// drivers as they begin),
/// replaced when they crash, and killed and reaped when the pool is shut
/// down or dropped, whatever happened before. If the parent itself dies,
/// each worker sees its input close and exits after its current request.
///
/// ```no_run
/// use rates_core::Config;
/// use rates_process::{ProcessPool, WorkerCommand};
///
/// let config = Config::new("http://127.0.0.1:8080/rates?base={base}")?;
/// let pool = ProcessPool::start(WorkerCommand::current_exe()?, &config, 4)?;
/// println!("4 workers ready in {:?}: pids {:?}", pool.startup(), pool.pids());
/// let report = pool.run(&rates_core::parse_codes("USD,EUR,PLN")?);
/// let peak = pool.shutdown();
/// println!("{} succeeded; workers peaked at {peak:?} bytes", report.successes().count());
/// # Ok::<(), rates_core::Error>(())
/// ```
#[derive(Debug)]
pub struct ProcessPool {
    /// What the workers are told (the CPU work per item included).
    config: Config,
    /// What the parent's attempt loop runs with: the same, but the work is
    /// the workers' to do.
    local: Config,
    command: WorkerCommand,
    slots: Vec<Mutex<Slot>>,
    /// The pid of each slot's worker (0 while it has none), readable while
    /// a run holds the slots.
    pids: Vec<AtomicU32>,
    startup: Duration,
}

/// One place in the pool: its worker, if it has one.
#[derive(Debug, Default)]
struct Slot {
    worker: Option<Worker>,
    /// Why the last replacement could not be started.
    broken: Option<Error>,
}

impl ProcessPool {
    /// Starts `processes` workers of `command` in parallel and waits until
    /// each has said it is ready.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an invalid config or 0 processes;
    /// [`ErrorKind::Spawn`] when the worker program cannot be started, or does not say it is ready in time (the message names
    /// the program). Workers already started are killed and reaped.
    pub fn start(command: WorkerCommand, config: &Config, processes: usize) -> Result<Self, Error> {
        config.validate()?;
        let mut pool = Self::unstarted(command, config, processes)?;
        pool.start_all()?;
        Ok(pool)
    }

    /// Starts a worker in every place, in parallel, and waits until each has
    /// said it is ready.
    fn start_all(&mut self) -> Result<(), Error> {
        let processes = self.slots.len();
        let started = Instant::now();
        let spawner = self.spawner();
        let workers: Vec<Result<Worker, Error>> = thread::scope(|s| {
            let handles: Vec<_> = (0..processes)
                .map(|_| {
                    thread::Builder::new()
                        .name("rates-process-start".into())
                        .spawn_scoped(s, || spawner.spawn())
                })
                .collect();
            handles
                .into_iter()
                .map(|h| match h {
                    Ok(h) => h.join().unwrap_or_else(|payload| {
                        Err(rates_core::panic_error(&*payload).context("starting a worker"))
                    }),
                    Err(e) => Err(Error::new(
                        ErrorKind::Spawn,
                        format!("cannot start a thread to start a worker: {e}"),
                    )),
                })
                .collect()
        });
        self.startup = started.elapsed();
        // On any failure the started workers drop here: killed and reaped.
        let workers = workers.into_iter().collect::<Result<Vec<_>, _>>()?;
        for ((slot, pid), worker) in self.slots.iter_mut().zip(&self.pids).zip(workers) {
            pid.store(worker.pid, Ordering::Release);
            slot.get_mut()
                .unwrap_or_else(PoisonError::into_inner)
                .worker = Some(worker);
        }
        Ok(())
    }

    /// A pool of `processes` empty places: each run's drivers start their
    /// own workers, in parallel, as they begin.
    fn unstarted(command: WorkerCommand, config: &Config, processes: usize) -> Result<Self, Error> {
        crate::command::not_inside_a_worker(std::env::var_os(crate::WORKER_ENV).is_some())?;
        if processes == 0 {
            return Err(Error::invalid_input(
                "invalid pool size 0: a process pool needs at least one worker",
            ));
        }
        Ok(Self {
            config: config.clone(),
            local: config.clone().with_work(None),
            command,
            slots: (0..processes).map(|_| Mutex::default()).collect(),
            pids: (0..processes).map(|_| AtomicU32::new(0)).collect(),
            startup: Duration::ZERO,
        })
    }

    /// Starts `processes` workers, fetches every base of `outcomes` into it
    /// and shuts the workers down, overlapping all three: each driver thread starts its own
    /// worker and takes bases as soon as it is ready, and retires it as
    /// soon as no base is left. This is what the [`Processes`] strategy
    /// runs.
    ///
    /// Under a rate limit every worker is started before the first request
    /// instead: start-up is then off the critical path anyway, and process
    /// starts competing for the CPU would delay requests after their
    /// throttle slot, bunching their arrivals at the server.
    ///
    /// Returns a note when not every worker could be started.
    ///
    /// # Errors
    /// As [`start`](ProcessPool::start), when not a single worker could be
    /// started. When only some could not, the others fetch every base.
    ///
    /// [`Processes`]: crate::Processes
    pub(crate) fn run_once(
        command: WorkerCommand,
        config: &Config,
        processes: usize,
        outcomes: &Outcomes,
    ) -> Result<Option<String>, Error> {
        let mut pool = Self::unstarted(command, config, processes)?;
        if config.rate_limit.is_some() {
            pool.start_all()?;
        }
        let done = pool.fill(outcomes, true);
        if !done.any_worker && !outcomes.is_empty() {
            return Err(done.abandoned.unwrap_or_else(|| {
                Error::new(ErrorKind::Spawn, "no worker process could be started")
            }));
        }
        Ok(done
            .abandoned
            .map(|e| format!("not every worker process could be started: {e}")))
    }

    /// How long [`start`](ProcessPool::start) took: from the first spawn
    /// until every worker was ready.
    pub fn startup(&self) -> Duration {
        self.startup
    }

    /// How many workers the pool runs (at most that many requests in flight).
    pub fn processes(&self) -> usize {
        self.slots.len()
    }

    /// The worker program the pool runs.
    pub fn command(&self) -> &WorkerCommand {
        &self.command
    }

    /// The process ids of the current workers. A crashed worker's
    /// replacement has a new pid; a place whose replacement could not be
    /// started is left out.
    pub fn pids(&self) -> Vec<u32> {
        self.pids
            .iter()
            .map(|p| p.load(Ordering::Acquire))
            .filter(|&p| p != 0)
            .collect()
    }

    /// Fetches every base: one outcome per base, in input order. The
    /// workers stay up for the next run.
    ///
    /// One thread per worker hands it bases one at a time from a shared
    /// queue (so a slow base holds back nobody else) and runs each base's
    /// attempt loop, sending every attempt to its worker. The rate limit,
    /// if any, is shared by all of them. A worker that dies, answers
    /// garbage or does not answer in time is killed, reaped and replaced,
    /// and the attempt counts as a [`WorkerCrash`](ErrorKind::WorkerCrash),
    /// which the retry policy retries. Bases that no worker could be
    /// started for fail with the [`Spawn`](ErrorKind::Spawn) error.
    pub fn run(&self, bases: &[CurrencyCode]) -> Report {
        let started = Instant::now();
        let outcomes = Outcomes::new(bases, self.config.progress.clone());
        self.fill(&outcomes, false);
        outcomes.report(crate::NAME, started.elapsed())
    }

    /// Fetches every base of `outcomes` into it; bases no worker could be
    /// started for get the reason.
    fn fill(&self, outcomes: &Outcomes, retire: bool) -> Done {
        let throttle = Throttle::for_limit(self.config.rate_limit);
        let run = RunState {
            outcomes,
            throttle: throttle.as_ref(),
            retire,
            next: AtomicUsize::new(0),
            abandoned: Mutex::new(None),
            any_worker: AtomicBool::new(false),
        };
        if !outcomes.is_empty() {
            thread::scope(|s| {
                for (index, slot) in self.slots.iter().enumerate() {
                    let run = &run;
                    let driver = thread::Builder::new()
                        .name(format!("rates-process-driver-{index}"))
                        .spawn_scoped(s, move || self.drive(index, slot, run));
                    if let Err(e) = driver {
                        run.abandon(Error::new(
                            ErrorKind::Spawn,
                            format!("cannot start the thread driving worker {index}: {e}"),
                        ));
                    }
                }
            });
        }
        let abandoned = run
            .abandoned
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(why) = &abandoned {
            // Only the bases no driver took are still without an outcome.
            for i in 0..outcomes.len() {
                outcomes.put_error(i, why.clone());
            }
        }
        Done {
            abandoned,
            any_worker: run.any_worker.into_inner(),
        }
    }

    /// Closes every worker's input, collects each one's peak resident
    /// memory (VmHWM), then kills and reaps them all.
    ///
    /// Returns the sum of the peaks the workers reported, or `None` when
    /// none did (no /proc, or every worker was gone). The sum is an upper
    /// bound of the workers' combined peak, since they need not peak at the
    /// same moment; crashed workers cannot report and are not counted.
    pub fn shutdown(mut self) -> Option<u64> {
        let mut workers: Vec<Worker> = std::mem::take(&mut self.slots)
            .into_iter()
            .filter_map(|slot| {
                slot.into_inner()
                    .unwrap_or_else(PoisonError::into_inner)
                    .worker
            })
            .collect();
        for w in &mut workers {
            // EOF on its stdin: the worker answers with its peak and exits.
            w.stdin = None;
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        let mut total = None;
        for w in &workers {
            add_peak(&mut total, w.goodbye(deadline));
        }
        kill_all(&mut workers);
        total
    }

    /// One driver: starts this slot's worker if it has none, takes bases
    /// from the queue and runs each on the worker until the queue is empty
    /// or no worker can be started here; then retires the worker if asked.
    fn drive(&self, index: usize, slot: &Mutex<Slot>, run: &RunState<'_>) {
        let mut slot = lock(slot);
        loop {
            if slot.worker.is_none() && !self.refill(index, &mut slot) {
                // Leave the remaining bases to the other drivers.
                if let Some(e) = &slot.broken {
                    run.abandon(e.clone());
                }
                break;
            }
            run.any_worker.store(true, Ordering::Relaxed);
            let i = run.next.fetch_add(1, Ordering::Relaxed);
            if i >= run.outcomes.len() {
                break;
            }
            run.outcomes
                .fill(i, |base| self.fetch(index, &mut slot, base, run.throttle));
        }
        if run.retire {
            if let Some(worker) = slot.worker.take() {
                self.pids[index].store(0, Ordering::Release);
                worker.retire();
            }
        }
    }

    /// One base's attempt loop, every attempt sent by the slot's worker.
    ///
    /// Under a rate limit each attempt's throttle slot is reserved here, in
    /// the parent, so the limit is global; the worker waits for it and sends
    /// right away, and says when it sent, which the parent records in the
    /// throttle's send log ("reserve here, send elsewhere", see
    /// [`BaseFetch::sending_elsewhere`]). Waiting in the worker rather than
    /// here keeps a second process wake-up (and its scheduling delay)
    /// between the slot and the request reaching the server, where a late
    /// request would bunch with the next one.
    fn fetch(
        &self,
        index: usize,
        slot: &mut Slot,
        base: CurrencyCode,
        throttle: Option<&Throttle>,
    ) -> Outcome {
        let mut fetch = BaseFetch::new(base, &self.local, throttle).sending_elsewhere();
        loop {
            match fetch.next(Instant::now()) {
                Step::Sleep(d) => thread::sleep(d),
                Step::Send => {
                    let (result, sent) = self.attempt(index, slot, &fetch.url(), fetch.send_at());
                    fetch.record_sent(sent, result, Instant::now());
                }
                Step::Done => return fetch.into_outcome(),
            }
        }
    }

    /// One attempt on the slot's worker, sent at `send_at` (or at once):
    /// its result and when it left (for a worker that failed, now: the
    /// latest it can have left).
    fn attempt(
        &self,
        index: usize,
        slot: &mut Slot,
        url: &str,
        send_at: Option<Instant>,
    ) -> (Result<RawResponse, Error>, Instant) {
        let result = self.attempt_on_worker(index, slot, url, send_at);
        match result {
            Ok((result, sent)) => (result, sent),
            Err(e) => (Err(e), Instant::now()),
        }
    }

    fn attempt_on_worker(
        &self,
        index: usize,
        slot: &mut Slot,
        url: &str,
        send_at: Option<Instant>,
    ) -> Result<(Result<RawResponse, Error>, Instant), Error> {
        if slot.worker.is_none() && !self.refill(index, slot) {
            let why = slot.broken.clone().unwrap_or_else(|| {
                Error::new(ErrorKind::Spawn, "no worker process could be started")
            });
            return Err(why.context(format!("{url}: no worker to send it to")));
        }
        let Some(worker) = slot.worker.as_mut() else {
            return Err(Error::new(ErrorKind::Spawn, "no worker process"));
        };
        let wait = send_at.map_or(Duration::ZERO, |t| {
            t.saturating_duration_since(Instant::now())
        });
        match worker.request(url, wait, self.reply_timeout() + wait) {
            Ok(answered) => Ok(answered),
            Err(crash) => {
                let Some(mut worker) = slot.worker.take() else {
                    return Err(Error::new(ErrorKind::WorkerCrash, crash));
                };
                self.pids[index].store(0, Ordering::Release);
                let pid = worker.pid;
                let status = worker.kill_and_reap();
                let replaced = if self.refill(index, slot) {
                    "it was replaced"
                } else {
                    "no replacement could be started"
                };
                Err(Error::new(
                    ErrorKind::WorkerCrash,
                    format!(
                        "worker process {pid} {crash} while fetching {url} ({status}); {replaced}"
                    ),
                ))
            }
        }
    }

    /// Starts a worker for an empty slot; false (and `slot.broken` set) if
    /// it cannot.
    fn refill(&self, index: usize, slot: &mut Slot) -> bool {
        match self.spawner().spawn() {
            Ok(worker) => {
                self.pids[index].store(worker.pid, Ordering::Release);
                slot.worker = Some(worker);
                slot.broken = None;
                true
            }
            Err(e) => {
                slot.broken = Some(e);
                false
            }
        }
    }

    fn spawner(&self) -> Spawner<'_> {
        Spawner {
            config: &self.config,
            command: &self.command,
        }
    }

    fn reply_timeout(&self) -> Duration {
        self.config.connect_timeout + self.config.request_timeout + REPLY_MARGIN
    }
}

impl Drop for ProcessPool {
    fn drop(&mut self) {
        let mut workers: Vec<Worker> = self
            .slots
            .iter_mut()
            .filter_map(|slot| {
                slot.get_mut()
                    .unwrap_or_else(PoisonError::into_inner)
                    .worker
                    .take()
            })
            .collect();
        kill_all(&mut workers);
    }
}

fn add_peak(total: &mut Option<u64>, peak: Option<u64>) {
    if let Some(peak) = peak {
        *total = Some(total.unwrap_or(0).saturating_add(peak));
    }
}

/// What the drivers of one run share.
struct RunState<'a> {
    outcomes: &'a Outcomes,
    throttle: Option<&'a Throttle>,
    /// Retire each worker when no base is left for it.
    retire: bool,
    next: AtomicUsize,
    /// Why some bases may never have been taken (no worker could start).
    abandoned: Mutex<Option<Error>>,
    /// Whether any driver had a worker.
    any_worker: AtomicBool,
}

impl RunState<'_> {
    fn abandon(&self, why: Error) {
        *lock(&self.abandoned) = Some(why);
    }
}

/// What a run leaves behind.
struct Done {
    abandoned: Option<Error>,
    any_worker: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A driver that panicked left consistent data behind: outcomes are
    // written whole, and a worker is either in its slot or dropped (reaped).
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
