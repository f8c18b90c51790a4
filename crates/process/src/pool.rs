//! The parent side: a pool of worker processes and the threads that drive them.

use std::io::{self, BufRead, BufReader, Read as _, Write as _};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use rates_core::{
    BaseFetch, Config, CurrencyCode, Error, ErrorKind, Outcome, Outcomes, RawResponse, Report,
    Step, Throttle,
};

use crate::command::{WORKER_ENV, WorkerCommand};
use crate::protocol::{PROTOCOL, Reply, Request, Wait, instant_of, line};

/// How long a worker may take to answer beyond the request's own connect
/// and request timeouts (which the worker's client enforces) before the
/// parent gives up on it.
const REPLY_MARGIN: Duration = Duration::from_secs(2);

/// The least time a starting worker gets to say it is ready; otherwise it
/// gets as long as one request may take.
const MIN_READY_TIMEOUT: Duration = Duration::from_secs(2);

/// How long [`ProcessPool::shutdown`] waits for the workers' goodbyes
/// (their peak memory) before killing them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Replies queued between a worker's reader thread and its driver. The
/// protocol has one reply in flight, so this only bounds a misbehaving worker.
const REPLY_QUEUE: usize = 4;

/// Messages up to this long are written to a worker directly (see
/// `Worker::write`): the smallest pipe buffer Linux gives is one page.
const DIRECT_WRITE: usize = 4096;

/// Stack for the threads that read workers' stdout (one per worker).
const READER_STACK: usize = 256 * 1024;

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

/// Kills every worker first, then reaps them, so they die in parallel.
fn kill_all(workers: &mut Vec<Worker>) {
    for w in workers.iter_mut() {
        let _ = w.child.kill();
    }
    // Each drop waits for its (now killed) child.
    workers.clear();
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

/// Everything needed to start one worker.
struct Spawner<'a> {
    config: &'a Config,
    command: &'a WorkerCommand,
}

impl Spawner<'_> {
    /// Starts a worker, sends it the hello and waits until it is ready.
    fn spawn(&self) -> Result<Worker, Error> {
        let program = self.command.program.display();
        let fail = |why: String| {
            Error::new(
                ErrorKind::Spawn,
                format!(
                    "the worker program `{}` {why}; check that it calls \
                     `rates_process::worker_if_asked()` first thing in `main` and was built \
                     from this version, or give the process strategy another worker command",
                    self.command.describe(),
                ),
            )
        };
        let mut child = Command::new(&self.command.program)
            .args(&self.command.args)
            .env(WORKER_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Spawn,
                    format!(
                        "cannot start the worker program `{program}`: {e}; give the process \
                         strategy a worker command that exists"
                    ),
                )
            })?;
        let pid = child.id();
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail("was started without pipes".into()));
        };
        let max_line = self
            .config
            .max_body_bytes
            .saturating_mul(6)
            .saturating_add(64 * 1024);
        let (tx, replies) = sync_channel(REPLY_QUEUE);
        let reader = thread::Builder::new()
            .name(format!("rates-process-reader-{pid}"))
            .stack_size(READER_STACK)
            .spawn(move || read_replies(stdout, &tx, max_line));
        if let Err(e) = reader {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!(
                "was started but no thread could read it: {e}"
            )));
        }
        // From here on, dropping `worker` kills and reaps the child.
        let mut worker = Worker {
            child,
            pid,
            stdin: Some(stdin),
            replies,
            next_id: 0,
            progress: self.config.progress.clone(),
        };
        let hello = Request::Hello {
            protocol: PROTOCOL,
            config: Box::new(self.config.clone()),
        };
        let timeout =
            (self.config.connect_timeout + self.config.request_timeout).max(MIN_READY_TIMEOUT);
        let deadline = Instant::now() + timeout;
        if let Err(e) = worker.write(&hello, timeout) {
            let status = worker.kill_and_reap();
            return Err(fail(format!(
                "could not be sent its settings ({e}; {status})"
            )));
        }
        match worker
            .replies
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(Incoming::Message(Reply::Ready { protocol })) if protocol == PROTOCOL => Ok(worker),
            Ok(Incoming::Message(Reply::Ready { protocol })) => Err(fail(format!(
                "speaks protocol {protocol}, and this program speaks {PROTOCOL}"
            ))),
            Ok(Incoming::Message(Reply::Fatal { message })) => {
                Err(fail(format!("refused to start: {message}")))
            }
            Ok(Incoming::Message(other)) => Err(fail(format!(
                "answered the hello with {} instead of ready",
                summary(&other)
            ))),
            Ok(Incoming::Unreadable(what)) => Err(fail(format!("answered the hello with {what}"))),
            Err(RecvTimeoutError::Timeout) => {
                Err(fail(format!("did not say it was ready within {timeout:?}")))
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = worker.kill_and_reap();
                Err(fail(format!("exited before it was ready ({status})")))
            }
        }
    }
}

