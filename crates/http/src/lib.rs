//! The HTTP edge shared by every strategy, so that a comparison measures
//! scheduling and not different HTTP code.
//!
//! Both clients speak HTTP/1.1 through one framing, written once (`h1`):
//! the same request bytes, the response head parsed by `httparse` (the
//! parser hyper uses), bodies delimited by `Content-Length`, chunked coding
//! or the close, and one buffer of 1 KiB per connection that the request is
//! written from and the response read into (grown only for a longer head,
//! up to 64 KiB). The blocking strategies and the async ones therefore
//! differ only in how they wait.
//!
//! - [`BlockingClient`]: `std::net` sockets with keep-alive (a pool of idle
//!   connections shared by clones), the configured connect and request
//!   timeouts, the body cap, and statuses returned as values (so a 429's
//!   `Retry-After` can be read). Used by the sync, thread, pool, rayon,
//!   process and `tokio-blocking` strategies.
//! - `AsyncClient` (feature `async`): the same client, generic over an
//!   `AsyncRuntime` that supplies TCP connect, spawn and sleep, so the
//!   tokio, smol and async-std strategies differ only in their runtime. A
//!   client keeps one connection alive and drives it itself (no connection
//!   task, channel or callback); the same timeouts, body cap,
//!   statuses-as-values and error kinds as the blocking client, on the
//!   runtime's own timer. Sending is all it does: how many clients run and
//!   which base each takes is the `rates-async` crate's worker driver.
//!
//! Why not an HTTP library: hyper's client connection holds a fixed write
//! buffer and a request-channel block per connection, and ureq's blocking
//! client spends several times this code's user CPU per request; with them,
//! what the comparison measures would be those libraries' fixed costs, not
//! the concurrency models. Here a connection holds one buffer, reused for
//! its request and its response.
//!
//! Both speak `http://`, and `https://` with the `tls` feature (on by
//! default). TLS is rustls on the `ring`
//! provider (no OpenSSL, no C toolchain beyond what `ring` needs), over the
//! socket for the blocking client (`rustls::StreamOwned`) and through
//! `futures-rustls` over the runtime's own stream for the async one, so one
//! connector serves tokio, smol and async-std. Certificates are verified
//! against Mozilla's root store as compiled into `webpki-roots` (the same
//! on every machine), plus any roots in
//! [`Config::ca_cert_pem`](rates_core::Config::ca_cert_pem); nothing turns
//! verification off. A failed handshake is
//! [`ErrorKind::Tls`](rates_core::ErrorKind::Tls), and never retried.
//!
//! Both send `User-Agent: rates/VERSION` ([`USER_AGENT`]) on every request.
//!
//! - `CompletionClient` (feature `completion`): the same framing over
//!   compio's completion-based I/O with owned buffers (io_uring, or compio's
//!   polling driver), for the `compio-uring` and `compio-epoll` strategies.
//!
//! Features: `blocking` (default), `async`, `completion`, and `tls`
//! (default): `https://` through rustls. Without `tls` (with
//! `default-features = false`) no TLS crate is built, and an `https://`
//! endpoint fails each request with an error that names the feature.
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
#[cfg(feature = "completion")]
mod completion;
#[cfg(any(feature = "blocking", feature = "async", feature = "completion"))]
mod h1;
mod retry_after;
#[cfg(all(
    feature = "tls",
    any(feature = "blocking", feature = "async", feature = "completion")
))]
mod tls;

#[cfg(feature = "async")]
pub use async_client::{AsyncClient, AsyncRuntime, ClientSetup};
#[cfg(feature = "blocking")]
pub use blocking::BlockingClient;
#[cfg(feature = "completion")]
pub use completion::{CompletionClient, CompletionSetup};
#[cfg(feature = "async")]
pub use hyper::rt::{Read as HyperRead, Write as HyperWrite};
pub use retry_after::parse_retry_after;

/// The `User-Agent` both clients send: `rates/` and this crate's version.
pub const USER_AGENT: &str = concat!("rates/", env!("CARGO_PKG_VERSION"));

#[cfg(all(test, not(feature = "tls"), feature = "blocking"))]
mod no_tls_tests {
    use rates_core::Config;

    use crate::BlockingClient;

    /// Built without `tls`: an `https://` endpoint fails at once, without a
    /// retry, with an error that names the feature (CI builds this crate so
    /// once: `cargo test -p rates-http --no-default-features`).
    #[test]
    fn https_is_refused_naming_the_feature() {
        let config = Config::new("https://127.0.0.1:1/rates?base={base}").unwrap();
        let client = BlockingClient::new(&config, 1);
        let outcome = client.fetch("USD".parse().unwrap(), &config, None);
        let err = outcome.result.unwrap_err();
        assert!(err.is_invalid_input(), "{err}");
        assert!(err.to_string().contains("`tls` feature"), "{err}");
        assert_eq!(outcome.attempts, 1);
    }
}
