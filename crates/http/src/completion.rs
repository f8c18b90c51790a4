//! The completion client: the same HTTP/1.1 framing ([`crate::h1`]) over
//! compio's completion-based I/O, where a read or a write is an operation
//! handed to the kernel with a buffer it owns until the operation completes
//! (io_uring's model), not a readiness event followed by a system call.
//!
//! A [`CompletionClient`] owns one keep-alive connection and its one
//! buffer. To send, the buffer (the request encoded into it) is moved into
//! a write operation and comes back with its completion; to read, it is
//! moved into a receive operation for the part the response reader asks
//! for (`buf[from..]`), and the response is parsed from the buffer the
//! completion returns. No readiness layer sits between the client and the
//! driver: on compio's io_uring driver each read and write is one
//! submission, batched with the others of the same turn of the loop into
//! one `io_uring_enter`; on its polling driver (the control) the same
//! operations are carried out by `recv`/`send` calls after epoll says the
//! socket is ready.
//!
//! Timeouts, the body cap, statuses as values, retries, backoff and the
//! rate limit behave as in the other clients, through the shared attempt
//! machine ([`rates_core::BaseFetch`]), on compio's timer. Dropping a
//! request (a timeout, a stop) cancels its operation; the buffer goes with
//! it, and so does the connection, whose state is then unknown.
//!
//! compio's tasks and sockets are not `Send`: a client lives on the thread
//! of the runtime that made it, and a run uses one runtime per thread (see
//! the `rates-compio` crate).
//!
//! For `https://`, TLS is rustls through `compio-tls`, over the same
//! socket, with the same root store and roots as the other clients.

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::os::fd::{AsRawFd as _, RawFd};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use compio::BufResult;
use compio::buf::{IntoInner as _, IoBuf as _};
#[cfg(feature = "tls")]
use compio::io::AsyncWrite as _;
use compio::io::{AsyncRead as _, AsyncWriteExt as _};
use compio::net::TcpStream;
#[cfg(feature = "tls")]
use compio::tls::{TlsConnector, TlsStream};
use futures_lite::FutureExt as _;
use rates_core::{
    BaseFetch, Config, CurrencyCode, Error, ErrorKind, Outcome, RawResponse, Step, Throttle,
    panic_error,
};

use crate::h1;

/// What every client of one run shares, on whichever thread: where to
/// connect (the host resolved once, when the set-up is made), the
/// timeouts, the body cap and the TLS set-up. Cheap to clone.
#[derive(Clone, Debug)]
pub struct CompletionSetup(Arc<Target>);

#[derive(Debug)]
struct Target {
    authority: String,
    /// The endpoint's addresses, or why its name could not be resolved
    /// (each connect then fails with it, as an attempt).
    addrs: Result<Vec<SocketAddr>, String>,
    connect_timeout: Duration,
    request_timeout: Duration,
    max_body: usize,
    /// For `https://`: the connector and the name to verify.
    tls: Option<TlsSetup>,
}

impl CompletionSetup {
    /// The set-up for `config`: resolves the endpoint's host now, on the
    /// calling thread (compio would resolve a name on a thread pool of its
    /// own, which would outlive the run), and builds the TLS set-up.
    ///
    /// # Errors
    /// [`InvalidInput`](ErrorKind::InvalidInput) for a CA certificate that
    /// cannot be read or a host that cannot be a TLS name. A name that does
    /// not resolve is not an error here: each request fails with it.
    pub fn new(config: &Config) -> Result<Self, Error> {
        let endpoint = &config.endpoint;
        let host = endpoint.host().trim_matches(['[', ']']).to_owned();
        let addrs = (host.as_str(), endpoint.port())
            .to_socket_addrs()
            .map(Iterator::collect)
            .map_err(|e| e.to_string());
        let tls = if endpoint.is_https() {
            Some(TlsSetup::new(config, host)?)
        } else {
            None
        };
        Ok(Self(Arc::new(Target {
            authority: endpoint.authority().to_owned(),
            addrs,
            connect_timeout: config.connect_timeout,
            request_timeout: config.request_timeout,
            max_body: config.max_body_bytes,
            tls,
        })))
    }
}

