//! One connection of the async client: where it goes ([`Target`]: host,
//! timeouts, body cap, TLS set-up), its bytes (the runtime's stream, or TLS
//! over it), and one request on it (connect if needed, write, read the
//! response framed by [`crate::h1`]). The client around it
//! ([`super::AsyncClient`]) owns the timeouts and the attempt machine.

use std::io;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_lite::FutureExt as _;
use hyper::rt::{ReadBuf, ReadBufCursor};
use rates_core::{Config, Error, ErrorKind, RawResponse};

use super::AsyncRuntime;
use crate::h1;

/// Where requests go and the limits on them, shared by every worker of a run.
#[derive(Debug)]
pub(super) struct Target {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) authority: String,
    pub(super) connect_timeout: Duration,
    pub(super) request_timeout: Duration,
    pub(super) max_body: usize,
    /// For `https://`: the TLS set-up, or why there can be none.
    pub(super) tls: Option<Result<Tls, Error>>,
}

/// The TLS set-up shared by every connection of a run (so sessions can be
/// resumed across them).
/// Without the `tls` feature: none can be made (the target holds the
/// error that says so instead).
#[cfg(not(feature = "tls"))]
#[derive(Debug)]
pub(super) enum Tls {}

#[cfg(feature = "tls")]
pub(super) struct Tls {
    connector: futures_rustls::TlsConnector,
    name: rustls::pki_types::ServerName<'static>,
}

#[cfg(feature = "tls")]
impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("name", &self.name).finish()
    }
}

impl Target {
    pub(super) fn new(config: &Config) -> Self {
        let endpoint = &config.endpoint;
        Self {
            host: endpoint.host().to_owned(),
            port: endpoint.port(),
            authority: endpoint.authority().to_owned(),
            connect_timeout: config.connect_timeout,
            request_timeout: config.request_timeout,
            max_body: config.max_body_bytes,
            #[cfg(feature = "tls")]
            tls: endpoint.is_https().then(|| {
                crate::tls::connector(config).map(|(connector, name)| Tls { connector, name })
            }),
            #[cfg(not(feature = "tls"))]
            tls: endpoint
                .is_https()
                .then(|| Err(h1::no_tls(endpoint.authority()))),
        }
    }

    /// Checks that `GET path_and_query` can be sent to this host as it is:
    /// one that cannot fails here, before anything is connected.
    pub(super) fn check(&self, path_and_query: &str) -> Result<(), Error> {
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

/// A connection's bytes: the runtime's stream, or TLS over it.
pub(super) enum Stream<Io> {
    Plain(Io),
    #[cfg(feature = "tls")]
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
            #[cfg(feature = "tls")]
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
            #[cfg(feature = "tls")]
            Self::Tls(tls) => Pin::new(&mut **tls).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_flush(cx),
            #[cfg(feature = "tls")]
            Self::Tls(tls) => Pin::new(&mut **tls).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            Self::Tls(tls) => Pin::new(&mut **tls).poll_shutdown(cx),
        }
    }
}

/// The runtime's stream (hyper's I/O traits) seen through `futures-io`'s,
/// which `futures-rustls` drives: the one adapter that lets the same TLS
/// connector serve every runtime.
#[cfg(feature = "tls")]
pub(super) struct Compat<Io>(Io);

#[cfg(feature = "tls")]
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

#[cfg(feature = "tls")]
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
pub(super) struct Conn<Io> {
    io: Io,
    /// The request is written from it, then the response read into it.
    buf: Vec<u8>,
    /// Whether a response has come back on it (so the server may have
    /// closed it while it sat idle).
    reused: bool,
    pub(super) last_used: Instant,
}

/// Why an exchange on a connection failed.
enum ExchangeError {
    /// The kept-alive connection had been closed by the server before
    /// anything was sent on it.
    NotReady(Error),
    /// The request failed after it was sent.
    Failed(Error),
}

/// One request on the kept-alive connection in `slot`, connecting first if
/// there is none.
pub(super) async fn attempt<R: AsyncRuntime>(
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

/// The TLS handshake over `io`.
#[cfg(feature = "tls")]
async fn handshake<Io: hyper::rt::Read + hyper::rt::Write + Unpin>(
    tls: &Tls,
    io: Io,
    authority: &str,
) -> Result<Stream<Io>, Error> {
    match tls.connector.connect(tls.name.clone(), Compat(io)).await {
        Ok(stream) => Ok(Stream::Tls(Box::new(smol_hyper::rt::FuturesIo::new(
            stream,
        )))),
        Err(e) => Err(match crate::tls::rustls_error(&e) {
            Some(r) => crate::tls::error(authority, r),
            None => Error::new(
                if e.kind() == io::ErrorKind::TimedOut {
                    ErrorKind::Timeout
                } else {
                    ErrorKind::Connection
                },
                format!("the TLS handshake with {authority} broke off: {e}"),
            ),
        }),
    }
}

/// Without the `tls` feature there is no set-up to shake hands with.
#[cfg(not(feature = "tls"))]
async fn handshake<Io>(tls: &Tls, _io: Io, _authority: &str) -> Result<Stream<Io>, Error> {
    match *tls {}
}

/// Connects and, for `https://`, performs the TLS handshake (both bounded
/// by the connect timeout).
pub(super) async fn connect<R: AsyncRuntime>(
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
        match tls {
            None => Ok(Stream::Plain(io)),
            Some(tls) => handshake(tls, io, &target.authority).await,
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
