//! What a run is asked to do: endpoint, symbols, limits, retries, timeouts.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{CurrencyCode, Error};

/// A URL template with a `{base}` placeholder, such as
/// `http://127.0.0.1:8080/rates?base={base}&symbols={symbols}`.
///
/// `{symbols}` is optional; it becomes the comma-separated symbols of the
/// [`Config`]. Both `http://` and `https://` are accepted (default ports 80
/// and 443); for `https://` the clients verify the server's certificate
/// against the public roots and [`Config::ca_cert_pem`].
///
/// ```
/// use rates_core::Endpoint;
/// let e: Endpoint = "http://127.0.0.1:8080/latest?from={base}".parse()?;
/// assert_eq!(e.host(), "127.0.0.1");
/// assert_eq!(e.port(), 8080);
/// let e: Endpoint = "https://api.vatcomply.com/rates?base={base}".parse()?;
/// assert!(e.is_https());
/// assert_eq!(e.port(), 443);
/// # Ok::<(), rates_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Endpoint {
    template: String,
    host: String,
    port: u16,
    /// `https://` rather than `http://`.
    tls: bool,
    /// Index in `template` where the path begins.
    path_start: usize,
}

impl Endpoint {
    /// Parses a template.
    ///
    /// # Errors
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) naming the template when it
    /// is not `http[s]://host[:port]/path...` with a `{base}` placeholder.
    pub fn parse(template: &str) -> Result<Self, Error> {
        let bad = |why: &str| {
            Error::invalid_input(format!(
                "invalid endpoint `{template}`: {why}; expected a template like \
                 http://127.0.0.1:8080/rates?base={{base}}"
            ))
        };
        let (tls, rest) = match (
            template.strip_prefix("http://"),
            template.strip_prefix("https://"),
        ) {
            (Some(rest), _) => (false, rest),
            (None, Some(rest)) => (true, rest),
            (None, None) => return Err(bad("it must start with http:// or https://")),
        };
        if !template.contains("{base}") {
            return Err(bad("it has no {base} placeholder"));
        }
        let authority_len = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_len];
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| bad(&format!("`{p}` is not a port number")))?;
                (h, port)
            }
            _ => (authority, if tls { 443 } else { 80 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("it has no host"));
        }
        if host.contains("{base}") {
            return Err(bad("{base} must be in the path or query, not the host"));
        }
        Ok(Self {
            template: template.to_owned(),
            host: host.to_owned(),
            port,
            tls,
            path_start: template.len() - rest.len() + authority_len,
        })
    }

    /// Whether it is an `https://` endpoint.
    pub fn is_https(&self) -> bool {
        self.tls
    }

    /// `"https"` or `"http"`.
    pub fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    /// The host to connect to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `Host` header value (`host:port`).
    pub fn authority(&self) -> &str {
        let start = self.scheme().len() + "://".len();
        &self.template[start..self.path_start]
    }

    /// The template as given.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// The path and query for `base` (always starting with `/`).
    pub fn path_and_query(&self, base: CurrencyCode, symbols: &[CurrencyCode]) -> String {
        let tail = &self.template[self.path_start..];
        let mut out = String::with_capacity(tail.len() + 1 + 4 * symbols.len());
        if !tail.starts_with('/') {
            out.push('/');
        }
        fill(&mut out, tail, base, symbols);
        out
    }

    /// The full URL for `base`.
    pub fn url(&self, base: CurrencyCode, symbols: &[CurrencyCode]) -> String {
        let tail = &self.template[self.path_start..];
        let mut out = String::with_capacity(self.template.len() + 1 + 4 * symbols.len());
        out.push_str(&self.template[..self.path_start]);
        if !tail.starts_with('/') {
            out.push('/');
        }
        fill(&mut out, tail, base, symbols);
        out
    }
}

/// Appends `tail` to `out` with `{base}` and `{symbols}` filled in, in one
/// pass (this runs once per request).
fn fill(out: &mut String, tail: &str, base: CurrencyCode, symbols: &[CurrencyCode]) {
    let mut rest = tail;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        if let Some(r) = after.strip_prefix("{base}") {
            out.push_str(base.as_str());
            rest = r;
        } else if let Some(r) = after.strip_prefix("{symbols}") {
            for (i, s) in symbols.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(s.as_str());
            }
            rest = r;
        } else {
            out.push('{');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
}

impl FromStr for Endpoint {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Endpoint {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        Self::parse(&s)
    }
}

impl From<Endpoint> for String {
    fn from(e: Endpoint) -> String {
        e.template
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.template)
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({})", self.template)
    }
}

/// A rate limit in requests per second, enforced with no burst beyond it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    per_second: f64,
}

