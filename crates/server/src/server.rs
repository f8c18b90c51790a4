//! The HTTP server itself.

use std::future::Future as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use rates_core::{CurrencyCode, RateLimit, parse_codes};
use tokio::sync::{Semaphore, oneshot};

use crate::faults::{Fault, FaultRule, Latency, pick};
use crate::stats::{Recorder, Stats};
use crate::table::{self, Shape};
use crate::timer::PreciseTimer;
use crate::tls::{ServerTls, acceptor};

/// How the server behaves. Every knob is reproducible from `seed`.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    /// Where to listen; loopback only (default `127.0.0.1:0`, an ephemeral port).
    pub addr: SocketAddr,
    /// Delay before each answer.
    pub latency: Latency,
    /// Refuse requests past this many per second (sliding one-second window)
    /// with 429 and `Retry-After`.
    pub rate_limit: Option<RateLimit>,
    /// Faults to inject; the first matching rule applies.
    pub faults: Vec<FaultRule>,
    /// Seed for latency ranges and fault shares.
    pub seed: u64,
    /// How long a stalled request is held before its connection is closed.
    pub stall: Duration,
    /// Most open connections; more wait in the accept queue.
    pub max_connections: usize,
    /// Runtime worker threads (default: the number of cores).
    pub threads: usize,
    /// Serve HTTPS instead of plain HTTP (default: plain).
    pub tls: Option<ServerTls>,
    /// The JSON shape of a good answer (default: vatcomply's).
    pub shape: Shape,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            latency: Latency::None,
            rate_limit: None,
            faults: Vec::new(),
            seed: 0,
            stall: Duration::from_secs(60),
            max_connections: 10_000,
            threads: std::thread::available_parallelism().map_or(2, usize::from),
            tls: None,
            shape: Shape::default(),
        }
    }
}

impl ServerConfig {
    /// Sets a fixed latency.
    #[must_use]
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = if latency.is_zero() {
            Latency::None
        } else {
            Latency::Fixed(latency)
        };
        self
    }

    /// Adds a fault rule.
    #[must_use]
    pub fn with_fault(mut self, rule: FaultRule) -> Self {
        self.faults.push(rule);
        self
    }

    /// Serves HTTPS with a certificate generated at start (for `127.0.0.1`,
    /// `localhost` and `::1`); see [`RatesServer::certificate_pem`].
    #[must_use]
    pub fn with_generated_tls(mut self) -> Self {
        self.tls = Some(ServerTls::Generated);
        self
    }

    /// Answers in this shape.
    #[must_use]
    pub fn with_shape(mut self, shape: Shape) -> Self {
        self.shape = shape;
        self
    }

    /// Sets the server-side rate limit.
    #[must_use]
    pub fn with_rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.rate_limit = limit;
        self
    }
}

#[derive(Debug)]
struct Shared {
    config: ServerConfig,
    recorder: Recorder,
    bodies: BodyCache,
    timer: PreciseTimer,
    tls: Option<Arc<rustls::ServerConfig>>,
}

type BodyKey = (CurrencyCode, Option<Vec<CurrencyCode>>);

/// Answer bodies by (base, symbols): each is built once, then shared, so the
/// server's cost per request stays far below any client's.
#[derive(Debug, Default)]
struct BodyCache {
    map: std::sync::RwLock<std::collections::HashMap<BodyKey, Bytes>>,
}

impl BodyCache {
    /// Entries kept at most (a few hundred bytes each).
    const CAPACITY: usize = 100_000;

    fn get(&self, shape: Shape, base: CurrencyCode, symbols: Option<Vec<CurrencyCode>>) -> Bytes {
        let key = (base, symbols);
        if let Some(b) = self.map.read().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return b.clone();
        }
        let body = Bytes::from(table::body(shape, key.0, key.1.as_deref()));
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if map.len() < Self::CAPACITY {
            map.insert(key, body.clone());
        }
        body
    }
}

/// A running server. Dropping it stops it and closes every connection.
///
/// ```
/// let server = rates_server::RatesServer::start(Default::default())?;
/// let body = ureq::get(&format!("http://{}/rates?base=USD", server.addr()))
///     .call()?.body_mut().read_to_string()?;
/// assert!(body.contains(r#""base":"USD""#));
/// assert_eq!(server.stats().requests, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct RatesServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    certificate_pem: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Counts this server in the process while it runs: a client of this
    /// process pays two descriptors a connection to it (see
    /// [`rates_core::limits::ServerInProcess`]).
    _counted: rates_core::limits::ServerInProcess,
}

