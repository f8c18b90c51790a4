//! A GCRA rate limiter: pure logic with time passed in, plus a shared wrapper.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::RateLimit;

/// The generic cell rate algorithm with no burst: each reservation gets the
/// earliest slot at or after `now` that is at least `interval` after the
/// previous slot. Time is passed in, so the logic is testable without clocks.
///
/// A limiter made [`for_limit`](Gcra::for_limit) also keeps a log of its
/// last `rate` slots, each replaced by when its request was actually sent
/// once that is known ([`record_send`](Gcra::record_send)), and never grants
/// a slot less than a [window](RateLimit::window) (a second plus headroom)
/// after the send `rate` places earlier. Spacing alone is not enough on a
/// busy machine: a worker that wakes late from its slot would otherwise send
/// close behind the requests after it, and `rate + 1` requests would reach
/// the server within one second. Slots whose sends are not recorded yet (a
/// request still waiting, or sent by another process that reports back
/// later) count at their slot time, so reserving ahead never skips a send.
#[derive(Clone, Debug)]
pub(crate) struct Gcra {
    interval: Duration,
    /// The theoretical arrival time of the next request.
    tat: Option<Instant>,
    /// Sends allowed in any `window`; 0 disables the send log.
    per_window: usize,
    window: Duration,
    /// The last `per_window` slots granted, oldest first, each raised to
    /// its actual send time once recorded.
    sent: VecDeque<Instant>,
}

impl Gcra {
    /// A limiter allowing one request per `interval`.
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            interval,
            tat: None,
            per_window: 0,
            window: Duration::from_secs(1),
            sent: VecDeque::new(),
        }
    }

    /// A limiter for `limit`: spacing of [`RateLimit::interval`], and at most
    /// `floor(rate)` recorded sends in any [`RateLimit::window`].
    pub(crate) fn for_limit(limit: RateLimit) -> Self {
        let mut gcra = Self::new(limit.interval());
        gcra.per_window = (limit.rate().floor() as usize).max(1);
        gcra.window = limit.window();
        gcra
    }

    /// Reserves the next slot for a request that is ready at `now`, and
    /// returns when it may be sent (never before `now`).
    pub(crate) fn reserve(&mut self, now: Instant) -> Instant {
        let mut slot = match self.tat {
            Some(tat) if tat > now => tat,
            _ => now,
        };
        if self.per_window > 0 && self.sent.len() >= self.per_window {
            let nth_back = self.sent[self.sent.len() - self.per_window];
            slot = slot.max(nth_back + self.window);
        }
        self.tat = Some(slot + self.interval);
        if self.per_window > 0 {
            self.sent.push_back(slot);
            while self.sent.len() > self.per_window {
                self.sent.pop_front();
            }
        }
        slot
    }

    /// Records that the request granted `slot` was actually sent at `at`
    /// (a late send counts from when it really left).
    pub(crate) fn record_send(&mut self, slot: Instant, at: Instant) {
        // Slots are distinct (spaced by the interval), so `slot` names its
        // entry; one already out of the log no longer matters.
        if let Some(entry) = self.sent.iter_mut().rev().find(|e| **e == slot) {
            *entry = (*entry).max(at);
        }
    }
}

/// A GCRA limiter (the generic cell rate algorithm, no burst) shared by all
/// workers of a run. Workers reserve a slot and then
/// sleep until it (a thread sleeps, a task awaits its runtime's timer); nobody
/// spins.
#[derive(Debug)]
pub struct Throttle {
    gcra: Mutex<Gcra>,
}

impl Throttle {
    /// A throttle for `limit`: spacing of [`RateLimit::interval`], and at
    /// most `floor(rate)` sends in any [`RateLimit::window`], counted from
    /// its last `rate` slots, each raised to its real send time once
    /// [recorded](Throttle::record_send).
    pub fn new(limit: RateLimit) -> Self {
        Self {
            gcra: Mutex::new(Gcra::for_limit(limit)),
        }
    }

