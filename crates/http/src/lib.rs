//! The HTTP edge shared by every strategy, so that a comparison measures
//! scheduling and not different HTTP code.
//!
//! - [`BlockingClient`]: ureq 3 with keep-alive, the configured connect and
//!   request timeouts, the body cap, and statuses returned as values (so a
//!   429's `Retry-After` can be read). Used by the sync, thread, pool, rayon,
//!   process and `tokio-blocking` strategies.
//! - `AsyncClient` and `fetch_all` (feature `async`): one hyper 1
//!   `client::conn::http1` client, written once and generic over an
//!   `AsyncRuntime` that supplies TCP connect, spawn and sleep, so the
//!   tokio, smol and async-std strategies differ only in their runtime.
//!   Each worker task keeps one connection alive and reuses it; the same
//!   timeouts, body cap, statuses-as-values and error kinds as the blocking
//!   client, on the runtime's own timer.
//!
//! Both speak `http://` and `https://`. TLS is rustls on the `ring`
//! provider (no OpenSSL, no C toolchain beyond what `ring` needs): the
//! blocking client through ureq's rustls support, the async client through
//! `futures-rustls` over the runtime's own stream, so one connector serves
//! tokio, smol and async-std. Certificates are verified against Mozilla's
//! root store as compiled into `webpki-roots` (the same on every machine),
//! plus any roots in [`Config::ca_cert_pem`](rates_core::Config::ca_cert_pem);
//! nothing turns verification off. A failed handshake is
//! [`ErrorKind::Tls`](rates_core::ErrorKind::Tls), and never retried.
//!
//! Both send `User-Agent: rates/VERSION` ([`USER_AGENT`]) on every request.
//!
//! Features: `blocking` (default) and `async`.
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

#[cfg(feature = "async")]
mod async_client;
#[cfg(feature = "blocking")]
mod blocking;
#[cfg(any(feature = "blocking", feature = "async"))]
mod h1;
mod retry_after;
#[cfg(any(feature = "blocking", feature = "async"))]
mod tls;

#[cfg(feature = "async")]
pub use async_client::{AsyncClient, AsyncRuntime, fetch_all};
#[cfg(feature = "blocking")]
pub use blocking::BlockingClient;
#[cfg(feature = "async")]
pub use hyper::rt::{Read as HyperRead, Write as HyperWrite};
pub use retry_after::parse_retry_after;

/// The `User-Agent` both clients send: `rates/` and this crate's version.
pub const USER_AGENT: &str = concat!("rates/", env!("CARGO_PKG_VERSION"));
