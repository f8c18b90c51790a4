//! Stopping a run before it is done: a cloneable stop handle, fired by the
//! caller ([`Stop::cancel`]) or by the run's deadline
//! ([`Config::deadline`](crate::Config::deadline)).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Why a run was stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StopCause {
    /// Its stop handle was fired ([`Stop::cancel`]): a caller, or Ctrl-C.
    Cancelled,
    /// Its whole-run deadline passed.
    Deadline,
}

impl StopCause {
    /// `cancelled` or `deadline`, as the JSON of an error names it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cancelled => "cancelled",
            Self::Deadline => "deadline",
        }
    }

    /// The cause called `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "cancelled" => Some(Self::Cancelled),
            "deadline" => Some(Self::Deadline),
            _ => None,
        }
    }

    fn code(self) -> u8 {
        match self {
            Self::Cancelled => 1,
            Self::Deadline => 2,
        }
    }
}

impl fmt::Display for StopCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A stop handle: cloneable, shared by everything a run starts, fired once.
///
/// Once fired (by [`cancel`](Stop::cancel), or by the run's deadline), a
/// run starts no new request and schedules no retry; sleepers wake at once
/// ([`sleep`](Stop::sleep), [`stopped`](Stop::stopped)); requests in flight
/// are abandoned as each concurrency model allows (futures dropped, blocking
/// sockets shut down by the hooks registered with
/// [`on_stop`](Stop::on_stop), worker processes told to stop and then
/// killed); every base not finished gets a
/// [`Cancelled`](crate::ErrorKind::Cancelled) outcome. A handle fires once:
/// the first cause is kept.
///
/// ```
/// use std::time::Duration;
/// use rates_core::{Stop, StopCause};
///
/// let stop = Stop::new();
/// let waiter = stop.clone();
/// let sleeper = std::thread::spawn(move || waiter.sleep(Duration::from_secs(60)));
/// stop.cancel();
/// // The sleeper woke at once, and says it was stopped.
/// assert!(!sleeper.join().unwrap());
/// assert_eq!(stop.cause(), Some(StopCause::Cancelled));
/// ```
#[derive(Clone, Default)]
pub struct Stop {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// 0 while running; then [`StopCause::code`].
    cause: AtomicU8,
    /// When it fired.
    fired_at: OnceLock<Instant>,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Hooks to run when the handle fires, each in the place its guard
    /// names (`None` once removed); emptied when the handle fires.
    hooks: Vec<Option<Box<dyn FnOnce() + Send>>>,
    /// Places of `hooks` free for reuse: registering and removing a hook
    /// costs the same however many there are (a blocking client registers
    /// one per request in flight).
    free: Vec<usize>,
    next_id: u64,
    /// Tasks waiting in [`Stop::stopped`], by the id of their future.
    wakers: HashMap<u64, Waker>,
}

impl fmt::Debug for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stop")
            .field("cause", &self.cause())
            .finish_non_exhaustive()
    }
}

/// Two handles are equal when they are clones of one another.
impl PartialEq for Stop {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

/// The handle of runs given none: never fired.
static NEVER: LazyLock<Stop> = LazyLock::new(Stop::new);

impl Stop {
    /// A handle not yet fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// A handle that is never fired, for runs given none.
    pub fn never() -> &'static Self {
        &NEVER
    }

    /// Fires the handle as [`StopCause::Cancelled`] (if it has not fired).
    pub fn cancel(&self) {
        self.fire(StopCause::Cancelled);
    }

