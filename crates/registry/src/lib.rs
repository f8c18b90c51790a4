//! The one list of strategies by name, and the named scenarios.
//!
//! The CLI, the benches and the conformance suite all read
//! [`strategies`]; adding a strategy is one line here. A program that runs
//! them calls [`worker_if_asked`] first thing in `main`, so that the
//! `process` strategy can start it again as its workers. Scenarios (see
//! [`scenarios`]) are defined once and shared by `rates compare --scenario`
//! and the criterion benches.
//!
//! # Examples
//!
//! ```
//! let names: Vec<&str> = rates_registry::strategies().iter().map(|s| s.name()).collect();
//! assert!(names.contains(&"sync"));
//! let classic = rates_registry::scenario("classic")?;
//! assert_eq!(classic.bases().len(), 5);
//! # Ok::<(), rates_core::Error>(())
//! ```

mod scenario;

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
pub use scenario::{MAX_IDEAL, Scenario, scenario, scenarios};

/// Every registered strategy, in the order reports list them.
pub fn strategies() -> Vec<Box<dyn Strategy>> {
    vec![
        Box::new(rates_sync::Sequential),
        Box::new(rates_threads::ThreadPerBase::new()),
        Box::new(rates_pool::PoolStrategy),
        Box::new(rates_rayon::Rayon),
        Box::new(rates_process::Processes::default()),
        Box::new(rates_tokio::Tokio::new()),
        Box::new(rates_tokio::TokioBlocking::new()),
        Box::new(rates_smol::Smol::new()),
        Box::new(rates_async_std::AsyncStd),
    ]
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
    fn unknown_names_are_explained() {
        let err = find("fibers").err().unwrap();
        assert!(err.to_string().contains("`fibers`"));
        assert!(err.to_string().contains("sync"));
    }
}
