//! A fork server: one process of the worker program, started the usual
//! way, that starts the pool's workers by forking itself.
//!
//! Running the worker program again for every worker pays, each time, for
//! loading the program and its libraries, resolving their symbols and std's
//! start-up. A fork of a process that has done all that and nothing else
//! copies its few pages instead, as Python's `forkserver` start method
//! does (`scripts/startup.sh` measures both ways).
//!
//! The server is the worker program started with [`WORKER_ENV`] set to
//! [`FORK_SERVER`], its stdin a Unix socket. It says hello, then for each
//! request (one byte and two pipe ends passed with `SCM_RIGHTS`) forks a
//! worker whose stdin and stdout are those pipes and answers with its pid.
//! It forks with `CLONE_PARENT`, so each worker is a child of the pool's own
//! process, as a worker it started itself would be: the pool reaps it, kills
//! it by pid (safe: a child's pid is not reused before it is reaped) and
//! reads its exit status, and no worker outlives the pool through the
//! server. The server holds no worker and does nothing else, so it stays
//! single-threaded and every fork starts from the same clean state.
//!
//! Anything that goes wrong with the server (a worker program that does not
//! know the mode, a server that died or does not answer in time) only makes
//! the pool start its workers the usual way.

use std::fs::File;
use std::io::{self, IoSlice, IoSliceMut, Read as _, Write as _};
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

use crate::command::{WORKER_ENV, WorkerCommand};
use crate::protocol::PROTOCOL;

/// The environment variable that turns the fork server off (`0`) or on
/// (`1`, the default when unset). It only ever applies when the worker
/// command is the running program itself, with no arguments
/// ([`WorkerCommand::current_exe`]): another program may not know the
/// mode, and is run for each worker.
///
/// The server is the worker program started once for the pool; it forks
/// each worker with `CLONE_PARENT`, so the workers are children of the
/// pool's process all the same (reaped and killed there), and the server
/// is a child beside them ([`ProcessPool::fork_server_pid`]). Starting a
/// worker this way costs a fraction of running the program for it
/// (`scripts/startup.sh` measures the two side by side).
///
/// ```sh
/// RATES_PROCESS_FORK_SERVER=0 rates fetch --strategy process --bases 64 --concurrency 64
/// ```
///
/// [`ProcessPool::fork_server_pid`]: crate::ProcessPool::fork_server_pid
pub const FORK_SERVER_ENV: &str = "RATES_PROCESS_FORK_SERVER";

/// Whether a pool running `command` starts a fork server.
///
/// # Errors
/// [`InvalidInput`](rates_core::ErrorKind::InvalidInput) for a
/// [`FORK_SERVER_ENV`] other than `0` or `1`.
pub(crate) fn wanted(command: &WorkerCommand) -> Result<bool, rates_core::Error> {
    let on = match std::env::var(FORK_SERVER_ENV).as_deref() {
        Err(std::env::VarError::NotPresent) | Ok("1") => true,
        Ok("0") => false,
        Ok(other) => {
            return Err(rates_core::Error::invalid_input(format!(
                "{FORK_SERVER_ENV}={other:?} is neither 0 (run the worker program for each \
                 worker) nor 1 (fork each worker from one started copy, the default)"
            )));
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(rates_core::Error::invalid_input(format!(
                "{FORK_SERVER_ENV} is not text: set it to 0 or 1"
            )));
        }
    };
    Ok(on
        && command.args.is_empty()
        && std::env::current_exe().is_ok_and(|exe| exe == command.program))
}

/// The value of [`WORKER_ENV`] that makes the worker program a fork server.
pub(crate) const FORK_SERVER: &str = "fork-server";

/// What the server says first: that it is one, and its protocol.
fn hello() -> String {
    format!("fork-server {PROTOCOL}\n")
}

/// The longest line the server sends (a hello, a pid or an errno).
const MAX_LINE: usize = 64;

// ---- the server's side ----------------------------------------------------

/// Serves as a fork server on stdin (a Unix socket) until it closes; then
/// exits. A forked worker returns from here with its own exit code.
pub(crate) fn serve() -> u8 {
    let mut socket = ManuallyClosed(0);
    if socket.write_all(hello().as_bytes()).is_err() {
        return 2;
    }
    loop {
        let (byte, fds) = match receive_fds(0) {
            Ok(Some(got)) => got,
            Ok(None) => return 0,
            Err(e) => {
                eprintln!("rates fork server: cannot read a request: {e}");
                return 2;
            }
        };
        let answer = match (byte, <[OwnedFd; 2]>::try_from(fds)) {
            (b'f', Ok([stdin, stdout])) => match fork_to_parent() {
                // The worker: its stdin and stdout become the pipes (the
                // socket, fd 0, is closed by the first dup2), then it
                // serves its requests and exits with their outcome.
                Ok(0) => {
                    die_with_parent();
                    let code = if dup_onto(&stdin, 0)
                        .and_then(|()| dup_onto(&stdout, 1))
                        .is_ok()
                    {
                        drop((stdin, stdout));
                        crate::worker::worker_code()
                    } else {
                        2
                    };
                    return code;
                }
                Ok(pid) => format!("{pid}\n"),
                Err(e) => format!("error {e}\n"),
            },
            _ => "error not a fork request with two pipe ends\n".to_owned(),
        };
        // The pipe ends are the worker's now (or nobody's): closed here.
        if socket.write_all(answer.as_bytes()).is_err() {
            return 2;
        }
    }
}

/// Has the kernel kill this forked worker when its parent, the pool's
/// process, goes (even by SIGKILL, in the middle of a request: its input
/// closing would only be noticed after the request). The parent is the
/// thread that started the pool's fork server, which outlives the pool's
/// runs. A parent gone before the request took hold: exit now.
fn die_with_parent() {
    let parent = std::os::unix::process::parent_id();
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    if std::os::unix::process::parent_id() != parent {
        std::process::exit(3);
    }
}

