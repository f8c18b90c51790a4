//! What a run produces: one outcome per base, in input order.

use std::fmt::{self, Write as _};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{CurrencyCode, Error, Rates, StopCause};

/// The result for one base.
///
/// In JSON: `{"base": "USD", "ok": true, "attempts": 1, "date": "...",
/// "rates": {"EUR": 0.887, ...}}`, or on failure `{"base": "USD", "ok": false,
/// "attempts": 4, "error": {"kind": "http_status", "status": 500, "message":
/// "..."}}` (see [`Error`] for the error's shape).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(into = "OutcomeRepr", try_from = "OutcomeRepr")]
pub struct Outcome {
    /// The base this outcome is for.
    pub base: CurrencyCode,
    /// How many requests were sent for it.
    pub attempts: u32,
    /// The rates, or why there are none.
    pub result: Result<Rates, Error>,
}

impl Outcome {
    /// A failure for `base` after `attempts` requests.
    pub fn failed(base: CurrencyCode, attempts: u32, error: Error) -> Self {
        Self {
            base,
            attempts,
            result: Err(error),
        }
    }
}

/// The JSON shape of an [`Outcome`].
#[derive(Serialize, Deserialize)]
struct OutcomeRepr {
    base: CurrencyCode,
    ok: bool,
    attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rates: Option<std::collections::BTreeMap<CurrencyCode, f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<Error>,
}

impl From<Outcome> for OutcomeRepr {
    fn from(o: Outcome) -> Self {
        let (ok, date, rates, error) = match o.result {
            Ok(r) => (true, Some(r.date), Some(r.rates), None),
            Err(e) => (false, None, None, Some(e)),
        };
        Self {
            base: o.base,
            ok,
            attempts: o.attempts,
            date,
            rates,
            error,
        }
    }
}

impl TryFrom<OutcomeRepr> for Outcome {
    type Error = String;
    fn try_from(r: OutcomeRepr) -> Result<Self, String> {
        let result = match (r.ok, r.rates, r.error) {
            (true, Some(rates), None) => Ok(Rates {
                base: r.base,
                date: r.date.unwrap_or_default(),
                rates,
            }),
            (false, None, Some(e)) => Err(e),
            _ => {
                return Err(format!(
                    "outcome for {}: `ok: true` needs `rates`, `ok: false` needs `error`",
                    r.base
                ));
            }
        };
        Ok(Self {
            base: r.base,
            attempts: r.attempts,
            result,
        })
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.result {
            Ok(r) => write!(f, "{}: {} rates", self.base, r.rates.len()),
            Err(e) => write!(
                f,
                "{}: {} error after {} attempt{}: {e}",
                self.base,
                e.kind(),
                self.attempts,
                if self.attempts == 1 { "" } else { "s" }
            ),
        }
    }
}

/// A run's results: exactly one [`Outcome`] per input base, in input order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The strategy that produced it.
    pub strategy: String,
    /// One outcome per input base, in input order.
    pub outcomes: Vec<Outcome>,
    /// Wall time of the whole run, start-up included.
    #[serde(rename = "wall_s", with = "secs")]
    pub wall: Duration,
    /// A note from the strategy about how it ran (caps, substitutions).
    #[serde(default)]
    pub note: Option<String>,
    /// Why the run was stopped before it was done, when it was (its
    /// deadline, or its stop handle); the bases it left undone are
    /// [`cancelled`](Report::cancelled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<StopCause>,
    /// From the stop firing to the run returning (every thread joined,
    /// every child reaped), when it was stopped.
    #[serde(
        default,
        rename = "time_to_stop_s",
        skip_serializing_if = "Option::is_none",
        with = "opt_secs"
    )]
    pub time_to_stop: Option<Duration>,
}

mod opt_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<f64>::deserialize(d)?
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64))
    }
}

impl Report {
    /// An empty report with no outcomes.
    pub fn empty(strategy: &str) -> Self {
        Self::new(strategy, Vec::new(), Duration::ZERO)
    }

    /// A report from outcomes already in order.
    pub fn new(strategy: &str, outcomes: Vec<Outcome>, wall: Duration) -> Self {
        Self {
            strategy: strategy.to_owned(),
            outcomes,
            wall,
            note: None,
            stopped: None,
            time_to_stop: None,
        }
    }

    /// The bases the run's stop left undone.
    pub fn cancelled(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| o.result.as_ref().is_err_and(Error::is_cancelled))
            .count()
    }

    /// The bases that succeeded.
    pub fn successes(&self) -> impl Iterator<Item = &Rates> {
        self.outcomes.iter().filter_map(|o| o.result.as_ref().ok())
    }

    /// The outcomes that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Outcome> {
        self.outcomes.iter().filter(|o| o.result.is_err())
    }

    /// True when every base succeeded.
    pub fn all_succeeded(&self) -> bool {
        self.outcomes.iter().all(|o| o.result.is_ok())
    }

    /// Requests sent, over all bases.
    pub fn total_attempts(&self) -> u64 {
        self.outcomes.iter().map(|o| u64::from(o.attempts)).sum()
    }

    /// The classic matrix, one row per successful base:
    /// `1 USD =     1.0 USD,   0.887 EUR, ...`.
    pub fn matrix(&self, symbols: &[CurrencyCode]) -> String {
        let mut out = String::new();
        for rates in self.successes() {
            out.push_str(&matrix_row(rates, symbols));
            out.push('\n');
        }
        out
    }
}

