//! The conformance suite for every registered strategy: one test per
//! strategy and check, named `STRATEGY::CHECK` (filter with
//! `cargo test -p rates-testkit --test conformance -- tokio::`).
//!
//! Harness-less, so that this program is also the `process` strategy's
//! worker: started again as one, it serves the pool instead.

use std::sync::Arc;

use libtest_mimic::{Arguments, Trial};
use rates_core::Strategy;
use rates_testkit::{Harness, checks};

fn main() -> std::process::ExitCode {
    if let Some(code) = rates_registry::worker_if_asked() {
        return code;
    }
    if let Some(code) =
        rates_testkit::leftover_child_if_asked(|name| rates_registry::find(name).ok())
    {
        return code;
    }
    let args = Arguments::from_args();
    let harness = Arc::new(Harness::default());
    let mut trials = Vec::new();
    for strategy in rates_registry::strategies() {
        let strategy: Arc<dyn Strategy> = Arc::from(strategy);
        // A strategy this machine cannot run (io_uring refused by the
        // kernel) is skipped, every check of it ignored, with the reason.
        let unavailable = strategy.unavailable();
        if let Some(why) = &unavailable {
            eprintln!("{}: skipped: {why}", strategy.name());
        }
        for check in checks() {
            let strategy = Arc::clone(&strategy);
            let harness = Arc::clone(&harness);
            trials.push(
                Trial::test(format!("{}::{}", strategy.name(), check.name), move || {
                    (check.run)(&*strategy, &harness);
                    Ok(())
                })
                .with_ignored_flag(unavailable.is_some()),
            );
        }
    }
    libtest_mimic::run(&args, trials).exit_code()
}
