//! A lock-free log-linear histogram of microsecond latencies.
//!
//! Values below 64 us get a bucket each; above, every power of two is split
//! into 32 buckets, so a quantile is off by at most 1/32 (about 3%) of its
//! value. Recording is one relaxed atomic add; 1,600 buckets of 8 bytes cover
//! everything up to 2^54 us.

use std::sync::atomic::{AtomicU64, Ordering};

const LINEAR: u64 = 64;
const SUB: u64 = 32;
const SUB_BITS: u32 = 5;
const BUCKETS: usize = (LINEAR + (64 - 6) * SUB) as usize;

#[derive(Debug)]
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

fn index(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    // v >= 64: its top bit is at position e >= 6; the next SUB_BITS bits pick
    // the sub-bucket.
    let e = 63 - u64::from(v.leading_zeros());
    let sub = (v >> (e - u64::from(SUB_BITS))) & (SUB - 1);
    (LINEAR + (e - 6) * SUB + sub) as usize
}

/// The middle of bucket `i` (its lowest value for the exact buckets).
fn value(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let e = (i - LINEAR) / SUB + 6;
    let sub = (i - LINEAR) % SUB;
    let width = 1u64 << (e - u64::from(SUB_BITS));
    (1u64 << e) + sub * width + width / 2
}

impl Histogram {
    pub(crate) fn record(&self, micros: u64) {
        let i = index(micros).min(BUCKETS - 1);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The smallest recorded value such that a share `q` of the values are at
    /// or below it (nearest rank), as its bucket's middle.
    pub(crate) fn quantile(&self, q: f64) -> Option<u64> {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(value(i));
            }
        }
        Some(value(BUCKETS - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_tight() {
        let mut last = 0;
        for v in [0, 1, 63, 64, 65, 100, 1_000, 20_000, 1 << 40, u64::MAX / 2] {
            let i = index(v);
            assert!(i >= last, "index must grow with the value");
            last = i;
            let mid = value(i);
            let err = mid.abs_diff(v) as f64 / (v.max(1)) as f64;
            assert!(err <= 1.0 / 32.0, "{v}: bucket middle {mid}");
        }
    }

    #[test]
    fn quantiles_of_a_known_spread() {
        let h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        for v in 1..=1000 {
            h.record(v * 100);
        }
        assert_eq!(h.count(), 1000);
        let p50 = h.quantile(0.5).unwrap() as f64;
        let p99 = h.quantile(0.99).unwrap() as f64;
        assert!((p50 - 50_000.0).abs() / 50_000.0 < 0.04, "{p50}");
        assert!((p99 - 99_000.0).abs() / 99_000.0 < 0.04, "{p99}");
    }
}
