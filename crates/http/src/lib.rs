//! The HTTP edge shared by every strategy, so that a comparison measures
//! scheduling and not different HTTP code.
//!
//! - [`BlockingClient`]: ureq 3 with keep-alive, the configured connect and
//!   request timeouts, the body cap, and statuses returned as values (so a
//!   429's `Retry-After` can be read). Used by the sync, thread, pool, rayon,
//!   process and `tokio-blocking` strategies.
//!
//! Only plain `http://` is supported.
//!
//! # Examples
//!
//! ```no_run
//! use rates_core::{Config, CurrencyCode};
//! use rates_http::BlockingClient;
//!
//! let config = Config::new("http://127.0.0.1:8080/rates?base={base}")?;
//! let client = BlockingClient::new(&config, 1);
//! let outcome = client.fetch("USD".parse::<CurrencyCode>()?, &config, None);
//! println!("{outcome}");
//! # Ok::<(), rates_core::Error>(())
//! ```

mod blocking;

pub use blocking::{BlockingClient, parse_retry_after};
