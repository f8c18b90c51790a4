//! The child side as the parent sees it: starting one worker, talking to
//! it over its pipes with bounded waits, and killing and reaping it.

use std::io::{self, BufRead, BufReader, Read as _, Write as _};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::thread;
use std::time::{Duration, Instant};

use rates_core::{Config, Error, ErrorKind, RawResponse};

use crate::command::{WORKER_ENV, WorkerCommand};
use crate::protocol::{PROTOCOL, Reply, Request, Wait, instant_of, line};

/// How long a worker gets to say goodbye (its peak memory) once its input
/// is closed, before it is killed.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// The least time a starting worker gets to say it is ready; otherwise it
/// gets as long as one request may take.
const MIN_READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Replies queued between a worker's reader thread and its driver: a batch
/// of requests is answered at once, so room for one batch (more only
/// bounds a misbehaving worker).
const REPLY_QUEUE: usize = crate::pool::MAX_BATCH;

/// Messages up to this long are written to a worker directly (see
/// `Worker::write`): the smallest pipe buffer Linux gives is one page.
const DIRECT_WRITE: usize = 4096;

/// Stack for the threads that read workers' stdout (one per worker).
const READER_STACK: usize = 256 * 1024;

/// Everything needed to start one worker.
pub(crate) struct Spawner<'a> {
    pub(crate) config: &'a Config,
    pub(crate) command: &'a WorkerCommand,
}

impl Spawner<'_> {
    /// Starts a worker, sends it the hello and waits until it is ready.
    pub(crate) fn spawn(&self) -> Result<Worker, Error> {
        let program = self.command.program.display();
        let fail = |why: String| {
            Error::new(
                ErrorKind::Spawn,
                format!(
                    "the worker program `{}` {why}; check that it calls \
                     `rates_process::worker_if_asked()` first thing in `main` and was built \
                     from this version, or give the process strategy another worker command",
                    self.command.describe(),
                ),
            )
        };
        let mut child = Command::new(&self.command.program)
            .args(&self.command.args)
            .env(WORKER_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Spawn,
                    format!(
                        "cannot start the worker program `{program}`: {e}; give the process \
                         strategy a worker command that exists"
                    ),
                )
            })?;
        let pid = child.id();
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail("was started without pipes".into()));
        };
        let max_line = self
            .config
            .max_body_bytes
            .saturating_mul(6)
            .saturating_add(64 * 1024);
        let (tx, replies) = sync_channel(REPLY_QUEUE);
        let reader = thread::Builder::new()
            .name(format!("rates-process-reader-{pid}"))
            .stack_size(READER_STACK)
            .spawn(move || read_replies(stdout, &tx, max_line));
        if let Err(e) = reader {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!(
                "was started but no thread could read it: {e}"
            )));
        }
        // From here on, dropping `worker` kills and reaps the child.
        let mut worker = Worker {
            child,
            pid,
            stdin: Some(stdin),
            replies,
            next_id: 0,
            progress: self.config.progress.clone(),
        };
        let hello = Request::Hello {
            protocol: PROTOCOL,
            config: Box::new(self.config.clone()),
        };
        let timeout =
            (self.config.connect_timeout + self.config.request_timeout).max(MIN_READY_TIMEOUT);
        let deadline = Instant::now() + timeout;
        if let Err(e) = worker.write(line(&hello), timeout) {
            let status = worker.kill_and_reap();
            return Err(fail(format!(
                "could not be sent its settings ({e}; {status})"
            )));
        }
        match worker
            .replies
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(Incoming::Message(Reply::Ready { protocol })) if protocol == PROTOCOL => Ok(worker),
            Ok(Incoming::Message(Reply::Ready { protocol })) => Err(fail(format!(
                "speaks protocol {protocol}, and this program speaks {PROTOCOL}"
            ))),
            Ok(Incoming::Message(Reply::Fatal { message })) => {
                Err(fail(format!("refused to start: {message}")))
            }
            Ok(Incoming::Message(other)) => Err(fail(format!(
                "answered the hello with {} instead of ready",
                summary(&other)
            ))),
            Ok(Incoming::Unreadable(what)) => Err(fail(format!("answered the hello with {what}"))),
            Err(RecvTimeoutError::Timeout) => {
                Err(fail(format!("did not say it was ready within {timeout:?}")))
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = worker.kill_and_reap();
                Err(fail(format!("exited before it was ready ({status})")))
            }
        }
    }
}

