//! What the parent and a worker say to each other: one JSON value per line,
//! a response's body following its line as raw bytes.
//!
//! ```text
//! parent → worker   {"hello":{"protocol":3,"config":{...}}}
//! worker → parent   {"ready":{"protocol":3}}
//! parent → worker   g 1 0 - http://127.0.0.1:8080/rates?base=USD
//!                   (a request: g ID MORE WAIT URL; WAIT is `-`, or under a
//!                   rate limit AT/MOST, the slot to send at and the longest
//!                   wait, in nanoseconds: see `Wait`)
//! worker → parent   r 1 1764512345000000000 1764512345000210000 200 - 101 0
//!                   {"base":"USD",...}   (the body: exactly 101 raw bytes, no newline)
//!                   (a response: r ID SENT DONE STATUS RETRY_AFTER BODY_LEN WORKED,
//!                   SENT and DONE wall-clock nanoseconds since the Unix epoch,
//!                   RETRY_AFTER nanoseconds or `-`, WORKED 0 or 1)
//!                   ... requests come in batches: MORE is 1 on every one but
//!                   the last of a batch, and the worker answers them in
//!                   order, writing its replies out together after the last ...
//! parent closes the worker's stdin
//! worker → parent   {"bye":{"peak_rss_bytes":5234688}}   and it exits
//! ```
//!
//! A worker that cannot serve (a bad first message, another protocol
//! version) answers `{"fatal":{"message":"..."}}` and exits.
//!
//! The two messages of every request travel in the compact forms above; the
//! others, and a request or response these cannot carry (a failed attempt,
//! a URL with a newline), as one JSON value per line, which either side
//! also reads in place of a compact line. Writing and reading the JSON
//! forms (field names, durations as objects, a `String` per line checked
//! for UTF-8) took about a sixth of the process strategy's CPU on
//! `overhead` (perf record of 100,000 bases at 64 in flight).
//!
//! Bodies travel raw, after a length, rather than as JSON strings: escaping
//! every quote of a JSON body, checking it is UTF-8 and unescaping it again
//! took about a tenth of the process strategy's CPU, and any bytes at all
//! now cross unchanged.

use std::io::{self, Write as _};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rates_core::{Config, Error, RawResponse};
use serde::{Deserialize, Serialize};

/// The protocol version; parent and worker must agree on it.
pub(crate) const PROTOCOL: u32 = 3;

/// A message from the parent to a worker.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Request {
    /// The first message: how to build the HTTP client.
    Hello { protocol: u32, config: Box<Config> },
    /// Send one GET (after `wait`, if any) and answer with a
    /// [`Reply::Response`] carrying `id`.
    Get {
        id: u64,
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wait: Option<Wait>,
        /// More requests of the same batch follow: keep this reply until
        /// the batch's last one, and write them all out together.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        more: bool,
    },
}

/// When to send a request: its throttle slot, reserved by the parent.
///
/// Processes share no `Instant`, so the slot travels as wall-clock time,
/// capped by the wait as the parent measured it: a wall clock stepped back
/// cannot make the worker wait longer than that.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Wait {
    /// The slot, as time since the Unix epoch.
    at: Duration,
    /// The wait as the parent measured it, when it sent the request.
    most: Duration,
}

impl Wait {
    /// A slot `wait` from now.
    pub(crate) fn from_now(wait: Duration) -> Self {
        Self {
            at: since_epoch() + wait,
            most: wait,
        }
    }

    /// How long to sleep now to reach the slot.
    pub(crate) fn remaining(&self) -> Duration {
        self.at.saturating_sub(since_epoch()).min(self.most)
    }
}

/// When a request `sent` (time since the Unix epoch, from
/// [`since_epoch`] in any process) left, on this process's monotonic
/// clock; never later than now.
pub(crate) fn instant_of(sent: Duration) -> Instant {
    let now = Instant::now();
    now.checked_sub(since_epoch().saturating_sub(sent))
        .unwrap_or(now)
}

/// Now, as time since the Unix epoch.
pub(crate) fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

/// A message from a worker to the parent.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Reply {
    /// The answer to the hello: the worker is ready for requests.
    Ready { protocol: u32 },
    /// The result of one attempt.
    Response {
        id: u64,
        /// When the request left, as time since the Unix epoch (the parent
        /// records it in the throttle's send log).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sent: Option<Duration>,
        /// When its response was complete, likewise (the request's latency
        /// ends here, not when the parent reads the reply: a batch's
        /// replies are written out together).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        done: Option<Duration>,
        result: Result<WireResponse, Error>,
    },
    /// The last message, after the parent closed the worker's stdin.
    Bye { peak_rss_bytes: Option<u64> },
    /// The worker cannot serve and is exiting.
    Fatal { message: String },
}

