//! The child side: read requests from stdin, answer on stdout.

use std::io::{self, BufRead, BufWriter, IsTerminal as _, Write};
use std::process::ExitCode;

use rates_http::BlockingClient;

use crate::protocol::{PROTOCOL, Reply, Request, WireResponse, write_message};

/// Runs a worker process (see [`worker_if_asked`](crate::worker_if_asked)).
///
/// Returns failure (2) when stdin is a terminal (it is not meant to be run
/// by hand), when the parent speaks another protocol version, or when the
/// parent goes away mid-conversation.
pub(crate) fn worker_main() -> ExitCode {
    ExitCode::from(worker_code())
}

/// [`worker_main`]'s exit code: 0, or 2 on failure.
pub(crate) fn worker_code() -> u8 {
    let stdin = io::stdin();
    if stdin.is_terminal() {
        eprintln!(
            "rates worker: this program is started by the `process` strategy and speaks \
             a line protocol on stdin and stdout; run `rates fetch --strategy process` instead"
        );
        return 2;
    }
    // Replies are buffered here and written out at the end of each batch
    // (stdout alone would write every line as it ends).
    match serve(stdin.lock(), BufWriter::new(io::stdout().lock())) {
        Ok(()) => 0,
        // The parent is gone (killed, or it stopped without reading):
        // nobody to tell.
        Err(e) if e.contains("Broken pipe") => 3,
        Err(e) => {
            eprintln!("rates worker: {e}");
            2
        }
    }
}

/// The worker loop over any input and output.
pub(crate) fn serve(mut input: impl BufRead, mut output: impl Write) -> Result<(), String> {
    // One buffer for every line (a request's line is short; the hello, with
    // the config, is the longest).
    let mut line = Vec::new();
    let mut next_line = |line: &mut Vec<u8>| -> Result<bool, String> {
        line.clear();
        input
            .read_until(b'\n', line)
            .map(|n| n > 0)
            .map_err(|e| format!("cannot read from the parent: {e}"))
    };
    if !next_line(&mut line)? {
        // The parent went away before saying anything: nothing to do.
        return Ok(());
    }
    let config = match Request::parse(&line) {
        Ok(Request::Hello { protocol, config }) if protocol == PROTOCOL => *config,
        Ok(Request::Hello { protocol, .. }) => {
            return fatal(
                &mut output,
                format!(
                    "the parent speaks protocol {protocol} and this worker speaks {PROTOCOL}: \
                     use the worker built with the same version of rates"
                ),
            );
        }
        Ok(Request::Get { .. }) => {
            return fatal(&mut output, "expected a hello first, got a request".into());
        }
        Err(e) => {
            return fatal(&mut output, format!("cannot read the hello message: {e}"));
        }
    };
    let client = BlockingClient::new(&config, 1);
    send(&mut output, &Reply::Ready { protocol: PROTOCOL })?;
    while next_line(&mut line)? {
        match Request::parse(&line) {
            Ok(Request::Get {
                id,
                url,
                wait,
                more,
            }) => {
                if let Some(wait) = wait {
                    std::thread::sleep(wait.remaining());
                }
                let sent = Some(crate::protocol::since_epoch());
                let response = client.get(&url);
                let done = Some(crate::protocol::since_epoch());
                let result = response.map(|raw| {
                    // The item's CPU work runs here, in the child, on every
                    // success; the parent's attempt loop does none.
                    let work = config
                        .work
                        .filter(|_| (200..300).contains(&raw.status))
                        .map(|w| w.run(&raw.body));
                    let mut wire = WireResponse::from(raw);
                    wire.worked = work.is_some();
                    wire
                });
                let reply = Reply::Response {
                    id,
                    sent,
                    done,
                    result,
                };
                if more {
                    write(&mut output, &reply)?;
                } else {
                    send(&mut output, &reply)?;
                }
            }
            Ok(Request::Hello { .. }) => {
                return fatal(&mut output, "got a second hello".into());
            }
            Err(e) => return fatal(&mut output, format!("cannot read a request: {e}")),
        }
    }
    send(
        &mut output,
        &Reply::Bye {
            peak_rss_bytes: peak_rss_bytes(),
        },
    )
}

/// Writes `reply` and everything written before it out to the parent.
fn send(output: &mut impl Write, reply: &Reply) -> Result<(), String> {
    write(output, reply)?;
    output
        .flush()
        .map_err(|e| format!("cannot write to the parent: {e}"))
}

/// Writes `reply` into the output's buffer (out with the next [`send`]).
fn write(output: &mut impl Write, reply: &Reply) -> Result<(), String> {
    write_message(output, reply).map_err(|e| format!("cannot write to the parent: {e}"))
}

fn fatal(output: &mut impl Write, message: String) -> Result<(), String> {
    // Best effort: the parent may be gone; the message goes to stderr anyway.
    let _ = send(
        output,
        &Reply::Fatal {
            message: message.clone(),
        },
    );
    Err(message)
}

