//! HTTP/1.1 framing for one GET at a time, without I/O: the request bytes,
//! the response head (parsed by `httparse`, the parser hyper itself uses)
//! and the body's framing (`Content-Length`, chunked, or up to the close).
//!
//! Why not hyper's client connection: it allocates a fixed 8 KiB write
//! buffer and an 8 KiB request-channel block per connection and sends every
//! request through a channel and a callback to its own dispatcher. With
//! 10,000 connections those fixed parts alone are 160 MiB, and the
//! dispatcher's hand-offs were a third of the client's own CPU per request
//! (see `results/*-h1` and the `rates-http` docs). A rates client needs
//! one request in flight per connection and nothing else of HTTP, so the
//! async client keeps exactly one small buffer per connection and parses
//! in place; this module is the part of it that can be tested without a
//! socket.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::time::Duration;

use rates_core::{Error, ErrorKind, RawResponse};

use crate::parse_retry_after;

/// The most header lines a response may carry.
const MAX_HEADERS: usize = 64;

/// Appends `GET path_and_query` with `Host`, `User-Agent` and `Accept` to
/// `out`.
pub(crate) fn encode_request(out: &mut Vec<u8>, path_and_query: &str, host: &str) {
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(path_and_query.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\nUser-Agent: ");
    out.extend_from_slice(crate::USER_AGENT.as_bytes());
    out.extend_from_slice(b"\r\nAccept: application/json\r\n\r\n");
}

/// Whether `s` can be sent as it is in a request line or a header: visible
/// ASCII only, no spaces or control characters.
pub(crate) fn is_token_text(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}

/// How a response's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body (`204`, `304`, or `Content-Length: 0`).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything up to the server's close (no length given).
    UntilClose,
}

/// A parsed response head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    /// Bytes of the buffer the head took (including any `1xx` heads before it).
    pub(crate) len: usize,
    pub(crate) status: u16,
    pub(crate) retry_after: Option<Duration>,
    /// The `Location` header of a redirect (read only for 3xx statuses).
    pub(crate) location: Option<String>,
    pub(crate) framing: Framing,
    /// Whether the connection may carry another request after this one.
    pub(crate) keep_alive: bool,
}

/// Why a response head could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// Not HTTP/1.x, or a malformed status line or header.
    Malformed(String),
    /// Conflicting or unparsable length headers.
    BadLength(String),
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "a malformed response head ({why})"),
            Self::BadLength(why) => write!(f, "an unusable body length ({why})"),
        }
    }
}

/// Parses the head at the start of `buf`: `Ok(None)` when more bytes are
/// needed. Interim `1xx` heads (other than `101`) are skipped.
pub(crate) fn parse_head(buf: &[u8]) -> Result<Option<Head>, HeadError> {
    let mut start = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let len = match response.parse(&buf[start..]) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(HeadError::Malformed(e.to_string())),
        };
        let status = response.code.unwrap_or(0);
        if (100..200).contains(&status) && status != 101 {
            start += len;
            continue;
        }
        let mut head = Head {
            len: start + len,
            status,
            retry_after: None,
            location: None,
            framing: Framing::UntilClose,
            keep_alive: response.version == Some(1),
        };
        let mut length: Option<u64> = None;
        let mut chunked = false;
        for h in response.headers.iter() {
            let name = h.name;
            if name.eq_ignore_ascii_case("content-length") {
                let value = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .ok_or_else(|| {
                        HeadError::BadLength(format!(
                            "Content-Length `{}`",
                            String::from_utf8_lossy(h.value)
                        ))
                    })?;
                if length.is_some_and(|l| l != value) {
                    return Err(HeadError::BadLength(
                        "two different Content-Length headers".into(),
                    ));
                }
                length = Some(value);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                // Only the last coding frames the body; anything but chunked
                // there means "up to the close".
                chunked = last_token(h.value).eq_ignore_ascii_case(b"chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                for token in h.value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    if token.eq_ignore_ascii_case(b"close") {
                        head.keep_alive = false;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") && status != 101 {
                        head.keep_alive = true;
                    }
                }
            } else if (300..400).contains(&status) && name.eq_ignore_ascii_case("location") {
                head.location = std::str::from_utf8(h.value).ok().map(str::to_owned);
            } else if name.eq_ignore_ascii_case("retry-after") {
                head.retry_after = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(parse_retry_after);
            }
        }
        if status == 101 {
            head.keep_alive = false;
        }
        head.framing = if status == 204 || status == 304 {
            Framing::Empty
        } else if chunked {
            Framing::Chunked
        } else {
            match length {
                Some(0) => Framing::Empty,
                Some(n) => Framing::Length(n),
                None => Framing::UntilClose,
            }
        };
        if head.framing == Framing::UntilClose {
            head.keep_alive = false;
        }
        return Ok(Some(head));
    }
}

