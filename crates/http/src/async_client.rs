//! The async client: hyper 1 `client::conn::http1`, written once and generic
//! over the runtime that supplies TCP connect, spawn and sleep.
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
//! hyper's connection future is polled by the worker that sends on it, not
//! spawned as a task of its own: every wake-up of a request lands on the one
//! task waiting for it, and dropping a connection (after an error, a timeout,
//! or at the end of the run) closes its socket at once, so nothing of a run
//! is left behind on the caller's runtime.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::FutureExt as _;
use http_body_util::{BodyExt as _, Empty};
use hyper::body::{Body as _, Incoming};
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper::header::{HOST, HeaderValue, RETRY_AFTER, USER_AGENT};
use hyper::rt::ReadBufCursor;
use hyper::{Request, Response};
use rates_core::{
    BaseFetch, Config, CurrencyCode, Error, ErrorKind, Outcome, Outcomes, RawResponse, Step,
    Throttle, panic_error,
};

use crate::parse_retry_after;

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
    host_header: Option<HeaderValue>,
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
            host_header: HeaderValue::from_str(endpoint.authority()).ok(),
            connect_timeout: config.connect_timeout,
            request_timeout: config.request_timeout,
            max_body: config.max_body_bytes,
            tls: endpoint.is_https().then(|| {
                crate::tls::connector(config).map(|(connector, name)| Tls { connector, name })
            }),
        }
    }

    fn request(&self, path_and_query: &str) -> Result<Request<Empty<Bytes>>, Error> {
        let host = self.host_header.clone().ok_or_else(|| {
            Error::invalid_input(format!(
                "invalid endpoint host `{}`: it cannot be sent as a Host header; \
                 use a plain host name or IP address",
                self.authority
            ))
        })?;
        Request::get(path_and_query)
            .header(HOST, host)
            .header(USER_AGENT, HeaderValue::from_static(crate::USER_AGENT))
            .body(Empty::new())
            .map_err(|e| {
                Error::invalid_input(format!(
                    "invalid request path `{path_and_query}`: {e}; check the endpoint template"
                ))
            })
    }

    fn connection_error(&self, e: &(dyn StdError + 'static)) -> Error {
        if let Some(tls) = crate::tls::rustls_error(e) {
            return crate::tls::error(&self.authority, tls);
        }
        if e.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_parse_too_large)
        {
            return Error::new(
                ErrorKind::Connection,
                format!(
                    "the response headers are larger than the client's {READ_BUFFER}-byte \
                     read buffer (from {}); the rates APIs send well under 1 KiB",
                    self.authority
                ),
            );
        }
        let kind = if is_timed_out(e) {
            ErrorKind::Timeout
        } else {
            ErrorKind::Connection
        };
        Error::new(
            kind,
            format!("the connection to {} failed: {}", self.authority, chain(e)),
        )
    }

    fn too_large(&self) -> Error {
        Error::new(
            ErrorKind::BodyTooLarge,
            format!(
                "the response body is larger than the {}-byte cap (raise max_body_bytes)",
                self.max_body
            ),
        )
    }
}

/// An error and its sources, joined with `": "`.
fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Whether the OS reported a timeout anywhere in the chain.
fn is_timed_out(e: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if e.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut)
        {
            return true;
        }
        next = e.source();
    }
    false
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
        let mut read = hyper::rt::ReadBuf::new(buf);
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

/// One HTTP/1.1 connection: the handle requests are sent on, and the
/// connection future that does the I/O, polled by the task that sends (see
/// [`Conn::exchange`]).
struct Conn<Io: hyper::rt::Read + hyper::rt::Write + Unpin> {
    sender: SendRequest<Empty<Bytes>>,
    /// `None` once the connection has finished (closed or failed).
    io: Option<Pin<Box<Http1<Io>>>>,
}

/// hyper's connection future for GET requests (no request body).
type Http1<Io> = Connection<Io, Empty<Bytes>>;

