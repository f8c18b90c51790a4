//! What a run is asked to do: endpoint, symbols, limits, retries, timeouts.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::retry::millis;
use crate::{
    CurrencyCode, Endpoint, Error, OnOutcome, Progress, RateLimit, RetryPolicy, Stop, StopCause,
};

/// Everything a strategy needs to know about a run.
///
/// ```
/// use rates_core::Config;
/// let config = Config::new("http://127.0.0.1:8080/rates?base={base}")?.with_concurrency(8);
/// assert_eq!(config.concurrency, 8);
/// assert_eq!(config.retry.retries, 3);
/// # Ok::<(), rates_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Where to send requests.
    pub endpoint: Endpoint,
    /// The symbols shown in the matrix and sent as `{symbols}`.
    pub symbols: Vec<CurrencyCode>,
    /// The most requests in flight at once (for strategies that bound it).
    pub concurrency: usize,
    /// An optional client-side rate limit shared by all workers.
    pub rate_limit: Option<RateLimit>,
    /// How failures are retried.
    pub retry: RetryPolicy,
    /// How long connecting may take.
    #[serde(with = "millis")]
    pub connect_timeout: Duration,
    /// How long one whole request (connect, send, read the body) may take.
    #[serde(with = "millis")]
    pub request_timeout: Duration,
    /// The largest response body accepted, in bytes.
    pub max_body_bytes: usize,
    /// CPU work done on each successful response, in the thread or task that
    /// handled it (none by default).
    #[serde(default)]
    pub work: Option<crate::Work>,
    /// Root certificates (PEM, one or more) trusted for `https://` endpoints
    /// besides the public roots, such as the one the embedded server
    /// generates for itself.
    /// The contents, not a path, so they travel to worker processes with the
    /// rest of the config. There is no switch that turns verification off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert_pem: Option<String>,
    /// Counts finished bases as a run goes (for progress displays); not sent
    /// to worker processes.
    #[serde(skip)]
    pub progress: Option<Progress>,
    /// The most OS threads a strategy that holds one per request in flight
    /// (`threads`, `pool`, `rayon`) starts at once. `None`: as many as the
    /// machine allows ([`MachineLimits::thread_budget`]); a lower figure
    /// caps them further, never raises the machine's limit.
    ///
    /// [`MachineLimits::thread_budget`]: crate::limits::MachineLimits::thread_budget
    #[serde(default)]
    pub max_threads: Option<usize>,
    /// The run's plan (requests in flight, and why no more), when the
    /// caller has worked it out for these bases under this config (to
    /// show it before the run starts); [`Strategy::fetch`] works it out
    /// otherwise. Not sent to worker processes.
    ///
    /// [`Strategy::fetch`]: crate::Strategy::fetch
    #[serde(skip)]
    pub plan: Option<crate::plan::Plan>,
    /// How long the whole run may take, from the start of
    /// [`Strategy::fetch`](crate::Strategy::fetch): when it passes, the run
    /// stops as if cancelled, with [`StopCause::Deadline`] as the cause of
    /// every base not done. `None`: no deadline. Distinct from the
    /// per-request [`request_timeout`](Self::request_timeout).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_millis")]
    pub deadline: Option<Duration>,
    /// A stop handle the caller keeps, to stop the run from another thread
    /// or task ([`Stop::cancel`]); `None`: the run can only end by finishing
    /// or by its deadline. Not sent to worker processes.
    #[serde(skip)]
    pub stop: Option<Stop>,
    /// Receives each base's outcome the moment it is known, in the order
    /// they complete (asyncio's `as_completed`). Not sent to worker
    /// processes.
    #[serde(skip)]
    pub on_outcome: Option<OnOutcome>,
}

