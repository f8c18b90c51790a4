//! The `Retry-After` header, read the same way by every client.

use std::time::{Duration, SystemTime};

/// Parses a `Retry-After` header: delay-seconds (`"1"`, `"0.5"`) or an
/// HTTP-date (`"Wed, 21 Oct 2015 07:28:00 GMT"`, RFC 9110's three forms),
/// the wait being from now until that date (zero for a date in the past).
///
/// A number too large for a [`Duration`] is [`Duration::MAX`]: longer than
/// any cap, so the retry policy treats it as it treats any wait over its
/// cap (the base fails at once), never as if no header had been sent.
/// `None` for a value that is neither form (negative, garbage): absent.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    parse_retry_after_at(value, SystemTime::now())
}

/// [`parse_retry_after`] with the time the answer arrived given.
pub(crate) fn parse_retry_after_at(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '-' || c == '+') {
        let secs: f64 = value.parse().ok()?;
        if secs.is_nan() || secs < 0.0 {
            return None;
        }
        return Some(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX));
    }
    // `httpdate`: the HTTP-date parser hyper itself uses (IMF-fixdate,
    // RFC 850 and asctime forms).
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after("1"), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("NaN"), None);
    }

    #[test]
    fn a_number_too_large_for_a_duration_is_longer_than_any_cap() {
        assert_eq!(
            parse_retry_after("99999999999999999999"),
            Some(Duration::MAX)
        );
        assert_eq!(parse_retry_after("1e300"), Some(Duration::MAX));
    }

    #[test]
    fn retry_after_http_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(
            parse_retry_after_at("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        // RFC 850 and asctime forms, which recipients must accept.
        assert_eq!(
            parse_retry_after_at("Wednesday, 21-Oct-15 07:29:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after_at("Wed Oct 21 07:28:02 2015", now),
            Some(Duration::from_secs(2))
        );
        // A date already past: retry now.
        assert_eq!(
            parse_retry_after_at("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after_at("Wed, 32 Oct 2015 07:00:00 GMT", now),
            None
        );
    }
}
