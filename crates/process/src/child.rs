//! The child side as the parent sees it: starting one worker, talking to
//! it over its pipes with bounded waits, and killing and reaping it.

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsRawFd as _, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt as _;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::thread;
use std::time::{Duration, Instant};

use rates_core::{Config, Error, ErrorKind, RawResponse};

use crate::command::{WORKER_ENV, WorkerCommand};
use crate::fork_server::ForkServer;
use crate::protocol::{PROTOCOL, Reply, Request, Wait, append_request, instant_of, line};

/// How long a worker gets to say goodbye (its peak memory) once its input
/// is closed, before it is killed.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// The least time a starting worker gets to say it is ready; otherwise it
/// gets as long as one request may take.
const MIN_READY_TIMEOUT: Duration = Duration::from_secs(2);

/// How much of a worker's output is read at once.
const READ_CHUNK: usize = 64 * 1024;

/// Messages up to this long are written to a worker directly (see
/// `Worker::write`): the smallest pipe buffer Linux gives is one page.
const DIRECT_WRITE: usize = 4096;

/// Everything needed to start one worker.
pub(crate) struct Spawner<'a> {
    pub(crate) config: &'a Config,
    pub(crate) command: &'a WorkerCommand,
    /// Forks the worker when there is one (and it works); otherwise the
    /// command is run.
    pub(crate) fork_server: Option<&'a ForkServer>,
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
        let (process, stdin, stdout) = match self.fork_server.map(ForkServer::fork) {
            Some(Ok(forked)) => (
                Process::Forked {
                    pid: forked.pid,
                    status: None,
                },
                forked.stdin,
                forked.stdout,
            ),
            _ => {
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
                                "cannot start the worker program `{program}`: {e}; give the \
                                 process strategy a worker command that exists"
                            ),
                        )
                    })?;
                let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(fail("was started without pipes".into()));
                };
                (
                    Process::Spawned(child),
                    File::from(OwnedFd::from(stdin)),
                    File::from(OwnedFd::from(stdout)),
                )
            }
        };
        let pid = process.pid();
        // A line carries no body; its longest part is a URL an error quotes,
        // which holds at most the 17,576 distinct codes as symbols.
        let max_line = 1024 * 1024;
        let replies = Replies::new(stdout, max_line, self.config.max_body_bytes);
        // From here on, dropping `worker` kills and reaps the child.
        let mut worker = Worker {
            process,
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
        let timeout = ready_timeout(self.config);
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
            Ok(Incoming::Stopped) => Err(fail("was stopped before it was ready".to_owned())),
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

/// How long a starting worker (or fork server) gets to say it is ready.
pub(crate) fn ready_timeout(config: &Config) -> Duration {
    (config.connect_timeout + config.request_timeout).max(MIN_READY_TIMEOUT)
}

/// Kills every worker first, then reaps them, so they die in parallel.
pub(crate) fn kill_all(workers: &mut Vec<Worker>) {
    for w in workers.iter_mut() {
        w.process.kill();
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

/// A line from a worker, as `Replies` read it (its stdout closing, when
/// the worker exited, is `RecvTimeoutError::Disconnected` instead).
#[derive(Debug)]
enum Incoming {
    Message(Reply),
    /// Not a message: what the worker sent instead (the reader stops).
    Unreadable(String),
    /// The run's stop pipe became readable first: the run was stopped.
    Stopped,
}

/// What [`Replies::wait_readable`] saw.
#[derive(Debug, PartialEq, Eq)]
enum Readable {
    Nothing,
    Data,
    Stopped,
}

/// A worker's stdout, read by the thread that drives the worker: one
/// message per line (a response's body after it, raw), each wait bounded by
/// `poll(2)`. (A reader thread per worker would cost a thread and a wake-up
/// more per batch.)
#[derive(Debug)]
struct Replies {
    stdout: File,
    /// What was read and not yet taken: `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// How much of `buf[start..end]` is known to hold no newline.
    scanned: usize,
    max_line: usize,
    /// The longest body a response may carry (the run's body cap).
    max_body: usize,
    /// A message read whose body has not all arrived yet, and its length.
    waiting: Option<(Reply, usize)>,
    /// The worker closed its output (it exited).
    closed: bool,
    /// It sent something unreadable: nothing more is read from it.
    broken: bool,
}

impl Replies {
    fn new(stdout: File, max_line: usize, max_body: usize) -> Self {
        Self {
            stdout,
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            scanned: 0,
            max_line,
            max_body,
            waiting: None,
            closed: false,
            broken: false,
        }
    }

    /// The next message from the worker, waiting at most `timeout`;
    /// `Disconnected` once it closed its output (or after it sent
    /// something unreadable).
    fn recv_timeout(&mut self, timeout: Duration) -> Result<Incoming, RecvTimeoutError> {
        self.recv_or_stop(timeout, None)
    }

    /// [`recv_timeout`](Self::recv_timeout), but returns
    /// [`Incoming::Stopped`] as soon as `stop` (a pipe's read end) is
    /// readable.
    fn recv_or_stop(
        &mut self,
        timeout: Duration,
        stop: Option<RawFd>,
    ) -> Result<Incoming, RecvTimeoutError> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.broken {
                return Err(RecvTimeoutError::Disconnected);
            }
            if self.waiting.is_none() {
                match self.next_line() {
                    Some(Ok(reply)) => {
                        let len = reply.body_len();
                        if len > self.max_body {
                            self.broken = true;
                            return Ok(Incoming::Unreadable(format!(
                                "a body of {len} bytes, over the cap of {}",
                                self.max_body
                            )));
                        }
                        self.waiting = Some((reply, len));
                    }
                    Some(Err(what)) => {
                        self.broken = true;
                        return Ok(Incoming::Unreadable(what));
                    }
                    None => {}
                }
            }
            let arrived = self.end - self.start;
            if self
                .waiting
                .as_ref()
                .is_some_and(|(_, len)| arrived >= *len)
            {
                if let Some((mut reply, len)) = self.waiting.take() {
                    reply.set_body(&self.buf[self.start..self.start + len]);
                    self.start += len;
                    return Ok(Incoming::Message(reply));
                }
            }
            if self.closed {
                self.broken = true;
                let pending = &self.buf[self.start..self.end];
                if pending.is_empty() && self.waiting.is_none() {
                    return Err(RecvTimeoutError::Disconnected);
                }
                return Ok(Incoming::Unreadable(match &self.waiting {
                    Some((_, len)) => format!(
                        "{} of a {len}-byte body before closing its output",
                        pending.len()
                    ),
                    None => format!(
                        "an unfinished reply before closing its output: {}",
                        excerpt(pending)
                    ),
                }));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RecvTimeoutError::Timeout);
            }
            let read = match self.wait_readable(left, stop) {
                Ok(Readable::Data) => self.fill(),
                Ok(Readable::Stopped) => return Ok(Incoming::Stopped),
                Ok(Readable::Nothing) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = read {
                self.broken = true;
                return Ok(Incoming::Unreadable(format!(
                    "output that could not be read: {e}"
                )));
            }
        }
    }

    /// The next whole line, parsed, if one has arrived; an error says what
    /// came instead of a message.
    fn next_line(&mut self) -> Option<Result<Reply, String>> {
        let pending = &self.buf[self.start..self.end];
        let from = self.scanned;
        let Some(end) = pending[from..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|n| from + n)
        else {
            self.scanned = pending.len();
            return (pending.len() > self.max_line)
                .then(|| Err(format!("a reply longer than {} bytes", self.max_line)));
        };
        let line = &pending[..=end];
        self.start += end + 1;
        self.scanned = 0;
        Some(
            Reply::parse(line).map_err(|e| format!("an unreadable reply ({e}): {}", excerpt(line))),
        )
    }

    /// Waits at most `timeout` until the pipe has data or is closed, or
    /// `stop` (another pipe's read end) is readable.
    fn wait_readable(&self, timeout: Duration, stop: Option<RawFd>) -> io::Result<Readable> {
        let mut fds = [
            libc::pollfd {
                fd: self.stdout.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            // A negative fd is ignored by poll(2).
            libc::pollfd {
                fd: stop.unwrap_or(-1),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // Whole milliseconds, rounded up, so a short wait is not a spin.
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        // SAFETY: poll(2) on two pollfds that live across the call; the
        // first is the worker's stdout, open for as long as `self` is, the
        // second the caller's stop pipe (open across the call) or ignored.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
        match ready {
            0 => Ok(Readable::Nothing),
            n if n > 0 && fds[1].revents != 0 => Ok(Readable::Stopped),
            n if n > 0 => Ok(Readable::Data),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    Ok(Readable::Nothing)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Reads what the pipe has (it is readable: this does not block),
    /// making room first: what was taken is dropped, and the buffer grows
    /// (up to a line's limit and a body's) only for a longer message.
    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // Room for the longest line and the largest body after it.
            let most = self
                .max_line
                .saturating_add(self.max_body)
                .saturating_add(1);
            let grown = (self.buf.len() * 2).min(most);
            self.buf.resize(grown.max(self.end + 1), 0);
        }
        match self.stdout.read(&mut self.buf[self.end..]) {
            Ok(0) => self.closed = true,
            Ok(n) => self.end += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        Ok(())
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
    process: Process,
    pub(crate) pid: u32,
    pub(crate) stdin: Option<File>,
    replies: Replies,
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
        batch: impl ExactSizeIterator<Item = (String, Duration)>,
        timeout: Duration,
    ) -> Result<Vec<u64>, String> {
        let mut bytes = Vec::new();
        let len = batch.len();
        let mut ids = Vec::with_capacity(len);
        for (n, (url, wait)) in batch.enumerate() {
            self.next_id += 1;
            ids.push(self.next_id);
            append_request(
                &mut bytes,
                &Request::Get {
                    id: self.next_id,
                    url,
                    wait: (!wait.is_zero()).then(|| Wait::from_now(wait)),
                    more: n + 1 < len,
                },
            );
        }
        self.write(bytes, timeout)
            .map_err(|e| format!("could not be sent the request ({e})"))?;
        Ok(ids)
    }

    /// Waits (at most `timeout`) for the reply to request `id`, the next
    /// one the worker owes, or until `stop` (the run's stop pipe) is
    /// readable. The outer error says how the worker failed (or that the
    /// run was stopped); the inner result is the attempt's.
    pub(crate) fn receive(
        &mut self,
        id: u64,
        timeout: Duration,
        stop: Option<RawFd>,
    ) -> Result<Answer, String> {
        match self.replies.recv_or_stop(timeout, stop) {
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
                        Ok(RawResponse::from(wire))
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
            Ok(Incoming::Stopped) => Err("was stopped with the run".to_owned()),
            Err(RecvTimeoutError::Timeout) => Err(format!("did not answer within {timeout:?}")),
            Err(RecvTimeoutError::Disconnected) => Err("exited".to_owned()),
        }
    }

    /// Waits (until `deadline`) for the goodbye a worker sends once its
    /// input is closed, and returns the peak memory it reported.
    pub(crate) fn goodbye(&mut self, deadline: Instant) -> Option<u64> {
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
    pub(crate) fn retire(self) {
        self.stop(SHUTDOWN_GRACE);
    }

    /// Tells the worker to stop (closes its input: it exits once its
    /// current request is done), waits at most `grace` for its goodbye,
    /// then kills and reaps it.
    pub(crate) fn stop(mut self, grace: Duration) {
        self.stdin = None;
        self.goodbye(Instant::now() + grace);
        // Dropping `self` kills and reaps the child.
    }

    /// Kills the child (if it still runs) and waits for it.
    pub(crate) fn kill_and_reap(&mut self) -> String {
        self.stdin = None;
        self.process.kill();
        match self.process.wait() {
            Ok(status) => status.to_string(),
            Err(e) => format!("its exit status is unknown: {e}"),
        }
    }
}

/// A worker's process: started by running the worker command, or forked by
/// the pool's fork server. Either way a child of this process, which alone
/// reaps it, so its pid stays its own until then.
#[derive(Debug)]
enum Process {
    Spawned(Child),
    Forked {
        pid: u32,
        /// Its exit status, once reaped.
        status: Option<ExitStatus>,
    },
}

impl Process {
    fn pid(&self) -> u32 {
        match self {
            Self::Spawned(child) => child.id(),
            Self::Forked { pid, .. } => *pid,
        }
    }

    /// Sends SIGKILL unless it has been reaped.
    fn kill(&mut self) {
        match self {
            Self::Spawned(child) => {
                let _ = child.kill();
            }
            Self::Forked { pid, status: None } => {
                if let Ok(pid) = i32::try_from(*pid) {
                    let pid = nix::unistd::Pid::from_raw(pid);
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                }
            }
            Self::Forked { .. } => {}
        }
    }

    /// Waits for it to exit and reaps it (once; later calls return the
    /// same status).
    fn wait(&mut self) -> io::Result<ExitStatus> {
        match self {
            Self::Spawned(child) => child.wait(),
            Self::Forked {
                status: Some(s), ..
            } => Ok(*s),
            Self::Forked { pid, status } => {
                let pid = i32::try_from(*pid).map_err(io::Error::other)?;
                let mut raw = 0;
                loop {
                    // SAFETY: waitpid(2) on this process's own child, with
                    // a live int for its status.
                    let got = unsafe { libc::waitpid(pid, &mut raw, 0) };
                    if got == pid {
                        let s = ExitStatus::from_raw(raw);
                        *status = Some(s);
                        return Ok(s);
                    }
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
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
