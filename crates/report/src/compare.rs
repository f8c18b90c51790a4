//! `rates compare`: every strategy on named scenarios, each timed run in a
//! process of its own, reported in tables, exports, charts and a results
//! folder.

use std::process::ExitCode;

use anyhow::Result;

use crate::inputs::Inputs;
pub use crate::inputs::{
    CompareOptions, DEFAULT_MAX_PAIRS, DEFAULT_MAX_TIME, DEFAULT_MIN_PAIRS, DEFAULT_RUNS,
    DEFAULT_SAMPLE_INTERVAL, DEFAULT_SCENARIO, DEFAULT_WARMUP, exit_code, pin, scenarios_named,
};
pub use crate::runner::{Session, Timing, scenario_info};
use crate::{measured, paired};

/// Runs `rates compare` with `a`: every scenario asked for, printed and
/// written where asked, or with [`CompareOptions::against`] the paired
/// comparison. The exit code is the CLI's: 0 when every run held, 1 when a
/// run failed, 3 when the gate (or the paired comparison) found a
/// regression, 130/143 when interrupted.
pub fn run(a: &CompareOptions) -> Result<ExitCode> {
    // Every input is checked before anything starts.
    let mut inputs = Inputs::check(a)?;
    // Ctrl-C or SIGTERM stops the run being measured (its whole process
    // group, reaped) and reports what completed.
    let interrupts = crate::interrupt::Interrupts::watch(|| {})?;
    inputs.session.timing.interrupt = Some(interrupts.flag());
    match &a.against {
        Some(against) => paired::run_paired(a, &inputs, against, &interrupts),
        None => measured::run_measured(a, &inputs, &interrupts),
    }
}