fn last_token(value: &[u8]) -> &[u8] {
    value
        .rsplit(|&b| b == b',')
        .next()
        .unwrap_or_default()
        .trim_ascii()
}

/// Reads a body's framing off the bytes as they arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyReader {
    /// This many bytes of data left.
    Length(u64),
    /// Chunked: at a size line.
    ChunkSize,
    /// Chunked: this many bytes of the current chunk left.
    ChunkData(u64),
    /// Chunked: the CRLF after a chunk's data.
    ChunkEnd,
    /// Chunked: trailer lines after the last chunk, up to an empty line.
    Trailers,
    /// Everything up to the close.
    UntilClose,
    /// The body is complete.
    Done,
}

/// A body that does not follow its own framing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BodyError(pub(crate) String);

/// What one [`BodyReader::feed`] call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fed {
    /// Bytes of the input taken.
    pub(crate) used: usize,
    /// Of them, the range that is body data.
    pub(crate) data: (usize, usize),
}

/// The longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 4096;

impl BodyReader {
    pub(crate) fn new(framing: Framing) -> Self {
        match framing {
            Framing::Empty | Framing::Length(0) => Self::Done,
            Framing::Length(n) => Self::Length(n),
            Framing::Chunked => Self::ChunkSize,
            Framing::UntilClose => Self::UntilClose,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        *self == Self::Done
    }

    /// Takes what it can of `input`. Call again with the rest while
    /// `used < input.len()` and the body is not done; `used == 0` means a
    /// control line is incomplete and more bytes are needed.
    pub(crate) fn feed(&mut self, input: &[u8]) -> Result<Fed, BodyError> {
        let data_of = |n: u64| usize::try_from(n).unwrap_or(usize::MAX).min(input.len());
        match *self {
            Self::Done => Ok(Fed {
                used: 0,
                data: (0, 0),
            }),
            Self::UntilClose => Ok(Fed {
                used: input.len(),
                data: (0, input.len()),
            }),
            Self::Length(left) | Self::ChunkData(left) => {
                let n = data_of(left);
                let left = left - n as u64;
                *self = match (*self, left) {
                    (Self::Length(_), 0) => Self::Done,
                    (Self::Length(_), left) => Self::Length(left),
                    (_, 0) => Self::ChunkEnd,
                    (_, left) => Self::ChunkData(left),
                };
                Ok(Fed {
                    used: n,
                    data: (0, n),
                })
            }
            Self::ChunkSize => match httparse::parse_chunk_size(input) {
                Ok(httparse::Status::Complete((used, size))) => {
                    *self = if size == 0 {
                        Self::Trailers
                    } else {
                        Self::ChunkData(size)
                    };
                    Ok(Fed {
                        used,
                        data: (used, used),
                    })
                }
                Ok(httparse::Status::Partial) if input.len() < MAX_LINE => Ok(Fed {
                    used: 0,
                    data: (0, 0),
                }),
                _ => Err(BodyError("a malformed chunk size line".into())),
            },
            Self::ChunkEnd => {
                if input.len() < 2 {
                    return match input {
                        [] | [b'\r'] => Ok(Fed {
                            used: 0,
                            data: (0, 0),
                        }),
                        _ => Err(BodyError("a chunk not followed by CRLF".into())),
                    };
                }
                if &input[..2] != b"\r\n" {
                    return Err(BodyError("a chunk not followed by CRLF".into()));
                }
                *self = Self::ChunkSize;
                Ok(Fed {
                    used: 2,
                    data: (2, 2),
                })
            }
            Self::Trailers => match input.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    let line = input[..end].strip_suffix(b"\r").unwrap_or(&input[..end]);
                    if line.is_empty() {
                        *self = Self::Done;
                    }
                    Ok(Fed {
                        used: end + 1,
                        data: (end + 1, end + 1),
                    })
                }
                None if input.len() < MAX_LINE => Ok(Fed {
                    used: 0,
                    data: (0, 0),
                }),
                None => Err(BodyError("a trailer line too long".into())),
            },
        }
    }
}