/// Kills every worker first, then reaps them, so they die in parallel.
pub(crate) fn kill_all(workers: &mut Vec<Worker>) {
    for w in workers.iter_mut() {
        let _ = w.child.kill();
    }
    // Each drop waits for its (now killed) child.
    workers.clear();
}

/// What a message is, briefly (its body can be large).
fn summary(reply: &Reply) -> String {
    match reply {
        Reply::Ready { .. } => "a ready message".to_owned(),
        Reply::Response { id, .. } => format!("the reply to request {id}"),
        Reply::Bye { .. } => "a goodbye".to_owned(),
        Reply::Fatal { message } => format!("a fatal error ({message})"),
    }
}

/// A line from a worker, as its reader thread saw it. The channel closing
/// means the worker's stdout closed: it exited.
#[derive(Debug)]
enum Incoming {
    Message(Reply),
    /// Not a message: what the worker sent instead (the reader stops).
    Unreadable(String),
}

/// Reads a worker's stdout, one message per line, until it closes, the
/// worker sends something unreadable, or the driver goes away.
fn read_replies(stdout: ChildStdout, tx: &SyncSender<Incoming>, max_line: usize) {
    let mut reader = BufReader::new(stdout);
    let mut buf = Vec::new();
    let limit = u64::try_from(max_line)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    loop {
        buf.clear();
        let incoming = match (&mut reader).take(limit).read_until(b'\n', &mut buf) {
            Ok(0) => return,
            Ok(_) if buf.last() == Some(&b'\n') => match serde_json::from_slice::<Reply>(&buf) {
                Ok(reply) => Incoming::Message(reply),
                Err(e) => {
                    Incoming::Unreadable(format!("an unreadable reply ({e}): {}", excerpt(&buf)))
                }
            },
            Ok(_) if buf.len() > max_line => {
                Incoming::Unreadable(format!("a reply longer than {max_line} bytes"))
            }
            Ok(_) => Incoming::Unreadable(format!(
                "an unfinished reply before closing its output: {}",
                excerpt(&buf)
            )),
            Err(e) => Incoming::Unreadable(format!("output that could not be read: {e}")),
        };
        let stop = matches!(incoming, Incoming::Unreadable(_));
        if tx.send(incoming).is_err() || stop {
            return;
        }
    }
}

fn excerpt(bytes: &[u8]) -> String {
    const MAX: usize = 120;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX)]);
    let text = text.trim_end();
    if bytes.len() > MAX {
        format!("{text:?}...")
    } else {
        format!("{text:?}")
    }
}

/// A worker's answer to one request.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The attempt's result.
    pub(crate) result: Result<RawResponse, Error>,
    /// When the request left.
    pub(crate) sent: Instant,
    /// When its response was complete (never before `sent`).
    pub(crate) done: Instant,
}

/// One child process and the pipes to it. Dropping it kills and reaps the
/// child.
#[derive(Debug)]
pub(crate) struct Worker {
    child: Child,
    pub(crate) pid: u32,
    pub(crate) stdin: Option<ChildStdin>,
    replies: Receiver<Incoming>,
    next_id: u64,
    /// The run's progress, told of the work the worker did.
    progress: Option<rates_core::Progress>,
}

