//! The async client: HTTP/1.1 keep-alive connections framed by [`crate::h1`]
//! (the response head parsed by `httparse`), written once and generic over
//! the runtime that supplies TCP connect, spawn and sleep. The runtime's
//! stream is seen through hyper's small I/O traits, for which every runtime
//! has an adapter; hyper's own client connection is not used (why: see
//! [`crate::h1`]).
//!
//! An [`AsyncClient`] owns one keep-alive connection and drives the shared
//! attempt machine ([`BaseFetch`]) for one base at a time with the
//! runtime's own timer ([`AsyncClient::fetch`]); how many clients run, and
//! which base each takes, is the concurrency model's (the `rates-async`
//! crate's worker driver), not the transport's.
//!
//! For `https://` endpoints each connection is wrapped in TLS by
//! `futures-rustls` over the runtime's stream (seen through a small
//! hyper-to-`futures-io` adapter), so the one connector written here serves
//! every runtime; the handshake counts as part of connecting.
//!
//! A connection is driven only by the worker that sends on it; there is no
//! connection task, channel or callback: every wake-up of a request lands on
//! the one task waiting for it, and dropping a connection (after an error, a
//! timeout, or at the end of the run) closes its socket at once, so nothing
//! of a run is left behind on the caller's runtime. A connection holds one
//! buffer of [`h1::BUFFER`] bytes (grown only for a longer response head),
//! which the request is written from and the response read into.

use std::fmt;
use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::FutureExt as _;
use rates_core::{
    BaseFetch, Config, CurrencyCode, Error, Outcome, RawResponse, Step, Throttle, panic_error,
};

use crate::h1;

mod conn;

use conn::{Conn, Stream, Target, attempt, connect};

/// What an async runtime supplies to the shared client: a TCP connection,
/// a timer, and a way to start a task. Everything else (HTTP, timeouts, the
/// body cap, retries, the rate limit) is written once, in this crate.
///
/// Implementations are small: see `rates-tokio`, `rates-smol` and
/// `rates-async-std`. The I/O type implements hyper's own I/O traits
/// ([`HyperRead`](crate::HyperRead), [`HyperWrite`](crate::HyperWrite)); use
/// `hyper_util::rt::TokioIo` for tokio streams and `smol_hyper::rt::FuturesIo`
/// for `futures-io` ones.
///
/// # Examples
///
/// A runtime made of smol's parts, and a client on it fetching one base:
///
/// ```
/// use std::{io, sync::Arc, time::Duration};
/// use rates_core::Config;
/// use rates_http::AsyncRuntime;
/// use smol_hyper::rt::FuturesIo;
///
/// #[derive(Clone)]
/// struct Smol(Arc<smol::Executor<'static>>);
///
/// impl AsyncRuntime for Smol {
///     type Io = FuturesIo<smol::net::TcpStream>;
///     fn name(&self) -> &'static str {
///         "my-smol"
///     }
///     async fn connect(&self, host: &str, port: u16) -> io::Result<Self::Io> {
///         Ok(FuturesIo::new(smol::net::TcpStream::connect((host, port)).await?))
///     }
///     async fn sleep(&self, duration: Duration) {
///         smol::Timer::after(duration).await;
///     }
///     fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
///         self.0.spawn(task).detach();
///     }
/// }
///
/// let server = rates_server::RatesServer::start(Default::default())?;
/// let config = Config::new(&server.endpoint())?;
/// let executor = Arc::new(smol::Executor::new());
/// let mut client = rates_http::AsyncClient::new(Smol(Arc::clone(&executor)), &config);
/// let outcome = smol::block_on(executor.run(client.fetch("USD".parse()?, &config, None)));
/// assert!(outcome.result.is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait AsyncRuntime: Clone + Send + Sync + 'static {
    /// A connected TCP stream, in hyper's I/O traits.
    type Io: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static;

    /// The strategy name reports made on this runtime carry (`"tokio"`).
    fn name(&self) -> &'static str;

    /// Opens a TCP connection to `host:port` (resolving `host` if needed).
    /// The client bounds it with the connect timeout.
    fn connect(&self, host: &str, port: u16) -> impl Future<Output = io::Result<Self::Io>> + Send;

    /// Waits `duration` on the runtime's own timer (never a thread sleep).
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send;

    /// Starts `task` (a worker) in the background; it is never awaited, and
    /// it catches its own panics.
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static);
}

/// An async HTTP client over one keep-alive HTTP/1.1 connection, configured
/// from a [`Config`]: the async twin of [`BlockingClient`](crate::BlockingClient).
///
/// It connects on first use and reuses the connection while it stays
/// healthy; after any error it drops the connection and the next request
/// reconnects. One request at a time (`&mut self`): a run uses one client
/// per worker task, so requests in flight never exceed the workers.
pub struct AsyncClient<R: AsyncRuntime> {
    runtime: R,
    target: Arc<Target>,
    conn: Option<Conn<Stream<R::Io>>>,
    /// The request timeout's timer, kept from one request to the next.
    watchdog: Watchdog,
}

