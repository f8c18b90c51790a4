//! The one list of strategies by name, and nothing more.
//!
//! The CLI, the measuring library, the benches and the conformance suite
//! all read [`strategies`]; adding a strategy is one line here. A program
//! that runs them calls [`worker_if_asked`] first thing in `main`, so that
//! the `process` strategy can start it again as its workers.
//!
//! # Examples
//!
//! ```
//! let names: Vec<&str> = rates_registry::strategies().iter().map(|s| s.name()).collect();
//! assert!(names.contains(&"sync"));
//! let tokio = rates_registry::find("tokio")?;
//! assert_eq!(tokio.name(), "tokio");
//! # Ok::<(), rates_core::Error>(())
//! ```

use rates_core::{Error, Strategy};

pub use rates_core::generated_codes;
/// Serves as a worker process of the `process` strategy when this process
/// was started as one, and returns its exit code; `None` otherwise.
///
/// The registry's `process` strategy runs the running executable again as
/// its workers, so every program that runs [`strategies`] calls this first
/// thing in `main`:
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     if let Some(code) = rates_registry::worker_if_asked() {
///         return code;
///     }
///     // ... run strategies ...
///     std::process::ExitCode::SUCCESS
/// }
/// ```
pub use rates_process::worker_if_asked;

/// Every registered strategy with one line on how it works (for
/// `rates strategies`), in the order reports list them.
fn registered() -> Vec<(Box<dyn Strategy>, String)> {
    vec![
        (
            Box::new(rates_sync::Sequential),
            "one base after another on the calling thread (the baseline)".to_owned(),
        ),
        (
            Box::new(rates_threads::ThreadPerBase::new()),
            "one OS thread per base, all at once (unbounded: a thread, stack and connection per base)".to_owned(),
        ),
        (
            Box::new(rates_pool::PoolStrategy),
            "a std-only pool of `concurrency` threads fed by a work channel, each with its own connection".to_owned(),
        ),
        (
            Box::new(rates_rayon::Rayon),
            "par_iter on a dedicated rayon pool of `concurrency` threads, one base per task".to_owned(),
        ),
        (
            Box::new(rates_process::Processes::default()),
            format!(
                "a pool of child worker processes (one per request in flight, at most 64, \
                 forked from one started copy), {}",
                rates_process::WIRE
            ),
        ),
        (
            Box::new(rates_tokio::Tokio::new()),
            "tokio tasks on a multi-threaded runtime, one keep-alive connection per task".to_owned(),
        ),
        (
            Box::new(rates_tokio::TokioBlocking::new()),
            "the blocking client through tokio's spawn_blocking, gathered with async (run_in_executor)".to_owned(),
        ),
        (
            Box::new(rates_smol::Smol::new()),
            "smol tasks on an async-executor run by one thread per core, one keep-alive connection per task".to_owned(),
        ),
        (
            Box::new(rates_async_std::AsyncStd),
            "async-std tasks, one keep-alive connection per task (async-std is discontinued; see smol)".to_owned(),
        ),
        (
            Box::new(rates_tokio::Sharded::new()),
            "thread-per-core on epoll: a tokio current-thread runtime per core, bases dealt up front, no stealing".to_owned(),
        ),
        (
            Box::new(rates_compio::Compio::uring()),
            "thread-per-core on io_uring: a compio runtime per core, reads and writes as completions with owned buffers".to_owned(),
        ),
        (
            Box::new(rates_compio::Compio::epoll()),
            "compio-uring's control: the same code and runtime on compio's epoll driver".to_owned(),
        ),
    ]
}

/// Every registered strategy, in the order reports list them.
pub fn strategies() -> Vec<Box<dyn Strategy>> {
    registered().into_iter().map(|(s, _)| s).collect()
}

/// Each registered strategy's name and one line on how it works, in order
/// (what `rates strategies` prints).
pub fn summaries() -> Vec<(&'static str, String)> {
    registered()
        .into_iter()
        .map(|(s, summary)| (s.name(), summary))
        .collect()
}

/// The registered names, in order.
pub fn names() -> Vec<&'static str> {
    strategies().iter().map(|s| s.name()).collect()
}

/// The strategy called `name`.
///
/// # Errors
/// [`InvalidInput`](rates_core::ErrorKind::InvalidInput) naming `name` and
/// listing the registered names.
pub fn find(name: &str) -> Result<Box<dyn Strategy>, Error> {
    strategies()
        .into_iter()
        .find(|s| s.name() == name)
        .ok_or_else(|| {
            Error::invalid_input(format!(
                "unknown strategy `{name}`: choose one of {} (see `rates strategies`)",
                names().join(", ")
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names = names();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
    }

    #[test]
    fn every_strategy_has_a_summary() {
        let summaries = summaries();
        assert_eq!(
            summaries.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            names()
        );
        assert!(summaries.iter().all(|(_, s)| !s.is_empty()));
        // The process strategy's line says what its protocol does (a
        // protocol test checks the words against the bytes it writes).
        let process = &summaries.iter().find(|(n, _)| *n == "process").unwrap().1;
        assert!(process.contains(rates_process::WIRE), "{process}");
    }

    #[test]
    fn unknown_names_are_explained() {
        let err = find("fibers").err().unwrap();
        assert!(err.to_string().contains("`fibers`"));
        assert!(err.to_string().contains("sync"));
    }
}
