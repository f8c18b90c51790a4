//! The one error type every strategy reports.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What went wrong, broadly. Match on it, or use the predicates on [`Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Bad input from the caller: an invalid code, endpoint or setting.
    InvalidInput,
    /// The server answered with this non-success HTTP status.
    Status(u16),
    /// Connecting or the whole request took longer than the configured timeout.
    Timeout,
    /// No connection could be made, or it broke before a whole response arrived.
    Connection,
    /// The response was not the JSON shape expected, or its values were wrong.
    Decode,
    /// The response body was larger than the configured cap.
    BodyTooLarge,
    /// A worker (thread or child process) died or misbehaved while it held this base.
    WorkerCrash,
    /// The code fetching this base panicked; the panic was caught.
    Panic,
    /// A worker could not be started (thread spawn or process start failed).
    Spawn,
    /// The strategy could not run at all (runtime start-up, misuse).
    Runtime,
    /// The TLS handshake failed: most often the server's certificate is not
    /// trusted (a private or self-signed CA: add it to the trusted roots,
    /// [`Config::ca_cert_pem`](crate::Config::ca_cert_pem)), or it
    /// does not name the host. Never retried: another attempt meets the same
    /// certificate.
    Tls,
    /// The run was stopped before this base was done: by its stop handle or
    /// by its deadline (the cause). Never retried.
    Cancelled(crate::StopCause),
}

impl ErrorKind {
    /// The kind's name in JSON: `invalid_input`, `http_status`, `timeout`,
    /// `connection`, `decode`, `body_too_large`, `worker_crash`, `panic`,
    /// `spawn`, `runtime`, `tls` or `cancelled`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::InvalidInput => "invalid_input",
            Self::Status(_) => "http_status",
            Self::Timeout => "timeout",
            Self::Connection => "connection",
            Self::Decode => "decode",
            Self::BodyTooLarge => "body_too_large",
            Self::WorkerCrash => "worker_crash",
            Self::Panic => "panic",
            Self::Spawn => "spawn",
            Self::Runtime => "runtime",
            Self::Tls => "tls",
            Self::Cancelled(_) => "cancelled",
        }
    }

    fn from_name(name: &str, status: Option<u16>, cause: Option<&str>) -> Result<Self, String> {
        Ok(match name {
            "invalid_input" => Self::InvalidInput,
            "http_status" => Self::Status(
                status.ok_or_else(|| "an http_status error needs its `status`".to_owned())?,
            ),
            "timeout" => Self::Timeout,
            "connection" => Self::Connection,
            "decode" => Self::Decode,
            "body_too_large" => Self::BodyTooLarge,
            "worker_crash" => Self::WorkerCrash,
            "panic" => Self::Panic,
            "spawn" => Self::Spawn,
            "runtime" => Self::Runtime,
            "tls" => Self::Tls,
            "cancelled" => {
                Self::Cancelled(cause.and_then(crate::StopCause::from_name).ok_or_else(|| {
                    "a cancelled error needs its `cause`: cancelled or deadline".to_owned()
                })?)
            }
            other => return Err(format!("unknown error kind `{other}`")),
        })
    }
}

/// An error for one base, or for a whole run.
///
/// It says what happened ([`kind`](Error::kind)) and, in its message, which input
/// failed and what to do about it.
///
/// In JSON it reads `{"kind": "http_status", "status": 429, "message":
/// "HTTP 429 Too Many Requests (Retry-After 1s)", "retry_after_s": 1.0}`:
/// the kind by [name](ErrorKind::name), `status` only for HTTP statuses,
/// `retry_after_s` only when the server sent one, `cause` (`cancelled` or
/// `deadline`) only for a cancelled base.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(into = "ErrorRepr", try_from = "ErrorRepr")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    /// The server's `Retry-After`, for 429 and 503 answers.
    retry_after_ms: Option<u64>,
}

