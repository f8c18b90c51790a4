//! Decoding a rates response.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{CurrencyCode, Error, ErrorKind};

/// The rates for one base: `1 base = rates[code] code`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// The base currency.
    pub base: CurrencyCode,
    /// The date the server gave, as sent (`YYYY-MM-DD`), or empty.
    pub date: String,
    /// Rates by code, including `base` itself at 1.0.
    pub rates: BTreeMap<CurrencyCode, f64>,
}

/// The wire shape: vatcomply's `{"base", "date", "rates"}`, or
/// frankfurter's, which adds `"amount"` (the rates are for that many units
/// of the base). Other fields are ignored. Codes are parsed (and validated)
/// as they are read, with no string allocated per key.
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(default)]
    amount: Option<f64>,
    base: CurrencyCode,
    #[serde(default, borrow)]
    date: Option<std::borrow::Cow<'a, str>>,
    rates: BTreeMap<CurrencyCode, f64>,
}

/// Decodes a `{"base": ..., "date": ..., "rates": {...}}` body for `base`
/// (vatcomply's shape), or frankfurter's `{"amount": 1.0, "base": ...}`.
///
/// Checks that the body is about `base`, that every code is valid and every
/// rate finite and positive, divides by frankfurter's `amount` when it is not
/// 1, and fills in `rates[base] = 1.0`.
///
/// # Errors
/// [`ErrorKind::Decode`] saying what was wrong with the body.
///
/// ```
/// use rates_core::{decode, CurrencyCode};
/// let usd: CurrencyCode = "USD".parse()?;
/// let rates = decode(usd, br#"{"base":"USD","date":"2019-04-09","rates":{"EUR":0.8867}}"#)?;
/// assert_eq!(rates.rates[&usd], 1.0);
/// # Ok::<(), rates_core::Error>(())
/// ```
pub fn decode(base: CurrencyCode, body: &[u8]) -> Result<Rates, Error> {
    let wire: Wire<'_> = serde_json::from_slice(body).map_err(|e| {
        Error::new(
            ErrorKind::Decode,
            format!("the response is not a rates document: {e}"),
        )
    })?;
    if wire.base != base {
        return Err(Error::new(
            ErrorKind::Decode,
            format!(
                "asked for base {base} but the response is for {}",
                wire.base
            ),
        ));
    }
    let mut rates = wire.rates;
    if let Some(amount) = wire.amount {
        if !(amount.is_finite() && amount > 0.0) {
            return Err(Error::new(
                ErrorKind::Decode,
                format!("the response has an impossible amount {amount}"),
            ));
        }
        if amount != 1.0 {
            rates.values_mut().for_each(|r| *r /= amount);
        }
    }
    if let Some((code, rate)) = rates.iter().find(|(_, r)| !(r.is_finite() && **r > 0.0)) {
        return Err(Error::new(
            ErrorKind::Decode,
            format!("the response has an impossible rate {rate} for {code}"),
        ));
    }
    rates.insert(base, 1.0);
    Ok(Rates {
        base,
        date: wire
            .date
            .map(std::borrow::Cow::into_owned)
            .unwrap_or_default(),
        rates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> CurrencyCode {
        "USD".parse().unwrap()
    }

    #[test]
    fn fills_in_the_base() {
        let r = decode(usd(), br#"{"base":"usd","rates":{"EUR":0.9}}"#).unwrap();
        assert_eq!(r.rates.len(), 2);
        assert_eq!(r.rates[&usd()], 1.0);
        assert_eq!(r.date, "");
    }

    #[test]
    fn accepts_frankfurters_shape() {
        let body = br#"{"amount":1.0,"base":"USD","date":"2019-04-09","rates":{"EUR":0.8868,"PLN":3.8015}}"#;
        let r = decode(usd(), body).unwrap();
        assert_eq!(r.rates.len(), 3);
        assert_eq!(r.rates[&"PLN".parse().unwrap()], 3.8015);
        assert_eq!(r.date, "2019-04-09");
        let ten = decode(
            usd(),
            br#"{"amount":10,"base":"USD","rates":{"EUR":8.868}}"#,
        )
        .unwrap();
        assert!((ten.rates[&"EUR".parse().unwrap()] - 0.8868).abs() < 1e-12);
        assert_eq!(ten.rates[&usd()], 1.0);
        let err = decode(usd(), br#"{"amount":0,"base":"USD","rates":{}}"#).unwrap_err();
        assert!(err.is_decode(), "{err}");
    }

    #[test]
    fn rejects_bad_bodies() {
        let cases: [&[u8]; 6] = [
            b"{not json",
            br#"{"base":"EUR","rates":{}}"#,
            br#"{"base":"USD","rates":{"EUR":-1.0}}"#,
            br#"{"base":"USD","rates":{"EUR":0}}"#,
            br#"{"base":"USD","rates":{"E1R":1.0}}"#,
            br#"{"base":"USD"}"#,
        ];
        for body in cases {
            let err = decode(usd(), body).unwrap_err();
            assert!(err.is_decode(), "{err}");
        }
        let err = decode(usd(), br#"{"base":"USD","rates":{"E1R":1.0}}"#).unwrap_err();
        assert!(err.to_string().contains("`E1R`"), "{err}");
    }
}