impl Worker {
    /// Writes `bytes` (whole messages) to the worker, giving up after
    /// `timeout`.
    ///
    /// The pipe is empty whenever the parent writes (a worker reads every
    /// request of a batch before it answers the last, and the parent writes
    /// the next batch only after that answer), and every pipe holds at
    /// least a page, so messages that fit in one are written directly and
    /// cannot block. Longer ones (a huge config or URL) could fill the pipe
    /// of a worker that stopped reading, so a helper thread writes them
    /// while this one waits, bounded; on a timeout the worker is killed as
    /// a crash, which ends the helper's write.
    fn write(&mut self, bytes: Vec<u8>, timeout: Duration) -> io::Result<()> {
        let mut stdin = self
            .stdin
            .take()
            .ok_or_else(|| io::Error::other("its input is closed"))?;
        if bytes.len() <= DIRECT_WRITE {
            stdin.write_all(&bytes)?;
            self.stdin = Some(stdin);
            return Ok(());
        }
        let len = bytes.len();
        let (tx, rx) = sync_channel(1);
        thread::Builder::new()
            .name(format!("rates-process-writer-{}", self.pid))
            .spawn(move || {
                let written = stdin.write_all(&bytes).map(|()| stdin);
                let _ = tx.send(written);
            })?;
        match rx.recv_timeout(timeout) {
            Ok(Ok(stdin)) => {
                self.stdin = Some(stdin);
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("it did not read a {len}-byte message within {timeout:?}"),
            )),
        }
    }

    /// Sends a batch of requests, each `(url, wait)`: to be sent by the
    /// worker one after the other, the first no earlier than `wait` from
    /// now (and so on), all in one write. Returns their ids, to
    /// [`receive`](Self::receive) in the same order.
    pub(crate) fn send(
        &mut self,
        batch: &[(String, Duration)],
        timeout: Duration,
    ) -> Result<Vec<u64>, String> {
        let mut bytes = Vec::new();
        let mut ids = Vec::with_capacity(batch.len());
        for (n, (url, wait)) in batch.iter().enumerate() {
            self.next_id += 1;
            ids.push(self.next_id);
            bytes.extend(line(&Request::Get {
                id: self.next_id,
                url: url.clone(),
                wait: (!wait.is_zero()).then(|| Wait::from_now(*wait)),
                more: n + 1 < batch.len(),
            }));
        }
        self.write(bytes, timeout)
            .map_err(|e| format!("could not be sent the request ({e})"))?;
        Ok(ids)
    }

    /// Waits (at most `timeout`) for the reply to request `id`, the next
    /// one the worker owes. The outer error says how the worker failed; the
    /// inner result is the attempt's.
    pub(crate) fn receive(&mut self, id: u64, timeout: Duration) -> Result<Answer, String> {
        match self.replies.recv_timeout(timeout) {
            Ok(Incoming::Message(Reply::Response {
                id: got,
                sent,
                done,
                result,
            })) if got == id => {
                let done = done.map_or_else(Instant::now, instant_of);
                let sent = sent.map_or(done, instant_of).min(done);
                let result = match result {
                    Ok(wire) => {
                        if wire.worked {
                            if let Some(progress) = &self.progress {
                                progress.work_done();
                            }
                        }
                        Ok(wire.into_raw().map_err(|what| format!("sent {what}"))?)
                    }
                    Err(e) => Err(e),
                };
                Ok(Answer { result, sent, done })
            }
            Ok(Incoming::Message(Reply::Fatal { message })) => Err(format!("gave up: {message}")),
            Ok(Incoming::Message(other)) => {
                Err(format!("answered request {id} with {}", summary(&other)))
            }
            Ok(Incoming::Unreadable(what)) => Err(format!("sent {what}")),
            Err(RecvTimeoutError::Timeout) => Err(format!("did not answer within {timeout:?}")),
            Err(RecvTimeoutError::Disconnected) => Err("exited".to_owned()),
        }
    }

    /// Waits (until `deadline`) for the goodbye a worker sends once its
    /// input is closed, and returns the peak memory it reported.
    pub(crate) fn goodbye(&self, deadline: Instant) -> Option<u64> {
        while let Ok(Incoming::Message(reply)) = self
            .replies
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if let Reply::Bye { peak_rss_bytes } = reply {
                return peak_rss_bytes;
            }
        }
        None
    }

    /// Closes the worker's input, waits (bounded) for its goodbye, kills
    /// and reaps it.
    pub(crate) fn retire(mut self) {
        self.stdin = None;
        self.goodbye(Instant::now() + SHUTDOWN_GRACE);
        // Dropping `self` kills and reaps the child.
    }

    /// Kills the child (if it still runs) and waits for it.
    pub(crate) fn kill_and_reap(&mut self) -> String {
        self.stdin = None;
        let _ = self.child.kill();
        match self.child.wait() {
            Ok(status) => status.to_string(),
            Err(e) => format!("its exit status is unknown: {e}"),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // `kill` does nothing once the child has been reaped; `wait` then
        // returns the status it already has.
        self.kill_and_reap();
    }
}