/// A [`RawResponse`] as it travels: the status and `Retry-After` in the
/// message's line, the body's length there too, and the body's bytes right
/// after the line (see [`write_message`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WireResponse {
    status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_after: Option<Duration>,
    /// A redirect's `Location` (such a reply travels as JSON, not in the
    /// compact form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    location: Option<String>,
    /// How many raw bytes of body follow the line.
    #[serde(default)]
    body_len: usize,
    /// The body: written after the line, filled in by the reader.
    #[serde(skip)]
    pub(crate) body: Vec<u8>,
    /// The worker did the item's CPU work (`Config::work`) on this answer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) worked: bool,
}

impl From<RawResponse> for WireResponse {
    fn from(r: RawResponse) -> Self {
        Self {
            status: r.status,
            retry_after: r.retry_after,
            location: r.location,
            body_len: r.body.len(),
            body: r.body,
            worked: false,
        }
    }
}

impl From<WireResponse> for RawResponse {
    fn from(w: WireResponse) -> Self {
        Self {
            status: w.status,
            retry_after: w.retry_after,
            location: w.location,
            body: w.body,
        }
    }
}

impl Reply {
    /// How many raw bytes follow this message's line: a successful
    /// response's body.
    pub(crate) fn body_len(&self) -> usize {
        match self {
            Self::Response {
                result: Ok(wire), ..
            } => wire.body_len,
            _ => 0,
        }
    }

    /// Takes `body` (the [`body_len`](Self::body_len) bytes that followed
    /// the line) into the message.
    pub(crate) fn set_body(&mut self, body: &[u8]) {
        if let Self::Response {
            result: Ok(wire), ..
        } = self
        {
            wire.body = body.to_vec();
        }
    }
}

/// How requests and answers travel between the parent and a worker, in
/// words (the registry's one line on the strategy says it; a test checks it
/// against the bytes a request is written as).
pub const WIRE: &str = "one compact text line per request and per answer over pipes, \
                        bodies raw";

/// The first bytes of a request's compact line.
const GET: &[u8] = b"g ";
/// The first bytes of a response's compact line.
const RESPONSE: &[u8] = b"r ";

/// Writes `n` in decimal (itoa: without `core::fmt`'s machinery, which
/// took a twentieth of the process strategy's CPU on these lines).
fn write_number(out: &mut impl io::Write, n: impl itoa::Integer) -> io::Result<()> {
    out.write_all(itoa::Buffer::new().format(n).as_bytes())
}

/// A duration in nanoseconds, or `-` for none.
fn write_nanos(out: &mut impl io::Write, d: Option<Duration>) -> io::Result<()> {
    match d {
        Some(d) => write_number(out, u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        None => out.write_all(b"-"),
    }
}

/// What `write_nanos` wrote.
fn parse_nanos(field: &str) -> Result<Option<Duration>, String> {
    match field {
        "-" => Ok(None),
        n => n
            .parse()
            .map(|n| Some(Duration::from_nanos(n)))
            .map_err(|_| format!("`{n}` is not a number of nanoseconds")),
    }
}

fn parse_number<T: std::str::FromStr>(field: Option<&str>, what: &str) -> Result<T, String> {
    let field = field.ok_or_else(|| format!("no {what}"))?;
    field
        .parse()
        .map_err(|_| format!("`{field}` is not a {what}"))
}

fn parse_flag(field: Option<&str>, what: &str) -> Result<bool, String> {
    match field {
        Some("0") => Ok(false),
        Some("1") => Ok(true),
        Some(other) => Err(format!("`{other}` is not a {what} (0 or 1)")),
        None => Err(format!("no {what}")),
    }
}

/// One line without its newline (and a carriage return before it).
fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// One line as read: the text of a compact line after its prefix, or a
/// message in JSON.
enum Line<'a, T> {
    Compact(&'a str),
    Json(T),
}

/// Reads one line (its newline may be included): compact when it starts
/// with `prefix` (`what` names it in errors), JSON otherwise.
fn read_line<'a, T: serde::de::DeserializeOwned>(
    line: &'a [u8],
    prefix: &[u8],
    what: &str,
) -> Result<Line<'a, T>, String> {
    let line = trim_newline(line);
    match line.strip_prefix(prefix) {
        Some(rest) => std::str::from_utf8(rest)
            .map(Line::Compact)
            .map_err(|e| format!("a {what} not in UTF-8: {e}")),
        None => serde_json::from_slice(line)
            .map(Line::Json)
            .map_err(|e| e.to_string()),
    }
}

