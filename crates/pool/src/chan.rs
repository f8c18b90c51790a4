//! A small unbounded multi-producer, multi-consumer channel on a mutex and a
//! condition variable: the pool's work channel and each batch's results
//! channel.
//!
//! Why not `std::sync::mpsc`: the pool needs many workers on one queue and a
//! `close` that hands back what was queued (shutdown cancels queued jobs), and
//! `loom`'s model of `mpsc` cannot observe a disconnect (a `recv` whose
//! senders are gone blocks forever under loom), so the shutdown logic could
//! not be model-checked. This channel is built only on the primitives of
//! [`crate::sync`], so loom checks exactly the code that runs.

use std::collections::VecDeque;
use std::time::Instant;

use crate::sync::{Arc, Condvar, Mutex, lock, passed, wait_until};

struct State<T> {
    queue: VecDeque<T>,
    senders: usize,
    receivers: usize,
    closed: bool,
    /// Receivers asleep in a wait: a send with nobody waiting signals no
    /// one (a condition variable's signal is a system call even then).
    waiting: usize,
    /// How many queued items wake a waiting receiver: 1, or what a
    /// [`Receiver::recv_many`] waits for.
    want: usize,
}

struct Inner<T> {
    state: Mutex<State<T>>,
    /// Signalled when an item arrives, and (to everyone) when the last
    /// sender leaves or the channel is closed.
    ready: Condvar,
}

/// Why [`Receiver::recv`] returned nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecvError {
    /// The queue is empty and will stay so: every sender is gone, or the
    /// channel was closed.
    Disconnected,
    /// The deadline passed first.
    Timeout,
}

/// The sending half; clones share the channel.
pub(crate) struct Sender<T> {
    inner: Arc<Inner<T>>,
}

/// The receiving half; clones share the queue (each item goes to one of them).
pub(crate) struct Receiver<T> {
    inner: Arc<Inner<T>>,
}

/// A new, open, empty channel.
pub(crate) fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let inner = Arc::new(Inner {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            senders: 1,
            receivers: 1,
            closed: false,
            waiting: 0,
            want: 1,
        }),
        ready: Condvar::new(),
    });
    (
        Sender {
            inner: Arc::clone(&inner),
        },
        Receiver { inner },
    )
}

impl<T> Sender<T> {
    /// Queues `item`, or hands it back when nobody can receive it (the
    /// channel was closed or every receiver is gone).
    pub(crate) fn send(&self, item: T) -> Result<(), T> {
        let mut state = lock(&self.inner.state);
        if state.closed || state.receivers == 0 {
            return Err(item);
        }
        state.queue.push_back(item);
        let wake = state.waiting > 0 && state.queue.len() >= state.want;
        drop(state);
        if wake {
            self.inner.ready.notify_one();
        }
        Ok(())
    }

    /// Closes the channel for everyone: later sends fail, receivers see
    /// [`RecvError::Disconnected`] once they wake, and the items still queued
    /// are handed back (for the caller to drop outside the lock).
    pub(crate) fn close(&self) -> VecDeque<T> {
        let mut state = lock(&self.inner.state);
        state.closed = true;
        let queued = std::mem::take(&mut state.queue);
        drop(state);
        self.inner.ready.notify_all();
        queued
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        lock(&self.inner.state).senders += 1;
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut state = lock(&self.inner.state);
        state.senders -= 1;
        let last = state.senders == 0;
        drop(state);
        if last {
            self.inner.ready.notify_all();
        }
    }
}

impl<T> Receiver<T> {
    /// Takes the next item, sleeping until one arrives, the channel is
    /// disconnected, or `deadline` (if any) passes. Items queued before the
    /// last sender left are still delivered.
    pub(crate) fn recv(&self, deadline: Option<Instant>) -> Result<T, RecvError> {
        let mut state = lock(&self.inner.state);
        loop {
            if let Some(item) = state.queue.pop_front() {
                return Ok(item);
            }
            if state.closed || state.senders == 0 {
                return Err(RecvError::Disconnected);
            }
            if passed(deadline) {
                return Err(RecvError::Timeout);
            }
            state.waiting += 1;
            state = wait_until(&self.inner.ready, state, deadline);
            state.waiting -= 1;
        }
    }