/// Why an exchange on a connection failed.
enum ExchangeError {
    /// The connection was closed before anything was sent on it.
    NotReady(hyper::Error),
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
        }
    }

    /// Whether it holds an open keep-alive connection.
    pub fn is_connected(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| !c.is_closed())
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
        let Self {
            runtime,
            target,
            conn,
        } = self;
        let target: &Target = target;
        let attempt = attempt(runtime, target, conn, path_and_query);
        let timeout = async {
            runtime.sleep(target.request_timeout).await;
            Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "no complete response from {} within the {:?} request timeout \
                     (raise request_timeout)",
                    target.authority, target.request_timeout
                ),
            ))
        };
        let result = attempt.or(timeout).await;
        if result.is_err() {
            // The connection's state is unknown (a request may be half
            // written or half read): never reuse it.
            self.conn = None;
        }
        result
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
        if self.conn.as_ref().is_none_or(Conn::is_closed) {
            let connecting = async { connect(&self.runtime, &self.target).await.ok() };
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
        loop {
            match fetch.next(Instant::now()) {
                Step::Sleep(d) => self.wait(d).await,
                Step::Send => {
                    *sending = true;
                    let result = self.get(&fetch.path_and_query()).await;
                    *sending = false;
                    fetch.record(result, Instant::now());
                }
                Step::Done => return,
            }
        }
    }
}

/// One request on the kept-alive connection in `slot`, connecting first if
/// there is none or it has closed.
async fn attempt<R: AsyncRuntime>(
    runtime: &R,
    target: &Target,
    slot: &mut Option<Conn<Stream<R::Io>>>,
    path_and_query: &str,
) -> Result<RawResponse, Error> {
    let mut fresh = false;
    loop {
        // A request that cannot be built fails before anything is connected.
        let request = target.request(path_and_query)?;
        if slot.as_ref().is_none_or(Conn::is_closed) {
            *slot = Some(connect(runtime, target).await?);
            fresh = true;
        }
        let Some(conn) = slot.as_mut() else {
            continue;
        };
        match conn.exchange(target, request).await {
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
            Err(ExchangeError::NotReady(e)) => return Err(target.connection_error(&e)),
            Err(ExchangeError::Failed(e)) => return Err(e),
        }
    }
}

impl<Io: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static> Conn<Io> {
    fn is_closed(&self) -> bool {
        self.io.is_none() || self.sender.is_closed()
    }

    /// Sends one request and reads its response, polling the connection
    /// future alongside. The flag says whether the connection may be reused
    /// (the body was read to its end).
    async fn exchange(
        &mut self,
        target: &Target,
        request: Request<Empty<Bytes>>,
    ) -> Result<(RawResponse, bool), ExchangeError> {
        let Self { sender, io } = self;
        let exchange = async {
            sender.ready().await.map_err(ExchangeError::NotReady)?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| ExchangeError::Failed(target.connection_error(&e)))?;
            read_response(target, response)
                .await
                .map_err(ExchangeError::Failed)
        };
        let mut exchange = pin!(exchange);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(done) = exchange.as_mut().poll(cx) {
                return Poll::Ready(done);
            }
            if let Some(connection) = io.as_mut() {
                // Its errors reach the request in flight through hyper's
                // callback; once it is done, nothing more can be sent on it.
                if connection.as_mut().poll(cx).is_ready() {
                    *io = None;
                }
                // The connection may have just handed the request its
                // response: look again before sleeping.
                return exchange.as_mut().poll(cx);
            }
            Poll::Pending
        })
        .await
    }
}

/// Connects and, for `https://`, performs the TLS handshake (both bounded
/// by the connect timeout), then sets HTTP/1.1 up on the stream (no I/O).
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
        Err(Error::new(
            ErrorKind::Timeout,
            format!(
                "could not connect to {} within the {:?} connect timeout \
                 (raise connect_timeout)",
                target.authority, target.connect_timeout
            ),
        ))
    };
    let io = connecting.or(timeout).await?;
    let (sender, connection) = http1::Builder::new()
        .read_buf_exact_size(Some(READ_BUFFER))
        .handshake(io)
        .await
        .map_err(|e| target.connection_error(&e))?;
    Ok(Conn {
        sender,
        io: Some(Box::pin(connection)),
    })
}

