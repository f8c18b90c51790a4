//! The conformance suite for every registered strategy: one test per
//! strategy and check, named `STRATEGY::CHECK` (filter with
//! `cargo test -p rates-testkit --test conformance -- tokio::`).

use std::sync::Arc;

use libtest_mimic::{Arguments, Trial};
use rates_core::Strategy;
use rates_testkit::{Harness, checks};

fn main() {
    let args = Arguments::from_args();
    let mut harness = Harness::default();
    if let Some(worker) = option_env!("CARGO_BIN_EXE_rates-testkit-worker") {
        harness = harness.with_worker(worker);
    }
    let harness = Arc::new(harness);
    let mut trials = Vec::new();
    for strategy in rates_registry::strategies() {
        let strategy: Arc<dyn Strategy> = Arc::from(strategy);
        for check in checks() {
            let strategy = Arc::clone(&strategy);
            let harness = Arc::clone(&harness);
            trials.push(Trial::test(
                format!("{}::{}", strategy.name(), check.name),
                move || {
                    (check.run)(&*strategy, &harness);
                    Ok(())
                },
            ));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
