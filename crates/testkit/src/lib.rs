//! The conformance suite, written once and run for every registered strategy
//! by `tests/conformance.rs` (one named test per strategy and check, like
//! `tokio::retry_after_is_honoured`), plus helpers for strategy tests.
//!
//! Every check starts its own [`RatesServer`] on an ephemeral port and asserts
//! from the server's side where it can (arrival times, peak in-flight
//! requests, counts). Checks assert behaviour, bounds and counts, never speed.
//!
//! # Examples
//!
//! ```
//! use rates_testkit::{Harness, checks};
//!
//! let harness = Harness::default();
//! let check = checks().into_iter().find(|c| c.name == "empty_input").unwrap();
//! (check.run)(&rates_sync::Sequential, &harness);
//! ```

mod checks;

use std::time::Duration;

use rates_core::{Config, Strategy};
use rates_server::{RatesServer, ServerConfig};

pub use checks::{CLASSIC_MATRIX, Check, checks};

/// What the checks share: servers and client configs made the same way.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Harness {}

impl Harness {
    /// Starts a server; panics with a clear message if it cannot.
    pub fn server(&self, config: ServerConfig) -> RatesServer {
        RatesServer::start(config).unwrap_or_else(|e| panic!("cannot start the test server: {e}"))
    }

    /// Starts a server that serves HTTPS with a certificate of its own.
    pub fn tls_server(&self, config: ServerConfig) -> RatesServer {
        self.server(config.with_generated_tls())
    }

    /// A client config for `server` with test-friendly backoff (10 ms start);
    /// for a TLS server, it trusts the server's certificate.
    pub fn config(&self, server: &RatesServer) -> Config {
        let mut config = Config::new(&server.endpoint())
            .unwrap_or_else(|e| panic!("server endpoint rejected: {e}"));
        config.ca_cert_pem = server.certificate_pem().map(str::to_owned);
        config.retry.initial_backoff = Duration::from_millis(10);
        config
    }
}

/// Runs `strategy` and panics, naming it, if the run itself fails.
pub fn run(strategy: &dyn Strategy, bases: &[&str], config: &Config) -> rates_core::Report {
    strategy
        .fetch_codes(bases, config)
        .unwrap_or_else(|e| panic!("{}: the run failed: {e}", strategy.name()))
}