    /// Takes everything queued once at least `n` items are (sleeping until
    /// then), or once the channel is disconnected or `deadline` passes with
    /// something queued: one wake-up for a whole batch of results instead
    /// of one per item. For a channel with one receiver.
    pub(crate) fn recv_many(
        &self,
        n: usize,
        deadline: Option<Instant>,
    ) -> Result<VecDeque<T>, RecvError> {
        let n = n.max(1);
        let mut state = lock(&self.inner.state);
        loop {
            let done = state.closed || state.senders == 0;
            if state.queue.len() >= n || (done || passed(deadline)) && !state.queue.is_empty() {
                return Ok(std::mem::take(&mut state.queue));
            }
            if done {
                return Err(RecvError::Disconnected);
            }
            if passed(deadline) {
                return Err(RecvError::Timeout);
            }
            state.waiting += 1;
            state.want = n;
            state = wait_until(&self.inner.ready, state, deadline);
            state.waiting -= 1;
            state.want = 1;
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        lock(&self.inner.state).receivers += 1;
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = lock(&self.inner.state);
        state.receivers -= 1;
        // Nobody will take what is queued: drop it now (outside the lock, as
        // dropping an item may run arbitrary code) rather than when the last
        // sender goes.
        let orphans = if state.receivers == 0 {
            std::mem::take(&mut state.queue)
        } else {
            VecDeque::new()
        };
        drop(state);
        drop(orphans);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn delivers_in_order_then_disconnects() {
        let (tx, rx) = channel();
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        drop(tx);
        assert_eq!(rx.recv(None), Ok(1));
        assert_eq!(rx.recv(None), Ok(2));
        assert_eq!(rx.recv(None), Err(RecvError::Disconnected));
    }

    #[test]
    fn close_hands_back_the_queue_and_refuses_more() {
        let (tx, rx) = channel();
        tx.send("a").unwrap();
        let _keep = tx.clone();
        assert_eq!(tx.close(), VecDeque::from(["a"]));
        assert_eq!(tx.send("b"), Err("b"));
        assert_eq!(rx.recv(None), Err(RecvError::Disconnected));
    }

    #[test]
    fn send_fails_without_receivers() {
        let (tx, rx) = channel();
        let rx2 = rx.clone();
        drop(rx);
        tx.send(1).unwrap();
        drop(rx2);
        assert_eq!(tx.send(2), Err(2));
    }

    #[test]
    fn recv_times_out_while_a_sender_lives() {
        let (tx, rx) = channel::<u8>();
        let deadline = Instant::now() + Duration::from_millis(20);
        assert_eq!(rx.recv(Some(deadline)), Err(RecvError::Timeout));
        assert!(Instant::now() >= deadline);
        drop(tx);
    }

    #[test]
    fn a_waiting_receiver_wakes_when_the_last_sender_leaves() {
        let (tx, rx) = channel::<u8>();
        let waiter = std::thread::spawn(move || rx.recv(None));
        drop(tx);
        assert_eq!(waiter.join().unwrap(), Err(RecvError::Disconnected));
    }

    #[test]
    fn recv_many_waits_for_the_whole_batch() {
        let (tx, rx) = channel::<u32>();
        let senders: Vec<_> = (0..4)
            .map(|t| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        tx.send(t * 100 + i).unwrap();
                    }
                })
            })
            .collect();
        let mut got = Vec::new();
        while got.len() < 100 {
            got.extend(rx.recv_many(100 - got.len(), None).unwrap());
        }
        for s in senders {
            s.join().unwrap();
        }
        got.sort_unstable();
        let want: Vec<u32> = (0..4)
            .flat_map(|t| (0..25).map(move |i| t * 100 + i))
            .collect();
        assert_eq!(got, want);
        // Fewer than asked for: handed over once the senders are gone.
        tx.send(7).unwrap();
        let waiter = std::thread::spawn(move || rx.recv_many(5, None));
        drop(tx);
        assert_eq!(waiter.join().unwrap().map(Vec::from), Ok(vec![7]));
    }

    #[test]
    fn recv_many_hands_over_what_is_queued_at_the_deadline() {
        let (tx, rx) = channel::<u8>();
        let soon = || Some(Instant::now() + Duration::from_millis(20));
        assert_eq!(rx.recv_many(3, soon()), Err(RecvError::Timeout));
        tx.send(1).unwrap();
        assert_eq!(rx.recv_many(3, soon()).map(Vec::from), Ok(vec![1]));
        drop(tx);
        assert_eq!(rx.recv_many(3, None), Err(RecvError::Disconnected));
    }
}