/// This process's peak resident memory (VmHWM), where /proc has it.
fn peak_rss_bytes() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| parse_vm_hwm(&status))
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line["VmHWM:".len()..]
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use rates_core::Config;
    use rates_server::{RatesServer, ServerConfig};

    use super::*;

    use crate::protocol::{line, read_all as replies};

    #[test]
    fn serves_requests_then_says_bye() {
        let server = RatesServer::start(ServerConfig::default()).unwrap();
        let config = Config::new(&server.endpoint()).unwrap();
        let url = config.endpoint.url("EUR".parse().unwrap(), &config.symbols);
        let mut input = line(&Request::Hello {
            protocol: PROTOCOL,
            config: Box::new(config),
        });
        input.extend(line(&Request::Get {
            id: 41,
            url,
            wait: Some(crate::protocol::Wait::from_now(Duration::from_millis(30))),
            more: false,
        }));
        let started = Instant::now();
        let mut output = Vec::new();
        serve(&input[..], &mut output).unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(30),
            "sent before its slot"
        );
        let replies = replies(&output);
        assert_eq!(replies.len(), 3, "{replies:?}");
        assert!(matches!(replies[0], Reply::Ready { protocol: PROTOCOL }));
        match &replies[1] {
            Reply::Response {
                id: 41,
                result,
                sent,
                done,
            } => {
                assert!(sent.is_some(), "says when it sent");
                assert!(sent <= done, "and when it was done, after");
                let raw = rates_core::RawResponse::from(result.clone().unwrap());
                assert_eq!(raw.status, 200);
                let rates = rates_core::decode("EUR".parse().unwrap(), &raw.body).unwrap();
                assert_eq!(rates.base.as_str(), "EUR");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(replies[2], Reply::Bye { .. }));
        assert_eq!(server.stats().requests, 1);
    }

    /// Output that keeps what each flush wrote out.
    #[derive(Default)]
    struct Flushes {
        pending: Vec<u8>,
        flushed: Vec<Vec<Reply>>,
    }

    impl Write for Flushes {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.pending.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            let out = std::mem::take(&mut self.pending);
            self.flushed.push(replies(&out));
            Ok(())
        }
    }

    #[test]
    fn a_batch_is_answered_in_order_and_written_out_together() {
        let server = RatesServer::start(ServerConfig::default()).unwrap();
        let config = Config::new(&server.endpoint()).unwrap();
        let mut input = line(&Request::Hello {
            protocol: PROTOCOL,
            config: Box::new(config.clone()),
        });
        let codes = ["EUR", "USD", "PLN", "NOK", "CZK"];
        for (i, code) in codes.iter().enumerate() {
            input.extend(line(&Request::Get {
                id: i as u64 + 1,
                url: config.endpoint.url(code.parse().unwrap(), &config.symbols),
                wait: None,
                // Two batches: three requests, then two.
                more: i != 2 && i != 4,
            }));
        }
        let mut output = Flushes::default();
        serve(&input[..], &mut output).unwrap();
        let ids = |replies: &[Reply]| -> Vec<u64> {
            replies
                .iter()
                .map(|r| match r {
                    Reply::Response { id, result, .. } => {
                        assert!(result.is_ok(), "{r:?}");
                        *id
                    }
                    other => panic!("unexpected {other:?}"),
                })
                .collect()
        };
        let f = &output.flushed;
        assert_eq!(f.len(), 4, "ready, two batches, bye: {f:?}");
        assert!(matches!(f[0][..], [Reply::Ready { .. }]));
        assert_eq!(ids(&f[1]), [1, 2, 3]);
        assert_eq!(ids(&f[2]), [4, 5]);
        assert!(matches!(f[3][..], [Reply::Bye { .. }]));
        assert!(output.pending.is_empty(), "nothing left unwritten");
        assert_eq!(server.stats().requests, 5);
    }

    #[test]
    fn a_bad_first_line_is_fatal_and_named() {
        let mut output = Vec::new();
        let err = serve(&b"hello?\n"[..], &mut output).unwrap_err();
        assert!(err.contains("hello"), "{err}");
        assert!(matches!(replies(&output)[..], [Reply::Fatal { .. }]));

        let mut output = Vec::new();
        let hello = line(&Request::Hello {
            protocol: PROTOCOL + 1,
            config: Box::new(Config::new("http://127.0.0.1:1/?b={base}").unwrap()),
        });
        let err = serve(&hello[..], &mut output).unwrap_err();
        assert!(err.contains("protocol"), "{err}");
        assert!(matches!(replies(&output)[..], [Reply::Fatal { .. }]));
    }

    #[test]
    fn no_input_is_a_quiet_exit() {
        let mut output = Vec::new();
        serve(&b""[..], &mut output).unwrap();
        assert!(output.is_empty());
    }

    #[test]
    fn reads_vm_hwm() {
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmHWM:\t    5120 kB\nVmRSS:\t 4000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(5120 * 1024));
        assert_eq!(parse_vm_hwm("Name:\tx\n"), None);
        if cfg!(target_os = "linux") {
            assert!(peak_rss_bytes().is_some_and(|b| b > 0));
        }
    }
}
