//! How a worker process is started: one way, for every program.
//!
//! The process strategy starts its workers by running a [`WorkerCommand`]
//! with [`WORKER_ENV`] set in their environment. By default the command is
//! the running executable itself, so a program that may run the `process`
//! strategy calls [`worker_if_asked`](crate::worker_if_asked) first thing in `main`: in the parent
//! it returns `None` and the program goes on; in a worker it serves the
//! pool and returns the exit code. The `rates` CLI, the conformance suite
//! and the benches all do this; no separate worker binary is needed.

use std::ffi::OsStr;
use std::path::PathBuf;

use rates_core::{Error, ErrorKind};

/// The environment variable the process strategy sets in every worker it
/// starts; [`worker_if_asked`](crate::worker_if_asked) serves as a worker when it is set.
pub const WORKER_ENV: &str = "RATES_PROCESS_WORKER";

/// How to start a worker process: a program and its arguments. The
/// strategy adds [`WORKER_ENV`] to its environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerCommand {
    /// The program to run.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
}

impl WorkerCommand {
    /// `program` with `args`.
    pub fn new<I, S>(program: impl Into<PathBuf>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Self {
            program: program.into(),
            args: args
                .into_iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned())
                .collect(),
        }
    }

    /// The running executable, with no arguments: it serves as a worker
    /// when its `main` calls [`worker_if_asked`](crate::worker_if_asked).
    ///
    /// # Errors
    /// [`ErrorKind::Spawn`] when the path of the running executable is unknown.
    pub fn current_exe() -> Result<Self, Error> {
        let program = std::env::current_exe().map_err(|e| {
            Error::new(
                ErrorKind::Spawn,
                format!(
                    "cannot use this program as its own worker: its path is unknown ({e}); \
                     give the process strategy a worker command instead"
                ),
            )
        })?;
        Ok(Self {
            program,
            args: Vec::new(),
        })
    }

    /// The program and its arguments, as one would type them.
    pub(crate) fn describe(&self) -> String {
        let mut out = self.program.display().to_string();
        for a in &self.args {
            out.push(' ');
            out.push_str(a);
        }
        out
    }
}

/// Refuses to start workers from a process that was itself started as one
/// (`started_as_worker`): its `main` runs strategies instead of serving, so
/// it does not call [`worker_if_asked`](crate::worker_if_asked) first, and each generation would
/// start the next.
pub(crate) fn not_inside_a_worker(started_as_worker: bool) -> Result<(), Error> {
    if started_as_worker {
        return Err(Error::new(
            ErrorKind::Spawn,
            format!(
                "this process was started as a worker of the process strategy ({WORKER_ENV} is \
                 set) but runs strategies instead: call `rates_process::worker_if_asked()` (or \
                 `rates_registry::worker_if_asked()`) first thing in `main`, or give the \
                 strategy another worker command"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_that_runs_strategies_starts_no_workers_of_its_own() {
        assert!(not_inside_a_worker(false).is_ok());
        let err = not_inside_a_worker(true).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Spawn);
        assert!(err.to_string().contains("worker_if_asked"), "{err}");
    }

    #[test]
    fn the_current_exe_can_be_its_own_worker() {
        let c = WorkerCommand::current_exe().unwrap();
        assert_eq!(c.program, std::env::current_exe().unwrap());
        assert!(c.args.is_empty());
        assert_eq!(
            WorkerCommand::new("/bin/sh", ["-c", "exit 3"]).describe(),
            "/bin/sh -c exit 3"
        );
    }
}
