//! The measuring product of the rates workspace, as a library: the named
//! scenarios, the runner of timed children (each run in a process of its
//! own, its whole tree measured), comparisons of every strategy
//! ([`compare`]), paired comparisons of two builds or two settings
//! ([`paired`]), the regression gates ([`gate`], [`paired`]), history,
//! sweeps and the decision map, and what is written from the records:
//! tables, JSON/CSV/Markdown exports, SVG charts and a results folder's
//! `REPORT.md`. The `rates` CLI parses its flags and calls into here.
//!
//! A comparison runs each strategy as a child process of the running
//! program, so a program that measures calls [`child_if_asked`] first thing
//! in `main`: in the parent it returns `None`; in a measured child (or a
//! worker of the `process` strategy) it does the child's work and returns
//! its exit code.
//!
//! # Examples
//!
//! Two strategies on the `classic` scenario, one timed run each, and one
//! figure read from the result:
//!
//! ```
//! use rates_report::compare::{Session, Timing};
//! use rates_report::registry::Registry;
//!
//! fn main() -> Result<std::process::ExitCode, Box<dyn std::error::Error>> {
//!     // A measured child, or a worker: do that and stop.
//!     if let Some(code) = rates_report::child_if_asked() {
//!         return Ok(code);
//!     }
//!     let scenario = rates_report::scenario("classic")?;
//!     let registry = Registry::default(); // the built-in strategies only
//!     let strategies = registry.named(Some("tokio,pool"))?;
//!     // One timed run each, no warm-up, against the scenario's embedded server.
//!     let session = Session::new(Timing::new(1, 0), registry);
//!     let export = session.measure(&scenario, &strategies)?;
//!     for row in &export.results {
//!         println!("{}: {:?} us of CPU per request", row.strategy, row.cpu_per_request_us);
//!     }
//!     Ok(std::process::ExitCode::SUCCESS)
//! }
//! ```
//!
//! The same as a program: `cargo run --release -p rates-report --example
//! compare_two`.

mod api;
pub mod compare;
pub mod draw;
pub mod external;
pub mod fetch;
pub mod gate;
pub mod history;
mod inputs;
pub mod interrupt;
pub mod map;
mod measured;
pub mod names;
mod noise;
pub mod paired;
pub mod parse;
pub mod profile;
pub mod redraw;
pub mod registry;
pub mod resources;
pub mod runner;
mod scenario;
pub mod sweep;

pub use anyhow::{Error, Result};
pub use api::{API_CONCURRENCY, API_RATE_PER_SECOND, Api};
pub use runner::{CHILD_ENV, child_if_asked};
pub use scenario::{MAX_IDEAL, Scenario, scenario, scenarios};