/// Who an exchange is with, for its errors: the server and the body cap.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer<'a> {
    pub(crate) authority: &'a str,
    pub(crate) max_body: usize,
}

impl Peer<'_> {
    /// An I/O error on a connection: a timeout, a TLS failure, or a
    /// connection error.
    pub(crate) fn io_error(&self, what: &str, e: &io::Error) -> Error {
        #[cfg(feature = "tls")]
        if let Some(tls) = crate::tls::rustls_error(e) {
            return crate::tls::error(self.authority, tls);
        }
        let kind = if is_timed_out(e) {
            ErrorKind::Timeout
        } else {
            ErrorKind::Connection
        };
        Error::new(
            kind,
            format!(
                "the connection to {} failed {what}: {}",
                self.authority,
                chain(e)
            ),
        )
    }

    /// A response that breaks HTTP/1.1: a connection error, like a
    /// dropped connection.
    pub(crate) fn protocol_error(&self, why: impl fmt::Display) -> Error {
        Error::new(
            ErrorKind::Connection,
            format!(
                "the response from {} is not usable HTTP/1.1: {why}",
                self.authority
            ),
        )
    }

    pub(crate) fn too_large(&self) -> Error {
        Error::new(
            ErrorKind::BodyTooLarge,
            format!(
                "the response body is larger than the {}-byte cap (raise max_body_bytes)",
                self.max_body
            ),
        )
    }
}

/// Whether the OS reported a timeout anywhere in the chain (a socket read
/// timeout shows as `WouldBlock` on Unix).
pub(crate) fn is_timed_out(e: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if e.downcast_ref::<io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            )
        }) {
            return true;
        }
        next = e.source();
    }
    false
}

/// No complete response within the request timeout.
/// The error for an `https://` endpoint in a build without the `tls`
/// feature: not retried, and it says how to get TLS back.
#[cfg(not(feature = "tls"))]
pub(crate) fn no_tls(authority: &str) -> Error {
    Error::invalid_input(format!(
        "{authority} is an https:// endpoint, but rates-http was built without its `tls` \
         feature: enable it (it is on by default; `default-features = false` on the \
         strategy crate turns it off) or use http://"
    ))
}

pub(crate) fn request_timed_out(authority: &str, timeout: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!(
            "no complete response from {authority} within the {timeout:?} request timeout \
             (raise request_timeout)"
        ),
    )
}

/// No connection (and TLS handshake) within the connect timeout.
pub(crate) fn connect_timed_out(authority: &str, timeout: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!(
            "could not connect to {authority} within the {timeout:?} connect timeout \
             (raise connect_timeout)"
        ),
    )
}