    /// Fires the handle with `cause`, unless it has fired already: wakes
    /// every sleeper and runs every hook, on this thread.
    pub fn fire(&self, cause: StopCause) {
        if self
            .inner
            .cause
            .compare_exchange(0, cause.code(), Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let _ = self.inner.fired_at.set(Instant::now());
        let (hooks, wakers) = {
            let mut state = self.lock();
            state.free.clear();
            (
                std::mem::take(&mut state.hooks),
                std::mem::take(&mut state.wakers),
            )
        };
        self.inner.changed.notify_all();
        for waker in wakers.into_values() {
            waker.wake();
        }
        for hook in hooks.into_iter().flatten() {
            hook();
        }
    }

    /// True once the handle has fired.
    pub fn is_stopped(&self) -> bool {
        self.inner.cause.load(Ordering::Acquire) != 0
    }

    /// Why it fired, once it has.
    pub fn cause(&self) -> Option<StopCause> {
        match self.inner.cause.load(Ordering::Acquire) {
            1 => Some(StopCause::Cancelled),
            2 => Some(StopCause::Deadline),
            _ => None,
        }
    }

    /// When it fired, once it has.
    pub fn fired_at(&self) -> Option<Instant> {
        self.inner.fired_at.get().copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps for `duration` on this thread, or until the handle fires:
    /// true when the whole duration passed, false when it was stopped.
    pub fn sleep(&self, duration: Duration) -> bool {
        self.sleep_until(Instant::now() + duration)
    }

    /// Sleeps until `until`, or until the handle fires: true when `until`
    /// was reached, false when it was stopped.
    pub fn sleep_until(&self, until: Instant) -> bool {
        let mut state = self.lock();
        loop {
            if self.is_stopped() {
                return false;
            }
            let now = Instant::now();
            if now >= until {
                return true;
            }
            state = self
                .inner
                .changed
                .wait_timeout(state, until - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Runs `hook` when the handle fires (at once, here, if it has), unless
    /// the returned guard is dropped first. Blocking clients register the
    /// socket of a request in flight, to shut it down.
    pub fn on_stop(&self, hook: impl FnOnce() + Send + 'static) -> StopGuard<'_> {
        let mut state = self.lock();
        if self.is_stopped() {
            drop(state);
            hook();
            return StopGuard {
                stop: self,
                place: None,
            };
        }
        let hook: Box<dyn FnOnce() + Send> = Box::new(hook);
        let place = match state.free.pop() {
            Some(place) => {
                state.hooks[place] = Some(hook);
                place
            }
            None => {
                state.hooks.push(Some(hook));
                state.hooks.len() - 1
            }
        };
        StopGuard {
            stop: self,
            place: Some(place),
        }
    }

    /// A future that is ready, with the cause, once the handle fires: race
    /// it with a request or a sleep, and the request is dropped when the run
    /// stops. Polling it while the handle has not fired costs an atomic load
    /// and a comparison of wakers; it registers with the handle only when
    /// its task's waker is new to it.
    pub fn stopped(&self) -> Stopped<'_> {
        Stopped {
            stop: self,
            id: None,
            waker: None,
        }
    }
}

/// Keeps a hook of [`Stop::on_stop`] registered; dropping it removes the
/// hook (if it has not run).
#[must_use = "dropping the guard removes the hook at once"]
pub struct StopGuard<'a> {
    stop: &'a Stop,
    /// Its hook's place in the handle's list, while registered.
    place: Option<usize>,
}

impl fmt::Debug for StopGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StopGuard")
            .field("place", &self.place)
            .finish()
    }
}

impl Drop for StopGuard<'_> {
    fn drop(&mut self) {
        if let Some(place) = self.place {
            let mut state = self.stop.lock();
            // Gone already when the handle fired (the list was emptied).
            if let Some(slot) = state.hooks.get_mut(place) {
                let hook = slot.take();
                state.free.push(place);
                drop(state);
                drop(hook);
            }
        }
    }
}

/// The future of [`Stop::stopped`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Stopped<'a> {
    stop: &'a Stop,
    /// Its entry among the handle's wakers, once registered.
    id: Option<u64>,
    /// The waker registered there.
    waker: Option<Waker>,
}

impl Future for Stopped<'_> {
    type Output = StopCause;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<StopCause> {
        if let Some(cause) = self.stop.cause() {
            return Poll::Ready(cause);
        }
        if self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            return Poll::Pending;
        }
        let stop = self.stop;
        let mut state = stop.lock();
        // Checked again under the lock, which `fire` takes before waking.
        if let Some(cause) = stop.cause() {
            return Poll::Ready(cause);
        }
        let id = *self.id.get_or_insert_with(|| {
            state.next_id += 1;
            state.next_id
        });
        state.wakers.insert(id, cx.waker().clone());
        drop(state);
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.stop.lock().wakers.remove(&id);
        }
    }
}

