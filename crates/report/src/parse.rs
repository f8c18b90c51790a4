//! Parsers for flag values: durations, latency ranges, base lists, shares.

use std::time::Duration;

use rates_core::{CurrencyCode, DISTINCT_CODES, parse_codes};
use rates_server::Latency;

/// Parses `100ms`, `2s`, `1.5s` or `0`.
pub fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    // humantime has no fractions ("1.5s"); plain seconds are handled here.
    if let Some(secs) = s.strip_suffix('s').and_then(|n| n.parse::<f64>().ok()) {
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("`{s}` is not a duration: use e.g. 100ms or 2s"));
    }
    humantime::parse_duration(s)
        .map_err(|_| format!("`{s}` is not a duration: use e.g. 100ms, 1.5s or 2s"))
}

/// Parses a server latency: `0`, `100ms`, or a range `50ms..150ms`.
pub fn latency(s: &str) -> Result<Latency, String> {
    if let Some((lo, hi)) = s.split_once("..") {
        let (lo, hi) = (duration(lo)?, duration(hi)?);
        if hi < lo {
            return Err(format!(
                "latency range `{s}` runs backwards: write the smaller bound first"
            ));
        }
        return Ok(Latency::Range(lo, hi));
    }
    let d = duration(s)?;
    Ok(if d.is_zero() {
        Latency::None
    } else {
        Latency::Fixed(d)
    })
}

/// Parses a share between 0 and 1 (`0.1`, or a percentage `10%`).
pub fn share(s: &str) -> Result<f64, String> {
    let value = match s.trim().strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => s.trim().parse::<f64>(),
    }
    .map_err(|_| format!("`{s}` is not a share: write 0.1 or 10%"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("`{s}` is not between 0 and 1 (0% and 100%)"))
    }
}

/// What `--bases` names: a list of codes, or a count of generated codes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bases {
    /// These codes, as typed (validated later, before any request).
    List(Vec<String>),
    /// This many generated codes (AAA, AAB, ...).
    Count(usize),
}

/// The most bases one run accepts: a million outcomes is a few hundred MiB
/// of report, and far past any comparison the scenarios make.
pub const MAX_BASES: usize = 1_000_000;

impl Bases {
    /// Resolves to codes.
    ///
    /// # Errors
    /// An invalid code, or a count over [`MAX_BASES`], by name.
    pub fn codes(&self) -> Result<Vec<CurrencyCode>, rates_core::Error> {
        match self {
            Self::List(list) => parse_codes(&list.join(",")),
            Self::Count(n) if *n > MAX_BASES => Err(rates_core::Error::invalid_input(format!(
                "--bases {n} is more than the {MAX_BASES} bases one run accepts \
                 (and there are only {DISTINCT_CODES} distinct codes): ask for at most \
                 --bases 1000000"
            ))),
            Self::Count(n) => Ok(rates_registry::generated_codes(*n)),
        }
    }

    /// What the user should know about these bases before the run: that
    /// generated codes repeat past [`DISTINCT_CODES`].
    pub fn note(&self) -> Option<String> {
        match self {
            Self::Count(n) if *n > DISTINCT_CODES => Some(format!(
                "codes repeat after 17,576: {n} bases are the {DISTINCT_CODES} distinct \
                 three-letter codes, each asked for up to {} times",
                n.div_ceil(DISTINCT_CODES)
            )),
            _ => None,
        }
    }
}

/// Parses `--bases`: a count (`2000`, `10_000`, `10,000`) or a list of codes.
pub fn bases(s: &str) -> Result<Bases, String> {
    let t = s.trim().replace('_', "");
    if t.is_empty() {
        return Err(
            "no base given: name at least one, like USD,EUR, or a count like 2000".to_owned(),
        );
    }
    let thousands = t.split(',').enumerate().all(|(i, g)| {
        g.bytes().all(|b| b.is_ascii_digit())
            && if i == 0 {
                (1..=3).contains(&g.len()) || !t.contains(',')
            } else {
                g.len() == 3
            }
    });
    if !t.is_empty() && thousands {
        return match t.replace(',', "").parse() {
            Ok(0) => Err("a count of 0 bases fetches nothing: ask for at least 1".to_owned()),
            Ok(n) => Ok(Bases::Count(n)),
            Err(_) => Err(format!("`{s}` is too large a count of bases")),
        };
    }
    Ok(Bases::List(
        t.split(',').map(|c| c.trim().to_owned()).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        assert!(duration("fast").unwrap_err().contains("`fast`"));
    }

    #[test]
    fn latencies() {
        assert_eq!(latency("0"), Ok(Latency::None));
        assert_eq!(latency("5ms"), Ok(Latency::Fixed(Duration::from_millis(5))));
        assert_eq!(
            latency("5ms..10ms"),
            Ok(Latency::Range(
                Duration::from_millis(5),
                Duration::from_millis(10)
            ))
        );
        assert!(latency("10ms..5ms").is_err());
    }

    #[test]
    fn shares() {
        assert_eq!(share("0.25"), Ok(0.25));
        assert_eq!(share("10%"), Ok(0.1));
        assert!(share("1.5").unwrap_err().contains("1.5"));
    }

    #[test]
    fn bases_lists_and_counts() {
        assert_eq!(bases("2000"), Ok(Bases::Count(2000)));
        assert_eq!(bases("10,000"), Ok(Bases::Count(10_000)));
        assert_eq!(
            bases("USD,eur"),
            Ok(Bases::List(vec!["USD".into(), "eur".into()]))
        );
        let codes = bases("USD,U5D").unwrap().codes().unwrap_err();
        assert!(codes.to_string().contains("U5D"));
        assert_eq!(bases("3").unwrap().codes().unwrap().len(), 3);
        // Nothing to fetch is refused, as a bad code is.
        assert!(bases("").unwrap_err().contains("no base given"));
        assert!(bases("  ").unwrap_err().contains("no base given"));
        assert!(bases("0").unwrap_err().contains("count of 0"));
    }

    #[test]
    fn counts_past_the_distinct_codes_are_announced_and_absurd_ones_refused() {
        assert_eq!(bases("17576").unwrap().note(), None);
        let note = bases("17577").unwrap().note().unwrap();
        assert!(note.contains("codes repeat after 17,576"), "{note}");
        assert!(note.contains("up to 2 times"), "{note}");
        let million = bases("1,000,000").unwrap();
        assert_eq!(million.codes().unwrap().len(), MAX_BASES);
        let err = bases("99999999").unwrap().codes().unwrap_err();
        assert!(err.is_invalid_input());
        let msg = err.to_string();
        assert!(
            msg.contains("--bases 99999999") && msg.contains("1000000"),
            "{msg}"
        );
    }
}
