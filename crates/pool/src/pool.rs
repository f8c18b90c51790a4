//! The reusable pool: fixed workers, a work channel in, a results channel
//! out per batch.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use rates_core::{Error, ErrorKind, panic_error};

use crate::chan;
use crate::sync::{Arc, AtomicBool, Condvar, Mutex, Ordering, lock, passed, thread, wait_until};

/// How long dropping a pool waits for busy workers unless told otherwise
/// (see [`Pool::with_shutdown_timeout`]).
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// A job as the workers see it: run once with the worker's own state.
type Job<S> = Box<dyn FnOnce(&mut S) + Send>;

/// What a batch's results channel carries: the item's index and its result.
type Reply<R> = (usize, Result<R, Error>);

/// What the pool and its workers share.
struct Shared {
    /// Workers still running.
    live: Mutex<usize>,
    /// Signalled each time a worker exits.
    exited: Condvar,
    /// Set once the pool starts shutting down.
    shut_down: AtomicBool,
}

/// A fixed-size pool of OS threads, each with a state of its own, fed
/// through one work channel.
///
/// [`submit`](Pool::submit) (or [`map`](Pool::map)) queues one job per item;
/// idle workers take jobs in order, run the function with their own state
/// (for the rates strategy, their own HTTP client and so their own
/// keep-alive connection), and send each result back with its index on the
/// batch's results channel. The caller collects them into input order.
///
/// - A panic inside a job is caught: it becomes that item's result (an
///   [`ErrorKind::Panic`] error) and the worker goes on to the next job, so
///   the pool keeps its full size. The worker keeps its state as the job
///   left it.
/// - Waiting never spins: idle workers and waiting callers sleep on a
///   condition variable.
/// - A result is never waited for in vain: each job owns its sender, so a
///   job that is dropped without running (the pool shut down first) ends the
///   wait, and its item reads as an [`ErrorKind::WorkerCrash`] error saying
///   it never ran.
/// - Dropping the pool closes the work channel, cancels the queued jobs, and
///   waits at most the [shutdown timeout](Pool::with_shutdown_timeout) for
///   busy workers to finish the job in hand; any still busy then are
///   detached and exit as soon as that job ends. Dropping never hangs.
///
/// The queue and shutdown logic is model-checked with `loom`
/// (`scripts/loom.sh`).
///
/// ```
/// use rates_pool::Pool;
///
/// // Two workers, each counting the jobs it ran.
/// let pool = Pool::new(2, |_worker| 0_u32)?;
/// let squares = pool.map(1..=4_u64, |ran: &mut u32, n| {
///     *ran += 1;
///     n * n
/// });
/// let squares: Vec<u64> = squares.into_iter().collect::<Result<_, _>>()?;
/// assert_eq!(squares, [1, 4, 9, 16]);
/// # Ok::<(), rates_core::Error>(())
/// ```
pub struct Pool<S> {
    work: chan::Sender<Job<S>>,
    shared: Arc<Shared>,
    workers: Vec<thread::JoinHandle<()>>,
    shutdown_timeout: Duration,
}

