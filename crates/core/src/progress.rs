//! How far a run has got, for progress displays and latency figures.

use std::time::Duration;

/// What a run's observers see as it goes: bases finished so far, when the
/// first one finished, and the latency of every request, all fed by the
/// attempt loop every strategy shares, so any display or measurement can
/// follow any strategy's run with the same code.
///
/// ```
/// use rates_core::Progress;
/// let progress = Progress::default();
/// assert_eq!(progress.done(), 0);
/// assert_eq!(progress.first_done_at(), None);
/// assert_eq!(progress.latency_quantile(0.5), None);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Progress(std::sync::Arc<ProgressInner>);

#[derive(Debug, Default)]
struct ProgressInner {
    done: std::sync::atomic::AtomicUsize,
    first_done: std::sync::OnceLock<std::time::Instant>,
    latency: crate::histogram::Histogram,
    worked: std::sync::atomic::AtomicUsize,
    /// When each request under a rate limit was handed to its socket (the
    /// throttle's send log, as the attempt loop records it).
    sends: std::sync::Mutex<Vec<std::time::Instant>>,
}

impl Progress {
    /// Bases finished so far.
    pub fn done(&self) -> usize {
        self.0.done.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// When the first base of the run finished (succeeded or failed).
    pub fn first_done_at(&self) -> Option<std::time::Instant> {
        self.0.first_done.get().copied()
    }

    /// The `q` quantile (0.5 for the median, 0.99) of the latency of one
    /// request, from the moment the attempt loop said "send" to the moment
    /// its answer (or error) was recorded; `None` before any request.
    /// Accurate to about 3% (a log-linear histogram of microseconds).
    pub fn latency_quantile(&self, q: f64) -> Option<Duration> {
        self.0.latency.quantile(q).map(Duration::from_micros)
    }

    /// Items whose CPU work ([`Config::work`](crate::Config::work)) was done.
    pub fn worked(&self) -> usize {
        self.0.worked.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Counts one item's work as done (the attempt loop does; a strategy
    /// whose work runs elsewhere, as in a child process, calls this when
    /// it hears of it).
    pub fn work_done(&self) {
        self.0
            .worked
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Requests whose latency was recorded.
    pub fn requests(&self) -> u64 {
        self.0.latency.count()
    }

    pub(crate) fn finish_one(&self) {
        self.0.first_done.get_or_init(std::time::Instant::now);
        self.0
            .done
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Under a rate limit, when each request was sent, in time order: the
    /// log the throttle keeps its promise against (at most the limit's
    /// rate in any one-second window, with no tolerance). Empty without a
    /// rate limit.
    pub fn sends(&self) -> Vec<std::time::Instant> {
        let mut sends = self
            .0
            .sends
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        sends.sort_unstable();
        sends
    }

    pub(crate) fn record_send(&self, at: std::time::Instant) {
        self.0
            .sends
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(at);
    }

    pub(crate) fn record_latency(&self, latency: Duration) {
        self.0
            .latency
            .record(latency.as_micros().try_into().unwrap_or(u64::MAX));
    }
}

impl PartialEq for Progress {
    /// Two handles are equal when they count the same run.
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}
