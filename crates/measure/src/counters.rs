//! Kernel counters over a measured child's whole tree: the syscalls it
//! makes, counted by `perf_event_open` on the `raw_syscalls:sys_enter`
//! tracepoint, inherited by every thread and process the child starts. The
//! kernel counts; nothing traces or stops the child (no ptrace), so the
//! count does not slow the run.
//!
//! The counter is attached before the child executes its program: the
//! forked child reports its pid on a pipe and waits on a second one until
//! the parent has attached and enabled the counter, then executes. So the
//! count covers the whole run, start-up included, and every thread and
//! process started after (the child itself starts them all).

use std::process::Command;

/// The environment variable naming where tracefs is mounted, when it is
/// not at `/sys/kernel/tracing` or `/sys/kernel/debug/tracing`.
pub const TRACEFS_ENV: &str = "RATES_TRACEFS";

/// How a child's syscalls are counted: attached at spawn by
/// [`Attach::prepare`], read once the tree has exited.
#[derive(Debug)]
pub(crate) struct Attach {
    #[cfg(target_os = "linux")]
    inner: Option<linux::Pending>,
    /// Why nothing is counted, when that is known before the spawn.
    unavailable: Option<String>,
}

/// The counter of a running child, or why there is none.
#[derive(Debug)]
pub(crate) struct Attached {
    #[cfg(target_os = "linux")]
    counter: Option<perf_event::Counter>,
    unavailable: Option<String>,
}

