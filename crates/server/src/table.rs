//! The rates the server answers with.

use rates_core::CurrencyCode;

/// Euro reference rates (units per 1 EUR) close to the ECB's of 2019-04-09,
/// the day of the classic example's output.
pub(crate) const REFERENCE: [(&str, f64); 33] = [
    ("EUR", 1.0),
    ("USD", 1.1277),
    ("JPY", 125.29),
    ("BGN", 1.9558),
    ("CZK", 25.633),
    ("DKK", 7.4652),
    ("GBP", 0.8629),
    ("HUF", 321.13),
    ("PLN", 4.2902),
    ("RON", 4.7608),
    ("SEK", 10.466),
    ("CHF", 1.129),
    ("ISK", 135.6),
    ("NOK", 9.6218),
    ("HRK", 7.4325),
    ("RUB", 72.7897),
    ("TRY", 6.3775),
    ("AUD", 1.5773),
    ("BRL", 4.3172),
    ("CAD", 1.5012),
    ("CNY", 7.5728),
    ("HKD", 8.8453),
    ("IDR", 15954.05),
    ("ILS", 3.9969),
    ("INR", 78.2045),
    ("KRW", 1283.74),
    ("MXN", 21.2318),
    ("MYR", 4.6269),
    ("NZD", 1.6681),
    ("PHP", 58.616),
    ("SGD", 1.5266),
    ("THB", 35.842),
    ("ZAR", 15.784),
];

/// The JSON shape of a good answer, after a real rates API.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Shape {
    /// vatcomply's: `{"base":"USD","date":"2019-04-09","rates":{...}}`.
    #[default]
    Vatcomply,
    /// frankfurter's (v1): `{"amount":1.0,"base":"USD","date":...,"rates":{...}}`.
    Frankfurter,
}

impl Shape {
    /// Its name, as `rates serve --shape` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Vatcomply => "vatcomply",
            Self::Frankfurter => "frankfurter",
        }
    }

    /// The path and query of its API, as an endpoint template.
    pub fn path_template(self) -> &'static str {
        match self {
            Self::Vatcomply => "/rates?base={base}&symbols={symbols}",
            Self::Frankfurter => "/v1/latest?base={base}&symbols={symbols}",
        }
    }
}

impl std::str::FromStr for Shape {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "vatcomply" => Ok(Self::Vatcomply),
            "frankfurter" => Ok(Self::Frankfurter),
            _ => Err(format!(
                "unknown shape `{s}`: choose vatcomply or frankfurter"
            )),
        }
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The date every answer carries.
pub(crate) const DATE: &str = "2019-04-09";

/// Units of `code` per 1 EUR: the reference table, or for any other code a
/// deterministic value between 0.5 and 100.5 derived from its letters.
pub fn euro_rate(code: CurrencyCode) -> f64 {
    REFERENCE
        .iter()
        .find(|(c, _)| *c == code.as_str())
        .map_or_else(
            || {
                let h = crate::faults::mix(u64::from_le_bytes({
                    let mut b = [0u8; 8];
                    b[..3].copy_from_slice(code.as_str().as_bytes());
                    b
                }));
                0.5 + (h % 100_000) as f64 / 1000.0
            },
            |(_, r)| *r,
        )
}

/// `1 base = rate(base, to) to`.
pub fn rate(base: CurrencyCode, to: CurrencyCode) -> f64 {
    euro_rate(to) / euro_rate(base)
}

/// The codes the server lists when no `symbols=` is given.
pub fn reference_codes() -> impl Iterator<Item = CurrencyCode> {
    REFERENCE.iter().filter_map(|(c, _)| c.parse().ok())
}

/// The JSON body for `base` in `shape`, listing `symbols` (or every
/// reference code), without the base itself, like the real APIs.
pub(crate) fn body(shape: Shape, base: CurrencyCode, symbols: Option<&[CurrencyCode]>) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(80 + 24 * symbols.map_or(REFERENCE.len(), <[_]>::len));
    if shape == Shape::Frankfurter {
        out.push_str(r#"{"amount":1.0,"#);
    } else {
        out.push('{');
    }
    let _ = write!(out, r#""base":"{base}","date":"{DATE}","rates":{{"#);
    let mut first = true;
    let mut push = |code: CurrencyCode| {
        if code == base {
            return;
        }
        if !first {
            out.push(',');
        }
        first = false;
        let r = rate(base, code);
        let _ = write!(out, r#""{code}":{}"#, round6(r));
    };
    match symbols {
        Some(list) => list.iter().copied().for_each(&mut push),
        None => reference_codes().for_each(&mut push),
    }
    out.push_str("}}");
    out
}

/// Rounds to six significant digits, as rates APIs publish them.
fn round6(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let digits = 5 - x.abs().log10().floor() as i32;
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> CurrencyCode {
        s.parse().unwrap()
    }

    #[test]
    fn body_omits_base_and_decodes() {
        for shape in [Shape::Vatcomply, Shape::Frankfurter] {
            let b = body(shape, c("USD"), Some(&[c("USD"), c("EUR"), c("XYZ")]));
            let rates = rates_core::decode(c("USD"), b.as_bytes()).unwrap();
            assert_eq!(rates.rates.len(), 3);
            assert!((rates.rates[&c("EUR")] - 0.886761).abs() < 1e-6);
            assert!(!b.contains(r#""USD":"#));
            assert_eq!(b.contains(r#""amount":1.0"#), shape == Shape::Frankfurter);
        }
    }

    #[test]
    fn unknown_codes_are_deterministic_and_sane() {
        let a = euro_rate(c("QQQ"));
        assert_eq!(a, euro_rate(c("QQQ")));
        assert!((0.5..=100.5).contains(&a));
        assert_ne!(a, euro_rate(c("QQR")));
    }
}
