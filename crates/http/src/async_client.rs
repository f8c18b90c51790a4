//! The async client: HTTP/1.1 keep-alive connections framed by [`crate::h1`]
//! (the response head parsed by `httparse`), written once and generic over
//! the runtime that supplies TCP connect, spawn and sleep. The runtime's
//! stream is seen through hyper's small I/O traits, for which every runtime
//! has an adapter; hyper's own client connection is not used (why: see
//! [`crate::h1`]).
//!
//! [`fetch_all`] starts `min(concurrency, bases)` worker tasks. Each worker
//! owns one keep-alive connection (an [`AsyncClient`]), takes the next base
//! index from a shared counter, drives the shared attempt machine
//! ([`BaseFetch`]) with the runtime's own timer, and writes the outcome into
//! that base's place in the run's [`Outcomes`]. The run ends when every
//! worker has dropped its end of a channel, so a worker that dies never
//! hangs the run, and its base reads as a worker crash instead of being lost.
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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_lite::FutureExt as _;
use hyper::rt::{ReadBuf, ReadBufCursor};
use rates_core::{
    BaseFetch, Config, CurrencyCode, Error, ErrorKind, Outcome, Outcomes, RawResponse, Step,
    Throttle, panic_error,
};

use crate::h1;

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
/// A runtime made of smol's parts, used to fetch two bases:
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
/// let bases = rates_core::parse_codes("USD,EUR")?;
/// let executor = Arc::new(smol::Executor::new());
/// let runtime = Smol(Arc::clone(&executor));
/// // One place per base; a strategy's `run` is handed these by `Strategy::fetch`.
/// let outcomes = Arc::new(rates_core::Outcomes::new(&bases, None));
/// let run = rates_http::fetch_all(runtime, &config, Arc::clone(&outcomes));
/// smol::block_on(executor.run(run))?;
/// let report = outcomes.report("my-smol", Duration::ZERO);
/// assert!(report.all_succeeded());
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

/// Where requests go and the limits on them, shared by every worker of a run.
#[derive(Debug)]
struct Target {
    host: String,
    port: u16,
    authority: String,
    connect_timeout: Duration,
    request_timeout: Duration,
    max_body: usize,
    /// For `https://`: the TLS set-up, or why there can be none.
    tls: Option<Result<Tls, Error>>,
}

/// The TLS set-up shared by every connection of a run (so sessions can be
/// resumed across them).
struct Tls {
    connector: futures_rustls::TlsConnector,
    name: rustls::pki_types::ServerName<'static>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls").field("name", &self.name).finish()
    }
}

impl Target {
    fn new(config: &Config) -> Self {
        let endpoint = &config.endpoint;
        Self {
            host: endpoint.host().to_owned(),
            port: endpoint.port(),
            authority: endpoint.authority().to_owned(),
            connect_timeout: config.connect_timeout,
            request_timeout: config.request_timeout,
            max_body: config.max_body_bytes,
            tls: endpoint.is_https().then(|| {
                crate::tls::connector(config).map(|(connector, name)| Tls { connector, name })
            }),
        }
    }

    /// Checks that `GET path_and_query` can be sent to this host as it is:
    /// one that cannot fails here, before anything is connected.
    fn check(&self, path_and_query: &str) -> Result<(), Error> {
        if !h1::is_token_text(&self.authority) {
            return Err(Error::invalid_input(format!(
                "invalid endpoint host `{}`: it cannot be sent as a Host header; \
                 use a plain host name or IP address",
                self.authority
            )));
        }
        if !path_and_query.starts_with('/') || !h1::is_token_text(path_and_query) {
            return Err(Error::invalid_input(format!(
                "invalid request path `{path_and_query}`: it must start with `/` and hold no \
                 spaces or control characters; check the endpoint template"
            )));
        }
        Ok(())
    }

    fn peer(&self) -> h1::Peer<'_> {
        h1::Peer {
            authority: &self.authority,
            max_body: self.max_body,
        }
    }
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
/// this one; `strace -f -c rates fetch --strategy smol --bases 20000
/// --concurrency 64 --endpoint ...` against `rates serve --latency 0`). With one timeout
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

/// A connection's bytes: the runtime's stream, or TLS over it.
enum Stream<Io> {
    Plain(Io),
    Tls(Box<smol_hyper::rt::FuturesIo<futures_rustls::client::TlsStream<Compat<Io>>>>),
}