/// One matrix row: each rate with three significant digits, right-aligned
/// seven wide (Python's `f"{rate:7.3}"`), `?` where the server gave none.
///
/// ```
/// let usd = rates_core::decode("USD".parse()?, br#"{"base":"USD","rates":{"EUR":0.8867}}"#)?;
/// let row = rates_core::matrix_row(&usd, &rates_core::parse_codes("USD,EUR")?);
/// assert_eq!(row, "1 USD =     1.0 USD,   0.887 EUR");
/// # Ok::<(), rates_core::Error>(())
/// ```
pub fn matrix_row(rates: &Rates, symbols: &[CurrencyCode]) -> String {
    let mut row = format!("1 {} = ", rates.base);
    for (i, symbol) in symbols.iter().enumerate() {
        if i > 0 {
            row.push_str(", ");
        }
        let cell = rates
            .rates
            .get(symbol)
            .map_or_else(|| "?".to_owned(), |r| three_significant(*r));
        let _ = write!(row, "{cell:>7} {symbol}");
    }
    row
}

/// Formats like Python's `format(x, ".3")`: three significant digits, at least
/// one digit after the point in fixed notation, scientific from 100 up or
/// below 0.0001.
pub(crate) fn three_significant(x: f64) -> String {
    if x == 0.0 {
        return "0.0".to_owned();
    }
    if !x.is_finite() {
        return x.to_string();
    }
    // Round to three significant digits first, then pick the notation from
    // the rounded exponent, as Python does.
    let sci = format!("{x:.2e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..2).contains(&exp) {
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let decimals = usize::try_from(2 - exp).unwrap_or(0);
    let fixed = format!("{x:.decimals$}");
    let trimmed = if fixed.contains('.') {
        fixed.trim_end_matches('0')
    } else {
        &fixed
    };
    if let Some(stripped) = trimmed.strip_suffix('.') {
        format!("{stripped}.0")
    } else if trimmed.contains('.') {
        trimmed.to_owned()
    } else {
        format!("{trimmed}.0")
    }
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn formats_like_python() {
        let cases = [
            (1.0, "1.0"),
            (0.8867, "0.887"),
            (3.8015, "3.8"),
            (8.532, "8.53"),
            (22.73, "22.7"),
            (0.04406, "0.0441"),
            (9.999, "10.0"),
            (99.96, "1e+02"),
            (123.4, "1.23e+02"),
            (100.0, "1e+02"),
            (0.000_012_34, "1.23e-05"),
            (0.000_123_4, "0.000123"),
            (25.633, "25.6"),
        ];
        for (x, want) in cases {
            assert_eq!(three_significant(x), want, "for {x}");
        }
    }

    #[test]
    fn matrix_row_is_seven_wide() {
        let usd: CurrencyCode = "USD".parse().unwrap();
        let eur: CurrencyCode = "EUR".parse().unwrap();
        let pln: CurrencyCode = "PLN".parse().unwrap();
        let rates = Rates {
            base: usd,
            date: String::new(),
            rates: BTreeMap::from([(usd, 1.0), (eur, 0.8867)]),
        };
        assert_eq!(
            matrix_row(&rates, &[usd, eur, pln]),
            "1 USD =     1.0 USD,   0.887 EUR,       ? PLN"
        );
    }

    #[test]
    fn report_round_trips_through_json() {
        let usd: CurrencyCode = "USD".parse().unwrap();
        let mut report = Report::new(
            "x",
            vec![Outcome::failed(usd, 2, Error::status(500, None))],
            Duration::from_millis(1500),
        );
        report.note = Some("capped".into());
        let json = serde_json::to_string(&report).unwrap();
        assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), report);
    }

    #[test]
    fn outcomes_read_plainly_in_json() {
        let usd: CurrencyCode = "USD".parse().unwrap();
        let eur: CurrencyCode = "EUR".parse().unwrap();
        let failed = Outcome::failed(usd, 4, Error::status(500, None));
        assert_eq!(
            serde_json::to_value(&failed).unwrap(),
            serde_json::json!({
                "base": "USD", "ok": false, "attempts": 4,
                "error": {"kind": "http_status", "status": 500, "message": "HTTP 500 Internal Server Error"}
            })
        );
        let ok = Outcome {
            base: usd,
            attempts: 1,
            result: Ok(Rates {
                base: usd,
                date: "2019-04-09".into(),
                rates: BTreeMap::from([(usd, 1.0), (eur, 0.5)]),
            }),
        };
        let json = serde_json::to_value(&ok).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"base": "USD", "ok": true, "attempts": 1, "date": "2019-04-09",
                               "rates": {"USD": 1.0, "EUR": 0.5}})
        );
        assert_eq!(serde_json::from_value::<Outcome>(json).unwrap(), ok);
        let bad = serde_json::json!({"base": "USD", "ok": true, "attempts": 1});
        assert!(serde_json::from_value::<Outcome>(bad).is_err());
    }
}
