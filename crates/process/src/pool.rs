//! The parent side: a pool of worker processes and the threads that drive them.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd as _, OwnedFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use rates_core::{
    BaseFetch, Config, CurrencyCode, Error, ErrorKind, Outcome, Outcomes, Report, Step, Stop,
    StopGuard, Throttle,
};

use crate::child::{Answer, SHUTDOWN_GRACE, Spawner, Worker, kill_all, ready_timeout};
use crate::command::WorkerCommand;
use crate::fork_server::ForkServer;

/// Most requests a worker is given at once (see `ProcessPool::drive_batches`).
pub(crate) const MAX_BATCH: usize = 8;

/// Batches a fast worker has at once: while the driver reads one batch's
/// replies, the worker works on the next.
const PIPELINE: usize = 2;

/// A worker is given more than one request at a time only while its
/// requests take under this each: a round trip through the pipes costs
/// tens of microseconds, so batching pays off against fast requests and
/// only delays slow ones.
const FAST_REQUEST: Duration = Duration::from_millis(5);

/// How long a worker of a stopped run gets to finish and say goodbye once
/// its input is closed, before it is killed: an idle one exits at once, a
/// busy one would finish its request first, which the stop does not wait for.
const STOP_GRACE: Duration = Duration::from_millis(50);

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
    /// Starts the workers by forking, when the command is this program (see
    /// [`FORK_SERVER_ENV`](crate::FORK_SERVER_ENV)); dropped after them.
    fork_server: Option<ForkServer>,
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
        let started = Instant::now();
        let mut pool = Self::unstarted(command, config, processes)?;
        pool.start_all()?;
        // The fork server's start included.
        pool.startup = started.elapsed();
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
        let fork_server = if crate::fork_server::wanted(&command)? {
            ForkServer::start(&command, ready_timeout(config))
        } else {
            None
        };
        Ok(Self {
            config: config.clone(),
            local: config.clone().with_work(None),
            command,
            slots: (0..processes).map(|_| Mutex::default()).collect(),
            pids: (0..processes).map(|_| AtomicU32::new(0)).collect(),
            startup: Duration::ZERO,
            fork_server,
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
        // A run stopped before any worker started has nothing to report but
        // its cancelled bases.
        if !done.any_worker && !outcomes.is_empty() && !outcomes.stop().is_stopped() {
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

    /// The process id of the fork server the workers are forked from,
    /// while there is one: a child of this process beside the workers,
    /// gone with the pool (see [`FORK_SERVER_ENV`](crate::FORK_SERVER_ENV)).
    pub fn fork_server_pid(&self) -> Option<u32> {
        self.fork_server.as_ref().and_then(ForkServer::pid)
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
    /// One thread per worker takes bases from a shared queue and runs each
    /// base's attempt loop, sending every attempt to its worker: one at a
    /// time, or a few in one batch while requests are fast (see
    /// `drive_batches`), so a slow base holds back nobody else. The rate limit,
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
        // With a stop handle, the drivers' waits on their workers also wake
        // when it fires.
        let stop_pipe = outcomes.stop_handle().and_then(StopPipe::new);
        let run = RunState {
            outcomes,
            throttle: throttle.as_ref(),
            retire,
            next: AtomicUsize::new(0),
            abandoned: Mutex::new(None),
            any_worker: AtomicBool::new(false),
            stop_fd: stop_pipe.as_ref().map(|p| p.read.as_raw_fd()),
        };
        if !outcomes.is_empty() {
            thread::scope(|s| {
                let mut drivers = Vec::with_capacity(self.slots.len());
                for (index, slot) in self.slots.iter().enumerate() {
                    let run = &run;
                    let driver = thread::Builder::new()
                        .name(format!("rates-process-driver-{index}"))
                        .spawn_scoped(s, move || self.drive(index, slot, run));
                    match driver {
                        Ok(handle) => drivers.push(handle),
                        Err(e) => run.abandon(Error::new(
                            ErrorKind::Spawn,
                            format!("cannot start the thread driving worker {index}: {e}"),
                        )),
                    }
                }
                // Joined, not only finished (see `drive`, which catches panics).
                for handle in drivers {
                    let _ = handle.join();
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
        for w in &mut workers {
            add_peak(&mut total, w.goodbye(deadline));
        }
        kill_all(&mut workers);
        total
    }

    /// One driver: starts this slot's worker if it has none, takes bases
    /// from the queue and runs their attempt loops on the worker until the
    /// queue is empty or no worker can be started here; then retires the
    /// worker if asked. A panic here fails the bases this driver held
    /// (its worker is killed) and leaves the rest to the other drivers.
    fn drive(&self, index: usize, slot: &Mutex<Slot>, run: &RunState<'_>) {
        let mut slot = lock(slot);
        let mut claimed = Vec::new();
        let driven = catch_unwind(AssertUnwindSafe(|| {
            self.drive_batches(index, &mut slot, run, &mut claimed);
        }));
        if let Err(payload) = driven {
            if let Some(mut worker) = slot.worker.take() {
                self.pids[index].store(0, Ordering::Release);
                worker.kill_and_reap();
            }
            // Outcomes already put stay: the first write wins.
            for i in claimed {
                run.outcomes.put_panic(i, &*payload);
            }
        }
        if run.retire {
            if let Some(worker) = slot.worker.take() {
                self.pids[index].store(0, Ordering::Release);
                worker.retire();
            }
        }
    }

    /// The driver's loop: bases' attempt loops, their attempts sent to the
    /// worker in batches.
    ///
    /// A batch is one write to the worker, which sends its requests one
    /// after the other on its connection and writes their replies out
    /// together after the last, so the wake-ups of a round trip through
    /// the pipes (the worker's and the driver's) are paid once per batch
    /// instead of once per request; and while the driver reads one
    /// batch's replies the worker already has the next, so it never waits
    /// for the driver. That matters only while a request is short next to
    /// a round trip, and a batch holds back its later requests until the
    /// earlier ones are done; so a worker gets more than one request at a
    /// time only while its requests have been taking under
    /// [`FAST_REQUEST`] each, never under a rate limit (each attempt then
    /// has its throttle slot), and near the end of the queue at most its
    /// share of what is left, so no worker sits on a long tail.
    fn drive_batches(
        &self,
        index: usize,
        slot: &mut Slot,
        run: &RunState<'_>,
        claimed: &mut Vec<usize>,
    ) {
        // Attempt loops that are due to send, those waiting to retry, and
        // the batches sent and not yet answered (oldest first).
        let mut held = Held::default();
        let mut flying: VecDeque<Batch<'_>> = VecDeque::new();
        let mut depth = 1;
        let mut last_answer = Instant::now();
        loop {
            if let Some(cause) = run.outcomes.stop().cause() {
                // Stopped: the worker is told to stop, then killed and
                // reaped; every base this driver holds is cancelled with
                // the attempts made (one more for each request in flight).
                if let Some(worker) = slot.worker.take() {
                    self.pids[index].store(0, Ordering::Release);
                    worker.stop(STOP_GRACE);
                }
                let cancelled = |fetch: &BaseFetch<'_>, sent: u32| {
                    Outcome::failed(
                        fetch.base(),
                        fetch.attempts() + sent,
                        Error::cancelled(cause),
                    )
                };
                let held_bases = held
                    .ready
                    .drain(..)
                    .chain(held.sleeping.drain(..).map(|(_, i, f)| (i, f)));
                for (i, fetch) in held_bases {
                    run.outcomes.put(i, cancelled(&fetch, 0));
                }
                for (i, fetch) in flying.drain(..).flat_map(|b| b.fetches) {
                    run.outcomes.put(i, cancelled(&fetch, 1));
                }
                return;
            }
            if flying.is_empty() && slot.worker.is_none() && !self.refill(index, slot) {
                let why = slot.broken.clone().unwrap_or_else(|| {
                    Error::new(ErrorKind::Spawn, "no worker process could be started")
                });
                // What this driver held fails with the reason; the bases
                // still queued are left to the other drivers.
                let left = held
                    .ready
                    .drain(..)
                    .chain(held.sleeping.drain(..).map(|(_, i, f)| (i, f)));
                for (i, fetch) in left {
                    let e = why.clone().context(format!("{}: no worker", fetch.url()));
                    run.outcomes
                        .put(i, Outcome::failed(fetch.base(), fetch.attempts(), e));
                }
                run.abandon(why);
                return;
            }
            run.any_worker.store(true, Ordering::Relaxed);
            let now = Instant::now();
            let (due, later): (Vec<_>, Vec<_>) =
                held.sleeping.drain(..).partition(|(at, _, _)| *at <= now);
            held.sleeping = later;
            held.ready.extend(due.into_iter().map(|(_, i, f)| (i, f)));
            let room = if depth > 1 { PIPELINE } else { 1 };
            if flying.len() < room {
                // Step what is held, then take new bases to fill the batch
                // (a base waiting to retry holds no place in it).
                let mut batch = Vec::with_capacity(depth);
                for (i, fetch) in std::mem::take(&mut held.ready) {
                    held.step(i, fetch, now, run, &mut batch);
                }
                if batch.len() < depth {
                    for i in run.claim(depth - batch.len(), self.slots.len()) {
                        claimed.push(i);
                        let base = run.outcomes.bases()[i];
                        let fetch =
                            BaseFetch::new(base, &self.local, run.throttle).sending_elsewhere();
                        held.step(i, fetch, now, run, &mut batch);
                    }
                }
                if !batch.is_empty() {
                    if let Err(crash) = self.send_batch(slot, batch, &mut flying) {
                        self.crashed(index, slot, &mut flying, &crash, &mut held);
                    }
                    continue;
                }
            }
            let Some(mut batch) = flying.pop_front() else {
                match held.sleeping.iter().map(|(at, _, _)| *at).min() {
                    Some(at) => {
                        // Wakes early when the run is stopped.
                        run.outcomes
                            .sleep(at.saturating_duration_since(Instant::now()));
                    }
                    None => return,
                }
                continue;
            };
            let mut answers = Vec::with_capacity(batch.ids.len());
            let mut crash = None;
            if let Some(worker) = slot.worker.as_mut() {
                let n = batch.ids.len();
                for (j, (id, wait)) in batch.ids.iter().zip(&batch.waits).enumerate() {
                    // Requests run one after the other and their replies
                    // are held until the batch's last: each is due within
                    // one request's time per request still to run.
                    let left = u32::try_from(n - j).unwrap_or(u32::MAX);
                    match worker.receive(*id, self.reply_timeout() * left + *wait, run.stop_fd) {
                        Ok(answer) => answers.push(answer),
                        Err(e) => {
                            crash = Some(e);
                            break;
                        }
                    }
                }
            } else {
                crash = Some("was gone".to_owned());
            }
            let now = Instant::now();
            let answered = answers.len();
            if answered > 0 {
                let each = now.saturating_duration_since(batch.sent.max(last_answer))
                    / u32::try_from(answered).unwrap_or(u32::MAX);
                depth = if run.throttle.is_none() && each < FAST_REQUEST {
                    MAX_BATCH
                } else {
                    1
                };
            }
            last_answer = now;
            let rest = batch.fetches.split_off(answered);
            for ((i, fetch), answer) in batch.fetches.into_iter().zip(answers) {
                let done = answer.done.min(now);
                held.settle(i, fetch, answer, done);
            }
            if let Some(crash) = crash {
                batch.fetches = rest;
                flying.push_front(batch);
                if run.outcomes.stop().is_stopped() {
                    // Not the worker's failure: the top of the loop stops it.
                    continue;
                }
                self.crashed(index, slot, &mut flying, &crash, &mut held);
            }
        }
    }

    /// Sends `fetches` (each told to send) to the slot's worker in one
    /// write, as the last batch of `flying`; `Err` says how the worker
    /// failed (the batch is in `flying` all the same).
    fn send_batch<'a>(
        &self,
        slot: &mut Slot,
        fetches: Vec<(usize, BaseFetch<'a>)>,
        flying: &mut VecDeque<Batch<'a>>,
    ) -> Result<(), String> {
        let now = Instant::now();
        let waits: Vec<Duration> = fetches
            .iter()
            .map(|(_, f)| {
                f.send_at()
                    .map_or(Duration::ZERO, |t| t.saturating_duration_since(now))
            })
            .collect();
        let requests = fetches
            .iter()
            .zip(&waits)
            .map(|((_, f), wait)| (f.url(), *wait));
        let sent = match slot.worker.as_mut() {
            Some(worker) => worker.send(requests, self.reply_timeout()),
            None => Err("was gone".to_owned()),
        };
        flying.push_back(Batch {
            fetches,
            waits,
            ids: sent.as_ref().map_or_else(|_| Vec::new(), Clone::clone),
            sent: now,
        });
        sent.map(|_| ())
    }

    /// The slot's worker failed (`crash`) before answering the first
    /// request of `flying`'s first batch: kill it, start another, and fail
    /// every attempt it had not answered, each as a worker crash (which the
    /// retry policy retries).
    fn crashed<'a>(
        &self,
        index: usize,
        slot: &mut Slot,
        flying: &mut VecDeque<Batch<'a>>,
        crash: &str,
        held: &mut Held<'a>,
    ) {
        let (pid, status) = match slot.worker.take() {
            Some(mut worker) => (worker.pid, worker.kill_and_reap()),
            None => (0, "gone".to_owned()),
        };
        self.pids[index].store(0, Ordering::Release);
        let replaced = if self.refill(index, slot) {
            "it was replaced"
        } else {
            "no replacement could be started"
        };
        let now = Instant::now();
        let mut first = None;
        for batch in flying.drain(..) {
            for (i, fetch) in batch.fetches {
                let url = fetch.url();
                let what = match &first {
                    None => format!("while fetching {url}"),
                    Some(first) => format!("with {url} queued behind {first}"),
                };
                first.get_or_insert(url);
                let e = Error::new(
                    ErrorKind::WorkerCrash,
                    format!("worker process {pid} {crash} {what} ({status}); {replaced}"),
                );
                let answer = Answer {
                    result: Err(e),
                    sent: now,
                    done: now,
                };
                held.settle(i, fetch, answer, now);
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
            fork_server: self.fork_server.as_ref(),
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
    /// The read end of the run's stop pipe, if it has a stop handle.
    stop_fd: Option<RawFd>,
}

/// A pipe that becomes readable when a run's stop handle fires, so that a
/// driver waiting on its worker's output (in `poll(2)`) wakes at once.
struct StopPipe<'s> {
    read: OwnedFd,
    _hook: StopGuard<'s>,
}

impl<'s> StopPipe<'s> {
    /// `None` when no pipe can be made: the drivers then notice the stop
    /// after their current wait.
    fn new(stop: &'s Stop) -> Option<Self> {
        let (read, write) = nix::unistd::pipe().ok()?;
        let hook = stop.on_stop(move || {
            let _ = nix::unistd::write(&write, &[1]);
        });
        Some(Self { read, _hook: hook })
    }
}

impl RunState<'_> {
    fn abandon(&self, why: Error) {
        *lock(&self.abandoned) = Some(why);
    }

    /// Takes up to `most` bases from the queue for one of `drivers`
    /// drivers, but no more than its share of what is left (so the tail
    /// is spread over every worker): their indices.
    fn claim(&self, most: usize, drivers: usize) -> std::ops::Range<usize> {
        let len = self.outcomes.len();
        let mut next = self.next.load(Ordering::Relaxed);
        loop {
            let left = len.saturating_sub(next);
            let take = most.min(left.div_ceil(drivers.max(1)));
            if take == 0 {
                return next..next;
            }
            match self.next.compare_exchange_weak(
                next,
                next + take,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return next..next + take,
                Err(now) => next = now,
            }
        }
    }
}

/// What a run leaves behind.
struct Done {
    abandoned: Option<Error>,
    any_worker: bool,
}

/// Requests sent to a worker in one write, not yet answered.
struct Batch<'a> {
    fetches: Vec<(usize, BaseFetch<'a>)>,
    waits: Vec<Duration>,
    ids: Vec<u64>,
    sent: Instant,
}

/// The attempt loops a driver holds outside its batches: those to step
/// next (due to send, or done), and those waiting to retry.
#[derive(Default)]
struct Held<'a> {
    ready: Vec<(usize, BaseFetch<'a>)>,
    sleeping: Vec<(Instant, usize, BaseFetch<'a>)>,
}

impl<'a> Held<'a> {
    /// Moves base `i`'s attempt loop on at `now`: into `batch` when it is
    /// to send, to `sleeping` until its retry, or into the outcomes.
    fn step(
        &mut self,
        i: usize,
        mut fetch: BaseFetch<'a>,
        now: Instant,
        run: &RunState<'a>,
        batch: &mut Vec<(usize, BaseFetch<'a>)>,
    ) {
        match fetch.next(now) {
            Step::Send => batch.push((i, fetch)),
            Step::Sleep(d) => self.sleeping.push((now + d, i, fetch)),
            Step::Done => run.outcomes.put(i, fetch.into_outcome()),
        }
    }

    /// Records `answer` (complete at `done`) in base `i`'s attempt loop,
    /// to be stepped next.
    fn settle(&mut self, i: usize, mut fetch: BaseFetch<'a>, answer: Answer, done: Instant) {
        fetch.record_sent(answer.sent, answer.result, done);
        self.ready.push((i, fetch));
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A driver that panicked left consistent data behind: outcomes are
    // written whole, and a worker is either in its slot or dropped (reaped).
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