impl RatesServer {
    /// Binds and starts serving on a runtime of its own, on its own threads.
    ///
    /// Raises the soft open-files limit so `max_connections` can be held.
    ///
    /// # Errors
    /// A non-loopback address, an address in use, a hard open-files limit
    /// too low for `max_connections`, or a TLS certificate or key that cannot
    /// be used (the message says how to fix each).
    pub fn start(config: ServerConfig) -> io::Result<Self> {
        if !config.addr.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "refusing to listen on {}: the mock server binds loopback only (127.0.0.1 or ::1)",
                    config.addr
                ),
            ));
        }
        let (tls, certificate_pem) = match &config.tls {
            Some(tls) => {
                let (acceptor, pem) = acceptor(tls)?;
                (Some(acceptor), Some(pem))
            }
            None => (None, None),
        };
        raise_open_files_limit(config.max_connections as u64 + 256)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads.max(1))
            .thread_name("rates-server")
            .enable_all()
            .build()?;
        let listener = {
            let _context = runtime.enter();
            listen(config.addr).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "could not listen on {}: {e} (choose another port, or 0 for any)",
                        config.addr
                    ),
                )
            })?
        };
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            recorder: Recorder::new(),
            bodies: BodyCache::default(),
            timer: PreciseTimer::start()?,
            tls,
        });
        let (tx, rx) = oneshot::channel();
        let task_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("rates-server-main".into())
            .spawn(move || {
                runtime.block_on(accept_loop(listener, task_shared, rx));
                // Dropping the runtime cancels every connection task.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(Self {
            addr,
            shared,
            certificate_pem,
            shutdown: Some(tx),
            thread: Some(thread),
            _counted: rates_core::limits::ServerInProcess::count(),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// An endpoint template for clients:
    /// `http://ADDR/rates?base={base}&symbols={symbols}` (`https://` with
    /// TLS; `/v1/latest?...` in frankfurter's shape).
    pub fn endpoint(&self) -> String {
        format!(
            "{}://{}{}",
            self.scheme(),
            self.addr,
            self.shared.config.shape.path_template()
        )
    }

    /// `"https"` when it serves TLS, else `"http"`.
    pub fn scheme(&self) -> &'static str {
        if self.certificate_pem.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// With TLS, the certificate chain it presents (PEM): what a client
    /// must trust (`Config::ca_cert_pem`, `--ca-cert`) to talk to it.
    pub fn certificate_pem(&self) -> Option<&str> {
        self.certificate_pem.as_deref()
    }

    /// What it saw since it started or was last reset.
    pub fn stats(&self) -> Stats {
        self.shared.recorder.snapshot()
    }

    /// Forgets what it saw (and the rate-limit window).
    pub fn reset_stats(&self) {
        self.shared.recorder.reset();
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.shared.config
    }

    /// Stops it and waits (boundedly) for its threads.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RatesServer {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

/// Binds with a deep accept queue (std's default of 128 would make
/// thousands of simultaneous connects wait for SYN retransmits).
fn listen(addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(8192)
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: oneshot::Receiver<()>,
) {
    let slots = Arc::new(Semaphore::new(shared.config.max_connections.max(1)));
    loop {
        let permit = tokio::select! {
            _ = &mut stop => return,
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = &mut stop => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                shared.recorder.connected();
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    match shared.tls.clone() {
                        None => serve(TokioIo::new(stream), shared).await,
                        Some(tls) => {
                            // A client that refuses the certificate, or
                            // never finishes the handshake, just goes away.
                            let handshake = tokio::time::timeout(
                                Duration::from_secs(10),
                                tokio_rustls::TlsAcceptor::from(tls).accept(stream),
                            );
                            if let Ok(Ok(stream)) = handshake.await {
                                serve(TokioIo::new(stream), shared).await;
                            }
                        }
                    }
                    drop(permit);
                });
            }
            Err(e) => {
                // Out of file descriptors or a connection reset before accept:
                // back off briefly instead of spinning.
                drop(permit);
                if !matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                ) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
}

/// Serves HTTP/1.1 with keep-alive on one connection until it closes.
async fn serve<Io>(io: Io, shared: Arc<Shared>)
where
    Io: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let shared = Arc::clone(&shared);
        async move { handle(&shared, req).await }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service)
        .await;
}

/// The prefix a redirect fault sends a request to: `/rates?base=USD`
/// answers `Location: /moved/rates?base=USD`, which serves the same.
const MOVED: &str = "/moved";

/// An error that makes hyper close the connection without an answer.
#[derive(Debug)]
pub(crate) struct Abort;

impl std::fmt::Display for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for Abort {}