/// What a message is, briefly (its body can be large).
fn summary(reply: &Reply) -> String {
    match reply {
        Reply::Ready { .. } => "a ready message".to_owned(),
        Reply::Response { id, .. } => format!("the reply to request {id}"),
        Reply::Bye { .. } => "a goodbye".to_owned(),
        Reply::Fatal { message } => format!("a fatal error ({message})"),
    }
}

/// A line from a worker, as its reader thread saw it. The channel closing
/// means the worker's stdout closed: it exited.
#[derive(Debug)]
enum Incoming {
    Message(Reply),
    /// Not a message: what the worker sent instead (the reader stops).
    Unreadable(String),
}

/// Reads a worker's stdout, one message per line, until it closes, the
/// worker sends something unreadable, or the driver goes away.
fn read_replies(stdout: ChildStdout, tx: &SyncSender<Incoming>, max_line: usize) {
    let mut reader = BufReader::new(stdout);
    let mut buf = Vec::new();
    let limit = u64::try_from(max_line)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    loop {
        buf.clear();
        let incoming = match (&mut reader).take(limit).read_until(b'\n', &mut buf) {
            Ok(0) => return,
            Ok(_) if buf.last() == Some(&b'\n') => match serde_json::from_slice::<Reply>(&buf) {
                Ok(reply) => Incoming::Message(reply),
                Err(e) => {
                    Incoming::Unreadable(format!("an unreadable reply ({e}): {}", excerpt(&buf)))
                }
            },
            Ok(_) if buf.len() > max_line => {
                Incoming::Unreadable(format!("a reply longer than {max_line} bytes"))
            }
            Ok(_) => Incoming::Unreadable(format!(
                "an unfinished reply before closing its output: {}",
                excerpt(&buf)
            )),
            Err(e) => Incoming::Unreadable(format!("output that could not be read: {e}")),
        };
        let stop = matches!(incoming, Incoming::Unreadable(_));
        if tx.send(incoming).is_err() || stop {
            return;
        }
    }
}

fn excerpt(bytes: &[u8]) -> String {
    const MAX: usize = 120;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX)]);
    let text = text.trim_end();
    if bytes.len() > MAX {
        format!("{text:?}...")
    } else {
        format!("{text:?}")
    }
}

/// One child process and the pipes to it. Dropping it kills and reaps the
/// child.
#[derive(Debug)]
struct Worker {
    child: Child,
    pid: u32,
    stdin: Option<ChildStdin>,
    replies: Receiver<Incoming>,
    next_id: u64,
    /// The run's progress, told of the work the worker did.
    progress: Option<rates_core::Progress>,
}