impl<S: Send + 'static> Pool<S> {
    /// Starts `size` workers; worker `i` owns the state `init(i)` (built on
    /// the calling thread, then moved to the worker).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when `size` is 0, and
    /// [`ErrorKind::Spawn`] when the OS will not start a worker thread (the
    /// workers already started are shut down first).
    ///
    /// # Panics
    /// If `init` panics; the workers already started are shut down as the
    /// panic unwinds.
    pub fn new(size: usize, mut init: impl FnMut(usize) -> S) -> Result<Self, Error> {
        if size == 0 {
            return Err(Error::invalid_input(
                "invalid pool size 0: a pool needs at least one worker",
            ));
        }
        let (work, jobs) = chan::channel::<Job<S>>();
        let mut pool = Self {
            work,
            shared: Arc::new(Shared {
                live: Mutex::new(0),
                exited: Condvar::new(),
                shut_down: AtomicBool::new(false),
            }),
            workers: Vec::with_capacity(size),
            shutdown_timeout: SHUTDOWN_TIMEOUT,
        };
        for index in 0..size {
            let state = init(index);
            let jobs = jobs.clone();
            let shared = Arc::clone(&pool.shared);
            // Counted before the thread starts, so a shutdown can never miss it.
            *lock(&pool.shared.live) += 1;
            let spawned = thread::Builder::new()
                .name(format!("rates-pool-{index}"))
                .spawn(move || worker_loop(state, jobs, shared));
            match spawned {
                Ok(handle) => pool.workers.push(handle),
                Err(e) => {
                    // The closure (and its count) never ran: take it back.
                    *lock(&pool.shared.live) -= 1;
                    return Err(Error::new(
                        ErrorKind::Spawn,
                        format!(
                            "could not start pool worker {} of {size}: {e}; lower the concurrency",
                            index + 1
                        ),
                    ));
                }
            }
        }
        Ok(pool)
    }

    /// Queues one job per item: `f(state, item)` on whichever worker is free.
    /// Returns at once; [`Batch::wait`] collects the results in input order.
    ///
    /// Jobs run in submission order as workers free up. Dropping the batch
    /// without waiting does not cancel its jobs; dropping the pool does.
    pub fn submit<T, R, F>(&self, items: impl IntoIterator<Item = T>, f: F) -> Batch<R>
    where
        T: Send + 'static,
        R: Send + 'static,
        F: Fn(&mut S, T) -> R + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let (results, replies) = chan::channel::<Reply<R>>();
        let mut len = 0;
        for (index, item) in items.into_iter().enumerate() {
            len += 1;
            let f = Arc::clone(&f);
            let results = results.clone();
            let job: Job<S> = Box::new(move |state: &mut S| {
                let result = catch_unwind(AssertUnwindSafe(|| f(state, item)))
                    .map_err(|payload| panic_error(&*payload));
                // The caller may have dropped its batch; nobody wants it then.
                let _ = results.send((index, result));
            });
            // Refused only if the pool is shutting down, which `&self` rules
            // out; a refused job is dropped and its item reads as not run.
            let _ = self.work.send(job);
        }
        Batch {
            replies,
            len,
            shared: Arc::clone(&self.shared),
        }
    }

    /// [`submit`](Pool::submit)s the items and [`wait`](Batch::wait)s: one
    /// result per item, in input order.
    pub fn map<T, R, F>(&self, items: impl IntoIterator<Item = T>, f: F) -> Vec<Result<R, Error>>
    where
        T: Send + 'static,
        R: Send + 'static,
        F: Fn(&mut S, T) -> R + Send + Sync + 'static,
    {
        self.submit(items, f).wait()
    }
}

impl<S> Pool<S> {
    /// The number of workers.
    pub fn size(&self) -> usize {
        self.workers.len()
    }

    /// Sets how long shutting down waits for busy workers (default
    /// [`SHUTDOWN_TIMEOUT`]).
    #[must_use]
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Shuts down, as dropping does, and says how many workers were still
    /// busy with a job when the shutdown timeout passed (0: every worker
    /// exited and was joined).
    pub fn shutdown(mut self) -> usize {
        self.shut_down()
    }

    fn shut_down(&mut self) -> usize {
        self.shared.shut_down.store(true, Ordering::Release);
        // Cancel what is queued: dropping a job drops its result sender, so
        // whoever waits on it learns at once that it will not run. Dropped
        // here, outside the channel's lock.
        drop(self.work.close());
        let deadline = Instant::now().checked_add(self.shutdown_timeout);
        let mut live = lock(&self.shared.live);
        while *live > 0 && !passed(deadline) {
            live = wait_until(&self.shared.exited, live, deadline);
        }
        let busy = *live;
        drop(live);
        let workers = std::mem::take(&mut self.workers);
        if busy == 0 {
            for worker in workers {
                // Every worker has left its loop; the join only reaps it. A
                // worker cannot panic (jobs are caught), so this is Ok.
                let _ = worker.join();
            }
        }
        // Otherwise the handles are dropped: the busy workers are detached
        // and exit when their current job ends (the channel is closed).
        busy
    }
}

impl<S> Drop for Pool<S> {
    fn drop(&mut self) {
        if !self.shared.shut_down.load(Ordering::Acquire) {
            self.shut_down();
        }
    }
}

impl<S> fmt::Debug for Pool<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("size", &self.size())
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish_non_exhaustive()
    }
}

/// Signals a worker's exit however it leaves (normally or unwinding).
struct Exit(Arc<Shared>);

impl Drop for Exit {
    fn drop(&mut self) {
        *lock(&self.0.live) -= 1;
        self.0.exited.notify_all();
    }
}

/// A worker's loop: take jobs until the work channel is closed or every
/// sender is gone.
fn worker_loop<S>(mut state: S, jobs: chan::Receiver<Job<S>>, shared: Arc<Shared>) {
    let exit = Exit(shared);
    while let Ok(job) = jobs.recv(None) {
        // The job catches its own panics; this only guards against a panic
        // payload whose destructor panics, so that not even that kills the
        // worker. Such a payload is leaked rather than dropped again.
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| job(&mut state))) {
            std::mem::forget(payload);
        }
    }
    // Release the worker's state (its connection) before reporting the exit.
    drop(jobs);
    drop(state);
    drop(exit);
}