/// Answers one request: records its arrival, refuses it past the rate limit
/// or when it does not name a route, waits the configured latency, and
/// answers it (with a fault, when one is due).
async fn handle(shared: &Shared, req: Request<Incoming>) -> Result<Response<ServerBody>, Abort> {
    let config = &shared.config;
    let recorder = &shared.recorder;
    let route = Route::parse(req.uri().path(), req.uri().query());
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let arrival = recorder.arrive(
        route.base(),
        user_agent,
        config.rate_limit.map(|r| r.rate()),
    );
    if let Some(wait) = arrival.limited {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        recorder.answered(429);
        return Ok(too_many_requests(
            secs,
            format!(r#"{{"error":"rate limit exceeded, retry after {secs}s"}}"#),
        ));
    }
    let (base, symbols) = match route.into_request() {
        Ok(request) => request,
        Err((status, body)) => {
            recorder.answered(status.as_u16());
            return Ok(json_or_500(status, body));
        }
    };
    let delay = config.latency.for_request(config.seed, base, arrival.nth);
    if !delay.is_zero() {
        shared.timer.sleep_until(arrival.at + delay).await;
    }
    let fault = pick(
        &config.faults,
        config.seed,
        base,
        arrival.nth,
        arrival.index,
    );
    if let Some(Fault::Redirect { status }) = fault {
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::MOVED_PERMANENTLY);
        recorder.answered(code.as_u16());
        let to = format!(
            "{MOVED}{}",
            req.uri().path_and_query().map_or("/", |p| p.as_str())
        );
        let mut r = json_or_500(code, r#"{"error":"moved"}"#.to_owned());
        if let Ok(v) = header::HeaderValue::from_str(&to) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        drop(arrival.guard);
        return Ok(r);
    }
    let response = answer(shared, base, symbols, fault).await?;
    drop(arrival.guard);
    Ok(response)
}

/// The answer to a valid request for `base`: the rates, or `fault`.
async fn answer(
    shared: &Shared,
    base: CurrencyCode,
    symbols: Symbols,
    fault: Option<Fault>,
) -> Result<Response<ServerBody>, Abort> {
    let config = &shared.config;
    let recorder = &shared.recorder;
    Ok(match fault {
        // Redirects are answered in `handle`, which has the request's path.
        None | Some(Fault::Redirect { .. }) => {
            recorder.answered(200);
            json_bytes(
                StatusCode::OK,
                shared.bodies.get(config.shape, base, symbols),
            )
        }
        Some(Fault::ServerError) => {
            recorder.answered(500);
            json_or_500(
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"error":"injected server error"}"#.to_owned(),
            )
        }
        Some(Fault::TooManyRequests { retry_after_secs }) => {
            recorder.answered(429);
            too_many_requests(
                u64::from(retry_after_secs),
                r#"{"error":"injected rate limit"}"#.to_owned(),
            )
        }
        Some(Fault::TooManyRequestsUntil { retry_after_secs }) => {
            recorder.answered(429);
            let at =
                std::time::SystemTime::now() + Duration::from_secs(u64::from(retry_after_secs));
            with_retry_after(
                json_or_500(
                    StatusCode::TOO_MANY_REQUESTS,
                    r#"{"error":"injected rate limit"}"#.to_owned(),
                ),
                &httpdate::fmt_http_date(at),
            )
        }
        Some(Fault::Status {
            status,
            retry_after,
        }) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            recorder.answered(code.as_u16());
            let r = json_or_500(code, r#"{"error":"injected status"}"#.to_owned());
            match retry_after {
                Some(value) => with_retry_after(r, value),
                None => r,
            }
        }
        Some(Fault::Malformed) => {
            recorder.answered(200);
            json_or_500(
                StatusCode::OK,
                format!(r#"{{"base":"{base}","rates":{{"EUR": oops"#),
            )
        }
        Some(Fault::Truncated) => {
            recorder.aborted();
            let full = shared.bodies.get(config.shape, base, symbols);
            let mut response = Response::new(ServerBody::truncated(full));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            response
        }
        Some(Fault::Drop) => {
            recorder.aborted();
            return Err(Abort);
        }
        Some(Fault::Stall) => {
            recorder.aborted();
            tokio::time::sleep(config.stall).await;
            return Err(Abort);
        }
    })
}

/// A 429 with `Retry-After: secs`.
/// `r` with a `Retry-After` header of `value`, as given (dropped if it is
/// not a valid header value).
fn with_retry_after(mut r: Response<ServerBody>, value: &str) -> Response<ServerBody> {
    if let Ok(v) = header::HeaderValue::from_str(value) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

fn too_many_requests(secs: u64, body: String) -> Response<ServerBody> {
    let mut r = json_or_500(StatusCode::TOO_MANY_REQUESTS, body);
    r.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
    r
}

/// The symbols a request asked for, if it named any.
type Symbols = Option<Vec<CurrencyCode>>;

enum Route {
    NotFound(String),
    Rates {
        base: Result<CurrencyCode, String>,
        symbols: Result<Option<Vec<CurrencyCode>>, String>,
    },
}

impl Route {
    /// The base asked for, when the route names a valid one.
    fn base(&self) -> Option<CurrencyCode> {
        match self {
            Self::Rates { base: Ok(b), .. } => Some(*b),
            _ => None,
        }
    }

    /// The base and symbols asked for, or the status and body refusing it.
    fn into_request(self) -> Result<(CurrencyCode, Symbols), (StatusCode, String)> {
        match self {
            Self::NotFound(path) => Err((
                StatusCode::NOT_FOUND,
                format!(
                    r#"{{"error":"no route {}: use /rates?base=USD or /latest?base=USD"}}"#,
                    escape(&path)
                ),
            )),
            Self::Rates { base: Err(msg), .. }
            | Self::Rates {
                symbols: Err(msg), ..
            } => Err((
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(r#"{{"error":"{}"}}"#, escape(&msg)),
            )),
            Self::Rates {
                base: Ok(base),
                symbols: Ok(symbols),
            } => Ok((base, symbols)),
        }
    }

    fn parse(path: &str, query: Option<&str>) -> Self {
        // Where a redirect fault sends a request: the same route under
        // `/moved` (once per hop).
        let mut path = path;
        while let Some(rest) = path.strip_prefix(MOVED) {
            path = rest;
        }
        if !matches!(path, "/rates" | "/latest" | "/v1/latest") {
            return Self::NotFound(path.to_owned());
        }
        let mut base = None;
        let mut symbols = None;
        for pair in query.unwrap_or("").split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "base" | "from" => base = Some(v),
                "symbols" | "to" => symbols = Some(v),
                _ => {}
            }
        }
        let base = match base {
            None => Ok(CurrencyCode::new("EUR").unwrap_or_else(|_| unreachable!())),
            Some(b) => CurrencyCode::new(b)
                .map_err(|_| format!("invalid base `{b}`: a base is three letters, like USD")),
        };
        let symbols = match symbols {
            None | Some("") => Ok(None),
            Some(s) => parse_codes(s)
                .map(Some)
                .map_err(|_| format!("invalid symbols `{s}`: a comma-separated list like EUR,PLN")),
        };
        Self::Rates { base, symbols }
    }
}

fn json_bytes(status: StatusCode, body: Bytes) -> Response<ServerBody> {
    let mut r = Response::new(ServerBody::full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

fn json_or_500(status: StatusCode, body: String) -> Response<ServerBody> {
    json_bytes(status, body.into())
}

fn escape(s: &str) -> String {
    serde_json::to_string(s)
        .map(|q| q[1..q.len() - 1].to_owned())
        .unwrap_or_default()
}

/// A response body: whole, or announced whole and cut off halfway.
#[derive(Debug)]
pub(crate) struct ServerBody {
    data: Option<Bytes>,
    announced: u64,
    /// For a truncated body: a pause after the first half (so it is flushed
    /// to the client), then an error that makes hyper close the connection.
    cut: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl ServerBody {
    fn full(data: Bytes) -> Self {
        Self {
            announced: data.len() as u64,
            data: Some(data),
            cut: None,
        }
    }

    fn truncated(full: Bytes) -> Self {
        let announced = full.len() as u64;
        Self {
            data: Some(full.slice(..full.len() / 2)),
            announced,
            cut: Some(Box::pin(tokio::time::sleep(Duration::from_millis(20)))),
        }
    }
}

impl Body for ServerBody {
    type Data = Bytes;
    type Error = Abort;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Abort>>> {
        if let Some(d) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(d))));
        }
        match self.cut.as_mut() {
            None => Poll::Ready(None),
            Some(pause) => match pause.as_mut().poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(()) => {
                    self.cut = None;
                    Poll::Ready(Some(Err(Abort)))
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.cut.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.announced)
    }
}

/// Raises the soft open-files limit to at least `wanted` if the hard limit allows.
fn raise_open_files_limit(wanted: u64) -> io::Result<()> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur >= wanted {
        return Ok(());
    }
    if lim.rlim_max < wanted {
        return Err(io::Error::other(format!(
            "the hard open-files limit is {}, but holding {} connections needs {wanted}: \
             raise it (ulimit -Hn, or LimitNOFILE in systemd) or lower max_connections (--max-connections)",
            lim.rlim_max,
            wanted.saturating_sub(256)
        )));
    }
    lim.rlim_cur = wanted.max(lim.rlim_cur).min(lim.rlim_max);
    // SAFETY: setrlimit reads the struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