/// A timer for request timeouts that outlives a request: one per client,
/// re-armed only when it fires before the deadline it guards, or when a
/// deadline comes before it.
///
/// Why not a fresh `sleep` per request: under smol and async-std every new
/// timer is sent to the reactor, which is woken to re-arm its timerfd, and
/// every dropped one is sent again; the requests of a fast server finish
/// long before their timeout, so that work is thrown away on each (strace
/// of smol on `overhead`, 20,000 requests: 2,161 reactor wake-up writes and
/// 12,285 `epoll_ctl` calls with a timer per request; none and 6,054 with
/// this one: `strace -f -c` of a smol fetch of 20,000 bases, 64 in flight,
/// against a server with no latency in a process of its own). With one timeout
/// for every request (the config's), each request's deadline is later than
/// the last one's, so the timer set for an earlier request still serves: it
/// fires at most once per timeout per client, early, and is then re-armed
/// at the deadline of the request it finds. A request never times out late.
struct Watchdog {
    timer: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    /// When `timer` fires.
    at: Instant,
}

impl Watchdog {
    fn new() -> Self {
        Self {
            timer: None,
            at: Instant::now(),
        }
    }

    /// Completes at `deadline` (or as soon after it as the runtime's timer
    /// fires), on `runtime`'s timer.
    async fn until<R: AsyncRuntime>(&mut self, runtime: &R, deadline: Instant) {
        loop {
            let timer = match self.timer.as_mut() {
                Some(timer) if self.at <= deadline => timer,
                _ => {
                    let runtime = runtime.clone();
                    let wait = deadline.saturating_duration_since(Instant::now());
                    self.at = deadline;
                    self.timer
                        .insert(Box::pin(async move { runtime.sleep(wait).await }))
                }
            };
            timer.await;
            // Fired: a timer is not polled again once it has completed.
            self.timer = None;
            if Instant::now() >= deadline {
                return;
            }
        }
    }
}

impl<R: AsyncRuntime> fmt::Debug for AsyncClient<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncClient")
            .field("runtime", &self.runtime.name())
            .field("target", &self.target.authority)
            .field("connected", &self.is_connected())
            .finish()
    }
}

/// What every client of one run shares: where to connect, the timeouts,
/// the body cap and the TLS set-up (so that sessions can be resumed across
/// connections). Cheap to clone.
#[derive(Clone, Debug)]
pub struct ClientSetup(Arc<Target>);

impl ClientSetup {
    /// The set-up for `config`.
    ///
    /// # Errors
    /// [`InvalidInput`](rates_core::ErrorKind::InvalidInput) for a CA
    /// certificate that cannot be read (per-request failures, an untrusted
    /// certificate among them, are the requests' own).
    pub fn new(config: &Config) -> Result<Self, Error> {
        let target = Target::new(config);
        if let Some(Err(e)) = &target.tls {
            return Err(e.clone());
        }
        Ok(Self(Arc::new(target)))
    }
}

impl<R: AsyncRuntime> AsyncClient<R> {
    /// A client for `config`'s endpoint, timeouts and body cap, on `runtime`.
    /// Nothing is connected until the first request.
    pub fn new(runtime: R, config: &Config) -> Self {
        Self::with_target(runtime, Arc::new(Target::new(config)))
    }

    /// A client of a run whose clients share `setup`, on `runtime`.
    pub fn with_setup(runtime: R, setup: &ClientSetup) -> Self {
        Self::with_target(runtime, Arc::clone(&setup.0))
    }

    fn with_target(runtime: R, target: Arc<Target>) -> Self {
        Self {
            runtime,
            target,
            conn: None,
            watchdog: Watchdog::new(),
        }
    }

    /// Whether it holds an open keep-alive connection.
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Sends one `GET path_and_query` and returns the status, `Retry-After`
    /// and (for 2xx) the body, read up to the cap; error bodies are drained
    /// and dropped, as the blocking client does.
    ///
    /// Connecting is bounded by the connect timeout, and the whole request
    /// (connecting included) by the request timeout, on the runtime's timer.
    ///
    /// # Errors
    /// Timeout, connection (refused, reset, closed early, truncated body),
    /// TLS (a certificate not trusted, a failed handshake) and
    /// body-too-large errors, as [`BlockingClient::get`](crate::BlockingClient::get)
    /// classifies them; HTTP statuses are values, not errors.
    pub async fn get(&mut self, path_and_query: &str) -> Result<RawResponse, Error> {
        self.get_from(path_and_query, Instant::now()).await.0
    }

