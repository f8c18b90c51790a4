//! Human units for tables, summaries and chart labels.

/// Seconds in the unit that reads best: `85.0 µs`, `202 ms`, `1.23 s`.
pub(crate) fn secs(s: f64) -> String {
    secs_with(s, sig3)
}

/// A setting in seconds, without trailing zeros: `20 ms`, `1 s`, `1.5 s`.
pub(crate) fn setting_secs(s: f64) -> String {
    secs_with(s, tick)
}

fn secs_with(s: f64, number: fn(f64) -> String) -> String {
    if !s.is_finite() {
        return "-".to_owned();
    }
    if s < 1e-3 {
        format!("{} µs", number(s * 1e6))
    } else if s < 1.0 {
        format!("{} ms", number(s * 1e3))
    } else {
        format!("{} s", number(s))
    }
}

/// Microseconds, as [`secs`] would show them.
pub(crate) fn micros(us: f64) -> String {
    secs(us / 1e6)
}

/// Bytes in MiB (or KiB below 1 MiB, GiB from 10 GiB).
pub(crate) fn bytes(b: u64) -> String {
    let b = b as f64;
    if b < f64::from(1 << 20) {
        format!("{} KiB", sig3(b / 1024.0))
    } else if b < 10.0 * f64::from(1 << 30) {
        format!("{} MiB", sig3(b / f64::from(1 << 20)))
    } else {
        format!("{} GiB", sig3(b / f64::from(1 << 30)))
    }
}

/// `n` things, singular or plural: `1 thread`, `12,345 threads`.
pub(crate) fn things(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

/// A count with thousands separators: `12,345`.
pub(crate) fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Three significant digits, no exponent: `0.887`, `22.7`, `1234`.
pub(crate) fn sig3(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let digits = x.abs().log10().floor() as i32;
    let decimals = usize::try_from(2 - digits).unwrap_or(0);
    format!("{x:.decimals$}")
}

/// An axis tick: three significant digits without trailing zeros, so that
/// the ticks of one axis read alike (`0`, `5`, `10`, `15`; `0.1`, `0.25`).
pub(crate) fn tick(x: f64) -> String {
    let s = sig3(x);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// A ratio: `1.01x`.
pub(crate) fn ratio(r: f64) -> String {
    format!("{r:.2}x")
}

/// `Some(v)` formatted, `-` for a missing figure.
pub(crate) fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map_or_else(|| "-".to_owned(), f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_without_trailing_zeros() {
        assert_eq!(setting_secs(0.02), "20 ms");
        assert_eq!(setting_secs(1.5), "1.5 s");
        assert_eq!(setting_secs(0.000_01), "10 µs");
    }

    #[test]
    fn things_are_singular_for_one() {
        assert_eq!(things(1, "thread", "threads"), "1 thread");
        assert_eq!(things(0, "proc", "procs"), "0 procs");
        assert_eq!(things(1200, "thread", "threads"), "1,200 threads");
    }

    #[test]
    fn ticks_drop_trailing_zeros_only() {
        assert_eq!(tick(5.0), "5");
        assert_eq!(tick(10.0), "10");
        assert_eq!(tick(0.25), "0.25");
        assert_eq!(tick(0.1), "0.1");
        assert_eq!(tick(1500.0), "1500");
        assert_eq!(tick(0.0), "0");
    }

    #[test]
    fn units() {
        assert_eq!(secs(0.2021), "202 ms");
        assert_eq!(secs(0.000_085), "85.0 µs");
        assert_eq!(secs(1.234), "1.23 s");
        assert_eq!(secs(12.0), "12.0 s");
        assert_eq!(bytes(13 << 20), "13.0 MiB");
        assert_eq!(bytes(512 << 10), "512 KiB");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(12), "12");
        assert_eq!(ratio(1.014), "1.01x");
    }
}
