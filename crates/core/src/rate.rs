//! A client-side rate limit.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Error;

/// A rate limit in requests per second, enforced with no burst beyond it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    per_second: f64,
}

impl RateLimit {
    /// A limit of `per_second` requests per second.
    ///
    /// # Errors
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) unless it is finite and positive.
    pub fn per_second(per_second: f64) -> Result<Self, Error> {
        if per_second.is_finite() && per_second > 0.0 {
            Ok(Self { per_second })
        } else {
            Err(Error::invalid_input(format!(
                "invalid rate limit {per_second}: it must be a positive number of requests per second"
            )))
        }
    }

    /// Requests per second.
    pub fn rate(&self) -> f64 {
        self.per_second
    }

    /// Headroom for the jitter between sending a request and the server
    /// seeing it: a quarter of the plain spacing `1 / rate`, at least 10 ms
    /// and at most 50 ms. A slow first connection or a busy machine can delay
    /// one request more than the next; without headroom, `rate + 1` requests
    /// could then arrive within one second at the server.
    pub fn margin(&self) -> Duration {
        Duration::from_secs_f64(0.25 / self.per_second)
            .clamp(Duration::from_millis(10), Duration::from_millis(50))
    }

    /// The window the client counts `rate` requests in: one second plus the
    /// [`margin`](Self::margin).
    pub fn window(&self) -> Duration {
        Duration::from_secs(1) + self.margin()
    }

    /// The spacing the client keeps between request starts:
    /// [`window`](Self::window) / rate. At 100/s that is 10.1 ms (1% under
    /// the limit); at 5/s, 210 ms.
    pub fn interval(&self) -> Duration {
        self.window().div_f64(self.per_second)
    }
}

impl FromStr for RateLimit {
    type Err = Error;
    /// Parses `"100"`, `"100/s"`, `"30/m"` or `"2/min"`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || {
            Error::invalid_input(format!(
                "invalid rate limit `{s}`: write requests per second or minute, like 100/s or 30/m"
            ))
        };
        let (count, unit) = s.trim().split_once('/').unwrap_or((s.trim(), "s"));
        let count: f64 = count.trim().parse().map_err(|_| bad())?;
        let per_second = match unit.trim() {
            "s" | "sec" | "second" => count,
            "m" | "min" | "minute" => count / 60.0,
            _ => return Err(bad()),
        };
        Self::per_second(per_second).map_err(|_| bad())
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s", self.per_second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_headroom_scales_with_the_spacing() {
        let at = |r: f64| RateLimit::per_second(r).unwrap();
        assert_eq!(at(100.0).margin(), Duration::from_millis(10));
        assert_eq!(at(100.0).interval(), Duration::from_micros(10_100));
        assert_eq!(at(10.0).margin(), Duration::from_millis(25));
        assert_eq!(at(5.0).margin(), Duration::from_millis(50));
        assert_eq!(at(5.0).interval(), Duration::from_millis(210));
        assert_eq!(at(0.5).window(), Duration::from_millis(1050));
    }

    #[test]
    fn rate_limit_parsing() {
        assert_eq!("2/s".parse::<RateLimit>().unwrap().rate(), 2.0);
        assert_eq!("100".parse::<RateLimit>().unwrap().rate(), 100.0);
        assert_eq!("30/m".parse::<RateLimit>().unwrap().rate(), 0.5);
        for bad in ["0/s", "-1", "abc", "5/h", "inf"] {
            let err = bad.parse::<RateLimit>().unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }
}
