//! Reproducible fault injection.

use std::time::Duration;

use rates_core::CurrencyCode;

/// Something the server can do instead of a plain good answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer 500 Internal Server Error.
    ServerError,
    /// Answer 429 Too Many Requests with this `Retry-After`.
    TooManyRequests {
        /// The `Retry-After` sent, in whole seconds.
        retry_after_secs: u32,
    },
    /// Answer 429 Too Many Requests with `Retry-After` in its HTTP-date
    /// form: the date this many whole seconds after the answer.
    TooManyRequestsUntil {
        /// Seconds from now to the date sent.
        retry_after_secs: u32,
    },
    /// Answer this status (say 408 or 503), with a `Retry-After` header
    /// written exactly as given, if any (say a number too large for any
    /// clock).
    Status {
        /// The status code; one hyper cannot send is answered 500.
        status: u16,
        /// The `Retry-After` value, as sent.
        retry_after: Option<&'static str>,
    },
    /// Answer this redirect status (301, 302, 307, 308) with `Location`
    /// the same path and query under `/moved` (which serves the same).
    Redirect {
        /// The status sent.
        status: u16,
    },
    /// Answer 200 with a body that is not JSON.
    Malformed,
    /// Announce the full body length, send half of it, then close.
    Truncated,
    /// Close the connection without answering.
    Drop,
    /// Never answer; the connection is closed after the server's stall limit.
    Stall,
}

/// When a [`Fault`] applies.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum When {
    /// To every request.
    Always,
    /// To this share of requests (0..=1), decided from the seed, the base and
    /// how many requests that base has had, so runs repeat exactly whatever
    /// the order requests arrive in.
    Share(f64),
    /// To the first `n` requests for each base.
    FirstPerBase(u32),
    /// To every request for this base.
    Base(CurrencyCode),
    /// To every request after the first `n` the server received, whatever
    /// their bases (a first wave answered, the rest not).
    AfterFirst(u64),
}

/// A fault and when it applies. The first matching rule wins.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaultRule {
    /// What happens.
    pub fault: Fault,
    /// To which requests.
    pub when: When,
}

impl FaultRule {
    /// A rule.
    pub fn new(fault: Fault, when: When) -> Self {
        Self { fault, when }
    }
}

/// Server latency per request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Latency {
    /// Answer at once.
    #[default]
    None,
    /// Wait this long before every answer.
    Fixed(Duration),
    /// Wait a reproducible pseudo-random time in `min..=max`.
    Range(Duration, Duration),
}

impl Latency {
    pub(crate) fn for_request(&self, seed: u64, base: CurrencyCode, nth: u32) -> Duration {
        match *self {
            Self::None => Duration::ZERO,
            Self::Fixed(d) => d,
            Self::Range(min, max) if max > min => {
                let u = unit(seed ^ 0x6c61_7465, base, nth, 0);
                min + (max - min).mul_f64(u)
            }
            Self::Range(min, _) => min,
        }
    }
}

/// The fault for the `nth` (1-based) request for `base`, the server's
/// `index`-th (1-based) request, if any.
pub(crate) fn pick(
    rules: &[FaultRule],
    seed: u64,
    base: CurrencyCode,
    nth: u32,
    index: u64,
) -> Option<Fault> {
    rules.iter().enumerate().find_map(|(i, rule)| {
        let hit = match rule.when {
            When::Always => true,
            When::Share(p) => unit(seed, base, nth, i as u64) < p,
            When::FirstPerBase(n) => nth <= n,
            When::Base(b) => b == base,
            When::AfterFirst(n) => index > n,
        };
        hit.then_some(rule.fault)
    })
}

/// SplitMix64's finaliser: a good 64-bit mix.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A uniform value in `[0, 1)` from the seed, base, request number and rule.
fn unit(seed: u64, base: CurrencyCode, nth: u32, rule: u64) -> f64 {
    let b = base.as_str().as_bytes();
    let key = u64::from(b[0]) << 16 | u64::from(b[1]) << 8 | u64::from(b[2]);
    let h = mix(seed ^ mix(key ^ mix(u64::from(nth) ^ mix(rule))));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> CurrencyCode {
        s.parse().unwrap()
    }

    #[test]
    fn shares_are_reproducible_and_roughly_right() {
        let rules = [FaultRule::new(Fault::ServerError, When::Share(0.1))];
        let codes: Vec<CurrencyCode> = (0..26u16 * 26)
            .map(|i| {
                let s = format!(
                    "A{}{}",
                    char::from(b'A' + (i / 26) as u8),
                    char::from(b'A' + (i % 26) as u8)
                );
                c(&s)
            })
            .collect();
        let hits = codes
            .iter()
            .filter(|b| pick(&rules, 7, **b, 1, 1).is_some())
            .count();
        assert!((40..100).contains(&hits), "{hits} of 676");
        let again = codes
            .iter()
            .filter(|b| pick(&rules, 7, **b, 1, 1).is_some())
            .count();
        assert_eq!(hits, again);
    }

    #[test]
    fn first_matching_rule_wins() {
        let rules = [
            FaultRule::new(Fault::Malformed, When::Base(c("EUR"))),
            FaultRule::new(Fault::ServerError, When::FirstPerBase(1)),
        ];
        assert_eq!(pick(&rules, 0, c("EUR"), 1, 1), Some(Fault::Malformed));
        assert_eq!(pick(&rules, 0, c("USD"), 1, 1), Some(Fault::ServerError));
        assert_eq!(pick(&rules, 0, c("USD"), 2, 1), None);
        let rules = [FaultRule::new(Fault::Stall, When::AfterFirst(20))];
        assert_eq!(pick(&rules, 0, c("USD"), 1, 20), None);
        assert_eq!(pick(&rules, 0, c("USD"), 1, 21), Some(Fault::Stall));
    }

    #[test]
    fn latency_range_stays_in_range() {
        let l = Latency::Range(Duration::from_millis(10), Duration::from_millis(20));
        for n in 0..100 {
            let d = l.for_request(1, c("USD"), n);
            assert!(d >= Duration::from_millis(10) && d <= Duration::from_millis(20));
        }
    }
}