impl Target {
    fn peer(&self) -> h1::Peer<'_> {
        h1::Peer {
            authority: &self.authority,
            max_body: self.max_body,
        }
    }

    fn check(&self, path_and_query: &str) -> Result<(), Error> {
        if !path_and_query.starts_with('/') || !h1::is_token_text(path_and_query) {
            return Err(Error::invalid_input(format!(
                "invalid request path `{path_and_query}`: it must start with `/` and hold no \
                 spaces or control characters; check the endpoint template"
            )));
        }
        Ok(())
    }
}

/// The connector and the name to verify, for `https://`.
#[cfg(feature = "tls")]
#[derive(Debug)]
struct TlsSetup(TlsConnector, String);

#[cfg(feature = "tls")]
impl TlsSetup {
    fn new(config: &Config, host: String) -> Result<Self, Error> {
        let client = crate::tls::client_config(&crate::tls::extra_roots(config)?)?;
        crate::tls::server_name(config.endpoint.host())?;
        Ok(Self(TlsConnector::from(client), host))
    }

    /// The TLS handshake over `socket`.
    async fn handshake(&self, socket: TcpStream, authority: &str) -> Result<Stream, Error> {
        match self.0.connect(&self.1, socket).await {
            Ok(tls) => Ok(Stream::Tls(Box::new(tls))),
            Err(e) => Err(match crate::tls::rustls_error(&e) {
                Some(r) => crate::tls::error(authority, r),
                None => Error::new(
                    if e.kind() == std::io::ErrorKind::TimedOut {
                        ErrorKind::Timeout
                    } else {
                        ErrorKind::Connection
                    },
                    format!("the TLS handshake with {authority} broke off: {e}"),
                ),
            }),
        }
    }
}

/// Without the `tls` feature there is none: an `https://` endpoint is
/// refused when the set-up is made.
#[cfg(not(feature = "tls"))]
#[derive(Debug)]
enum TlsSetup {}

#[cfg(not(feature = "tls"))]
impl TlsSetup {
    fn new(config: &Config, _host: String) -> Result<Self, Error> {
        Err(h1::no_tls(config.endpoint.authority()))
    }

    async fn handshake(&self, _socket: TcpStream, _authority: &str) -> Result<Stream, Error> {
        match *self {}
    }
}

/// A connection's bytes: the socket, or TLS over it.
enum Stream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Reads into the buffer's part `from..end`; the buffer comes back
    /// with its length at `from` plus the bytes read.
    async fn read_at(
        &mut self,
        buf: Vec<u8>,
        from: usize,
        end: usize,
    ) -> BufResult<usize, Vec<u8>> {
        let slice = buf.slice(from..end);
        let BufResult(n, slice) = match self {
            Self::Plain(io) => io.read(slice).await,
            #[cfg(feature = "tls")]
            Self::Tls(io) => io.read(slice).await,
        };
        BufResult(n, slice.into_inner())
    }

    async fn write_all(&mut self, buf: Vec<u8>) -> BufResult<(), Vec<u8>> {
        match self {
            Self::Plain(io) => io.write_all(buf).await,
            #[cfg(feature = "tls")]
            Self::Tls(io) => {
                let BufResult(written, buf) = io.write_all(buf).await;
                let flushed = match written {
                    Ok(()) => io.flush().await,
                    Err(e) => Err(e),
                };
                BufResult(flushed, buf)
            }
        }
    }
}

/// One keep-alive connection and its one buffer.
struct Conn {
    stream: Stream,
    /// The socket, for a non-blocking look while the connection is idle.
    fd: RawFd,
    /// The request is written from it, then the response read into it;
    /// empty only while an operation holds it.
    buf: Vec<u8>,
    reused: bool,
    last_used: Instant,
}

/// Why an exchange failed.
enum ExchangeError {
    /// The kept-alive connection had been closed before anything was sent.
    NotReady(Error),
    Failed(Error),
}

/// An HTTP/1.1 client over one keep-alive connection on compio, the
/// completion-based twin of [`AsyncClient`](crate::AsyncClient): one
/// request at a time (`&mut self`), connected on first use, reconnected
/// after any error.
pub struct CompletionClient {
    target: Arc<Target>,
    conn: Option<Conn>,
}

