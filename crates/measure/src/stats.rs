//! Small order statistics over a handful of runs.

/// The median of `values` (the mean of the middle two for an even count);
/// `None` when empty. NaNs are ignored.
pub fn median(values: &[f64]) -> Option<f64> {
    percentile(values, 0.5)
}

/// The median absolute deviation from the median: a spread figure that one
/// outlier run cannot inflate. `None` when empty.
pub fn mad(values: &[f64]) -> Option<f64> {
    let m = median(values)?;
    let deviations: Vec<f64> = values.iter().map(|v| (v - m).abs()).collect();
    median(&deviations)
}

/// The `q` quantile (0 to 1) by linear interpolation between the closest
/// ranks; `None` when empty. NaNs are ignored.
pub fn percentile(values: &[f64], q: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64))
}

/// A distribution-free confidence interval for the median of `values`: the
/// order statistics `[x(k), x(n+1-k)]` of the sorted values, with the
/// largest `k` whose coverage `1 - 2 P(Binomial(n, 1/2) < k)` is at least
/// `level` (0.95 for a 95% interval). It assumes only that the values are
/// independent draws from one distribution: no symmetry, no normality (the
/// sign test's interval). `None` when there are too few values for that
/// level (fewer than 6 at 95%) or none at all. NaNs are ignored.
///
/// ```
/// let pairs: Vec<f64> = (1..=20).map(f64::from).collect();
/// // Twenty values: the 6th and the 15th (coverage 95.9%).
/// assert_eq!(rates_measure::median_interval(&pairs, 0.95), Some((6.0, 15.0)));
/// assert_eq!(rates_measure::median_interval(&pairs[..5], 0.95), None);
/// ```
pub fn median_interval(values: &[f64], level: f64) -> Option<(f64, f64)> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    sorted.sort_by(f64::total_cmp);
    let k = interval_rank(sorted.len(), level)?;
    Some((sorted[k - 1], sorted[sorted.len() - k]))
}

/// The rank `k` (1-based) of [`median_interval`]'s lower end for `n` values,
/// or `None` when even `k = 1` covers less than `level`.
pub fn interval_rank(n: usize, level: f64) -> Option<usize> {
    if n == 0 {
        return None;
    }
    // P(Binomial(n, 1/2) <= i), summed in log space (0.5^n underflows past
    // n = 1074).
    let ln_half_n = n as f64 * 0.5f64.ln();
    let mut ln_choose = 0.0; // ln C(n, 0)
    let mut below = 0.0; // P(X <= k - 1) for the current k
    let mut best = None;
    for k in 1..=n.div_ceil(2) {
        let i = k - 1;
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        below += (ln_choose + ln_half_n).exp();
        if 1.0 - 2.0 * below >= level {
            best = Some(k);
        } else {
            break;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_spread() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        // One wild run moves neither the median nor the MAD much.
        let spread = mad(&[1.0, 1.1, 0.9, 1.0, 50.0]).unwrap();
        assert!((spread - 0.1).abs() < 1e-9, "{spread}");
        assert_eq!(percentile(&[0.0, 10.0], 0.25), Some(2.5));
        assert_eq!(percentile(&[5.0], 0.99), Some(5.0));
    }

    /// Coverage of [x(k), x(n+1-k)] for the median, computed directly.
    fn coverage(n: usize, k: usize) -> f64 {
        let mut below = 0.0;
        let mut choose = 1.0f64;
        for i in 0..k {
            if i > 0 {
                choose = choose * (n - i + 1) as f64 / i as f64;
            }
            below += choose / 2f64.powi(n as i32);
        }
        1.0 - 2.0 * below
    }

    #[test]
    fn median_intervals_have_the_coverage_they_claim() {
        assert_eq!(interval_rank(5, 0.95), None);
        assert_eq!(interval_rank(6, 0.95), Some(1));
        assert_eq!(interval_rank(10, 0.95), Some(2));
        assert_eq!(interval_rank(20, 0.95), Some(6));
        for n in 6..60 {
            let k = interval_rank(n, 0.95).unwrap();
            assert!(coverage(n, k) >= 0.95, "n {n} k {k}");
            // The next rank inwards would cover less than 95%.
            assert!(coverage(n, k + 1) < 0.95, "n {n} k {k}");
        }
        // Large counts do not underflow.
        let k = interval_rank(5_000, 0.95).unwrap();
        assert!((2_420..2_440).contains(&k), "{k}");
        let shuffled = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0, 4.0, 6.0, 10.0];
        assert_eq!(median_interval(&shuffled, 0.95), Some((2.0, 9.0)));
        assert_eq!(median_interval(&[], 0.95), None);
    }
}