    /// The throttle for an optional limit.
    pub fn for_limit(limit: Option<RateLimit>) -> Option<Self> {
        limit.map(Self::new)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Gcra> {
        // A poisoned lock only means another worker panicked mid-reserve; the
        // GCRA state is still consistent.
        self.gcra.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves the next slot for a request that is ready at `now`, and
    /// returns when it may be sent (never before `now`).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use rates_core::{RateLimit, Throttle};
    /// let limit = RateLimit::per_second(10.0)?;
    /// let throttle = Throttle::new(limit);
    /// let t0 = Instant::now();
    /// assert_eq!(throttle.reserve(t0), t0);
    /// assert_eq!(throttle.reserve(t0), t0 + limit.interval());
    /// # Ok::<(), rates_core::Error>(())
    /// ```
    pub fn reserve(&self, now: Instant) -> Instant {
        self.lock().reserve(now)
    }

    /// Records when the request granted `slot` was actually sent (a late
    /// send counts from when it really left). [`BaseFetch`](crate::BaseFetch)
    /// calls it; strategies that reserve slots themselves should too.
    pub fn record_send(&self, slot: Instant, at: Instant) {
        self.lock().record_send(slot, at);
    }

    /// Reserves a slot, sleeps the calling thread until it, and records the send.
    pub fn wait_blocking(&self) {
        let slot = self.reserve(Instant::now());
        let now = Instant::now();
        if slot > now {
            std::thread::sleep(slot - now);
        }
        self.record_send(slot, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the arrival pattern: slots are never early, never closer
        /// than the interval, and never later than needed.
        #[test]
        fn slots_are_spaced_and_prompt(
            interval_ms in 1u64..500,
            gaps in proptest::collection::vec(0u64..1000, 1..200),
        ) {
            let t0 = Instant::now();
            let interval = Duration::from_millis(interval_ms);
            let mut gcra = Gcra::new(interval);
            let mut now = t0;
            let mut last: Option<Instant> = None;
            for gap in gaps {
                now += Duration::from_millis(gap);
                let slot = gcra.reserve(now);
                prop_assert!(slot >= now);
                if let Some(prev) = last {
                    prop_assert!(slot >= prev + interval);
                    prop_assert_eq!(slot, now.max(prev + interval));
                } else {
                    prop_assert_eq!(slot, now);
                }
                last = Some(slot);
            }
        }

        /// No window of one second ever holds more than the limit.
        #[test]
        fn no_window_exceeds_the_limit(rate in 1u32..200, n in 1usize..400) {
            let limit = RateLimit::per_second(f64::from(rate)).unwrap();
            let mut gcra = Gcra::new(limit.interval());
            let t0 = Instant::now();
            let slots: Vec<Instant> = (0..n).map(|_| gcra.reserve(t0)).collect();
            for (i, start) in slots.iter().enumerate() {
                let in_window = slots[i..]
                    .iter()
                    .take_while(|s| **s < *start + Duration::from_secs(1))
                    .count();
                prop_assert!(in_window <= rate as usize);
            }
        }
    }

    proptest! {
        /// Sends that start late (a worker woken late from its slot) still
        /// never put more than `rate` sends in any second, once recorded.
        #[test]
        fn late_sends_never_bunch(
            rate in 1u32..50,
            lateness in proptest::collection::vec(0u64..300, 1..150),
            service in 0u64..30,
        ) {
            let limit = RateLimit::per_second(f64::from(rate)).unwrap();
            let mut gcra = Gcra::for_limit(limit);
            let mut now = Instant::now();
            let mut sends = Vec::new();
            for late in lateness {
                let slot = gcra.reserve(now);
                let sent = slot + Duration::from_millis(late);
                gcra.record_send(slot, sent);
                sends.push(sent);
                now = sent + Duration::from_millis(service);
            }
            for (i, start) in sends.iter().enumerate() {
                let in_window = sends[i..]
                    .iter()
                    .filter(|s| **s < *start + Duration::from_secs(1))
                    .count();
                prop_assert!(in_window <= rate as usize);
            }
        }
    }

    #[test]
    fn a_late_send_pushes_the_next_window() {
        let t0 = Instant::now();
        let limit = RateLimit::per_second(2.0).unwrap();
        let mut gcra = Gcra::for_limit(limit);
        let first = gcra.reserve(t0);
        gcra.record_send(first, first + Duration::from_millis(400));
        let second = gcra.reserve(t0);
        gcra.record_send(second, second);
        let third = gcra.reserve(t0);
        assert!(third >= first + Duration::from_millis(400) + limit.window());
    }

    #[test]
    fn slots_reserved_ahead_count_before_their_sends_are_recorded() {
        let t0 = Instant::now();
        let limit = RateLimit::per_second(3.0).unwrap();
        let mut gcra = Gcra::for_limit(limit);
        // Three reserved at once; only the first one's send is known, late.
        let slots: Vec<Instant> = (0..3).map(|_| gcra.reserve(t0)).collect();
        let late = slots[0] + Duration::from_millis(300);
        gcra.record_send(slots[0], late);
        let fourth = gcra.reserve(t0);
        assert!(fourth >= late + limit.window());
        // Three places back is the second slot, still unsent: it counts.
        let fifth = gcra.reserve(t0);
        assert!(fifth >= slots[1] + limit.window());
        // A send recorded for a slot no longer in the log changes nothing.
        gcra.record_send(slots[0], late + Duration::from_secs(5));
        let sixth = gcra.reserve(t0);
        assert!(sixth >= slots[2] + limit.window());
        assert!(sixth < late + Duration::from_secs(5));
    }

    #[test]
    fn idle_time_does_not_bank_a_burst() {
        let t0 = Instant::now();
        let mut gcra = Gcra::new(Duration::from_millis(100));
        gcra.reserve(t0);
        let later = t0 + Duration::from_secs(10);
        assert_eq!(gcra.reserve(later), later);
        assert_eq!(gcra.reserve(later), later + Duration::from_millis(100));
    }
}
