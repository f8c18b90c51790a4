//! The embedded mock rates API: a real HTTP/1.1 server (hyper on tokio) on
//! loopback, used by `rates serve`, by `rates fetch` when no endpoint is
//! given, and by the tests and benches.
//!
//! It answers `GET /rates?base=USD` (vatcomply's path) and
//! `GET /latest` or `/v1/latest` with `?base=USD` or `?from=USD`
//! (frankfurter's), with an optional `symbols=EUR,PLN`, using a fixed table
//! of reference rates and deterministic rates for any other three-letter
//! code, in the [`Shape`] configured: vatcomply's `{"base", "date", "rates"}`
//! or frankfurter's, which adds `"amount"`. A malformed base gets a JSON 422.
//!
//! It serves plain HTTP, or HTTPS ([`ServerTls`]) with a certificate it
//! generates at start (for `127.0.0.1`, `localhost` and `::1`, handed out by
//! [`RatesServer::certificate_pem`]) or one of the caller's.
//!
//! Reproducible knobs (seeded or counted): latency, a rate limit answered
//! with 429 and `Retry-After`, 500s, malformed and truncated bodies,
//! dropped connections and stalls. It records what it saw ([`Stats`]:
//! arrival times, peak concurrent requests, connections accepted, counts by
//! status, base and `User-Agent`) so tests can check a client's limits from
//! the server's side.
//!
//! The server runs on a tokio runtime of its own, on its own threads, so it
//! never shares a runtime with a client under test.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use rates_server::{Fault, FaultRule, RatesServer, ServerConfig, When};
//!
//! let server = RatesServer::start(
//!     ServerConfig::default()
//!         .with_latency(Duration::from_millis(5))
//!         .with_fault(FaultRule::new(Fault::ServerError, When::FirstPerBase(1))),
//! )?;
//! let url = format!("http://{}/latest?from=EUR", server.addr());
//! let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
//! assert_eq!(agent.get(&url).call()?.status(), 500);
//! assert_eq!(agent.get(&url).call()?.status(), 200);
//! assert_eq!(server.stats().status_count(500), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod faults;
mod server;
mod stats;
mod table;
mod timer;
mod tls;

pub use faults::{Fault, FaultRule, Latency, When};
pub use server::{RatesServer, ServerConfig};
pub use stats::Stats;
pub use table::{Shape, euro_rate, rate, reference_codes};
pub use tls::ServerTls;