impl Worker {
    /// Writes one message to the worker, giving up after `timeout`.
    ///
    /// The pipe is empty whenever the parent writes (a worker reads each
    /// line before answering it), and every pipe holds at least a page, so
    /// a line that fits in one is written directly and cannot block. A
    /// longer one (a huge config or URL) could fill the pipe of a worker
    /// that stopped reading, so a helper thread writes it while this one
    /// waits, bounded; on a timeout the worker is killed as a crash, which
    /// ends the helper's write.
    fn write(&mut self, request: &Request, timeout: Duration) -> io::Result<()> {
        let mut stdin = self
            .stdin
            .take()
            .ok_or_else(|| io::Error::other("its input is closed"))?;
        let bytes = line(request);
        if bytes.len() <= DIRECT_WRITE {
            stdin.write_all(&bytes)?;
            self.stdin = Some(stdin);
            return Ok(());
        }
        let len = bytes.len();
        let (tx, rx) = sync_channel(1);
        thread::Builder::new()
            .name(format!("rates-process-writer-{}", self.pid))
            .spawn(move || {
                let written = stdin.write_all(&bytes).map(|()| stdin);
                let _ = tx.send(written);
            })?;
        match rx.recv_timeout(timeout) {
            Ok(Ok(stdin)) => {
                self.stdin = Some(stdin);
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("it did not read a {len}-byte message within {timeout:?}"),
            )),
        }
    }

    /// Sends one request, to be sent by the worker `wait` from now, and
    /// waits (bounded) for its reply. The outer error
    /// says how the worker failed; the inner result is the attempt's.
    fn request(
        &mut self,
        url: &str,
        wait: Duration,
        timeout: Duration,
    ) -> Result<(Result<RawResponse, Error>, Instant), String> {
        self.next_id += 1;
        let id = self.next_id;
        let deadline = Instant::now() + timeout;
        let request = Request::Get {
            id,
            url: url.to_owned(),
            wait: (!wait.is_zero()).then(|| Wait::from_now(wait)),
        };
        self.write(&request, timeout)
            .map_err(|e| format!("could not be sent the request ({e})"))?;
        match self
            .replies
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(Incoming::Message(Reply::Response {
                id: got,
                sent,
                result,
            })) if got == id => {
                let sent = sent.map_or_else(Instant::now, instant_of);
                match result {
                    Ok(wire) => {
                        if wire.worked {
                            if let Some(progress) = &self.progress {
                                progress.work_done();
                            }
                        }
                        wire.into_raw()
                            .map(|raw| (Ok(raw), sent))
                            .map_err(|what| format!("sent {what}"))
                    }
                    Err(e) => Ok((Err(e), sent)),
                }
            }
            Ok(Incoming::Message(Reply::Fatal { message })) => Err(format!("gave up: {message}")),
            Ok(Incoming::Message(other)) => {
                Err(format!("answered request {id} with {}", summary(&other)))
            }
            Ok(Incoming::Unreadable(what)) => Err(format!("sent {what}")),
            Err(RecvTimeoutError::Timeout) => Err(format!("did not answer within {timeout:?}")),
            Err(RecvTimeoutError::Disconnected) => Err("exited".to_owned()),
        }
    }

    /// Waits (until `deadline`) for the goodbye a worker sends once its
    /// input is closed, and returns the peak memory it reported.
    fn goodbye(&self, deadline: Instant) -> Option<u64> {
        while let Ok(Incoming::Message(reply)) = self
            .replies
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if let Reply::Bye { peak_rss_bytes } = reply {
                return peak_rss_bytes;
            }
        }
        None
    }

    /// Closes the worker's input, waits (bounded) for its goodbye, kills
    /// and reaps it.
    fn retire(mut self) {
        self.stdin = None;
        self.goodbye(Instant::now() + SHUTDOWN_GRACE);
        // Dropping `self` kills and reaps the child.
    }

    /// Kills the child (if it still runs) and waits for it.
    fn kill_and_reap(&mut self) -> String {
        self.stdin = None;
        let _ = self.child.kill();
        match self.child.wait() {
            Ok(status) => status.to_string(),
            Err(e) => format!("its exit status is unknown: {e}"),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // `kill` does nothing once the child has been reaped; `wait` then
        // returns the status it already has.
        self.kill_and_reap();
    }
}