impl Attach {
    /// Sets `cmd` up so that its syscalls can be counted from its first
    /// instruction: call [`Attach::spawned`] right after `cmd.spawn()`,
    /// whatever it returned.
    pub(crate) fn prepare(cmd: &mut Command) -> Self {
        #[cfg(target_os = "linux")]
        {
            match linux::Pending::prepare(cmd) {
                Ok(p) => Self {
                    inner: Some(p),
                    unavailable: None,
                },
                Err(why) => Self {
                    inner: None,
                    unavailable: Some(why),
                },
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = cmd;
            Self {
                unavailable: Some("syscalls are counted on Linux only".to_owned()),
            }
        }
    }

    /// After the spawn: the attached counter, or why there is none.
    pub(crate) fn spawned(self) -> Attached {
        #[cfg(target_os = "linux")]
        {
            match self.inner {
                Some(p) => match p.finish() {
                    Ok(counter) => Attached {
                        counter: Some(counter),
                        unavailable: None,
                    },
                    Err(why) => Attached {
                        counter: None,
                        unavailable: Some(why),
                    },
                },
                None => Attached {
                    counter: None,
                    unavailable: self.unavailable,
                },
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            Attached {
                unavailable: self.unavailable,
            }
        }
    }
}

impl Attached {
    /// The syscalls of the tree so far (all of them once it has exited and
    /// been reaped), or why there is no count.
    pub(crate) fn read(self) -> Result<u64, String> {
        #[cfg(target_os = "linux")]
        if let Some(mut counter) = self.counter {
            return counter
                .read()
                .map_err(|e| format!("reading the syscall counter: {e}"));
        }
        Err(self
            .unavailable
            .unwrap_or_else(|| "no syscall counter".to_owned()))
    }
}

/// The syscalls of the calling thread and of every thread and process it
/// starts from now on (`rates fetch --resources`: a process measuring
/// itself, started before its runtime's threads).
#[derive(Debug)]
pub struct OwnSyscalls {
    #[cfg(target_os = "linux")]
    counter: perf_event::Counter,
}

impl OwnSyscalls {
    /// Starts counting.
    ///
    /// # Errors
    /// Why the counter cannot be opened, with the fix.
    pub fn start() -> Result<Self, String> {
        #[cfg(target_os = "linux")]
        {
            let id = syscall_tracepoint()?;
            Ok(Self {
                counter: linux::attach(id, 0)?,
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            Err("syscalls are counted on Linux only".to_owned())
        }
    }

    /// The count so far.
    ///
    /// # Errors
    /// The counter cannot be read.
    pub fn read(&mut self) -> Result<u64, String> {
        #[cfg(target_os = "linux")]
        {
            self.counter
                .read()
                .map_err(|e| format!("reading the syscall counter: {e}"))
        }
        #[cfg(not(target_os = "linux"))]
        {
            Err("syscalls are counted on Linux only".to_owned())
        }
    }
}

/// Where tracefs is mounted (the folder with `events/raw_syscalls`), or
/// why it cannot be found, with the fix.
///
/// # Errors
/// The reason, in a sentence a reader can act on.
pub fn tracefs() -> Result<std::path::PathBuf, String> {
    let dirs: Vec<String> = match std::env::var(TRACEFS_ENV) {
        Ok(dir) if !dir.is_empty() => vec![dir],
        _ => vec![
            "/sys/kernel/tracing".to_owned(),
            "/sys/kernel/debug/tracing".to_owned(),
        ],
    };
    tracefs_in(&dirs)
}

/// The first of `dirs` that holds the syscall tracepoints.
fn tracefs_in(dirs: &[String]) -> Result<std::path::PathBuf, String> {
    dirs.iter()
        .map(std::path::PathBuf::from)
        .find(|d| d.join("events/raw_syscalls/sys_enter/id").is_file())
        .ok_or_else(|| {
            format!(
                "tracefs is not mounted (looked in {}): as root, `mount -t tracefs nodev \
                 /sys/kernel/tracing`, or set {TRACEFS_ENV} to where it is",
                dirs.join(", ")
            )
        })
}

/// The id of the `raw_syscalls:sys_enter` tracepoint, or why it cannot be
/// read (tracefs not mounted, say), with the fix.
///
/// # Errors
/// The reason, in a sentence a reader can act on.
pub fn syscall_tracepoint() -> Result<u64, String> {
    let file = tracefs()?.join("events/raw_syscalls/sys_enter/id");
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    text.trim()
        .parse()
        .map_err(|e| format!("{}: not a tracepoint id ({e})", file.display()))
}

/// Why `perf_event_open` refused, in words a reader can act on.
#[cfg(target_os = "linux")]
fn refused(e: &std::io::Error) -> String {
    let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    match e.raw_os_error() {
        Some(code) if code == nix::libc::EACCES || code == nix::libc::EPERM => format!(
            "perf_event_open was refused ({e}; kernel.perf_event_paranoid is {paranoid}): run \
             as root, or give CAP_PERFMON, or `sysctl kernel.perf_event_paranoid=-1`"
        ),
        Some(code) if code == nix::libc::ENOENT || code == nix::libc::ENODEV => {
            format!("the kernel has no raw_syscalls:sys_enter tracepoint for perf ({e})")
        }
        Some(code) if code == nix::libc::ENOSYS => {
            "perf_event_open is not available (a container or a kernel without perf \
             events)"
                .to_owned()
        }
        _ => format!("perf_event_open failed: {e}"),
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::fs::File;
    use std::io::{self, Read as _, Write as _};
    use std::os::fd::{AsRawFd as _, FromRawFd as _};
    use std::os::unix::process::CommandExt as _;
    use std::process::Command;
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    use perf_event::Builder;
    use perf_event::events::Tracepoint;

    /// The longest the parent waits for a forked child to report its pid
    /// (it does so before anything else); past it the child runs uncounted.
    const PID_WAIT: Duration = Duration::from_secs(10);

    /// A spawn in progress: the thread that attaches the counter when the
    /// forked child reports its pid.
    #[derive(Debug)]
    pub(super) struct Pending {
        result: mpsc::Receiver<Result<perf_event::Counter, String>>,
        /// The parent's end of the pid pipe: dropped once the spawn has
        /// returned, so that a child that never reported ends the wait.
        pid_writer: Option<File>,
    }

    impl Pending {
        pub(super) fn prepare(cmd: &mut Command) -> Result<Self, String> {
            let id = super::syscall_tracepoint()?;
            let pipe =
                |what: &str| cloexec_pipe().map_err(|e| format!("a pipe for the {what}: {e}"));
            // Both pipes are close-on-exec: the program never sees them.
            let (mut pid_reader, pid_writer) = pipe("pid")?;
            let (go_reader, mut go_writer) = pipe("go-ahead")?;
            let (pid_w, go_r) = (pid_writer.as_raw_fd(), go_reader.as_raw_fd());
            // SAFETY: between fork and exec the closure calls only
            // getpid, write and read, which are async-signal-safe, and
            // allocates nothing.
            unsafe {
                cmd.pre_exec(move || {
                    let pid = nix::libc::getpid().to_ne_bytes();
                    nix::libc::write(pid_w, pid.as_ptr().cast(), pid.len());
                    let mut go = [0u8; 1];
                    // Returns when the parent has attached (or given up):
                    // a byte, or end of file.
                    nix::libc::read(go_r, go.as_mut_ptr().cast(), 1);
                    Ok(())
                });
            }
            let (tx, rx) = mpsc::channel();
            thread::Builder::new()
                .name("rates-attach".to_owned())
                .spawn(move || {
                    let mut pid = [0u8; 4];
                    let attached = match pid_reader.read_exact(&mut pid) {
                        Ok(()) => attach(id, i32::from_ne_bytes(pid)),
                        Err(e) => Err(format!("the child did not report its pid: {e}")),
                    };
                    // The child goes on whether or not the counter holds.
                    let _ = go_writer.write_all(&[1]);
                    drop(go_reader);
                    let _ = tx.send(attached);
                })
                .map_err(|e| format!("a thread to attach the counter: {e}"))?;
            Ok(Self {
                result: rx,
                pid_writer: Some(pid_writer),
            })
        }

        pub(super) fn finish(mut self) -> Result<perf_event::Counter, String> {
            drop(self.pid_writer.take());
            self.result
                .recv_timeout(PID_WAIT)
                .map_err(|_| "the child did not report its pid in time".to_owned())?
        }
    }

    /// A pipe, both ends closed on exec: (read end, write end).
    fn cloexec_pipe() -> io::Result<(File, File)> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into the array it is given.
        if unsafe { nix::libc::pipe2(fds.as_mut_ptr(), nix::libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just opened, and are owned here only.
        Ok(unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) })
    }

    /// The syscall counter of process `pid` (0: the calling thread) and
    /// everything it starts from now on, enabled.
    pub(super) fn attach(id: u64, pid: i32) -> Result<perf_event::Counter, String> {
        let mut counter = Builder::new(Tracepoint::with_id(id))
            .observe_pid(pid)
            .any_cpu()
            .inherit(true)
            // A syscall's tracepoint fires in the kernel: counted only when
            // kernel events are (the binding excludes them by default).
            .exclude_kernel(false)
            .build()
            .map_err(|e| super::refused(&e))?;
        counter.enable().map_err(|e| super::refused(&e))?;
        Ok(counter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tracefs_is_named_with_the_fix() {
        let why = tracefs_in(&["/nonexistent/tracefs".to_owned()]).unwrap_err();
        assert!(
            why.contains("/nonexistent/tracefs") && why.contains("mount -t tracefs"),
            "{why}"
        );
    }
}