/// Milliseconds for an optional duration.
mod opt_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_u64(d.as_millis().try_into().unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

/// What a PEM certificate block starts with.
const PEM_CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----";

/// The classic currencies, comma-separated: the bases and symbols of the
/// classic matrix, the default bases and symbols everywhere (the CLI, the
/// `classic` scenario, the conformance suite). [`classic`] parses them.
pub const CLASSIC: &str = "USD,EUR,PLN,NOK,CZK";

/// The [`CLASSIC`] currencies, in order.
pub fn classic() -> Vec<CurrencyCode> {
    crate::parse_codes(CLASSIC).unwrap_or_default()
}

impl Config {
    /// The defaults, for `endpoint`: the classic symbols, concurrency 4, no
    /// rate limit, 3 retries, 2 s connect and 10 s request timeouts, 1 MiB body cap.
    ///
    /// # Errors
    /// When the endpoint template is invalid.
    pub fn new(endpoint: &str) -> Result<Self, Error> {
        Ok(Self {
            endpoint: Endpoint::parse(endpoint)?,
            symbols: classic(),
            concurrency: 4,
            rate_limit: None,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            max_body_bytes: 1 << 20,
            work: None,
            ca_cert_pem: None,
            progress: None,
            max_threads: None,
            plan: None,
            deadline: None,
            stop: None,
            on_outcome: None,
        })
    }

    /// Sets the concurrency.
    #[must_use]
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Sets the rate limit.
    #[must_use]
    pub fn with_rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.rate_limit = limit;
        self
    }

    /// Sets the number of retries.
    #[must_use]
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retry.retries = retries;
        self
    }

    /// Sets the CPU work per item.
    #[must_use]
    pub fn with_work(mut self, work: Option<crate::Work>) -> Self {
        self.work = work;
        self
    }

    /// Sets the request timeout.
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Trusts the root certificate(s) in `pem` for `https://` endpoints, in
    /// addition to the public roots.
    #[must_use]
    pub fn with_ca_cert_pem(mut self, pem: impl Into<String>) -> Self {
        self.ca_cert_pem = Some(pem.into());
        self
    }

    /// Trusts the root certificate(s) in the PEM file at `path`, in addition
    /// to the public roots.
    ///
    /// # Errors
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) naming the file when it
    /// cannot be read or holds no PEM certificate.
    pub fn with_ca_cert_file(self, path: &std::path::Path) -> Result<Self, Error> {
        let pem = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid_input(format!(
                "cannot read the CA certificate `{}`: {e}",
                path.display()
            ))
        })?;
        if !pem.contains(PEM_CERTIFICATE) {
            return Err(Error::invalid_input(format!(
                "`{}` holds no PEM certificate (a `{PEM_CERTIFICATE}` block): \
                 give a PEM file of the certificate to trust",
                path.display()
            )));
        }
        Ok(self.with_ca_cert_pem(pem))
    }

    /// Sets the whole run's deadline.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Option<Duration>) -> Self {
        self.deadline = deadline;
        self
    }

    /// Gives the run a stop handle the caller keeps.
    #[must_use]
    pub fn with_stop(mut self, stop: Stop) -> Self {
        self.stop = Some(stop);
        self
    }

    /// The run's stop handle: the one it has, or a new one given to it
    /// now. The one way a stop handle is made for a config (the CLI's
    /// Ctrl-C, a measured run stopped part-way, a deadline with no handle
    /// of the caller's).
    pub fn stop_handle(&mut self) -> Stop {
        self.stop.get_or_insert_with(Stop::new).clone()
    }

    /// Sends each base's outcome to `on_outcome` as it completes.
    #[must_use]
    pub fn with_on_outcome(mut self, on_outcome: OnOutcome) -> Self {
        self.on_outcome = Some(on_outcome);
        self
    }

    /// The run's stop handle: the one given, or one that never fires.
    pub fn stop(&self) -> &Stop {
        self.stop.as_ref().unwrap_or_else(|| Stop::never())
    }

    /// Why the run stopped, once it has.
    pub fn stopped(&self) -> Option<StopCause> {
        self.stop.as_ref().and_then(Stop::cause)
    }

    /// Sets the most OS threads a thread-per-request strategy starts at once.
    #[must_use]
    pub fn with_max_threads(mut self, max_threads: Option<usize>) -> Self {
        self.max_threads = max_threads;
        self
    }

    /// Checks the settings that the types cannot.
    ///
    /// # Errors
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) naming the setting and a fix.
    pub fn validate(&self) -> Result<(), Error> {
        if self.concurrency == 0 {
            return Err(Error::invalid_input(
                "invalid concurrency 0: at least one request must be allowed in flight",
            ));
        }
        if self.connect_timeout.is_zero() || self.request_timeout.is_zero() {
            return Err(Error::invalid_input(
                "invalid timeout 0: timeouts must be positive, like 2s",
            ));
        }
        if self.max_threads == Some(0) {
            return Err(Error::invalid_input(
                "invalid thread limit 0: allow at least one thread",
            ));
        }
        if self.deadline == Some(Duration::ZERO) {
            return Err(Error::invalid_input(
                "invalid deadline 0: a run needs some time, like 2s",
            ));
        }
        if self.max_body_bytes == 0 {
            return Err(Error::invalid_input(
                "invalid body cap 0: allow at least a few hundred bytes",
            ));
        }
        if let Some(pem) = &self.ca_cert_pem {
            if !pem.contains(PEM_CERTIFICATE) {
                return Err(Error::invalid_input(format!(
                    "invalid CA certificate: it holds no PEM certificate (a \
                     `{PEM_CERTIFICATE}` block); pass the certificate's PEM text"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classic_list_parses_whole() {
        let codes = classic();
        let names: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
        assert_eq!(names, CLASSIC.split(',').collect::<Vec<_>>());
        assert_eq!(names.len(), 5);
    }

    #[test]
    fn config_round_trips_through_json() {
        let c = Config::new("http://127.0.0.1:1/rates?base={base}")
            .unwrap()
            .with_rate_limit(Some(RateLimit::per_second(3.0).unwrap()));
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Config>(&json).unwrap(), c);
        let tls = Config::new("https://127.0.0.1:1/rates?base={base}")
            .unwrap()
            .with_ca_cert_pem("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
        let json = serde_json::to_string(&tls).unwrap();
        assert_eq!(serde_json::from_str::<Config>(&json).unwrap(), tls);
        // No deadline: the field is left out, as builds before it wrote.
        assert!(!json.contains("deadline"));
        let late = c.with_deadline(Some(Duration::from_millis(300)));
        let json = serde_json::to_string(&late).unwrap();
        assert!(json.contains(r#""deadline":300"#), "{json}");
        assert_eq!(serde_json::from_str::<Config>(&json).unwrap(), late);
    }

    #[test]
    fn validate_rejects_zeroes() {
        let c = Config::new("http://127.0.0.1:1/?b={base}").unwrap();
        assert!(c.clone().with_concurrency(0).validate().is_err());
        assert!(
            c.clone()
                .with_request_timeout(Duration::ZERO)
                .validate()
                .is_err()
        );
        assert!(c.clone().with_ca_cert_pem("not a cert").validate().is_err());
        let err = c
            .clone()
            .with_deadline(Some(Duration::ZERO))
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("deadline"), "{err}");
        assert!(c.validate().is_ok());
        let missing = std::path::Path::new("/nonexistent/ca.pem");
        let err = c.with_ca_cert_file(missing).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