impl RateLimit {
    /// A limit of `per_second` requests per second.
    ///
    /// # Errors
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) unless it is finite and positive.
    pub fn per_second(per_second: f64) -> Result<Self, Error> {
        if per_second.is_finite() && per_second > 0.0 {
            Ok(Self { per_second })
        } else {
            Err(Error::invalid_input(format!(
                "invalid rate limit {per_second}: it must be a positive number of requests per second"
            )))
        }
    }

    /// Requests per second.
    pub fn rate(&self) -> f64 {
        self.per_second
    }

    /// Headroom for the jitter between sending a request and the server
    /// seeing it: a quarter of the plain spacing `1 / rate`, at least 10 ms
    /// and at most 50 ms. A slow first connection or a busy machine can delay
    /// one request more than the next; without headroom, `rate + 1` requests
    /// could then arrive within one second at the server.
    pub fn margin(&self) -> Duration {
        Duration::from_secs_f64(0.25 / self.per_second)
            .clamp(Duration::from_millis(10), Duration::from_millis(50))
    }

    /// The window the client counts `rate` requests in: one second plus the
    /// [`margin`](Self::margin).
    pub fn window(&self) -> Duration {
        Duration::from_secs(1) + self.margin()
    }

    /// The spacing the client keeps between request starts:
    /// [`window`](Self::window) / rate. At 100/s that is 10.1 ms (1% under
    /// the limit); at 5/s, 210 ms.
    pub fn interval(&self) -> Duration {
        self.window().div_f64(self.per_second)
    }
}

impl FromStr for RateLimit {
    type Err = Error;
    /// Parses `"100"`, `"100/s"`, `"30/m"` or `"2/min"`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || {
            Error::invalid_input(format!(
                "invalid rate limit `{s}`: write requests per second or minute, like 100/s or 30/m"
            ))
        };
        let (count, unit) = s.trim().split_once('/').unwrap_or((s.trim(), "s"));
        let count: f64 = count.trim().parse().map_err(|_| bad())?;
        let per_second = match unit.trim() {
            "s" | "sec" | "second" => count,
            "m" | "min" | "minute" => count / 60.0,
            _ => return Err(bad()),
        };
        Self::per_second(per_second).map_err(|_| bad())
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s", self.per_second)
    }
}

/// How failed attempts are retried: exponential backoff with jitter, honouring
/// the server's `Retry-After` up to a cap.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so at most `retries + 1` attempts).
    pub retries: u32,
    /// Backoff before the first retry; it doubles each retry.
    #[serde(with = "millis")]
    pub initial_backoff: Duration,
    /// The backoff never grows beyond this.
    #[serde(with = "millis")]
    pub max_backoff: Duration,
    /// A `Retry-After` longer than this is not waited for: the base fails at once.
    #[serde(with = "millis")]
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based) after `error`, or `None`
    /// when the error is not worth retrying or the retries are used up.
    ///
    /// Without `Retry-After` the wait is "equal jitter": half the exponential
    /// backoff plus a random part of the other half. With `Retry-After` the
    /// wait is that long plus up to 10% jitter, never less.
    pub fn delay(&self, retry: u32, error: &Error, jitter: f64) -> Option<Duration> {
        if retry > self.retries || !error.is_retryable() {
            return None;
        }
        let jitter = jitter.clamp(0.0, 1.0);
        if let Some(after) = error.retry_after() {
            if after > self.max_retry_after {
                return None;
            }
            return Some(after + after.mul_f64(0.1 * jitter));
        }
        let exp = self
            .initial_backoff
            .saturating_mul(
                1u32.checked_shl(retry.saturating_sub(1))
                    .unwrap_or(u32::MAX),
            )
            .min(self.max_backoff);
        Some(exp / 2 + (exp / 2).mul_f64(jitter))
    }
}

/// How to start a worker process (for the process strategy).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerCommand {
    /// The program to run.
    pub program: std::path::PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
}

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
    /// besides the public roots, such as the one `rates serve --tls` writes.
    /// The contents, not a path, so they travel to worker processes with the
    /// rest of the config. There is no switch that turns verification off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert_pem: Option<String>,
    /// Counts finished bases as a run goes (for progress displays); not sent
    /// to worker processes.
    #[serde(skip)]
    pub progress: Option<Progress>,
    /// The worker program for the process strategy (else `RATES_WORKER`, else a
    /// `rates-worker` binary beside the running executable).
    #[serde(default)]
    pub worker: Option<WorkerCommand>,
    /// The most OS threads a strategy that holds one per request in flight
    /// (`threads`, `pool`, `rayon`) starts at once. `None`: as many as the
    /// machine allows ([`MachineLimits::thread_budget`]); a lower figure
    /// caps them further, never raises the machine's limit.
    ///
    /// [`MachineLimits::thread_budget`]: crate::limits::MachineLimits::thread_budget
    #[serde(default)]
    pub max_threads: Option<usize>,
    /// Whether the server shares this process (the embedded server behind
    /// `rates fetch`, tests and benches), so each connection costs two file
    /// descriptors of the process's open-files limit instead of one.
    #[serde(default)]
    pub server_in_process: bool,
}

