//! The blocking client: HTTP/1.1 keep-alive connections on `std::net`
//! sockets, framed by the same [`crate::h1`] code as the async client, with
//! the configured timeouts, the body cap, TLS (rustls over the socket) and
//! statuses returned as values.
//!
//! One framing for every strategy is the point: the blocking strategies
//! (sync, threads, pool, rayon, process, tokio-blocking) and the async ones
//! send the same bytes, parse with the same code and hold the same one
//! buffer per connection, so what a comparison shows is their concurrency
//! model, not two HTTP libraries. (ureq, used before, spent about 16 us of
//! user CPU per request against about 4 us here; see the `rates-http` docs.)

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
#[cfg(feature = "tls")]
use std::sync::OnceLock;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rates_core::{Config, CurrencyCode, Error, ErrorKind, Outcome, RawResponse, Stop, Throttle};
#[cfg(feature = "tls")]
use rustls::pki_types::CertificateDer;

use crate::h1::{self, Peer, ResponseReader};

/// A blocking HTTP client configured from a [`Config`]. Cheap to clone:
/// clones share one pool of idle keep-alive connections.
#[derive(Clone, Debug)]
pub struct BlockingClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    connect_timeout: Duration,
    request_timeout: Duration,
    max_body: usize,
    max_idle: usize,
    idle: Mutex<Vec<Conn>>,
    /// Extra roots from the config ([`Config::ca_cert_pem`]).
    #[cfg(feature = "tls")]
    extra_roots: Vec<CertificateDer<'static>>,
    /// The TLS set-up, made at the first `https://` request.
    #[cfg(feature = "tls")]
    tls: OnceLock<Result<Arc<rustls::ClientConfig>, Error>>,
    /// A config the client cannot work with (an unreadable CA certificate):
    /// every request fails with it.
    setup_error: Option<Error>,
    /// The run's stop handle ([`Config::stop`]): when it fires, the socket
    /// of a request in flight is shut down, so the blocked read returns.
    stop: Option<Stop>,
}

