//! Shared pieces of the rates workspace: the [`Strategy`] trait and everything
//! strategies have in common.
//!
//! Every strategy fetches exchange rates for many base currencies from an
//! HTTP API. What differs between them is only how the waiting is overlapped;
//! everything else lives here and is written once: currency codes, the
//! [`Config`], the one [`Error`] type, the [`Report`] (one [`Outcome`] per
//! base, in input order), a GCRA [`Throttle`] that waiting workers sleep on,
//! the retry policy, response [decoding](decode), the classic matrix output,
//! the per-base attempt loop ([`BaseFetch`]), and the run around a
//! strategy ([`Strategy::fetch`], [`fetch_async`]): validation, empty input,
//! wall time, one place per base ([`Outcomes`], which also turns a panic into
//! its base's outcome and counts progress) and the report. A strategy holds
//! only its concurrency model, in [`Strategy::run`].
//!
//! # Examples
//!
//! A strategy is its concurrency model: here, one base after another.
//!
//! ```
//! use rates_core::{Error, Outcome, Run, Strategy};
//!
//! struct OneByOne;
//!
//! impl Strategy for OneByOne {
//!     fn name(&self) -> &'static str {
//!         "one-by-one"
//!     }
//!     fn run(&self, run: &Run<'_>) -> Result<Option<String>, Error> {
//!         for i in 0..run.bases.len() {
//!             // A real strategy sends here (see `fetch_blocking`).
//!             run.outcomes.fill(i, |base| Outcome::failed(base, 0, Error::status(503, None)));
//!         }
//!         Ok(None)
//!     }
//! }
//!
//! let config = rates_core::Config::new("http://127.0.0.1:8080/rates?base={base}")?;
//! let report = OneByOne.fetch_codes(&["USD", "EUR"], &config)?;
//! assert_eq!(report.failures().count(), 2);
//! assert!(OneByOne.fetch_codes(&[], &config)?.outcomes.is_empty());
//! # Ok::<(), rates_core::Error>(())
//! ```
//!
//! Codes and the config:
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
mod endpoint;
mod error;
mod fetch;
mod histogram;
pub mod limits;
mod outcomes;
pub mod plan;
mod progress;
mod rate;
pub mod redirect;
mod report;
mod retry;
pub mod shard;
mod stop;
mod strategy;
mod throttle;
mod work;

pub use code::{CurrencyCode, DISTINCT_CODES, generated_codes, parse_codes};
pub use config::{CLASSIC, Config, classic};
pub use decode::{Rates, decode};
pub use endpoint::Endpoint;
pub use error::{Error, ErrorKind, panic_error};
pub use fetch::{BaseFetch, RawResponse, Step, fetch_blocking};
pub use outcomes::{OnOutcome, Outcomes, Run};
pub use progress::Progress;
pub use rate::RateLimit;
pub use report::{Outcome, Report, matrix_row};
pub use retry::RetryPolicy;
pub use stop::{Stop, StopCause, StopGuard, StopTimer, Stopped};
pub use strategy::{Strategy, fetch_async};
pub use throttle::Throttle;
pub use work::Work;
