//! A GCRA rate limiter: pure logic with time passed in, plus a shared wrapper.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::RateLimit;

/// The generic cell rate algorithm with no burst: each reservation gets the
/// earliest slot at or after `now` that is at least `interval` after the
/// previous slot. Time is passed in, so the logic is testable without clocks.
///
/// ```
/// use std::time::{Duration, Instant};
/// use rates_core::Gcra;
/// let t0 = Instant::now();
/// let mut gcra = Gcra::new(Duration::from_millis(100));
/// assert_eq!(gcra.reserve(t0), t0);
/// assert_eq!(gcra.reserve(t0), t0 + Duration::from_millis(100));
/// ```
#[derive(Clone, Debug)]
pub struct Gcra {
    interval: Duration,
    /// The theoretical arrival time of the next request.
    tat: Option<Instant>,
}

impl Gcra {
    /// A limiter allowing one request per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            tat: None,
        }
    }

    /// Reserves the next slot for a request that is ready at `now`, and
    /// returns when it may be sent (never before `now`).
    pub fn reserve(&mut self, now: Instant) -> Instant {
        let slot = match self.tat {
            Some(tat) if tat > now => tat,
            _ => now,
        };
        self.tat = Some(slot + self.interval);
        slot
    }
}

/// A [`Gcra`] shared by all workers of a run. Workers reserve a slot and then
/// sleep until it (a thread sleeps, a task awaits its runtime's timer); nobody
/// spins.
#[derive(Debug)]
pub struct Throttle {
    gcra: Mutex<Gcra>,
}

impl Throttle {
    /// A throttle for `limit` (see [`RateLimit::interval`]).
    pub fn new(limit: RateLimit) -> Self {
        Self {
            gcra: Mutex::new(Gcra::new(limit.interval())),
        }
    }

    /// The throttle for an optional limit.
    pub fn for_limit(limit: Option<RateLimit>) -> Option<Self> {
        limit.map(Self::new)
    }

    /// Reserves a slot; see [`Gcra::reserve`].
    pub fn reserve(&self, now: Instant) -> Instant {
        // A poisoned lock only means another worker panicked mid-reserve; the
        // GCRA state is a single Instant and is still consistent.
        let mut gcra = self.gcra.lock().unwrap_or_else(|p| p.into_inner());
        gcra.reserve(now)
    }

    /// Reserves a slot and sleeps the calling thread until it.
    pub fn wait_blocking(&self) {
        let slot = self.reserve(Instant::now());
        let now = Instant::now();
        if slot > now {
            std::thread::sleep(slot - now);
        }
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