impl BlockingClient {
    /// A client whose pool keeps up to `idle_connections` idle connections
    /// for reuse (use the number of threads that will share it).
    ///
    /// `https://` endpoints are verified against Mozilla's roots plus
    /// [`Config::ca_cert_pem`]. A CA certificate that cannot be read makes
    /// every request fail with [`ErrorKind::InvalidInput`].
    pub fn new(config: &Config, idle_connections: usize) -> Self {
        #[cfg(feature = "tls")]
        let (extra_roots, setup_error) = match crate::tls::extra_roots(config) {
            Ok(roots) => (roots, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        #[cfg(not(feature = "tls"))]
        let setup_error = None;
        Self {
            inner: Arc::new(Inner {
                connect_timeout: config.connect_timeout,
                request_timeout: config.request_timeout,
                max_body: config.max_body_bytes,
                max_idle: idle_connections.max(1),
                idle: Mutex::new(Vec::new()),
                #[cfg(feature = "tls")]
                extra_roots,
                #[cfg(feature = "tls")]
                tls: OnceLock::new(),
                setup_error,
                stop: config.stop.clone(),
            }),
        }
    }

    /// Sends one GET and returns the status, `Retry-After` and (for 2xx) the
    /// body, read up to the cap; error bodies are drained and dropped.
    ///
    /// Connecting is bounded by the connect timeout, and the whole request
    /// (connecting included) by the request timeout.
    ///
    /// Once the config's stop handle has fired, no request is sent, and
    /// one in flight has its socket shut down (the blocked read returns at
    /// once); both fail with [`ErrorKind::Cancelled`]. Connecting itself
    /// is not interrupted: it is bounded by the connect timeout.
    ///
    /// # Errors
    /// Timeout, connection (refused, reset, truncated), TLS (a certificate
    /// not trusted, a failed handshake: [`ErrorKind::Tls`]) and
    /// body-too-large errors, and [`ErrorKind::InvalidInput`] for a URL
    /// that cannot be sent; HTTP statuses are values, not errors.
    pub fn get(&self, url: &str) -> Result<RawResponse, Error> {
        if let Some(e) = &self.inner.setup_error {
            return Err(e.clone());
        }
        let stopped = || {
            let cause = self.inner.stop.as_ref().and_then(Stop::cause);
            cause.map(Error::cancelled)
        };
        let url = Url::parse(url)?;
        let deadline = Instant::now() + self.inner.request_timeout;
        let mut fresh = false;
        loop {
            if let Some(e) = stopped() {
                return Err(e);
            }
            let mut conn = match self.checkout(&url) {
                Some(conn) => conn,
                None => {
                    fresh = true;
                    self.connect(&url, deadline)?
                }
            };
            // While the request is in flight, a stop shuts its socket down.
            let _shutdown = self.inner.stop.as_ref().map(|stop| {
                let socket = conn.stream.shared();
                stop.on_stop(move || {
                    let _ = socket.shutdown(Shutdown::Both);
                })
            });
            let exchanged = self.exchange(&mut conn, &url, deadline);
            if let Some(e) = stopped() {
                return Err(e);
            }
            match exchanged {
                Ok((raw, reusable)) => {
                    if reusable {
                        self.checkin(conn);
                    }
                    return Ok(raw);
                }
                // Nothing was sent: a connection from the pool that the
                // server closed between the look and the send. Once, on a
                // fresh connection.
                Err(Sent::No(_)) if !fresh => {}
                Err(Sent::No(e) | Sent::Yes(e)) => return Err(e),
            }
        }
    }

    /// Runs the whole attempt loop for `base` on this thread (throttle,
    /// retries, backoff), using this client.
    pub fn fetch(
        &self,
        base: CurrencyCode,
        config: &Config,
        throttle: Option<&Throttle>,
    ) -> Outcome {
        rates_core::fetch_blocking(base, config, throttle, |url| self.get(url))
    }

    fn peer<'a>(&self, url: &'a Url<'_>) -> Peer<'a> {
        Peer {
            authority: url.authority,
            max_body: self.inner.max_body,
        }
    }

    /// An idle connection to `url`'s origin from the pool, if one is still
    /// open. One idle for longer than [`h1::IDLE_CHECK`] is looked at first
    /// (the server may have closed it meanwhile).
    fn checkout(&self, url: &Url<'_>) -> Option<Conn> {
        let mut idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while let Some(i) = idle.iter().rposition(|c| c.origin == url.origin()) {
            let conn = idle.swap_remove(i);
            if conn.last_used.elapsed() < h1::IDLE_CHECK || !conn.closed_while_idle() {
                return Some(conn);
            }
        }
        None
    }

    fn checkin(&self, mut conn: Conn) {
        conn.last_used = Instant::now();
        let mut idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.inner.max_idle {
            idle.push(conn);
        }
    }

    /// Sends the request on `conn` and reads the response, within `deadline`.
    fn exchange(
        &self,
        conn: &mut Conn,
        url: &Url<'_>,
        deadline: Instant,
    ) -> Result<(RawResponse, bool), Sent> {
        let peer = self.peer(url);
        let timed_out = || h1::request_timed_out(url.authority, self.inner.request_timeout);
        // The socket's timeouts bound each read and write; the first read
        // of a request gets the whole request timeout (set once per
        // connection), later ones what is left of it.
        let now_left = left(deadline).ok_or_else(|| Sent::No(timed_out()))?;
        // With (nearly) the whole timeout left, the value already set on a
        // kept-alive socket is reused: no system call.
        let first = if self.inner.request_timeout.saturating_sub(now_left) < TIMEOUT_SLACK {
            self.inner.request_timeout
        } else {
            now_left
        };
        conn.set_timeout(first)
            .map_err(|e| Sent::No(peer.io_error("setting a timeout", &e)))?;
        conn.buf.clear();
        h1::encode_request(&mut conn.buf, url.path, url.authority);
        let written = conn
            .stream
            .write_all(&conn.buf)
            .and_then(|()| conn.stream.flush());
        conn.buf.clear();
        conn.buf.resize(h1::BUFFER, 0);
        if let Err(e) = written {
            return Err(Sent::Yes(if h1::is_timed_out(&e) {
                timed_out()
            } else {
                peer.io_error("sending the request", &e)
            }));
        }
        let mut response = ResponseReader::new();
        let mut first = true;
        let result = loop {
            let from = response.next_read(&mut conn.buf, peer).map_err(Sent::Yes)?;
            if !first {
                let Some(left) = left(deadline) else {
                    return Err(Sent::Yes(timed_out()));
                };
                conn.set_timeout(left)
                    .map_err(|e| Sent::Yes(peer.io_error("setting a timeout", &e)))?;
            }
            first = false;
            let n = match conn.stream.read(&mut conn.buf[from..]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if h1::is_timed_out(&e) => return Err(Sent::Yes(timed_out())),
                Err(e) => break response.failed(&e, peer),
            };
            if let Some(done) = response.advance(&mut conn.buf, n, peer) {
                break done;
            }
        };
        if conn.buf.len() > h1::BUFFER {
            conn.buf.truncate(h1::BUFFER);
            conn.buf.shrink_to_fit();
        }
        result.map_err(Sent::Yes)
    }

    /// Connects to `url`'s host (resolving a name on a helper thread,
    /// within the connect timeout) and, for `https://`, performs the TLS
    /// handshake; all within the connect timeout and `deadline`.
    fn connect(&self, url: &Url<'_>, deadline: Instant) -> Result<Conn, Error> {
        // Refused before anything is connected.
        #[cfg(not(feature = "tls"))]
        if url.https {
            return Err(h1::no_tls(url.authority));
        }
        let by_connect = Instant::now() + self.inner.connect_timeout;
        let until = deadline.min(by_connect);
        // The setting that ends the wait is the one named: the request
        // timeout, when it leaves less time than the connect timeout.
        let timed_out = || {
            if deadline < by_connect {
                h1::request_timed_out(url.authority, self.inner.request_timeout)
            } else {
                h1::connect_timed_out(url.authority, self.inner.connect_timeout)
            }
        };
        let failed = |e: &io::Error| {
            let kind = if h1::is_timed_out(e) {
                ErrorKind::Timeout
            } else {
                ErrorKind::Connection
            };
            Error::new(kind, format!("could not connect to {}: {e}", url.authority))
        };
        let addrs = resolve(url.host, url.port, until).map_err(|e| failed(&e))?;
        let mut last = None;
        let mut socket = None;
        for addr in addrs {
            let Some(left) = left(until) else {
                return Err(timed_out());
            };
            match TcpStream::connect_timeout(&addr, left) {
                Ok(s) => {
                    socket = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let socket = match (socket, last) {
            (Some(s), _) => s,
            (None, Some(e)) => return Err(failed(&e)),
            (None, None) => {
                return Err(failed(&io::Error::new(
                    io::ErrorKind::NotFound,
                    "the host name resolved to no address",
                )));
            }
        };
        // As the async runtimes' connections: a request is one write, but a
        // TLS record split must not wait for an ACK.
        socket.set_nodelay(true).map_err(|e| failed(&e))?;
        #[cfg(feature = "tls")]
        let stream = if url.https {
            let tls = self
                .inner
                .tls
                .get_or_init(|| crate::tls::client_config(&self.inner.extra_roots))
                .clone()?;
            let name = crate::tls::server_name(url.host)?;
            let mut session = rustls::ClientConnection::new(tls, name)
                .map_err(|e| crate::tls::error(url.authority, &e))?;
            let mut socket = socket;
            while session.is_handshaking() {
                let Some(left) = left(until) else {
                    return Err(timed_out());
                };
                let io = socket
                    .set_read_timeout(Some(left))
                    .and_then(|()| socket.set_write_timeout(Some(left)))
                    .and_then(|()| session.complete_io(&mut socket));
                if let Err(e) = io {
                    if let Some(r) = crate::tls::rustls_error(&e) {
                        return Err(crate::tls::error(url.authority, r));
                    }
                    return Err(if h1::is_timed_out(&e) {
                        timed_out()
                    } else {
                        Error::new(
                            ErrorKind::Connection,
                            format!("the TLS handshake with {} broke off: {e}", url.authority),
                        )
                    });
                }
            }
            Stream::Tls(Box::new(rustls::StreamOwned::new(
                session,
                Socket(Arc::new(socket)),
            )))
        } else {
            Stream::Plain(Socket(Arc::new(socket)))
        };
        #[cfg(not(feature = "tls"))]
        let stream = Stream::Plain(Socket(Arc::new(socket)));
        Ok(Conn {
            origin: url.origin().to_owned(),
            stream,
            buf: Vec::with_capacity(h1::BUFFER),
            timeout: None,
            last_used: Instant::now(),
        })
    }
}

/// How far past the request timeout a request's first read may wait, so
/// that a kept-alive socket's timeout need not be set again per request.
const TIMEOUT_SLACK: Duration = Duration::from_millis(5);

/// Whether the request had been sent when an exchange failed.
enum Sent {
    No(Error),
    Yes(Error),
}

/// The time left until `deadline`; `None` once it has passed.
fn left(deadline: Instant) -> Option<Duration> {
    Some(deadline.saturating_duration_since(Instant::now())).filter(|d| !d.is_zero())
}

/// The addresses of `host`: an IP literal as it is, a name through the
/// system resolver on a helper thread (which has no timeout of its own), so
/// a slow lookup ends with the connect timeout instead of hanging.
fn resolve(host: &str, port: u16, until: Instant) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let name = host.to_owned();
    std::thread::Builder::new()
        .name("rates-resolve".into())
        .spawn(move || {
            let _ = tx.send((name.as_str(), port).to_socket_addrs().map(Vec::from_iter));
        })?;
    let wait = until.saturating_duration_since(Instant::now());
    match rx.recv_timeout(wait) {
        Ok(found) => found,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("looking up `{host}` took longer than the connect timeout"),
        )),
    }
}

/// One keep-alive connection and its one buffer.
#[derive(Debug)]
struct Conn {
    /// `http://host:port` or `https://host:port`.
    origin: String,
    stream: Stream,
    /// The request is written from it, then the response read into it.
    buf: Vec<u8>,
    /// The read timeout set on the socket.
    timeout: Option<Duration>,
    last_used: Instant,
}

impl Conn {
    fn set_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        if self.timeout != Some(timeout) {
            let socket = self.stream.socket();
            socket.set_read_timeout(Some(timeout))?;
            socket.set_write_timeout(Some(timeout))?;
            self.timeout = Some(timeout);
        }
        Ok(())
    }

    /// Whether the server has closed (or written to) the connection while
    /// it sat idle: one non-blocking peek.
    fn closed_while_idle(&self) -> bool {
        use nix::sys::socket::{MsgFlags, recv};
        use std::os::fd::AsRawFd as _;
        // One system call that never blocks and leaves any byte queued
        // (toggling the socket's blocking mode around a peek took three).
        let looked = recv(
            self.stream.socket().as_raw_fd(),
            &mut [0u8; 1],
            MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
        );
        // Open and quiet: nothing to read yet. An end of file, bytes nobody
        // asked for, or any error: not worth reusing.
        !matches!(looked, Err(nix::errno::Errno::EAGAIN))
    }
}

/// A socket, shared with the hook that shuts it down when a run is stopped
/// (the hook's reference keeps the descriptor from being closed and reused
/// under it).
#[derive(Debug)]
struct Socket(Arc<TcpStream>);

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self.0).flush()
    }
}