/// fd 0 as a writer that does not close it when dropped.
struct ManuallyClosed(RawFd);

impl io::Write for ManuallyClosed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY: write(2) from a live buffer to an fd this process owns.
        let n = unsafe { libc::write(self.0, buf.as_ptr().cast(), buf.len()) };
        usize::try_from(n).map_err(|_| io::Error::last_os_error())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One request: its byte and the fds that came with it; `None` at the end.
fn receive_fds(socket: RawFd) -> io::Result<Option<(u8, Vec<OwnedFd>)>> {
    let mut byte = [0u8; 1];
    let mut space = nix::cmsg_space!([RawFd; 2]);
    loop {
        let mut iov = [IoSliceMut::new(&mut byte)];
        let msg = match recvmsg::<()>(
            socket,
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => msg,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut fds = Vec::new();
        for cmsg in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(got) = cmsg {
                // SAFETY: SCM_RIGHTS just gave this process these fds,
                // owned by nothing else.
                fds.extend(
                    got.into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        if msg.bytes == 0 {
            return Ok(None);
        }
        return Ok(Some((byte[0], fds)));
    }
}

/// Forks this (single-threaded) process with `CLONE_PARENT`: the child is
/// this process's parent's child. Ok(0) in the child, Ok(pid) here.
fn fork_to_parent() -> io::Result<libc::pid_t> {
    let flags = libc::c_long::from(libc::CLONE_PARENT | libc::SIGCHLD);
    // SAFETY: a fork (no new stack: the child runs on a copy of this one)
    // of a process with one thread, which holds no lock here: the child
    // has a consistent copy of everything, as after fork(2). glibc's own
    // fork would make the child ours; this is the one difference.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0) };
    libc::pid_t::try_from(pid)
        .ok()
        .filter(|&p| p >= 0)
        .ok_or_else(io::Error::last_os_error)
}

fn dup_onto(fd: &OwnedFd, onto: RawFd) -> io::Result<()> {
    // SAFETY: dup2(2) of an fd this process owns onto a standard one.
    if unsafe { libc::dup2(fd.as_raw_fd(), onto) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

// ---- the pool's side ------------------------------------------------------

/// A running fork server, shared by a pool's drivers (one fork at a time).
#[derive(Debug)]
pub(crate) struct ForkServer {
    /// The server and the socket to it; `None` once it failed.
    state: Mutex<Option<(Child, UnixStream)>>,
}

/// A worker the server forked: its pid and the parent's ends of its pipes.
pub(crate) struct Forked {
    pub(crate) pid: u32,
    pub(crate) stdin: File,
    pub(crate) stdout: File,
}

impl ForkServer {
    /// Starts `command` as a fork server and waits (at most `timeout`) for
    /// its hello; `None` when it is not one (the pool then runs the
    /// command for every worker).
    pub(crate) fn start(command: &WorkerCommand, timeout: Duration) -> Option<Self> {
        let (ours, theirs) = UnixStream::pair().ok()?;
        let mut child = Command::new(&command.program)
            .args(&command.args)
            .env(WORKER_ENV, FORK_SERVER)
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .ok()?;
        let greeted = ours
            .set_read_timeout(Some(timeout))
            .and_then(|()| ours.set_write_timeout(Some(timeout)))
            .and_then(|()| read_line(&ours));
        match greeted {
            Ok(line) if line == hello() => Some(Self {
                state: Mutex::new(Some((child, ours))),
            }),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                None
            }
        }
    }

    /// Forks a worker; an error once the server failed (it is then stopped,
    /// and every later call fails at once).
    pub(crate) fn fork(&self) -> io::Result<Forked> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((_, socket)) = state.as_mut() else {
            return Err(io::Error::other("the fork server stopped"));
        };
        let forked = fork_on(socket);
        if forked.is_err() {
            if let Some((mut child, _)) = state.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        forked
    }

    /// The server's pid, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.as_ref().map(|(child, _)| child.id())
    }
}

impl Drop for ForkServer {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some((mut child, socket)) = state.take() {
            // Its input closing ends it; the kill makes sure, at once.
            drop(socket);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One fork request on `socket`: two fresh pipes, the worker's ends sent.
fn fork_on(socket: &mut UnixStream) -> io::Result<Forked> {
    let (worker_stdin, stdin) = pipe()?;
    let (stdout, worker_stdout) = pipe()?;
    let fds = [worker_stdin.as_raw_fd(), worker_stdout.as_raw_fd()];
    let sent = sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(b"f")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    if sent != 1 {
        return Err(io::Error::other("the fork request was cut short"));
    }
    // The server has its own copies now; ours would keep the pipes open
    // after the worker exits.
    drop((worker_stdin, worker_stdout));
    let line = read_line(socket)?;
    let pid = line
        .trim_end()
        .parse::<u32>()
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| io::Error::other(format!("the fork server said {:?}", line.trim_end())))?;
    Ok(Forked {
        pid,
        stdin: File::from(stdin),
        stdout: File::from(stdout),
    })
}

/// A pipe, both ends close-on-exec: (read end, write end).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2(2) fills the two-element array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 just opened both, owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// One short line from the server, byte by byte (nothing follows it until
/// the next request), within the socket's timeouts.
fn read_line(mut socket: &UnixStream) -> io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < MAX_LINE {
        match socket.read(&mut byte) {
            Ok(0) => return Err(io::Error::other("the fork server closed its socket")),
            Ok(_) => {
                line.push(byte[0]);
                if byte[0] == b'\n' {
                    return String::from_utf8(line).map_err(io::Error::other);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("the fork server sent an overlong line"))
}
