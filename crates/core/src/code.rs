//! Currency codes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// An ISO-4217-shaped currency code: exactly three ASCII letters, stored upper case.
///
/// ```
/// use rates_core::CurrencyCode;
/// let usd: CurrencyCode = "usd".parse()?;
/// assert_eq!(usd.as_str(), "USD");
/// assert!("U5D".parse::<CurrencyCode>().is_err());
/// # Ok::<(), rates_core::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CurrencyCode([u8; 3]);

impl CurrencyCode {
    /// Parses a code, normalising it to upper case.
    ///
    /// # Errors
    /// An [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) error naming
    /// the input when it is not exactly three ASCII letters.
    pub fn new(input: &str) -> Result<Self, Error> {
        let trimmed = input.trim();
        let bytes = trimmed.as_bytes();
        if bytes.len() == 3 && bytes.iter().all(u8::is_ascii_alphabetic) {
            Ok(Self([
                bytes[0].to_ascii_uppercase(),
                bytes[1].to_ascii_uppercase(),
                bytes[2].to_ascii_uppercase(),
            ]))
        } else {
            Err(Error::invalid_input(format!(
                "invalid currency code `{input}`: a code is exactly three ASCII letters, like USD or eur"
            )))
        }
    }

    /// The code as an upper-case `&str`.
    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

/// Parses a comma- or whitespace-separated list of codes (`"USD,EUR pln"`).
///
/// # Errors
/// The first invalid code, by name; an empty item (`"USD,,EUR"`) is invalid too.
pub fn parse_codes(list: &str) -> Result<Vec<CurrencyCode>, Error> {
    let mut codes = Vec::new();
    if list.trim().is_empty() {
        return Ok(codes);
    }
    for item in list.split(',') {
        if item.trim().is_empty() {
            return Err(Error::invalid_input(format!(
                "empty item in the code list `{list}`: separate codes with single commas, like USD,EUR"
            )));
        }
        for word in item.split_whitespace() {
            codes.push(CurrencyCode::new(word)?);
        }
    }
    Ok(codes)
}

/// How many distinct three-letter codes there are (26³): [`generated_codes`]
/// repeats after this many.
pub const DISTINCT_CODES: usize = 26 * 26 * 26;

/// `n` generated codes, for runs over many bases: AAA, AAB, ..., ZZZ, then
/// again from AAA (there are [`DISTINCT_CODES`], 17,576).
///
/// ```
/// let codes = rates_core::generated_codes(28);
/// assert_eq!((codes[0].as_str(), codes[27].as_str()), ("AAA", "ABB"));
/// ```
pub fn generated_codes(n: usize) -> Vec<CurrencyCode> {
    (0..n)
        .map(|i| {
            let i = i % DISTINCT_CODES;
            let letter = |d: usize| b'A' + (d % 26) as u8;
            CurrencyCode([letter(i / 676), letter(i / 26), letter(i)])
        })
        .collect()
}

impl FromStr for CurrencyCode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::new(s)
    }
}

impl fmt::Display for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl fmt::Debug for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_str())
    }
}

impl Serialize for CurrencyCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CurrencyCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_trims() {
        assert_eq!(CurrencyCode::new(" eUr ").unwrap().as_str(), "EUR");
    }

    #[test]
    fn rejects_wrong_shapes_naming_the_input() {
        for bad in ["U5D", "US", "USDX", "", "ÜSD", "U D"] {
            let err = CurrencyCode::new(bad).unwrap_err();
            assert!(err.is_invalid_input());
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
        }
    }

    #[test]
    fn parses_lists() {
        let codes = parse_codes("usd,EUR pln").unwrap();
        let names: Vec<_> = codes.iter().map(CurrencyCode::as_str).collect();
        assert_eq!(names, ["USD", "EUR", "PLN"]);
        assert!(parse_codes("").unwrap().is_empty());
        let err = parse_codes("USD,U5D").unwrap_err();
        assert!(err.to_string().contains("U5D"));
        assert!(parse_codes("USD,,EUR").is_err());
    }

    #[test]
    fn generated_codes_are_valid_and_distinct() {
        let mut codes = generated_codes(17_576);
        assert!(
            codes
                .iter()
                .all(|c| CurrencyCode::new(c.as_str()) == Ok(*c))
        );
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), 17_576);
        assert_eq!(generated_codes(17_577)[17_576].as_str(), "AAA");
    }

    #[test]
    fn serde_round_trip_validates() {
        let c: CurrencyCode = serde_json::from_str("\"nok\"").unwrap();
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"NOK\"");
        assert!(serde_json::from_str::<CurrencyCode>("\"N0K\"").is_err());
    }
}