impl Request {
    /// Reads one line (its newline may be included): the compact form of a
    /// request, or any message as JSON.
    pub(crate) fn parse(line: &[u8]) -> Result<Self, String> {
        let rest = match read_line(line, GET, "request")? {
            Line::Compact(rest) => rest,
            Line::Json(message) => return Ok(message),
        };
        let mut fields = rest.splitn(4, ' ');
        let id = parse_number(fields.next(), "request id")?;
        let more = parse_flag(fields.next(), "batch flag")?;
        let wait = match fields.next() {
            None => return Err("no wait".into()),
            Some("-") => None,
            Some(wait) => {
                let (at, most) = wait
                    .split_once('/')
                    .ok_or_else(|| format!("`{wait}` is not a wait (AT/MOST)"))?;
                match (parse_nanos(at)?, parse_nanos(most)?) {
                    (Some(at), Some(most)) => Some(Wait { at, most }),
                    _ => return Err(format!("`{wait}` is not a wait (AT/MOST)")),
                }
            }
        };
        let url = fields.next().filter(|u| !u.is_empty()).ok_or("no URL")?;
        Ok(Self::Get {
            id,
            url: url.to_owned(),
            wait,
            more,
        })
    }
}

/// Appends one request as a line, newline included, to `out`: a request in
/// its compact form where it fits (a URL without a newline), anything else
/// as JSON.
pub(crate) fn append_request(out: &mut Vec<u8>, request: &Request) {
    match request {
        Request::Get {
            id,
            url,
            wait,
            more,
        } if !url.contains('\n') && !url.is_empty() => {
            out.extend_from_slice(GET);
            // Writing to a Vec cannot fail.
            let _ = write_number(out, *id);
            out.extend_from_slice(if *more { b" 1 " } else { b" 0 " });
            match wait {
                Some(w) => {
                    let _ = write_nanos(out, Some(w.at));
                    out.push(b'/');
                    let _ = write_nanos(out, Some(w.most));
                }
                None => out.push(b'-'),
            }
            out.push(b' ');
            out.extend_from_slice(url.as_bytes());
            out.push(b'\n');
        }
        other => append_line(out, other),
    }
}

impl Reply {
    /// Reads one line (its newline may be included): the compact form of a
    /// response, or any message as JSON. A response's body is not in the
    /// line: [`set_body`](Self::set_body) takes it.
    pub(crate) fn parse(line: &[u8]) -> Result<Self, String> {
        let rest = match read_line(line, RESPONSE, "reply")? {
            Line::Compact(rest) => rest,
            Line::Json(message) => return Ok(message),
        };
        let mut fields = rest.split(' ');
        let id = parse_number(fields.next(), "request id")?;
        let sent = parse_nanos(fields.next().ok_or("no send time")?)?;
        let done = parse_nanos(fields.next().ok_or("no end time")?)?;
        let status = parse_number(fields.next(), "status")?;
        let retry_after = parse_nanos(fields.next().ok_or("no Retry-After")?)?;
        let body_len = parse_number(fields.next(), "body length")?;
        let worked = parse_flag(fields.next(), "work flag")?;
        if let Some(extra) = fields.next() {
            return Err(format!("`{extra}` after the work flag"));
        }
        Ok(Self::Response {
            id,
            sent,
            done,
            result: Ok(WireResponse {
                status,
                retry_after,
                location: None,
                body_len,
                body: Vec::new(),
                worked,
            }),
        })
    }
}

/// Writes `reply` as it travels: its line (a successful response in its
/// compact form, anything else as JSON), then its body's raw bytes.
pub(crate) fn write_message(output: &mut impl io::Write, reply: &Reply) -> io::Result<()> {
    match reply {
        Reply::Response {
            id,
            sent,
            done,
            result: Ok(wire),
        } if wire.location.is_none() => {
            output.write_all(RESPONSE)?;
            write_number(output, *id)?;
            output.write_all(b" ")?;
            write_nanos(output, *sent)?;
            output.write_all(b" ")?;
            write_nanos(output, *done)?;
            output.write_all(b" ")?;
            write_number(output, wire.status)?;
            output.write_all(b" ")?;
            write_nanos(output, wire.retry_after)?;
            output.write_all(b" ")?;
            write_number(output, wire.body.len())?;
            output.write_all(if wire.worked { b" 1\n" } else { b" 0\n" })?;
            output.write_all(&wire.body)
        }
        other => {
            serde_json::to_writer(&mut *output, other)?;
            output.write_all(b"\n")
        }
    }
}