impl std::fmt::Debug for CompletionClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompletionClient")
            .field("target", &self.target.authority)
            .field("tls", &self.target.tls.is_some())
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

impl CompletionClient {
    /// A client of a run whose clients share `setup`. Nothing is connected
    /// until the first request.
    pub fn new(setup: &CompletionSetup) -> Self {
        Self {
            target: Arc::clone(&setup.0),
            conn: None,
        }
    }

    /// Runs the whole attempt loop for `base` (throttle, retries, backoff)
    /// on compio's timer; it must be awaited on a compio runtime.
    ///
    /// A panic while fetching is caught and becomes this base's outcome.
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

    /// Waits `d` (a throttle slot or a backoff), connecting meanwhile when
    /// there is no connection, as the async client does.
    async fn wait(&mut self, d: Duration) {
        let until = Instant::now() + d;
        if self.conn.is_none() {
            let connecting = async { connect(&self.target).await.ok() };
            let waited = async {
                compio::time::sleep(d).await;
                None
            };
            if let Some(conn) = connecting.or(waited).await {
                self.conn = Some(conn);
            }
        }
        let left = until.saturating_duration_since(Instant::now());
        if !left.is_zero() {
            compio::time::sleep(left).await;
        }
    }

    /// One request, bounded by the request timeout; the result and when it
    /// ended.
    async fn get_from(
        &mut self,
        path_and_query: &str,
        now: Instant,
    ) -> (Result<RawResponse, Error>, Instant) {
        let target = Arc::clone(&self.target);
        let attempt = attempt(&target, &mut self.conn, path_and_query, now);
        let timeout = async {
            compio::time::sleep(target.request_timeout).await;
            Err(h1::request_timed_out(
                &target.authority,
                target.request_timeout,
            ))
        };
        let result = attempt.or(timeout).await;
        let end = Instant::now();
        match (&result, self.conn.as_mut()) {
            (Err(_), _) => self.conn = None,
            (Ok(_), Some(conn)) if !conn.buf.is_empty() => conn.last_used = end,
            // A buffer still out with a cancelled operation: not reusable.
            (Ok(_), Some(_)) => self.conn = None,
            (Ok(_), None) => {}
        }
        (result, end)
    }
}

/// One request on the kept-alive connection in `slot`, connecting first if
/// there is none.
async fn attempt(
    target: &Target,
    slot: &mut Option<Conn>,
    path_and_query: &str,
    now: Instant,
) -> Result<RawResponse, Error> {
    target.check(path_and_query)?;
    let mut fresh = false;
    loop {
        let conn = match slot {
            Some(conn) => conn,
            None => {
                fresh = true;
                slot.insert(Box::pin(connect(target)).await?)
            }
        };
        match conn.exchange(target, path_and_query, now).await {
            Ok((raw, reusable)) => {
                if !reusable {
                    *slot = None;
                }
                return Ok(raw);
            }
            Err(ExchangeError::NotReady(_)) if !fresh => *slot = None,
            Err(ExchangeError::NotReady(e) | ExchangeError::Failed(e)) => {
                *slot = None;
                return Err(e);
            }
        }
    }
}

impl Conn {
    async fn exchange(
        &mut self,
        target: &Target,
        path_and_query: &str,
        now: Instant,
    ) -> Result<(RawResponse, bool), ExchangeError> {
        if self.reused
            && now.saturating_duration_since(self.last_used) >= h1::IDLE_CHECK
            && closed_while_idle(self.fd)
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
        let BufResult(written, mut buf) = self.stream.write_all(request).await;
        buf.clear();
        buf.resize(h1::BUFFER, 0);
        self.buf = buf;
        written.map_err(|e| {
            ExchangeError::Failed(target.peer().io_error("sending the request", &e))
        })?;
        let result = self.read_response(target).await;
        if self.buf.len() > h1::BUFFER {
            self.buf.truncate(h1::BUFFER);
            self.buf.shrink_to_fit();
        }
        result.map_err(ExchangeError::Failed)
    }

