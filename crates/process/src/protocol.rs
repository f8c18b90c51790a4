//! What the parent and a worker say to each other: one JSON value per line.
//!
//! ```text
//! parent → worker   {"hello":{"protocol":1,"config":{...}}}
//! worker → parent   {"ready":{"protocol":1}}
//! parent → worker   {"get":{"id":1,"url":"http://127.0.0.1:8080/rates?base=USD"}}
//!                   (under a rate limit also "wait":{...}: the slot to send at)
//! worker → parent   {"response":{"id":1,"sent":{...},"result":{"Ok":{"status":200,"body":"{...}"}}}}
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

use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rates_core::{Config, Error, RawResponse};
use serde::{Deserialize, Serialize};

/// The protocol version; parent and worker must agree on it.
pub(crate) const PROTOCOL: u32 = 1;

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

/// A [`RawResponse`] as it travels: the body as text when it is UTF-8 (the
/// usual case, and compact in JSON), else as hex.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WireResponse {
    status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_after: Option<Duration>,
    #[serde(default)]
    body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body_hex: Option<String>,
    /// The worker did the item's CPU work (`Config::work`) on this answer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) worked: bool,
}

impl From<RawResponse> for WireResponse {
    fn from(r: RawResponse) -> Self {
        let (body, body_hex) = match String::from_utf8(r.body) {
            Ok(text) => (text, None),
            Err(e) => (String::new(), Some(hex(e.as_bytes()))),
        };
        Self {
            status: r.status,
            retry_after: r.retry_after,
            body,
            body_hex,
            worked: false,
        }
    }
}

impl WireResponse {
    /// Back to a [`RawResponse`].
    ///
    /// # Errors
    /// When `body_hex` is not hex (the worker is broken).
    pub(crate) fn into_raw(self) -> Result<RawResponse, String> {
        let body = match self.body_hex {
            Some(h) => unhex(&h).ok_or_else(|| "a body_hex that is not hex".to_owned())?,
            None => self.body.into_bytes(),
        };
        Ok(RawResponse {
            status: self.status,
            retry_after: self.retry_after,
            body,
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// One message as a line, newline included.
pub(crate) fn line<T: Serialize>(message: &T) -> Vec<u8> {
    // Serialising these types cannot fail: every map key is a string.
    let mut out = serde_json::to_vec(message).unwrap_or_else(|e| {
        format!(r#"{{"fatal":{{"message":"cannot encode a message: {e}"}}}}"#).into_bytes()
    });
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(raw: RawResponse) {
        let wire = WireResponse::from(raw.clone());
        let json = String::from_utf8(line(&wire)).unwrap();
        assert!(json.ends_with('\n') && !json.trim_end().contains('\n'));
        let back: WireResponse = serde_json::from_str(&json).unwrap();
        assert_eq!(back.into_raw().unwrap(), raw);
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
    fn broken_hex_is_refused() {
        let wire: WireResponse = serde_json::from_str(r#"{"status":200,"body_hex":"zz"}"#).unwrap();
        assert!(wire.into_raw().is_err());
        assert_eq!(unhex("0a"), Some(vec![10]));
        assert_eq!(unhex("0"), None);
    }

    #[test]
    fn errors_survive_the_wire() {
        let reply = Reply::Response {
            id: 7,
            sent: None,
            done: None,
            result: Err(Error::status(503, Some(Duration::from_secs(2)))),
        };
        let back: Reply = serde_json::from_slice(&line(&reply)).unwrap();
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