/// What a PEM certificate block starts with.
const PEM_CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----";

/// The symbols of the classic matrix.
pub const DEFAULT_SYMBOLS: [&str; 5] = ["USD", "EUR", "PLN", "NOK", "CZK"];

impl Config {
    /// The defaults, for `endpoint`: the classic symbols, concurrency 4, no
    /// rate limit, 3 retries, 2 s connect and 10 s request timeouts, 1 MiB body cap.
    ///
    /// # Errors
    /// When the endpoint template is invalid.
    pub fn new(endpoint: &str) -> Result<Self, Error> {
        Ok(Self {
            endpoint: Endpoint::parse(endpoint)?,
            symbols: DEFAULT_SYMBOLS
                .iter()
                .map(|s| CurrencyCode::new(s))
                .collect::<Result<_, _>>()?,
            concurrency: 4,
            rate_limit: None,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            max_body_bytes: 1 << 20,
            work: None,
            ca_cert_pem: None,
            progress: None,
            worker: None,
            max_threads: None,
            server_in_process: false,
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
                 pass the certificate file, such as the one `rates serve --tls` prints",
                path.display()
            )));
        }
        Ok(self.with_ca_cert_pem(pem))
    }

    /// Sets the most OS threads a thread-per-request strategy starts at once.
    #[must_use]
    pub fn with_max_threads(mut self, max_threads: Option<usize>) -> Self {
        self.max_threads = max_threads;
        self
    }

    /// File descriptors one connection costs this process: two when the
    /// server shares it, else one.
    pub fn files_per_connection(&self) -> u64 {
        if self.server_in_process { 2 } else { 1 }
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

/// What a run's observers see as it goes: bases finished so far, when the
/// first one finished, and the latency of every request, all fed by the
/// attempt loop every strategy shares, so any display or measurement can
/// follow any strategy's run with the same code.
///
/// ```
/// use rates_core::Progress;
/// let progress = Progress::default();
/// assert_eq!(progress.done(), 0);
/// assert_eq!(progress.first_done_at(), None);
/// assert_eq!(progress.latency_quantile(0.5), None);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Progress(std::sync::Arc<ProgressInner>);

#[derive(Debug, Default)]
struct ProgressInner {
    done: std::sync::atomic::AtomicUsize,
    first_done: std::sync::OnceLock<std::time::Instant>,
    latency: crate::histogram::Histogram,
    worked: std::sync::atomic::AtomicUsize,
}

impl Progress {
    /// Bases finished so far.
    pub fn done(&self) -> usize {
        self.0.done.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// When the first base of the run finished (succeeded or failed).
    pub fn first_done_at(&self) -> Option<std::time::Instant> {
        self.0.first_done.get().copied()
    }

    /// The `q` quantile (0.5 for the median, 0.99) of the latency of one
    /// request, from the moment the attempt loop said "send" to the moment
    /// its answer (or error) was recorded; `None` before any request.
    /// Accurate to about 3% (a log-linear histogram of microseconds).
    pub fn latency_quantile(&self, q: f64) -> Option<Duration> {
        self.0.latency.quantile(q).map(Duration::from_micros)
    }

    /// Items whose CPU work ([`Config::work`]) was done.
    pub fn worked(&self) -> usize {
        self.0.worked.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Counts one item's work as done (the attempt loop does; a strategy
    /// whose work runs elsewhere, as in a child process, calls this when
    /// it hears of it).
    pub fn work_done(&self) {
        self.0
            .worked
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Requests whose latency was recorded.
    pub fn requests(&self) -> u64 {
        self.0.latency.count()
    }

    pub(crate) fn finish_one(&self) {
        self.0.first_done.get_or_init(std::time::Instant::now);
        self.0
            .done
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn record_latency(&self, latency: Duration) {
        self.0
            .latency
            .record(latency.as_micros().try_into().unwrap_or(u64::MAX));
    }
}

impl PartialEq for Progress {
    /// Two handles are equal when they count the same run.
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Serialises a `Duration` as whole milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis().try_into().unwrap_or(u64::MAX))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> CurrencyCode {
        s.parse().unwrap()
    }

    #[test]
    fn endpoint_fills_base_and_symbols() {
        let e = Endpoint::parse("http://localhost:9/rates?base={base}&symbols={symbols}").unwrap();
        assert_eq!(e.host(), "localhost");
        assert_eq!(e.port(), 9);
        assert_eq!(e.authority(), "localhost:9");
        assert_eq!(
            e.url(code("USD"), &[code("EUR"), code("PLN")]),
            "http://localhost:9/rates?base=USD&symbols=EUR,PLN"
        );
        let e = Endpoint::parse("http://example.com?base={base}").unwrap();
        assert_eq!(e.port(), 80);
        assert_eq!(e.path_and_query(code("EUR"), &[]), "/?base=EUR");
        assert_eq!(e.url(code("EUR"), &[]), "http://example.com/?base=EUR");
        // Other braces stay as they are; placeholders may repeat.
        let e = Endpoint::parse("http://h/{x}/{base}?b={base}&s={symbols}&{").unwrap();
        assert_eq!(
            e.path_and_query(code("USD"), &[code("EUR")]),
            "/{x}/USD?b=USD&s=EUR&{"
        );
        let e = Endpoint::parse("http://[::1]:81/latest?from={base}").unwrap();
        assert_eq!((e.host(), e.port()), ("::1", 81));
        assert!(!e.is_https());
    }

    #[test]
    fn https_endpoints_default_to_port_443() {
        let e = Endpoint::parse("https://api.frankfurter.dev/v1/latest?base={base}").unwrap();
        assert!(e.is_https());
        assert_eq!((e.host(), e.port()), ("api.frankfurter.dev", 443));
        assert_eq!(e.authority(), "api.frankfurter.dev");
        assert_eq!(
            e.url(code("USD"), &[]),
            "https://api.frankfurter.dev/v1/latest?base=USD"
        );
        let e = Endpoint::parse("https://[::1]:8443/rates?base={base}").unwrap();
        assert_eq!(
            (e.host(), e.port(), e.authority()),
            ("::1", 8443, "[::1]:8443")
        );
        assert_eq!(e.path_and_query(code("EUR"), &[]), "/rates?base=EUR");
    }

    #[test]
    fn endpoint_errors_name_the_input() {
        for bad in [
            "ftp://x/{base}",
            "https://x:443x/{base}",
            "https:///{base}",
            "http://x/rates",
            "http://x:99999/{base}",
            "http:///{base}",
        ] {
            let err = Endpoint::parse(bad).unwrap_err();
            assert!(err.is_invalid_input());
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn rate_limit_headroom_scales_with_the_spacing() {
        let at = |r: f64| RateLimit::per_second(r).unwrap();
        assert_eq!(at(100.0).margin(), Duration::from_millis(10));
        assert_eq!(at(100.0).interval(), Duration::from_micros(10_100));
        assert_eq!(at(10.0).margin(), Duration::from_millis(25));
        assert_eq!(at(5.0).margin(), Duration::from_millis(50));
        assert_eq!(at(5.0).interval(), Duration::from_millis(210));
        assert_eq!(at(0.5).window(), Duration::from_millis(1050));
    }

    #[test]
    fn rate_limit_parsing() {
        assert_eq!("2/s".parse::<RateLimit>().unwrap().rate(), 2.0);
        assert_eq!("100".parse::<RateLimit>().unwrap().rate(), 100.0);
        assert_eq!("30/m".parse::<RateLimit>().unwrap().rate(), 0.5);
        for bad in ["0/s", "-1", "abc", "5/h", "inf"] {
            let err = bad.parse::<RateLimit>().unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn backoff_grows_caps_and_honours_retry_after() {
        let p = RetryPolicy::default();
        let e = Error::status(500, None);
        assert_eq!(p.delay(1, &e, 0.0), Some(Duration::from_millis(50)));
        assert_eq!(p.delay(1, &e, 1.0), Some(Duration::from_millis(100)));
        assert_eq!(p.delay(3, &e, 1.0), Some(Duration::from_millis(400)));
        assert_eq!(p.delay(4, &e, 1.0), None, "only 3 retries");
        let big = RetryPolicy {
            retries: 40,
            ..RetryPolicy::default()
        };
        assert_eq!(big.delay(40, &e, 1.0), Some(Duration::from_secs(5)));
        let limited = Error::status(429, Some(Duration::from_secs(1)));
        let d = p.delay(1, &limited, 0.5).unwrap();
        assert!(d >= Duration::from_secs(1) && d <= Duration::from_millis(1100));
        let too_long = Error::status(429, Some(Duration::from_secs(3600)));
        assert_eq!(p.delay(1, &too_long, 0.5), None);
        assert_eq!(p.delay(1, &Error::status(404, None), 0.5), None);
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
        assert!(c.validate().is_ok());
        let missing = std::path::Path::new("/nonexistent/ca.pem");
        let err = c.with_ca_cert_file(missing).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
