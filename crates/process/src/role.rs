//! What this process is: the program itself, a worker of the process
//! strategy, or the fork server of a pool; decided once, at the start of
//! `main` ([`worker_if_asked`]).

use std::process::ExitCode;

use crate::command::WORKER_ENV;

/// Serves as a worker process when this process was started as one
/// ([`WORKER_ENV`] is set): reads requests from stdin, sends each with the
/// shared blocking client (one attempt: the parent owns the retry policy
/// and the rate limit), answers on stdout, and returns the exit code once
/// stdin closes. Returns `None` in any other process.
///
/// Call it first thing in `main` of every program that runs the `process`
/// strategy with its default worker command (the running executable).
///
/// # Examples
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     if let Some(code) = rates_process::worker_if_asked() {
///         return code;
///     }
///     // ... the program itself ...
///     std::process::ExitCode::SUCCESS
/// }
/// ```
pub fn worker_if_asked() -> Option<ExitCode> {
    let mode = std::env::var_os(WORKER_ENV)?;
    Some(if mode == crate::fork_server::FORK_SERVER {
        // A fork server; its forks come back here as workers.
        ExitCode::from(crate::fork_server::serve())
    } else {
        crate::worker::worker_main()
    })
}