/// The JSON shape of an [`Error`].
#[derive(Serialize, Deserialize)]
struct ErrorRepr {
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cause: Option<String>,
    message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_after_s: Option<f64>,
}

impl From<Error> for ErrorRepr {
    fn from(e: Error) -> Self {
        Self {
            kind: e.kind.name().to_owned(),
            status: e.status_code(),
            cause: e.stop_cause().map(|c| c.name().to_owned()),
            message: e.message,
            retry_after_s: e.retry_after_ms.map(|ms| ms as f64 / 1000.0),
        }
    }
}

impl TryFrom<ErrorRepr> for Error {
    type Error = String;
    fn try_from(r: ErrorRepr) -> Result<Self, String> {
        Ok(Self {
            kind: ErrorKind::from_name(&r.kind, r.status, r.cause.as_deref())?,
            message: r.message,
            retry_after_ms: r
                .retry_after_s
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| (s * 1000.0).round() as u64),
        })
    }
}

impl Error {
    /// A new error of `kind` with a message that names the input.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after_ms: None,
        }
    }

    /// Shorthand for an [`ErrorKind::InvalidInput`] error.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// An HTTP status error, with the server's `Retry-After` if it sent one.
    pub fn status(status: u16, retry_after: Option<Duration>) -> Self {
        let reason = match status {
            400 => " Bad Request",
            404 => " Not Found",
            408 => " Request Timeout",
            422 => " Unprocessable Entity",
            429 => " Too Many Requests",
            500 => " Internal Server Error",
            502 => " Bad Gateway",
            503 => " Service Unavailable",
            504 => " Gateway Timeout",
            _ => "",
        };
        let mut message = format!("HTTP {status}{reason}");
        if let Some(after) = retry_after {
            message.push_str(&format!(" (Retry-After {}s)", after.as_secs_f64()));
        }
        Self {
            kind: ErrorKind::Status(status),
            message,
            retry_after_ms: retry_after.map(|d| d.as_millis().try_into().unwrap_or(u64::MAX)),
        }
    }

    /// A base not done when the run stopped, for `cause`.
    pub fn cancelled(cause: crate::StopCause) -> Self {
        let message = match cause {
            crate::StopCause::Cancelled => {
                "cancelled: the run was stopped before this base was done"
            }
            crate::StopCause::Deadline => {
                "cancelled: the run's deadline passed before this base was done"
            }
        };
        Self::new(ErrorKind::Cancelled(cause), message)
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status, for [`ErrorKind::Status`].
    pub fn status_code(&self) -> Option<u16> {
        match self.kind {
            ErrorKind::Status(s) => Some(s),
            _ => None,
        }
    }

    /// The server's `Retry-After`, if it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after_ms.map(Duration::from_millis)
    }

    /// Prefixes the message with context (`"USD: "`), keeping the kind.
    #[must_use]
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// True for [`ErrorKind::InvalidInput`].
    pub fn is_invalid_input(&self) -> bool {
        self.kind == ErrorKind::InvalidInput
    }
    /// True for [`ErrorKind::Status`].
    pub fn is_status(&self) -> bool {
        matches!(self.kind, ErrorKind::Status(_))
    }
    /// True for [`ErrorKind::Timeout`].
    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::Timeout
    }
    /// True for [`ErrorKind::Connection`].
    pub fn is_connection(&self) -> bool {
        self.kind == ErrorKind::Connection
    }
    /// True for [`ErrorKind::Decode`].
    pub fn is_decode(&self) -> bool {
        self.kind == ErrorKind::Decode
    }
    /// True for [`ErrorKind::BodyTooLarge`].
    pub fn is_body_too_large(&self) -> bool {
        self.kind == ErrorKind::BodyTooLarge
    }
    /// True for [`ErrorKind::WorkerCrash`].
    pub fn is_worker_crash(&self) -> bool {
        self.kind == ErrorKind::WorkerCrash
    }
    /// True for [`ErrorKind::Panic`].
    pub fn is_panic(&self) -> bool {
        self.kind == ErrorKind::Panic
    }
    /// True for [`ErrorKind::Tls`].
    pub fn is_tls(&self) -> bool {
        self.kind == ErrorKind::Tls
    }
    /// True for [`ErrorKind::Cancelled`].
    pub fn is_cancelled(&self) -> bool {
        matches!(self.kind, ErrorKind::Cancelled(_))
    }
    /// Why the run stopped, for [`ErrorKind::Cancelled`].
    pub fn stop_cause(&self) -> Option<crate::StopCause> {
        match self.kind {
            ErrorKind::Cancelled(cause) => Some(cause),
            _ => None,
        }
    }

    /// Whether another attempt at the same request may succeed: timeouts, broken
    /// connections, crashed workers, 408, 429 and 5xx answers.
    pub fn is_retryable(&self) -> bool {
        match self.kind {
            ErrorKind::Timeout | ErrorKind::Connection | ErrorKind::WorkerCrash => true,
            ErrorKind::Status(s) => s == 408 || s == 429 || (500..600).contains(&s),
            _ => false,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::InvalidInput => "invalid input",
            Self::Status(_) => "http status",
            Self::Timeout => "timeout",
            Self::Connection => "connection",
            Self::Decode => "decode",
            Self::BodyTooLarge => "body too large",
            Self::WorkerCrash => "worker crash",
            Self::Panic => "panic",
            Self::Spawn => "spawn",
            Self::Runtime => "runtime",
            Self::Tls => "tls",
            Self::Cancelled(_) => "cancelled",
        };
        f.write_str(name)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Turns a caught panic's payload into a [`ErrorKind::Panic`] error.
pub fn panic_error(payload: &(dyn std::any::Any + Send)) -> Error {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned());
    Error::new(ErrorKind::Panic, format!("panicked: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_kinds() {
        assert!(Error::status(500, None).is_retryable());
        assert!(Error::status(429, Some(Duration::from_secs(1))).is_retryable());
        assert!(!Error::status(404, None).is_retryable());
        assert!(!Error::new(ErrorKind::Decode, "x").is_retryable());
        assert!(Error::new(ErrorKind::Timeout, "x").is_retryable());
        let tls = Error::new(ErrorKind::Tls, "x");
        assert!(
            tls.is_tls() && !tls.is_retryable(),
            "a certificate does not change"
        );
    }

    #[test]
    fn status_message_and_retry_after() {
        let e = Error::status(429, Some(Duration::from_secs(2)));
        assert_eq!(e.status_code(), Some(429));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(e.to_string(), "HTTP 429 Too Many Requests (Retry-After 2s)");
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"http_status","status":429,"message":"HTTP 429 Too Many Requests (Retry-After 2s)","retry_after_s":2.0}"#
        );
        let back: Error = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        let timeout = serde_json::to_value(Error::new(ErrorKind::Timeout, "slow")).unwrap();
        assert_eq!(
            timeout,
            serde_json::json!({"kind": "timeout", "message": "slow"})
        );
        let bad = serde_json::from_str::<Error>(r#"{"kind":"gremlins","message":"x"}"#);
        assert!(bad.unwrap_err().to_string().contains("gremlins"));
        let late = Error::cancelled(crate::StopCause::Deadline);
        assert!(late.is_cancelled() && !late.is_retryable());
        let json = serde_json::to_value(&late).unwrap();
        assert_eq!(json["kind"], "cancelled");
        assert_eq!(json["cause"], "deadline");
        assert_eq!(serde_json::from_value::<Error>(json).unwrap(), late);
        let no_cause = serde_json::from_str::<Error>(r#"{"kind":"cancelled","message":"x"}"#);
        assert!(no_cause.unwrap_err().to_string().contains("cause"));
    }

    #[test]
    fn panic_payloads() {
        let r = std::panic::catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
        assert_eq!(panic_error(&*r).to_string(), "panicked: boom 1");
    }
}
