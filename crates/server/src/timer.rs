//! A precise timer for the server's latency.
//!
//! tokio's timer has millisecond granularity and rounds deadlines up, which
//! adds about a millisecond to every answer: 5% of a 20 ms latency, charged
//! to whichever client is being measured. This timer is one thread that
//! sleeps on a condition variable until the earliest deadline (the kernel's
//! high-resolution timers wake it within tens of microseconds) and then
//! completes the waiting requests' oneshot channels. Nothing spins.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use tokio::sync::oneshot;

#[derive(Debug)]
struct Entry {
    at: Instant,
    seq: u64,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Debug, Default)]
struct State {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    shutdown: bool,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

/// The timer thread and its queue; stopping happens on drop.
#[derive(Debug)]
pub(crate) struct PreciseTimer {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PreciseTimer {
    pub(crate) fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("rates-server-timer".into())
            .spawn(move || run(&worker))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Completes when `at` has passed.
    pub(crate) async fn sleep_until(&self, at: Instant) {
        let (wake, woken) = oneshot::channel();
        {
            let mut state = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
            if state.shutdown {
                return;
            }
            state.seq += 1;
            let seq = state.seq;
            let earliest = state.heap.peek().is_none_or(|Reverse(e)| at < e.at);
            state.heap.push(Reverse(Entry { at, seq, wake }));
            if earliest {
                self.shared.changed.notify_one();
            }
        }
        let _ = woken.await;
    }
}

impl Drop for PreciseTimer {
    fn drop(&mut self) {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .shutdown = true;
        self.shared.changed.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(shared: &Shared) {
    let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if state.shutdown {
            // Wake every waiter so no request hangs on a stopped timer.
            state.heap.clear();
            return;
        }
        let now = Instant::now();
        while state.heap.peek().is_some_and(|Reverse(e)| e.at <= now) {
            if let Some(Reverse(e)) = state.heap.pop() {
                let _ = e.wake.send(());
            }
        }
        state = match state.heap.peek().map(|Reverse(e)| e.at - now) {
            Some(wait) => {
                shared
                    .changed
                    .wait_timeout(state, wait)
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
            None => shared
                .changed
                .wait(state)
                .unwrap_or_else(|p| p.into_inner()),
        };
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn wakes_in_deadline_order_and_never_early() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let timer = Arc::new(PreciseTimer::start().unwrap());
        let t0 = Instant::now();
        let order = Arc::new(Mutex::new(Vec::new()));
        rt.block_on(async {
            let mut tasks = Vec::new();
            for ms in [30u64, 10, 20] {
                let timer = Arc::clone(&timer);
                let order = Arc::clone(&order);
                tasks.push(tokio::spawn(async move {
                    let at = t0 + Duration::from_millis(ms);
                    timer.sleep_until(at).await;
                    assert!(Instant::now() >= at);
                    order.lock().unwrap().push(ms);
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
        assert_eq!(*order.lock().unwrap(), [10, 20, 30]);
    }
}