    /// Reads the response: each read hands the buffer to the kernel for the
    /// part the reader asks for, and the reader parses what comes back.
    async fn read_response(&mut self, target: &Target) -> h1::Exchanged {
        let peer = target.peer();
        let mut response = h1::ResponseReader::new();
        loop {
            let from = response.next_read(&mut self.buf, peer)?;
            let end = self.buf.len();
            let buf = std::mem::take(&mut self.buf);
            let BufResult(read, mut buf) = self.stream.read_at(buf, from, end).await;
            // Back to its full length for the reader (the operation set it
            // to what was read).
            buf.resize(end, 0);
            self.buf = buf;
            let n = match read {
                Ok(n) => n,
                Err(e) => return response.failed(&e, peer),
            };
            if let Some(done) = response.advance(&mut self.buf, n, peer) {
                return done;
            }
        }
    }
}

/// Whether the server has closed (or written to) the idle connection: one
/// non-blocking peek, as the blocking client does.
fn closed_while_idle(fd: RawFd) -> bool {
    use nix::sys::socket::{MsgFlags, recv};
    let looked = recv(
        fd,
        &mut [0u8; 1],
        MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
    );
    !matches!(looked, Err(nix::errno::Errno::EAGAIN))
}

/// Connects to the first of `addrs` that accepts.
///
/// The socket is made here, with one `socket` call, and only the connect
/// is an operation of the driver: compio's own `TcpStream::connect` makes
/// the socket as an operation too, which its epoll driver hands to a
/// thread pool (a thread hop per connection for the control, and pool
/// threads that outlive the run). Blocking mode is left to compio (its
/// epoll driver sets the socket non-blocking; on io_uring it stays
/// blocking, so a read waits in the kernel instead of coming back with
/// `EAGAIN`).
async fn connect_any(addrs: &[SocketAddr]) -> std::io::Result<TcpStream> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    let mut last = None;
    for &addr in addrs {
        let family = if addr.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
        let socket = compio::net::TcpSocket::from_std_stream(std::net::TcpStream::from(fd))?;
        match socket.connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the host resolved to no address",
        )
    }))
}

/// Connects (each resolved address in turn) and, for `https://`, performs
/// the TLS handshake, both bounded by the connect timeout.
async fn connect(target: &Target) -> Result<Conn, Error> {
    let connecting = async {
        let addrs = target.addrs.as_ref().map_err(|why| {
            Error::new(
                ErrorKind::Connection,
                format!("could not connect to {}: {why}", target.authority),
            )
        })?;
        let socket = connect_any(addrs).await.map_err(|e| {
            let kind = if e.kind() == std::io::ErrorKind::TimedOut {
                ErrorKind::Timeout
            } else {
                ErrorKind::Connection
            };
            Error::new(
                kind,
                format!("could not connect to {}: {e}", target.authority),
            )
        })?;
        // As the other clients: a request is one small write, not worth
        // Nagle's wait.
        let _ = socket.set_nodelay(true);
        let fd = socket.as_raw_fd();
        let stream = match &target.tls {
            None => Stream::Plain(socket),
            Some(tls) => tls.handshake(socket, &target.authority).await?,
        };
        Ok(Conn {
            stream,
            fd,
            buf: Vec::with_capacity(h1::BUFFER),
            reused: false,
            last_used: Instant::now(),
        })
    };
    let timeout = async {
        compio::time::sleep(target.connect_timeout).await;
        Err(h1::connect_timed_out(
            &target.authority,
            target.connect_timeout,
        ))
    };
    connecting.or(timeout).await
}

#[cfg(test)]
mod tests {
    use rates_server::RatesServer;

    use super::*;

    #[test]
    fn fetches_over_one_kept_alive_connection() {
        let server = RatesServer::start(Default::default()).unwrap();
        let config = Config::new(&server.endpoint()).unwrap();
        let setup = CompletionSetup::new(&config).unwrap();
        let runtime = compio::runtime::Runtime::new().unwrap();
        let outcomes = runtime.block_on(async {
            let mut client = CompletionClient::new(&setup);
            let mut outcomes = Vec::new();
            for code in ["USD", "EUR", "PLN"] {
                outcomes.push(client.fetch(code.parse().unwrap(), &config, None).await);
            }
            outcomes
        });
        assert!(outcomes.iter().all(|o| o.result.is_ok()), "{outcomes:?}");
        assert_eq!(server.stats().requests, 3);
        assert_eq!(server.stats().connections, 1);
    }
}