/// The read buffer each connection holds: hyper's default starts at 8 KiB
/// and adapts upwards; this is exact. A response's status line and headers
/// must fit in it (the APIs this client targets send well under 1 KiB);
/// bodies stream through it in pieces of this size, up to the body cap.
pub(crate) const READ_BUFFER: usize = 2048;

/// Reads the status, `Retry-After` and body. The flag says whether the
/// connection may be reused (the body was read to its end).
async fn read_response(
    target: &Target,
    response: Response<Incoming>,
) -> Result<(RawResponse, bool), Error> {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let success = (200..300).contains(&status);
    let mut body = response.into_body();
    let cap = u64::try_from(target.max_body).unwrap_or(u64::MAX);
    let raw = |body| RawResponse {
        status,
        retry_after,
        body,
    };
    if body.size_hint().lower() > cap {
        // Announced larger than the cap: no need to read it.
        return if success {
            Err(target.too_large())
        } else {
            Ok((raw(Vec::new()), false))
        };
    }
    let mut bytes = Vec::new();
    let mut drained = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            // An error body that breaks off still carries its status.
            Err(_) if !success => return Ok((raw(Vec::new()), false)),
            Err(e) => return Err(target.connection_error(&e)),
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if success {
            if bytes.len() + data.len() > target.max_body {
                return Err(target.too_large());
            }
            bytes.extend_from_slice(&data);
        } else {
            drained += data.len();
            if drained > target.max_body {
                return Ok((raw(Vec::new()), false));
            }
        }
    }
    Ok((raw(bytes), true))
}

/// The shared state of one [`fetch_all`] run.
#[derive(Debug)]
struct Run {
    config: Config,
    throttle: Option<Throttle>,
    next: AtomicUsize,
    outcomes: Arc<Outcomes>,
}

/// Fetches every base of `outcomes` on `runtime`, putting each base's
/// outcome in its place; [`Strategy::fetch`](rates_core::Strategy::fetch)
/// (or [`fetch_async`](rates_core::fetch_async)) makes the report around it.
///
/// Starts `min(concurrency, bases)` worker tasks, each with its own
/// keep-alive connection, so requests in flight never exceed the configured
/// concurrency. Timeouts, the body cap, the rate limit and retries behave as
/// in the blocking strategies; every wait is on the runtime's timer.
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
    for _ in 0..workers {
        let client = AsyncClient::with_target(runtime.clone(), Arc::clone(&target));
        runtime.spawn(worker(client, Arc::clone(&run), alive.clone()));
    }
    drop(alive);
    let _ = all_done.recv().await;
    Ok(())
}

/// Takes bases until there are none left; `_alive` is dropped on the way out.
async fn worker<R: AsyncRuntime>(
    mut client: AsyncClient<R>,
    run: Arc<Run>,
    _alive: async_channel::Sender<()>,
) {
    loop {
        let i = run.next.fetch_add(1, Ordering::Relaxed);
        let Some(&base) = run.outcomes.bases().get(i) else {
            return;
        };
        let outcome = client.fetch(base, &run.config, run.throttle.as_ref()).await;
        run.outcomes.put(i, outcome);
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(chain(&reset), "connection error: reset by peer");
        assert!(!is_timed_out(&reset));
        let slow = Wrap(io::Error::new(io::ErrorKind::TimedOut, "slow"));
        assert!(is_timed_out(&slow));
    }

    #[test]
    fn requests_carry_host_and_user_agent() {
        let config = Config::new("http://127.0.0.1:9/rates?base={base}").unwrap();
        let target = Target::new(&config);
        let request = target.request("/rates?base=USD").unwrap();
        assert_eq!(request.uri(), "/rates?base=USD");
        assert_eq!(request.headers()[HOST], "127.0.0.1:9");
        assert!(
            request.headers()[USER_AGENT]
                .to_str()
                .unwrap()
                .starts_with("rates/")
        );
        let err = target.request("/rates?base=U S D").unwrap_err();
        assert!(
            err.is_invalid_input() && err.to_string().contains("U S D"),
            "{err}"
        );
    }
}