/// The results of one [`Pool::submit`], collected by [`wait`](Batch::wait).
pub struct Batch<R> {
    replies: chan::Receiver<Reply<R>>,
    len: usize,
    shared: Arc<Shared>,
}

impl<R> Batch<R> {
    /// The number of jobs in the batch.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a batch of no jobs.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sleeps until every job has reported or can no longer report, and
    /// returns one result per item, in input order: the function's value, an
    /// [`ErrorKind::Panic`] error if it panicked, or an
    /// [`ErrorKind::WorkerCrash`] error if the job never ran or never
    /// reported (the pool shut down first).
    ///
    /// It waits as long as the jobs run and no longer: it returns as soon as
    /// the last result is in or the last unfinished job is dropped.
    pub fn wait(self) -> Vec<Result<R, Error>> {
        let mut slots: Vec<Option<Result<R, Error>>> = (0..self.len).map(|_| None).collect();
        let mut filled = 0;
        while filled < self.len {
            // Asleep until every reply is in (or the senders are gone): one
            // wake-up per batch, not one per item.
            match self.replies.recv_many(self.len - filled, None) {
                Ok(replies) => {
                    for (index, result) in replies {
                        if slots[index].replace(result).is_none() {
                            filled += 1;
                        }
                    }
                }
                Err(_) => break,
            }
        }
        let shut_down = self.shared.shut_down.load(Ordering::Acquire);
        slots
            .into_iter()
            .map(|slot| slot.unwrap_or_else(|| Err(not_run(shut_down))))
            .collect()
    }
}

impl<R> fmt::Debug for Batch<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