    /// [`get`](Self::get), started at `now` (the caller's clock reading, so
    /// that a request reads the clock twice: here, and when it ends, which
    /// is returned). Reading the clock was the largest single item of the
    /// async client's own CPU in a profile of `overhead` under tokio (3% of
    /// the samples, at six readings per request).
    async fn get_from(
        &mut self,
        path_and_query: &str,
        now: Instant,
    ) -> (Result<RawResponse, Error>, Instant) {
        let Self {
            runtime,
            target,
            conn,
            watchdog,
        } = self;
        let target: &Target = target;
        let deadline = now + target.request_timeout;
        let attempt = attempt(runtime, target, conn, path_and_query, now);
        let timeout = async {
            watchdog.until(runtime, deadline).await;
            Err(h1::request_timed_out(
                &target.authority,
                target.request_timeout,
            ))
        };
        let result = attempt.or(timeout).await;
        let end = Instant::now();
        match (&result, self.conn.as_mut()) {
            // The connection's state is unknown (a request may be half
            // written or half read): never reuse it.
            (Err(_), _) => self.conn = None,
            (Ok(_), Some(conn)) => conn.last_used = end,
            (Ok(_), None) => {}
        }
        (result, end)
    }

    /// Runs the whole attempt loop for `base` (throttle, retries, backoff)
    /// with this client, waiting on the runtime's timer.
    ///
    /// A panic while fetching is caught and becomes this base's outcome
    /// (with the attempts made so far, the panicking one included).
    pub async fn fetch(
        &mut self,
        base: CurrencyCode,
        config: &Config,
        throttle: Option<&Throttle>,
    ) -> Outcome {
        let mut fetch = BaseFetch::new(base, config, throttle);
        let mut sending = false;
        match AssertUnwindSafe(self.drive(&mut fetch, &mut sending))
            .catch_unwind()
            .await
        {
            Ok(()) => fetch.into_outcome(),
            Err(payload) => {
                self.conn = None;
                let attempts = fetch.attempts() + u32::from(sending);
                Outcome::failed(base, attempts, panic_error(&*payload))
            }
        }
    }

    /// Waits `d` (a throttle slot or a backoff). With no open connection it
    /// connects meanwhile, so the request leaves the moment the wait ends:
    /// the throttle records the send when the wait ends, and a connect made
    /// after it would let a slow connect push the request late, next to the
    /// ones after it. A failed or unfinished connect here is not an attempt;
    /// the send connects again and reports its own error.
    async fn wait(&mut self, d: Duration) {
        let until = Instant::now() + d;
        if self.conn.is_none() {
            let connecting = async { Box::pin(connect(&self.runtime, &self.target)).await.ok() };
            let waited = async {
                self.runtime.sleep(d).await;
                None
            };
            if let Some(conn) = connecting.or(waited).await {
                self.conn = Some(conn);
            }
        }
        let left = until.saturating_duration_since(Instant::now());
        if !left.is_zero() {
            self.runtime.sleep(left).await;
        }
    }

    /// Drives `fetch` to [`Step::Done`]; `sending` is true while a request
    /// is out (so a panic there counts its attempt).
    async fn drive(&mut self, fetch: &mut BaseFetch<'_>, sending: &mut bool) {
        let mut now = Instant::now();
        loop {
            match fetch.next(now) {
                Step::Sleep(d) => {
                    self.wait(d).await;
                    now = Instant::now();
                }
                Step::Send => {
                    *sending = true;
                    let (result, end) = self.get_from(&fetch.path_and_query(), now).await;
                    *sending = false;
                    now = end;
                    fetch.record(result, now);
                }
                Step::Done => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as StdError;

    use super::*;

    #[derive(Debug)]
    struct Wrap(io::Error);

    impl fmt::Display for Wrap {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("connection error")
        }
    }

    impl StdError for Wrap {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn chains_name_every_cause() {
        let reset = Wrap(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "reset by peer",
        ));
        assert_eq!(h1::chain(&reset), "connection error: reset by peer");
        assert!(!h1::is_timed_out(&reset));
        let slow = Wrap(io::Error::new(io::ErrorKind::TimedOut, "slow"));
        assert!(h1::is_timed_out(&slow));
    }

    #[test]
    fn paths_and_hosts_that_cannot_be_sent_are_refused() {
        let config = Config::new("http://127.0.0.1:9/rates?base={base}").unwrap();
        let target = Target::new(&config);
        target.check("/rates?base=USD").unwrap();
        let err = target.check("/rates?base=U S D").unwrap_err();
        assert!(
            err.is_invalid_input() && err.to_string().contains("U S D"),
            "{err}"
        );
    }
}