/// One message as a line, newline included.
pub(crate) fn line<T: Serialize>(message: &T) -> Vec<u8> {
    let mut out = Vec::new();
    append_line(&mut out, message);
    out
}

/// Appends one message as a line, newline included, to `out`.
pub(crate) fn append_line<T: Serialize>(out: &mut Vec<u8>, message: &T) {
    let start = out.len();
    // Serialising these types cannot fail: every map key is a string.
    if let Err(e) = serde_json::to_writer(&mut *out, message) {
        out.truncate(start);
        let _ = write!(
            out,
            r#"{{"fatal":{{"message":"cannot encode a message: {e}"}}}}"#
        );
    }
    out.push(b'\n');
}

/// Every message in `bytes`, as a worker writes them (for tests).
#[cfg(test)]
pub(crate) fn read_all(mut bytes: &[u8]) -> Vec<Reply> {
    let mut out = Vec::new();
    while let Some(n) = bytes.iter().position(|&b| b == b'\n') {
        let mut reply = Reply::parse(&bytes[..n]).unwrap();
        let body = &bytes[n + 1..n + 1 + reply.body_len()];
        reply.set_body(body);
        bytes = &bytes[n + 1 + body.len()..];
        out.push(reply);
    }
    assert!(bytes.is_empty(), "an unfinished message: {bytes:?}");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_wire_is_as_described() {
        let mut out = Vec::new();
        super::append_request(
            &mut out,
            &super::Request::Get {
                id: 7,
                url: "http://127.0.0.1:1/rates?base=USD".into(),
                wait: None,
                more: false,
            },
        );
        // A compact text line, not JSON.
        assert!(super::WIRE.contains("compact text line"));
        assert!(out.starts_with(b"g ") && out.ends_with(b"\n"), "{out:?}");
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        assert!(!out.starts_with(b"{"));
    }

    use super::*;

    fn round_trip(raw: RawResponse) {
        let reply = Reply::Response {
            id: 3,
            sent: None,
            done: None,
            result: Ok(WireResponse::from(raw.clone())),
        };
        let mut bytes = Vec::new();
        write_message(&mut bytes, &reply).unwrap();
        let first = bytes.iter().position(|&b| b == b'\n').unwrap();
        assert_eq!(
            bytes.len(),
            first + 1 + raw.body.len(),
            "the body follows, raw"
        );
        match &read_all(&bytes)[..] {
            [
                Reply::Response {
                    result: Ok(wire), ..
                },
            ] => {
                let back = RawResponse::from(wire.clone());
                assert_eq!(back, raw);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn responses_survive_the_wire() {
        round_trip(RawResponse {
            status: 301,
            retry_after: None,
            location: Some("/v1/rates?base=USD".to_owned()),
            body: Vec::new(),
        });
        round_trip(RawResponse {
            status: 200,
            retry_after: None,
            location: None,
            body: b"{\"base\":\"USD\",\n\"rates\":{}}".to_vec(),
        });
        round_trip(RawResponse {
            status: 429,
            retry_after: Some(Duration::from_millis(1500)),
            location: None,
            body: Vec::new(),
        });
        round_trip(RawResponse {
            status: 200,
            retry_after: None,
            location: None,
            body: vec![0xff, 0x00, b'\n', 0xc3],
        });
    }
    #[test]
    fn responses_travel_compact_and_whole() {
        let reply = Reply::Response {
            id: 41,
            sent: Some(Duration::new(1_764_512_345, 123)),
            done: Some(Duration::new(1_764_512_345, 456_789)),
            result: Ok(WireResponse {
                status: 503,
                retry_after: Some(Duration::from_millis(2500)),
                location: None,
                body_len: 3,
                body: b"a\nb".to_vec(),
                worked: true,
            }),
        };
        let mut bytes = Vec::new();
        write_message(&mut bytes, &reply).unwrap();
        assert!(
            bytes.starts_with(b"r 41 1764512345000000123 1764512345000456789 503 2500000000 3 1\n"),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        let [back] = <[Reply; 1]>::try_from(read_all(&bytes)).unwrap();
        match back {
            Reply::Response {
                id: 41,
                sent,
                done,
                result: Ok(wire),
            } => {
                assert_eq!(sent, Some(Duration::new(1_764_512_345, 123)));
                assert_eq!(done, Some(Duration::new(1_764_512_345, 456_789)));
                assert_eq!(wire.status, 503);
                assert_eq!(wire.retry_after, Some(Duration::from_millis(2500)));
                assert_eq!(wire.body, b"a\nb");
                assert!(wire.worked);
            }
            other => panic!("unexpected {other:?}"),
        }
        // No times, no Retry-After, no work.
        let line = b"r 2 - - 200 - 0 0\n";
        match Reply::parse(line).unwrap() {
            Reply::Response {
                id: 2,
                sent: None,
                done: None,
                result: Ok(wire),
            } => assert!(wire.status == 200 && wire.retry_after.is_none() && !wire.worked),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn requests_travel_compact_unless_they_cannot() {
        let wait = Wait {
            at: Duration::new(1_764_512_345, 7),
            most: Duration::from_millis(10),
        };
        for (request, compact) in [
            (
                Request::Get {
                    id: 5,
                    url: "http://127.0.0.1:9/rates?base=USD&symbols=EUR,PLN".into(),
                    wait: None,
                    more: true,
                },
                Some("g 5 1 - http://127.0.0.1:9/rates?base=USD&symbols=EUR,PLN\n"),
            ),
            (
                Request::Get {
                    id: 6,
                    url: "http://h/a b".into(),
                    wait: Some(wait),
                    more: false,
                },
                Some("g 6 0 1764512345000000007/10000000 http://h/a b\n"),
            ),
            // A newline would end the line early: this one goes as JSON.
            (
                Request::Get {
                    id: 7,
                    url: "http://h/a\nb".into(),
                    wait: None,
                    more: false,
                },
                None,
            ),
        ] {
            let mut bytes = Vec::new();
            append_request(&mut bytes, &request);
            let text = String::from_utf8(bytes.clone()).unwrap();
            match compact {
                Some(line) => assert_eq!(text, line),
                None => assert!(text.starts_with("{\"get\""), "{text}"),
            }
            assert_eq!(text.matches('\n').count(), 1, "one line: {text:?}");
            let (
                Request::Get {
                    id,
                    url,
                    wait,
                    more,
                },
                Request::Get {
                    id: id2,
                    url: url2,
                    wait: wait2,
                    more: more2,
                },
            ) = (Request::parse(&bytes).unwrap(), request)
            else {
                panic!("not a request: {text}");
            };
            assert_eq!((id, url, wait, more), (id2, url2, wait2, more2));
        }
    }

    #[test]
    fn broken_compact_lines_are_errors_that_say_what_is_wrong() {
        for (line, says) in [
            (&b"r 1 - - 200 - 12"[..], "no work flag"),
            (b"r 1 - - 200 - 12 1 extra", "`extra` after"),
            (b"r x - - 200 - 0 0", "`x` is not a request id"),
            (
                b"r 1 soon - 200 - 0 0",
                "`soon` is not a number of nanoseconds",
            ),
            (b"r 1 - - 2000000 - 0 0", "is not a status"),
            (b"r 1 - - 200 - 0 2", "`2` is not a work flag"),
            (b"r 1 - - 200 - \xff 0", "not in UTF-8"),
            (b"g 1 1 -", "no URL"),
            (b"g 1 1 - ", "no URL"),
            (b"g 1 yes - http://h/", "`yes` is not a batch flag"),
            (b"g 1 0 5 http://h/", "`5` is not a wait"),
            (b"g 1 0 -/5 http://h/", "is not a wait"),
        ] {
            let parsed = if line.starts_with(RESPONSE) {
                Reply::parse(line).map(drop)
            } else {
                Request::parse(line).map(drop)
            };
            let err = parsed.unwrap_err();
            assert!(
                err.contains(says),
                "{}: {err}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn a_wait_is_never_longer_than_measured() {
        let wait = Wait::from_now(Duration::from_millis(200));
        assert!(wait.remaining() <= Duration::from_millis(200));
        assert!(wait.remaining() > Duration::from_millis(100));
        let stepped = Wait {
            at: since_epoch() + Duration::from_secs(3600),
            most: Duration::from_millis(5),
        };
        assert_eq!(stepped.remaining(), Duration::from_millis(5));
    }

    #[test]
    fn errors_survive_the_wire() {
        let reply = Reply::Response {
            id: 7,
            sent: None,
            done: None,
            result: Err(Error::status(503, Some(Duration::from_secs(2)))),
        };
        let mut bytes = Vec::new();
        write_message(&mut bytes, &reply).unwrap();
        let [back] = <[Reply; 1]>::try_from(read_all(&bytes)).unwrap();
        match back {
            Reply::Response {
                id: 7,
                sent: None,
                done: None,
                result: Err(e),
            } => {
                assert_eq!(e.status_code(), Some(503));
                assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
