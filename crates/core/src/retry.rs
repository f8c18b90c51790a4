//! How failed attempts are retried.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Error;

/// How failed attempts are retried: exponential backoff with jitter, honouring
/// the server's `Retry-After` up to a cap.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so at most `retries + 1` attempts).
    pub retries: u32,
    /// Backoff before the first retry; it doubles each retry.
    #[serde(with = "millis")]
    pub initial_backoff: Duration,
    /// The backoff never grows beyond this.
    #[serde(with = "millis")]
    pub max_backoff: Duration,
    /// A `Retry-After` longer than this is not waited for: the base fails at once.
    #[serde(with = "millis")]
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based) after `error`, or `None`
    /// when the error is not worth retrying or the retries are used up.
    ///
    /// Without `Retry-After` the wait is "equal jitter": half the exponential
    /// backoff plus a random part of the other half. With `Retry-After` the
    /// wait is that long plus up to 10% jitter, never less.
    pub fn delay(&self, retry: u32, error: &Error, jitter: f64) -> Option<Duration> {
        if retry > self.retries || !error.is_retryable() {
            return None;
        }
        let jitter = jitter.clamp(0.0, 1.0);
        if let Some(after) = error.retry_after() {
            if after > self.max_retry_after {
                return None;
            }
            return Some(after + after.mul_f64(0.1 * jitter));
        }
        let exp = self
            .initial_backoff
            .saturating_mul(
                1u32.checked_shl(retry.saturating_sub(1))
                    .unwrap_or(u32::MAX),
            )
            .min(self.max_backoff);
        Some(exp / 2 + (exp / 2).mul_f64(jitter))
    }
}

/// Serialises a `Duration` as whole milliseconds.
pub(crate) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis().try_into().unwrap_or(u64::MAX))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_honours_retry_after() {
        let p = RetryPolicy::default();
        let e = Error::status(500, None);
        assert_eq!(p.delay(1, &e, 0.0), Some(Duration::from_millis(50)));
        assert_eq!(p.delay(1, &e, 1.0), Some(Duration::from_millis(100)));
        assert_eq!(p.delay(3, &e, 1.0), Some(Duration::from_millis(400)));
        assert_eq!(p.delay(4, &e, 1.0), None, "only 3 retries");
        let big = RetryPolicy {
            retries: 40,
            ..RetryPolicy::default()
        };
        assert_eq!(big.delay(40, &e, 1.0), Some(Duration::from_secs(5)));
        let limited = Error::status(429, Some(Duration::from_secs(1)));
        let d = p.delay(1, &limited, 0.5).unwrap();
        assert!(d >= Duration::from_secs(1) && d <= Duration::from_millis(1100));
        let too_long = Error::status(429, Some(Duration::from_secs(3600)));
        assert_eq!(p.delay(1, &too_long, 0.5), None);
        assert_eq!(p.delay(1, &Error::status(404, None), 0.5), None);
    }
}
