//! Shared pieces of the rates workspace: the [`Strategy`] trait and everything
//! strategies have in common.
//!
//! Every strategy fetches exchange rates for many base currencies from an
//! HTTP API. What differs between them is only how the waiting is overlapped;
//! everything else lives here and is written once: currency codes, the
//! [`Config`], the one [`Error`] type, the [`Report`] (one [`Outcome`] per
//! base, in input order), a GCRA [`Throttle`] that waiting workers sleep on,
//! the retry policy, response [decoding](decode), the classic matrix output,
//! and the per-base attempt loop ([`BaseFetch`]).
//!
//! # Examples
//!
//! ```
//! use rates_core::{Config, CurrencyCode, RateLimit};
//!
//! let bases = rates_core::parse_codes("usd,eur,pln")?;
//! let config = Config::new("http://127.0.0.1:8080/rates?base={base}")?
//!     .with_concurrency(2)
//!     .with_rate_limit(Some("10/s".parse::<RateLimit>()?));
//! assert_eq!(bases[0], "USD".parse::<CurrencyCode>()?);
//! assert!(config.validate().is_ok());
//! # Ok::<(), rates_core::Error>(())
//! ```

mod code;
mod config;
mod decode;
mod error;
mod fetch;
mod histogram;
pub mod limits;
mod outcomes;
mod report;
mod strategy;
mod throttle;
mod work;

pub use code::{CurrencyCode, DISTINCT_CODES, generated_codes, parse_codes};
pub use config::{Config, DEFAULT_SYMBOLS, Endpoint, Progress, RateLimit, RetryPolicy};
pub use decode::{Rates, decode};
pub use error::{Error, ErrorKind, panic_error};
pub use fetch::{BaseFetch, RawResponse, Step, fetch_blocking};
pub use outcomes::{Outcomes, Run};
pub use report::{Outcome, Report, matrix_row, three_significant};
pub use strategy::{Strategy, fetch_async};
pub use throttle::{Gcra, Throttle};
pub use work::Work;
