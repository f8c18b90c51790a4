//! CPU work per item: a fixed, deterministic amount of real computation done
//! on each successful response, in whatever thread or task handled it.
//!
//! It exists to answer "what if each result also needs CPU?": on an async
//! runtime that CPU stalls every task behind it on the same worker; in a
//! thread pool it occupies one worker; in a child process it runs in the
//! child. The amount is an iteration count of a small mixing function
//! (SplitMix64), so the same count costs the same on every strategy; a
//! duration such as `500us` is turned into a count once per process by
//! [`Work::calibrated`].

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// An amount of CPU work per item.
///
/// ```
/// use rates_core::Work;
/// let work = Work::iterations(1_000);
/// assert_eq!(work.run(b"seed"), work.run(b"seed")); // deterministic
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Work {
    iterations: u64,
}

/// SplitMix64: one multiply-xorshift round, about a nanosecond.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Work {
    /// Exactly `iterations` rounds of the mixing function.
    pub fn iterations(iterations: u64) -> Self {
        Self { iterations }
    }

    /// The rounds it runs.
    pub fn count(&self) -> u64 {
        self.iterations
    }

    /// The rounds that take about `per_item` of CPU on this machine, from a
    /// calibration run once per process (a few milliseconds).
    pub fn calibrated(per_item: Duration) -> Self {
        let per_second = *RATE.get_or_init(calibrate);
        Self::iterations((per_item.as_secs_f64() * per_second).round() as u64)
    }

    /// Rounds per second on this machine, as calibrated.
    pub fn calibrated_rate() -> f64 {
        *RATE.get_or_init(calibrate)
    }

    /// Runs the work, seeded by `input` (the response body), and returns
    /// its result so the compiler cannot drop it.
    pub fn run(&self, input: &[u8]) -> u64 {
        let mut x = input.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        for _ in 0..self.iterations {
            x = mix(x);
        }
        std::hint::black_box(x)
    }
}

static RATE: OnceLock<f64> = OnceLock::new();

/// Rounds per second: the best of five 2 ms bursts (the least disturbed).
fn calibrate() -> f64 {
    let mut best = 0.0_f64;
    for _ in 0..5 {
        let started = Instant::now();
        let mut rounds = 0u64;
        let mut x = 1u64;
        while started.elapsed() < Duration::from_millis(2) {
            for _ in 0..10_000 {
                x = mix(x);
            }
            rounds += 10_000;
        }
        std::hint::black_box(x);
        best = best.max(rounds as f64 / started.elapsed().as_secs_f64());
    }
    best.max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_input_same_result_different_input_different_result() {
        let w = Work::iterations(10_000);
        assert_eq!(w.run(b"USD"), w.run(b"USD"));
        assert_ne!(w.run(b"USD"), w.run(b"EUR"));
    }

    #[test]
    fn calibration_scales_with_the_duration() {
        let small = Work::calibrated(Duration::from_micros(100)).count();
        let big = Work::calibrated(Duration::from_millis(1)).count();
        assert!(small > 0);
        assert_eq!(big, (Work::calibrated_rate() * 0.001).round() as u64);
        assert!(big >= 9 * small && big <= 11 * small, "{small} {big}");
    }
}
