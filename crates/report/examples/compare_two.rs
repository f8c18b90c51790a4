//! Compares two strategies on a named scenario from code, and prints one
//! figure of each: the measuring library without the `rates` CLI.
//!
//! ```text
//! cargo run --release -p rates-report --example compare_two -- fanout tokio pool
//! ```
//!
//! The arguments (all optional): the scenario (`classic`), then the
//! strategies (`tokio pool`). Each run is a child process of this program,
//! so `main` first lets [`rates_report::child_if_asked`] do a child's work.

use std::process::ExitCode;

use rates_report::compare::{Session, Timing};
use rates_report::registry::Registry;

fn main() -> ExitCode {
    if let Some(code) = rates_report::child_if_asked() {
        return code;
    }
    match compare() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn compare() -> rates_report::Result<()> {
    let mut args = std::env::args().skip(1);
    let scenario = rates_report::scenario(&args.next().unwrap_or_else(|| "classic".to_owned()))?;
    let mut names: Vec<String> = args.collect();
    if names.is_empty() {
        names = vec!["tokio".to_owned(), "pool".to_owned()];
    }
    // The built-in strategies (no external programs here).
    let registry = Registry::default();
    let strategies = registry.named(Some(&names.join(",")))?;
    // Three timed runs of each after one warm-up, against the scenario's
    // embedded server.
    let session = Session::new(Timing::new(3, 1), registry);
    let export = session.measure(&scenario, &strategies)?;
    println!("{} ({}):", scenario.name, scenario.about);
    for row in &export.results {
        match (row.median_s, row.cpu_per_request_us) {
            (Some(wall), Some(cpu)) => println!(
                "  {:<12} median wall {:.3} s, {:.1} us of CPU per request",
                row.strategy, wall, cpu
            ),
            _ => println!(
                "  {:<12} no figure: {}",
                row.strategy,
                row.skipped
                    .as_deref()
                    .or(row.error.as_deref())
                    .unwrap_or("no runs")
            ),
        }
    }
    Ok(())
}