impl<Io: hyper::rt::Read + hyper::rt::Write + Unpin> hyper::rt::Read for Stream<Io> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_read(cx, buf),
            Self::Tls(tls) => Pin::new(&mut **tls).poll_read(cx, buf),
        }
    }
}

impl<Io: hyper::rt::Read + hyper::rt::Write + Unpin> hyper::rt::Write for Stream<Io> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_write(cx, buf),
            Self::Tls(tls) => Pin::new(&mut **tls).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_flush(cx),
            Self::Tls(tls) => Pin::new(&mut **tls).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_shutdown(cx),
            Self::Tls(tls) => Pin::new(&mut **tls).poll_shutdown(cx),
        }
    }
}

/// The runtime's stream (hyper's I/O traits) seen through `futures-io`'s,
/// which `futures-rustls` drives: the one adapter that lets the same TLS
/// connector serve every runtime.
struct Compat<Io>(Io);

impl<Io: hyper::rt::Read + Unpin> futures_io::AsyncRead for Compat<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut read = ReadBuf::new(buf);
        match Pin::new(&mut self.0).poll_read(cx, read.unfilled()) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(read.filled().len())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<Io: hyper::rt::Write + Unpin> futures_io::AsyncWrite for Compat<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// One HTTP/1.1 keep-alive connection and its one buffer.
struct Conn<Io> {
    io: Io,
    /// The request is written from it, then the response read into it.
    buf: Vec<u8>,
    /// Whether a response has come back on it (so the server may have
    /// closed it while it sat idle).
    reused: bool,
    last_used: Instant,
}

/// Why an exchange on a connection failed.
enum ExchangeError {
    /// The kept-alive connection had been closed by the server before
    /// anything was sent on it.
    NotReady(Error),
    /// The request failed after it was sent.
    Failed(Error),
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

impl<R: AsyncRuntime> AsyncClient<R> {
    /// A client for `config`'s endpoint, timeouts and body cap, on `runtime`.
    /// Nothing is connected until the first request.
    pub fn new(runtime: R, config: &Config) -> Self {
        Self::with_target(runtime, Arc::new(Target::new(config)))
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

/// One request on the kept-alive connection in `slot`, connecting first if
/// there is none.
async fn attempt<R: AsyncRuntime>(
    runtime: &R,
    target: &Target,
    slot: &mut Option<Conn<Stream<R::Io>>>,
    path_and_query: &str,
    now: Instant,
) -> Result<RawResponse, Error> {
    // A request that cannot be sent fails before anything is connected.
    target.check(path_and_query)?;
    let mut fresh = false;
    loop {
        let conn = match slot {
            Some(conn) => conn,
            None => {
                fresh = true;
                // Boxed: connecting (and a TLS handshake) is the largest
                // state a request goes through and happens once per
                // connection; inline, every waiting task would carry its
                // size.
                slot.insert(Box::pin(connect(runtime, target)).await?)
            }
        };
        match conn.exchange(target, path_and_query, now).await {
            Ok((raw, reusable)) => {
                if !reusable {
                    *slot = None;
                }
                return Ok(raw);
            }
            // The kept-alive connection closed while idle; nothing was sent
            // on it, so this is not an attempt: connect again (once: the
            // next connection is fresh).
            Err(ExchangeError::NotReady(_)) if !fresh => *slot = None,
            Err(ExchangeError::NotReady(e) | ExchangeError::Failed(e)) => {
                *slot = None;
                return Err(e);
            }
        }
    }
}

impl<Io: hyper::rt::Read + hyper::rt::Write + Unpin> Conn<Io> {
    fn new(io: Io) -> Self {
        Self {
            io,
            buf: Vec::with_capacity(h1::BUFFER),
            reused: false,
            last_used: Instant::now(),
        }
    }

    /// Sends `request` at `now` and reads its response. The flag says
    /// whether the connection may be reused (the body was read to its end,
    /// the server did not ask to close, and nothing followed the response).
    /// The caller sets `last_used` when the exchange is over.
    async fn exchange(
        &mut self,
        target: &Target,
        path_and_query: &str,
        now: Instant,
    ) -> Result<(RawResponse, bool), ExchangeError> {
        if self.reused
            && now.saturating_duration_since(self.last_used) >= h1::IDLE_CHECK
            && self.closed_while_idle().await
        {
            return Err(ExchangeError::NotReady(Error::new(
                ErrorKind::Connection,
                format!("{} closed the kept-alive connection", target.authority),
            )));
        }
        self.reused = true;
        let mut request = std::mem::take(&mut self.buf);
        request.clear();
        h1::encode_request(&mut request, path_and_query, &target.authority);
        let written = self.write_all(&request).await;
        self.buf = request;
        self.buf.clear();
        self.buf.resize(h1::BUFFER, 0);
        written.map_err(|e| {
            ExchangeError::Failed(target.peer().io_error("sending the request", &e))
        })?;
        let result = self.read_response(target).await;
        if self.buf.len() > h1::BUFFER {
            // A long head grew it: back to the usual size for the next one.
            self.buf.truncate(h1::BUFFER);
            self.buf.shrink_to_fit();
        }
        result.map_err(ExchangeError::Failed)
    }

    /// Whether the server has closed (or written to) the connection while
    /// it was idle: one non-blocking look, which on a quiet connection
    /// costs no system call where the runtime tracks readiness.
    async fn closed_while_idle(&mut self) -> bool {
        let io = &mut self.io;
        let mut byte = [0u8; 1];
        std::future::poll_fn(|cx| {
            let mut read = ReadBuf::new(&mut byte);
            match Pin::new(&mut *io).poll_read(cx, read.unfilled()) {
                Poll::Pending => Poll::Ready(false),
                // An end of file, bytes nobody asked for, or an error.
                Poll::Ready(_) => Poll::Ready(true),
            }
        })
        .await
    }

    async fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let n = std::future::poll_fn(|cx| Pin::new(&mut self.io).poll_write(cx, bytes)).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            bytes = &bytes[n..];
        }
        std::future::poll_fn(|cx| Pin::new(&mut self.io).poll_flush(cx)).await
    }