/// Fires a stop handle after a while, with a cause, unless it is ended (or
/// dropped) first: the one timer behind a run's deadline and behind a
/// measured run stopped part-way. A thread of its own sleeps on a channel
/// and wakes when the time is up or when the timer ends, whichever comes
/// first; it is joined when the timer ends, so nothing outlives it.
#[derive(Debug)]
pub struct StopTimer {
    done: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StopTimer {
    /// Fires `stop` with `cause` once `after` has passed.
    ///
    /// # Errors
    /// [`ErrorKind::Spawn`](crate::ErrorKind::Spawn) when its thread cannot
    /// start.
    pub fn start(stop: Stop, after: Duration, cause: StopCause) -> Result<Self, crate::Error> {
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("rates-{}", cause.name()))
            .spawn(move || {
                if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(after) {
                    stop.fire(cause);
                }
            })
            .map_err(|e| {
                crate::Error::new(
                    crate::ErrorKind::Spawn,
                    format!(
                        "cannot start the thread that fires the run's {}: {e}",
                        cause.name()
                    ),
                )
            })?;
        Ok(Self {
            done: Some(done),
            thread: Some(thread),
        })
    }
}

impl Drop for StopTimer {
    /// Ends the timer: wakes its thread (if the time is not up yet, the
    /// stop is not fired) and joins it.
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_timer_fires_with_its_cause_or_ends_without_firing() {
        let stop = Stop::new();
        let timer =
            StopTimer::start(stop.clone(), Duration::from_millis(10), StopCause::Deadline).unwrap();
        assert!(!stop.sleep(Duration::from_secs(30)), "woken by the timer");
        assert_eq!(stop.cause(), Some(StopCause::Deadline));
        drop(timer);
        let stop = Stop::new();
        let timer = StopTimer::start(
            stop.clone(),
            Duration::from_secs(3600),
            StopCause::Cancelled,
        )
        .unwrap();
        drop(timer);
        assert_eq!(stop.cause(), None, "ended before its time: not fired");
    }
    use std::sync::atomic::AtomicBool;

    use super::*;

    #[test]
    fn fires_once_with_the_first_cause() {
        let stop = Stop::new();
        assert!(!stop.is_stopped());
        assert_eq!(stop.cause(), None);
        stop.fire(StopCause::Deadline);
        stop.cancel();
        assert_eq!(stop.cause(), Some(StopCause::Deadline));
        assert!(stop.clone().is_stopped());
        assert!(Stop::new() != stop && stop.clone() == stop);
    }

    #[test]
    fn sleep_runs_its_course_unless_stopped() {
        let stop = Stop::new();
        let t = Instant::now();
        assert!(stop.sleep(Duration::from_millis(20)));
        assert!(t.elapsed() >= Duration::from_millis(20));
        stop.cancel();
        let t = Instant::now();
        assert!(!stop.sleep(Duration::from_secs(60)));
        assert!(t.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn hooks_run_once_when_fired_and_not_after_their_guard_is_gone() {
        let stop = Stop::new();
        let ran = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicBool::new(false));
        let r = Arc::clone(&ran);
        let _kept = stop.on_stop(move || r.store(true, Ordering::SeqCst));
        let d = Arc::clone(&dropped);
        drop(stop.on_stop(move || d.store(true, Ordering::SeqCst)));
        // Places are reused: many hooks come and go, one list entry each.
        for _ in 0..100 {
            drop(stop.on_stop(|| panic!("removed hooks never run")));
        }
        assert!(stop.lock().hooks.len() <= 3);
        stop.cancel();
        assert!(ran.load(Ordering::SeqCst));
        assert!(!dropped.load(Ordering::SeqCst));
        // Registered after the fact: runs at once.
        let late = Arc::new(AtomicBool::new(false));
        let l = Arc::clone(&late);
        let _g = stop.on_stop(move || l.store(true, Ordering::SeqCst));
        assert!(late.load(Ordering::SeqCst));
    }

    #[test]
    fn the_stopped_future_wakes_its_task() {
        let stop = Stop::new();
        let s = stop.clone();
        let waiter = std::thread::spawn(move || futures_lite::future::block_on(s.stopped()));
        std::thread::sleep(Duration::from_millis(20));
        stop.fire(StopCause::Deadline);
        assert_eq!(waiter.join().unwrap(), StopCause::Deadline);
        assert_eq!(
            futures_lite::future::block_on(stop.stopped()),
            StopCause::Deadline
        );
    }
}
