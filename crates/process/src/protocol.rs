//! What the parent and a worker say to each other: one JSON value per line,
//! a response's body following its line as raw bytes.
//!
//! ```text
//! parent → worker   {"hello":{"protocol":2,"config":{...}}}
//! worker → parent   {"ready":{"protocol":2}}
//! parent → worker   {"get":{"id":1,"url":"http://127.0.0.1:8080/rates?base=USD"}}
//!                   (under a rate limit also "wait":{...}: the slot to send at)
//! worker → parent   {"response":{"id":1,"sent":{...},"result":{"Ok":{"status":200,"body_len":101}}}}
//!                   {"base":"USD",...}   (the body: exactly body_len raw bytes, no newline)
//!                   ("sent": when the request left, wall-clock time)
//!                   ... requests come in batches: every one but the last of a
//!                   batch says "more":true, and the worker answers them in
//!                   order, writing its replies out together after the last ...
//! parent closes the worker's stdin
//! worker → parent   {"bye":{"peak_rss_bytes":5234688}}   and it exits
//! ```
//!
//! A worker that cannot serve (a bad first message, another protocol
//! version) answers `{"fatal":{"message":"..."}}` and exits.
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
pub(crate) const PROTOCOL: u32 = 2;

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

/// Writes `reply` as it travels: its line, then its body's raw bytes.
pub(crate) fn write_message(output: &mut impl io::Write, reply: &Reply) -> io::Result<()> {
    serde_json::to_writer(&mut *output, reply)?;
    output.write_all(b"\n")?;
    if let Reply::Response {
        result: Ok(wire), ..
    } = reply
    {
        output.write_all(&wire.body)?;
    }
    Ok(())
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
        let mut reply: Reply = serde_json::from_slice(&bytes[..n]).unwrap();
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
            status: 200,
            retry_after: None,
            body: b"{\"base\":\"USD\",\n\"rates\":{}}".to_vec(),
        });
        round_trip(RawResponse {
            status: 429,
            retry_after: Some(Duration::from_millis(1500)),
            body: Vec::new(),
        });
        round_trip(RawResponse {
            status: 200,
            retry_after: None,
            body: vec![0xff, 0x00, b'\n', 0xc3],
        });
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