    /// Reads into `buf[from..]`; 0 is the end of the stream.
    async fn read_into(&mut self, from: usize) -> io::Result<usize> {
        let Self { io, buf, .. } = self;
        std::future::poll_fn(|cx| {
            let mut read = ReadBuf::new(&mut buf[from..]);
            match Pin::new(&mut *io).poll_read(cx, read.unfilled()) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(read.filled().len())),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    /// Reads the response into the connection's buffer.
    async fn read_response(&mut self, target: &Target) -> h1::Exchanged {
        let peer = target.peer();
        let mut response = h1::ResponseReader::new();
        loop {
            let from = response.next_read(&mut self.buf, peer)?;
            let n = match self.read_into(from).await {
                Ok(n) => n,
                Err(e) => return response.failed(&e, peer),
            };
            if let Some(done) = response.advance(&mut self.buf, n, peer) {
                return done;
            }
        }
    }
}

/// Connects and, for `https://`, performs the TLS handshake (both bounded
/// by the connect timeout).
async fn connect<R: AsyncRuntime>(
    runtime: &R,
    target: &Target,
) -> Result<Conn<Stream<R::Io>>, Error> {
    let tls = match &target.tls {
        None => None,
        Some(Ok(tls)) => Some(tls),
        Some(Err(e)) => return Err(e.clone()),
    };
    let connecting = async {
        let io = runtime
            .connect(&target.host, target.port)
            .await
            .map_err(|e| {
                let kind = if e.kind() == io::ErrorKind::TimedOut {
                    ErrorKind::Timeout
                } else {
                    ErrorKind::Connection
                };
                Error::new(
                    kind,
                    format!("could not connect to {}: {e}", target.authority),
                )
            })?;
        let Some(tls) = tls else {
            return Ok(Stream::Plain(io));
        };
        match tls.connector.connect(tls.name.clone(), Compat(io)).await {
            Ok(stream) => Ok(Stream::Tls(Box::new(smol_hyper::rt::FuturesIo::new(
                stream,
            )))),
            Err(e) => Err(match crate::tls::rustls_error(&e) {
                Some(r) => crate::tls::error(&target.authority, r),
                None => Error::new(
                    if e.kind() == io::ErrorKind::TimedOut {
                        ErrorKind::Timeout
                    } else {
                        ErrorKind::Connection
                    },
                    format!("the TLS handshake with {} broke off: {e}", target.authority),
                ),
            }),
        }
    };
    let timeout = async {
        runtime.sleep(target.connect_timeout).await;
        Err(h1::connect_timed_out(
            &target.authority,
            target.connect_timeout,
        ))
    };
    Ok(Conn::new(connecting.or(timeout).await?))
}

/// The shared state of one [`fetch_all`] run.
#[derive(Debug)]
struct Run {
    config: Config,
    throttle: Option<Throttle>,
    next: AtomicUsize,
    outcomes: Arc<Outcomes>,
}

/// Workers spawned at once before the spawning task yields.
///
/// async-executor (smol, async-std) runs tasks first in, first out, and a
/// task woken by its connection is queued behind every task spawned before
/// it: spawning 1,000 workers in one go (the `scale` scenario) had every
/// one connect before the first request went out, about 40 ms later
/// (strace: 281 connects before the first request with smol, 106 with
/// tokio, whose woken tasks jump the queue). Spawning in waves lets the
/// first connected workers send while the rest are spawned.
const SPAWN_WAVE: usize = 64;

/// Fetches every base of `outcomes` on `runtime`, putting each base's
/// outcome in its place; [`Strategy::fetch`](rates_core::Strategy::fetch)
/// (or [`fetch_async`](rates_core::fetch_async)) makes the report around it.
///
/// Starts `min(concurrency, bases)` worker tasks (from a task of the
/// runtime's own, in waves of 64), each with its own keep-alive connection, so requests in flight never exceed the configured
/// concurrency. Timeouts, the body cap, the rate limit and retries behave as
/// in the blocking strategies; every wait is on the runtime's timer.
///
/// When the config's stop handle fires, no worker takes another base and
/// each drops its request in flight (or its wait) and its connection at
/// once; the bases left are the report's to read as cancelled.
///
/// The returned future waits for the workers; it needs no particular
/// executor itself, but the workers run wherever `runtime` spawns them.
///
/// # Errors
/// A CA certificate that cannot be read
/// ([`InvalidInput`](ErrorKind::InvalidInput)); per-base failures (a
/// certificate that is not trusted among them) are outcomes.
pub async fn fetch_all<R: AsyncRuntime>(
    runtime: R,
    config: &Config,
    outcomes: Arc<Outcomes>,
) -> Result<(), Error> {
    let target = Arc::new(Target::new(config));
    if let Some(Err(e)) = &target.tls {
        return Err(e.clone());
    }
    let workers = config.concurrency.min(outcomes.len());
    let run = Arc::new(Run {
        config: config.clone(),
        throttle: Throttle::for_limit(config.rate_limit),
        next: AtomicUsize::new(0),
        outcomes,
    });
    // Nothing is ever sent: `recv` returns once every worker has dropped its
    // sender, whether it finished or its task was dropped.
    let (alive, all_done) = async_channel::bounded::<()>(1);
    // The workers are spawned by a task of the runtime's own, so that its
    // yields between waves hand the executor to the workers already
    // spawned: a caller outside the executor (`block_on`, as async-std's
    // strategy and `#[async_std::main]` run it) that yields is polled again
    // at once, and spawned all 10,000 workers of `huge` before any sent a
    // request (async-std: 0.48 s from start to the first request at the
    // server, against 36 ms this way).
    let spawner = {
        let runtime = runtime.clone();
        async move {
            for n in 0..workers {
                if run.config.stopped().is_some() {
                    break;
                }
                if n > 0 && n % SPAWN_WAVE == 0 {
                    // Let the workers spawned so far run before spawning
                    // more (see SPAWN_WAVE).
                    futures_lite::future::yield_now().await;
                }
                let client = AsyncClient::with_target(runtime.clone(), Arc::clone(&target));
                runtime.spawn(worker(client, Arc::clone(&run), alive.clone()));
            }
        }
    };
    runtime.spawn(spawner);
    let _ = all_done.recv().await;
    Ok(())
}

/// Takes bases until there are none left, or the run's stop handle fires:
/// then the request in flight (or the wait) is dropped with its connection,
/// and its base is left for the report to read as cancelled. `_alive` is
/// dropped on the way out.
async fn worker<R: AsyncRuntime>(
    mut client: AsyncClient<R>,
    run: Arc<Run>,
    _alive: async_channel::Sender<()>,
) {
    let work = async {
        loop {
            let i = run.next.fetch_add(1, Ordering::Relaxed);
            let Some(&base) = run.outcomes.bases().get(i) else {
                return;
            };
            let outcome = client.fetch(base, &run.config, run.throttle.as_ref()).await;
            run.outcomes.put(i, outcome);
        }
    };
    match &run.config.stop {
        // One race for the worker's whole life: polling the stop's side
        // costs an atomic load while it has not fired.
        Some(stop) => {
            futures_lite::future::or(work, async {
                stop.stopped().await;
            })
            .await;
        }
        None => work.await,
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