/// An error and its sources, joined with `": "`.
pub(crate) fn chain(e: &(dyn StdError + 'static)) -> String {
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

/// The buffer each connection holds: the request is written from it and
/// the response read into it. A rates answer (head and body) is a few
/// hundred bytes; longer bodies stream through it in pieces of this size,
/// up to the body cap, and a longer head grows it (to at most
/// [`MAX_HEAD`]) for that one response.
pub(crate) const BUFFER: usize = 1024;

/// A kept-alive connection idle for longer than this is looked at (one
/// non-blocking read) before a request is sent on it: the server may have
/// closed it meanwhile, and a request sent on it would fail as an attempt.
/// One reused at once (as under load) is not: the look would cost a system
/// call per request.
pub(crate) const IDLE_CHECK: Duration = Duration::from_millis(1);

/// The longest response head accepted (status line and headers).
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// A finished exchange: the response, and whether the connection may carry
/// another request (the body was read to its end, the server did not ask
/// to close, and nothing followed the response).
pub(crate) type Exchanged = Result<(RawResponse, bool), Error>;

/// Reads one response out of a connection's buffer, whoever does the
/// reading (a blocking socket or a task): the caller reads into
/// `buf[next_read()..]` and hands the count to [`advance`](Self::advance)
/// until it returns the result. Success bodies are kept up to the cap;
/// error bodies are drained and dropped.
#[derive(Debug)]
pub(crate) struct ResponseReader {
    filled: usize,
    start: usize,
    head: Option<Head>,
    reader: BodyReader,
    body: Vec<u8>,
    drained: usize,
}

impl ResponseReader {
    pub(crate) fn new() -> Self {
        Self {
            filled: 0,
            start: 0,
            head: None,
            reader: BodyReader::Done,
            body: Vec::new(),
            drained: 0,
        }
    }

    /// Where the next read goes in `buf`: from this index to its end. A
    /// full buffer is doubled, up to [`MAX_HEAD`] (a head, or a chunk-size
    /// line, that does not fit).
    pub(crate) fn next_read(&mut self, buf: &mut Vec<u8>, peer: Peer<'_>) -> Result<usize, Error> {
        if self.filled == buf.len() {
            if buf.len() >= MAX_HEAD {
                return Err(peer.protocol_error(format_args!(
                    "a response head or chunk line longer than {MAX_HEAD} bytes; \
                     the rates APIs send well under 1 KiB"
                )));
            }
            buf.resize((buf.len() * 2).clamp(BUFFER, MAX_HEAD), 0);
        }
        Ok(self.filled)
    }

    /// Takes `n` more bytes read into `buf` (0: the end of the stream);
    /// the result once the response is complete.
    pub(crate) fn advance(
        &mut self,
        buf: &mut [u8],
        n: usize,
        peer: Peer<'_>,
    ) -> Option<Exchanged> {
        if n == 0 {
            return Some(self.end_of_stream(peer));
        }
        self.filled += n;
        if self.head.is_none() {
            let head = match parse_head(&buf[..self.filled]) {
                Ok(None) => return None,
                Err(e) => return Some(Err(peer.protocol_error(e))),
                Ok(Some(head)) => head,
            };
            let success = is_success(head.status);
            if let Framing::Length(len) = head.framing {
                if len > u64::try_from(peer.max_body).unwrap_or(u64::MAX) {
                    // Announced larger than the cap: no need to read it.
                    return Some(if success {
                        Err(peer.too_large())
                    } else {
                        Ok((raw(&head, Vec::new()), false))
                    });
                }
                if success {
                    self.body = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
                }
            }
            self.start = head.len;
            self.reader = BodyReader::new(head.framing);
            self.head = Some(head);
        }
        let head = self.head.as_ref()?;
        let success = is_success(head.status);
        while self.start < self.filled && !self.reader.is_done() {
            let fed = match self.reader.feed(&buf[self.start..self.filled]) {
                Ok(fed) => fed,
                Err(_) if !success => return Some(Ok((raw(head, Vec::new()), false))),
                Err(BodyError(why)) => return Some(Err(peer.protocol_error(why))),
            };
            let data = &buf[self.start + fed.data.0..self.start + fed.data.1];
            if success {
                if self.body.len() + data.len() > peer.max_body {
                    return Some(Err(peer.too_large()));
                }
                self.body.extend_from_slice(data);
            } else {
                self.drained += data.len();
                if self.drained > peer.max_body {
                    return Some(Ok((raw(head, Vec::new()), false)));
                }
            }
            self.start += fed.used;
            if fed.used == 0 {
                break;
            }
        }
        if self.reader.is_done() {
            let reusable = head.keep_alive && self.start == self.filled;
            let body = std::mem::take(&mut self.body);
            return Some(Ok((raw(head, body), reusable)));
        }
        // Keep what is left of a control line at the front; read more.
        buf.copy_within(self.start..self.filled, 0);
        self.filled -= self.start;
        self.start = 0;
        None
    }

    /// A read failed: an error, except for an error status, whose body
    /// does not matter.
    pub(crate) fn failed(&self, e: &io::Error, peer: Peer<'_>) -> Exchanged {
        match &self.head {
            Some(head) if !is_success(head.status) => Ok((raw(head, Vec::new()), false)),
            Some(_) => Err(peer.io_error("reading the body", e)),
            None => Err(peer.io_error("reading the response", e)),
        }
    }

    fn end_of_stream(&mut self, peer: Peer<'_>) -> Exchanged {
        let Some(head) = &self.head else {
            return Err(Error::new(
                ErrorKind::Connection,
                format!(
                    "{} closed the connection before a complete response head \
                     ({} bytes of it)",
                    peer.authority, self.filled
                ),
            ));
        };
        if self.reader == BodyReader::UntilClose {
            return Ok((raw(head, std::mem::take(&mut self.body)), false));
        }
        if !is_success(head.status) {
            return Ok((raw(head, Vec::new()), false));
        }
        Err(Error::new(
            ErrorKind::Connection,
            format!(
                "{} closed the connection before the end of the body \
                 (truncated after {} bytes)",
                peer.authority,
                self.body.len()
            ),
        ))
    }
}

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

fn raw(head: &Head, body: Vec<u8>) -> RawResponse {
    RawResponse {
        status: head.status,
        retry_after: head.retry_after,
        location: head.location.clone(),
        body: if is_success(head.status) {
            body
        } else {
            Vec::new()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Head {
        parse_head(text.as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn requests_are_one_get_with_host_and_user_agent() {
        let mut out = Vec::new();
        encode_request(&mut out, "/rates?base=USD", "127.0.0.1:9");
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("GET /rates?base=USD HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"));
        assert!(text.contains(&format!("User-Agent: {}\r\n", crate::USER_AGENT)));
        assert!(text.ends_with("\r\n\r\n"));
        assert!(is_token_text("/rates?base=USD"));
        assert!(!is_token_text("/rates?base=U S D"));
        assert!(!is_token_text("/a\r\nX: y"));
        assert!(!is_token_text(""));
    }

    #[test]
    fn heads_give_status_framing_and_reuse() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nbody");
        assert_eq!(h.status, 200);
        assert_eq!(h.framing, Framing::Length(12));
        assert!(h.keep_alive);
        assert_eq!(h.len, "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n".len());

        let h = head("HTTP/1.1 429 Too Many\r\nretry-after: 2\r\nconnection: close\r\n\r\n");
        assert_eq!(h.retry_after, Some(Duration::from_secs(2)));
        assert!(!h.keep_alive);
        assert_eq!(h.framing, Framing::UntilClose);

        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
        assert_eq!(h.framing, Framing::Chunked);
        assert!(h.keep_alive);

        let h = head("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n");
        assert!(!h.keep_alive, "HTTP/1.0 closes unless told otherwise");
        let h = head("HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n");
        assert!(h.keep_alive);

        let h = head("HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n");
        assert_eq!(h.framing, Framing::Empty);

        let h = head("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(h.status, 200);
        assert_eq!(h.framing, Framing::Empty);
        assert_eq!(h.len, 63);
    }

    #[test]
    fn incomplete_and_broken_heads() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le"), Ok(None));
        assert_eq!(parse_head(b""), Ok(None));
        assert!(matches!(
            parse_head(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err(HeadError::Malformed(_))
        ));
        assert!(matches!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
            Err(HeadError::BadLength(_))
        ));
        assert!(matches!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Err(HeadError::BadLength(_))
        ));
    }

    /// Feeds `wire` in pieces of `step` bytes, as reads would hand them
    /// over, and returns the body and whether it completed.
    fn decode(framing: Framing, wire: &[u8], step: usize) -> Result<(Vec<u8>, bool), BodyError> {
        let mut reader = BodyReader::new(framing);
        let mut body = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        for piece in wire.chunks(step.max(1)) {
            pending.extend_from_slice(piece);
            loop {
                if reader.is_done() || pending.is_empty() {
                    break;
                }
                let fed = reader.feed(&pending)?;
                body.extend_from_slice(&pending[fed.data.0..fed.data.1]);
                pending.drain(..fed.used);
                if fed.used == 0 {
                    break;
                }
            }
        }
        Ok((body, reader.is_done()))
    }

    fn chunked(body: &[u8], sizes: &[usize]) -> Vec<u8> {
        let mut wire = Vec::new();
        let mut rest = body;
        let mut sizes = sizes.iter().cycle();
        while !rest.is_empty() {
            let n = (*sizes.next().unwrap()).clamp(1, rest.len());
            wire.extend_from_slice(format!("{n:x};ext=1\r\n").as_bytes());
            wire.extend_from_slice(&rest[..n]);
            wire.extend_from_slice(b"\r\n");
            rest = &rest[n..];
        }
        wire.extend_from_slice(b"0\r\nX-Trailer: y\r\n\r\n");
        wire
    }

    #[test]
    fn chunked_bodies_decode_however_they_are_split() {
        let body: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8).collect();
        let wire = chunked(&body, &[7, 64, 1, 200]);
        for step in [1, 2, 3, 5, 17, 64, wire.len()] {
            assert_eq!(
                decode(Framing::Chunked, &wire, step),
                Ok((body.clone(), true)),
                "{step}"
            );
        }
        // Cut short: incomplete, not an error.
        let (got, done) = decode(Framing::Chunked, &wire[..wire.len() - 3], 9).unwrap();
        assert_eq!(got, body);
        assert!(!done);
    }

    #[test]
    fn length_bodies_stop_at_their_length() {
        assert_eq!(
            decode(Framing::Length(5), b"hello", 2),
            Ok((b"hello".to_vec(), true))
        );
        assert_eq!(
            decode(Framing::Length(5), b"hel", 2),
            Ok((b"hel".to_vec(), false))
        );
        assert_eq!(
            decode(Framing::UntilClose, b"abc", 1),
            Ok((b"abc".to_vec(), false))
        );
        assert_eq!(decode(Framing::Empty, b"", 1), Ok((Vec::new(), true)));
    }

    #[test]
    fn broken_chunks_are_errors() {
        assert!(decode(Framing::Chunked, b"zz\r\n", 4).is_err());
        assert!(decode(Framing::Chunked, b"3\r\nabcXY0\r\n\r\n", 4).is_err());
        let long = vec![b'1'; MAX_LINE + 1];
        assert!(decode(Framing::Chunked, &long, MAX_LINE + 1).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_chunking_and_any_split_decode_to_the_body(
            body in proptest::collection::vec(proptest::num::u8::ANY, 1..600),
            sizes in proptest::collection::vec(1usize..300, 1..6),
            step in 1usize..80,
        ) {
            let wire = chunked(&body, &sizes);
            proptest::prop_assert_eq!(decode(Framing::Chunked, &wire, step), Ok((body, true)));
        }
    }
}