/// A socket, or TLS over it.
#[derive(Debug)]
enum Stream {
    Plain(Socket),
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, Socket>>),
}

impl Stream {
    fn socket(&self) -> &TcpStream {
        match self {
            Self::Plain(s) => &s.0,
            #[cfg(feature = "tls")]
            Self::Tls(tls) => &tls.sock.0,
        }
    }

    fn shared(&self) -> Arc<TcpStream> {
        match self {
            Self::Plain(s) => Arc::clone(&s.0),
            #[cfg(feature = "tls")]
            Self::Tls(tls) => Arc::clone(&tls.sock.0),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Self::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Self::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            #[cfg(feature = "tls")]
            Self::Tls(tls) => tls.flush(),
        }
    }
}

/// The parts of an `http://` or `https://` URL a request needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Url<'a> {
    https: bool,
    /// `scheme://authority`.
    origin_: &'a str,
    authority: &'a str,
    host: &'a str,
    port: u16,
    /// Path and query, starting with `/`.
    path: &'a str,
}

impl<'a> Url<'a> {
    fn parse(url: &'a str) -> Result<Self, Error> {
        let invalid = |why: &str| {
            Error::invalid_input(format!(
                "invalid URL `{url}`: {why}; check the endpoint template"
            ))
        };
        let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(invalid("it must start with http:// or https://"));
        };
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..end];
        let path = &rest[end..];
        if path.starts_with('?') || path.is_empty() {
            return Err(invalid("it has no path (add `/` after the host)"));
        }
        if !h1::is_token_text(authority) || authority.contains('@') {
            return Err(invalid("the host cannot be sent as a Host header"));
        }
        if !h1::is_token_text(path) {
            return Err(invalid(
                "the path holds spaces or control characters (percent-encode them)",
            ));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => (
                host,
                port.parse::<u16>()
                    .map_err(|_| invalid("the port is not a number from 1 to 65535"))?,
            ),
            _ => (authority, if https { 443 } else { 80 }),
        };
        if host.is_empty() {
            return Err(invalid("it has no host"));
        }
        Ok(Self {
            https,
            origin_: &url[..url.len() - path.len()],
            authority,
            host,
            port,
            path,
        })
    }

    fn origin(&self) -> &'a str {
        self.origin_
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_origin_host_port_and_path() {
        let u = Url::parse("http://127.0.0.1:9/rates?base=USD").unwrap();
        assert_eq!(
            (u.https, u.origin(), u.authority, u.host, u.port, u.path),
            (
                false,
                "http://127.0.0.1:9",
                "127.0.0.1:9",
                "127.0.0.1",
                9,
                "/rates?base=USD"
            )
        );
        let u = Url::parse("https://[::1]/x").unwrap();
        assert_eq!((u.host, u.port, u.path), ("[::1]", 443, "/x"));
        let u = Url::parse("http://[::1]:81/x").unwrap();
        assert_eq!((u.host, u.port), ("[::1]", 81));
        let u = Url::parse("http://example.com/").unwrap();
        assert_eq!((u.host, u.port), ("example.com", 80));
        for bad in [
            "ftp://x/",
            "http://x",
            "http://x?y=1",
            "http://x:99999/",
            "http://x/a b",
            "http://:80/",
            "http://u@x/",
        ] {
            let err = Url::parse(bad).unwrap_err();
            assert!(
                err.is_invalid_input() && err.to_string().contains(bad),
                "{err}"
            );
        }
    }

    #[test]
    fn literal_hosts_resolve_without_a_lookup() {
        let until = Instant::now() + Duration::from_secs(5);
        assert_eq!(
            resolve("127.0.0.1", 9, until).unwrap(),
            ["127.0.0.1:9".parse().unwrap()]
        );
        assert_eq!(
            resolve("[::1]", 81, until).unwrap(),
            ["[::1]:81".parse().unwrap()]
        );
        let local = resolve("localhost", 9, until).unwrap();
        assert!(!local.is_empty());
        assert!(local.iter().all(|a| a.ip().is_loopback() && a.port() == 9));
    }

    #[test]
    fn nothing_listening_is_a_connection_error() {
        // Bind then drop, so the port is (almost certainly) closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = Config::new(&format!("http://127.0.0.1:{port}/rates?base={{base}}")).unwrap();
        let client = BlockingClient::new(&config, 1);
        let err = client
            .get(&format!("http://127.0.0.1:{port}/rates?base=USD"))
            .unwrap_err();
        assert!(err.is_connection(), "{err:?}");
    }
}