fn not_run(shut_down: bool) -> Error {
    let why = if shut_down {
        "the job never ran: the pool shut down before a worker took it"
    } else {
        "the job never reported: the worker running it was lost"
    };
    Error::new(ErrorKind::WorkerCrash, why)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc;

    use super::*;

    /// Long enough for any wait in these tests; only ever a bound.
    const BOUND: Duration = Duration::from_secs(10);

    fn values<R: fmt::Debug>(results: Vec<Result<R, Error>>) -> Vec<R> {
        results.into_iter().map(Result::unwrap).collect()
    }

    #[test]
    fn results_come_back_in_input_order() {
        let pool = Pool::new(3, |_| ()).unwrap();
        let out = pool.map(0..100_u32, |(), n| n * 2);
        assert_eq!(values(out), (0..100).map(|n| n * 2).collect::<Vec<_>>());
    }

    /// Jobs that say they started, then wait until the test opens the gate
    /// (the wait is bounded, and the bound is never reached).
    struct Gate {
        started: mpsc::Sender<u32>,
        open: std::sync::Mutex<mpsc::Receiver<()>>,
    }

    impl Gate {
        fn new() -> (Arc<Self>, mpsc::Receiver<u32>, mpsc::Sender<()>) {
            let (started, seen) = mpsc::channel();
            let (release, open) = mpsc::channel();
            let gate = Self {
                started,
                open: std::sync::Mutex::new(open),
            };
            (Arc::new(gate), seen, release)
        }

        fn pass(&self, n: u32) -> u32 {
            self.started.send(n).unwrap();
            let _ = self.open.lock().unwrap().recv_timeout(BOUND);
            n
        }
    }

    /// The next `k` jobs to start, in order of starting.
    fn started(seen: &mpsc::Receiver<u32>, k: usize) -> Vec<u32> {
        (0..k).map(|_| seen.recv_timeout(BOUND).unwrap()).collect()
    }

    #[test]
    fn panicking_jobs_become_their_items_results_and_the_pool_keeps_its_size() {
        let pool = Pool::new(2, |_| ()).unwrap();
        // A third of the jobs panic, batch after batch: if a panic cost a
        // worker, the pool would be empty by the second batch.
        for _ in 0..3 {
            let out = pool.map(0..10_u32, |(), n| {
                assert!(n % 3 != 0, "job {n} fails");
                n
            });
            assert_eq!(out.len(), 10);
            for (n, result) in (0..10).zip(&out) {
                if n % 3 == 0 {
                    let err = result.as_ref().unwrap_err();
                    assert!(err.is_panic(), "{err}");
                    assert!(err.to_string().contains(&format!("job {n} fails")), "{err}");
                } else {
                    assert_eq!(result.as_ref().ok(), Some(&n));
                }
            }
        }
        // Still two live workers: two jobs are in progress at once.
        let (gate, seen, release) = Gate::new();
        let batch = pool.submit(0..2, move |(), n| gate.pass(n));
        let mut both = started(&seen, 2);
        both.sort_unstable();
        assert_eq!(both, [0, 1]);
        release.send(()).unwrap();
        release.send(()).unwrap();
        assert_eq!(values(batch.wait()), [0, 1]);
    }

    #[test]
    fn zero_items() {
        let pool = Pool::new(2, |_| ()).unwrap();
        let batch = pool.submit(std::iter::empty::<u8>(), |(), n| n);
        assert!(batch.is_empty());
        assert!(batch.wait().is_empty());
        assert_eq!(pool.shutdown(), 0);
    }

    #[test]
    fn more_workers_than_items() {
        let pool = Pool::new(8, |i| i).unwrap();
        assert_eq!(pool.size(), 8);
        let out = values(pool.map(0..3_usize, |worker: &mut usize, n| (n, *worker)));
        assert_eq!(out.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [0, 1, 2]);
        assert!(out.iter().all(|(_, w)| *w < 8));
        assert_eq!(pool.shutdown(), 0);
    }

    #[test]
    fn one_item() {
        let pool = Pool::new(1, |_| String::from("state")).unwrap();
        let out = values(pool.map(["x"], |s: &mut String, item| format!("{s}:{item}")));
        assert_eq!(out, ["state:x"]);
    }

    #[test]
    fn each_worker_keeps_its_own_state_across_jobs() {
        let pool = Pool::new(3, |worker| (worker, 0_u32)).unwrap();
        let out = values(pool.map(0..60_u32, |(worker, ran): &mut (usize, u32), _| {
            *ran += 1;
            (*worker, *ran)
        }));
        // Per worker, the counts its jobs saw are exactly 1, 2, ..., k: the
        // state persisted from job to job and no other worker touched it.
        let mut total = 0;
        for worker in 0..3 {
            let mut seen: Vec<u32> = out
                .iter()
                .filter(|(w, _)| *w == worker)
                .map(|(_, n)| *n)
                .collect();
            seen.sort_unstable();
            let k = u32::try_from(seen.len()).unwrap();
            assert_eq!(seen, (1..=k).collect::<Vec<_>>(), "worker {worker}");
            total += seen.len();
        }
        assert_eq!(total, 60);
    }

    #[test]
    fn size_zero_is_explained() {
        let err = Pool::new(0, |_| ()).unwrap_err();
        assert!(err.is_invalid_input());
        assert!(err.to_string().contains("pool size 0"), "{err}");
    }

    #[test]
    fn dropping_an_idle_pool_joins_every_worker_and_drops_their_state() {
        struct Counted(Arc<AtomicUsize>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicUsize::new(0));
        let pool = Pool::new(4, |_| Counted(Arc::clone(&dropped))).unwrap();
        assert_eq!(
            values(pool.map([1, 2], |_: &mut Counted, n: i32| n)),
            [1, 2]
        );
        drop(pool);
        assert_eq!(dropped.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn dropping_the_pool_mid_run_cancels_the_queue_without_hanging() {
        let pool = Pool::new(2, |_| ())
            .unwrap()
            .with_shutdown_timeout(Duration::from_millis(50));
        let (gate, seen, release) = Gate::new();
        let batch = pool.submit(0..10_u32, move |(), n| gate.pass(n));
        // Both workers are busy with jobs 0 and 1; eight are queued.
        let mut running = started(&seen, 2);
        running.sort_unstable();
        assert_eq!(running, [0, 1]);
        // Shut down while both are still busy: it must come back, reporting
        // the two busy workers it left behind, not wait for them.
        assert_eq!(pool.shutdown(), 2);
        release.send(()).unwrap();
        release.send(()).unwrap();
        let out = batch.wait();
        assert_eq!(out.len(), 10);
        assert_eq!(out[0].as_ref().ok(), Some(&0));
        assert_eq!(out[1].as_ref().ok(), Some(&1));
        for result in &out[2..] {
            let err = result.as_ref().unwrap_err();
            assert!(err.is_worker_crash(), "{err}");
            assert!(err.to_string().contains("shut down"), "{err}");
        }
        // No job past the first two ever started.
        assert!(seen.try_recv().is_err());
    }

    #[test]
    fn dropping_the_pool_while_a_caller_waits_ends_the_wait() {
        let pool = Pool::new(1, |_| ())
            .unwrap()
            .with_shutdown_timeout(Duration::from_millis(20));
        let (gate, seen, release) = Gate::new();
        let batch = pool.submit(0..3_u32, move |(), n| gate.pass(n));
        let waiter = std::thread::spawn(move || batch.wait());
        assert_eq!(started(&seen, 1), [0]);
        drop(pool);
        release.send(()).unwrap();
        let out = waiter.join().unwrap();
        assert_eq!(out[0].as_ref().ok(), Some(&0));
        assert!(
            out[1..]
                .iter()
                .all(|r| r.as_ref().is_err_and(Error::is_worker_crash))
        );
    }
}
