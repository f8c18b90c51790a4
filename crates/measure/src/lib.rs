//! Measures one run of a program in a process tree of its own, and the
//! records every `rates` report is built from.
//!
//! A comparison of concurrency strategies is only honest if each figure
//! belongs to the strategy alone. [`measure`] therefore starts the run as a
//! child process (in a process group of its own), samples the whole tree
//! under it (the child, its threads, its children and theirs) at a fixed
//! interval from `/proc`, and, once the child has exited and been reaped,
//! reads the tree's exact CPU time and context switches from
//! `getrusage(RUSAGE_CHILDREN)`. The result is a [`TreeUsage`]: a figure the
//! platform cannot give is `None` ("unavailable"), never zero.
//!
//! What is exact and what is sampled:
//! - CPU (user, system) and context switches are the kernel's own totals for
//!   the child and every descendant it waited for: exact.
//! - Peak memory is the sum of resident memory (RSS) over every process of
//!   the tree at one sample, peaked over the samples; a spike shorter than
//!   the interval can be missed. Shared pages (the same binary mapped by a
//!   parent and its workers) are counted once per process, as RSS does.
//! - Peak threads and processes are counted at each sample the same way.
//! - Syscalls are counted by the kernel (perf events on the
//!   `raw_syscalls:sys_enter` tracepoint), attached before the child
//!   executes and inherited by every thread and process it starts: exact.
//!   Where the counter cannot be opened (tracefs not mounted,
//!   `perf_event_paranoid`, a container), the count is `None` and
//!   [`TreeUsage::syscalls_unavailable`] says why.
//! - The user/system split of the CPU is the kernel's tick samples; only
//!   the sum is exact ([`SPLIT_MIN_CPU_S`]).
//!
//! The records ([`ChildReport`], [`RunRecord`], [`StrategyResult`],
//! [`Export`]) are what `rates compare`, `sweep`, `map` and the regression
//! gate read and write; their JSON shape is the documented schema
//! ([`SCHEMA`]). [`paired`] holds what a paired comparison of two builds
//! is made of: a pair of runs, the rule that judges a strategy's pairs, and
//! its export ([`paired::PAIRED_SCHEMA`]).
//!
//! # Examples
//!
//! ```no_run
//! use std::process::Command;
//! use std::time::Duration;
//!
//! let mut cmd = Command::new("sleep");
//! cmd.arg("0.2");
//! let measured = rates_measure::measure(cmd, None, &rates_measure::Options::default())?;
//! assert!(measured.status.success());
//! println!("peak threads: {:?}", measured.usage.peak_threads);
//! # Ok::<(), std::io::Error>(())
//! ```

mod counters;
pub mod paired;
mod record;
mod stats;
mod tree;

pub use counters::{OwnSyscalls, TRACEFS_ENV, syscall_tracepoint, tracefs};
pub use record::{
    Affinity, BUSY_SHARE, Busy, ChildReport, Export, Leftovers, MIN_PROTOCOL, MIN_SCHEMA, Machine,
    PROTOCOL, RunRecord, SCHEMA, SPLIT_MIN_CPU_S, ScenarioInfo, StrategyResult,
};
pub use stats::{interval_rank, mad, median, median_interval, percentile};
pub use tree::{Measured, Options, TreeUsage, allowed_cpus, measure, pin_this_thread};
