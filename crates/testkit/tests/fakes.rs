//! The suite's checks must fail a strategy that breaks what they check.
//! Each fake here is wrong in one way the suite promises to catch, and each
//! test runs the suite's own check against it and expects the failure,
//! naming the check and what went wrong.

use std::path::Path;

use rates_core::{Error, Run, Strategy};
use rates_http::BlockingClient;
use rates_testkit::{check_named, checks, external_checks, failure_of};

/// Promises `concurrency` in flight (the default plan: tasks), then sends
/// one request at a time: a "pool" that silently serialises.
#[derive(Debug)]
struct SerialPool;

impl Strategy for SerialPool {
    fn name(&self) -> &'static str {
        "serial-pool"
    }

    fn run(&self, run: &Run<'_>) -> Result<Option<String>, Error> {
        let client = BlockingClient::new(run.config, 1);
        let throttle = run.config.rate_limit.map(rates_core::Throttle::new);
        for i in 0..run.bases.len() {
            run.outcomes
                .fill(i, |base| client.fetch(base, run.config, throttle.as_ref()));
        }
        Ok(None)
    }
}

#[test]
fn a_serial_pool_fails_the_concurrency_floor() {
    let why = failure_of(
        &check_named(checks(), "concurrency_bound_holds_at_the_server"),
        &SerialPool,
    );
    assert!(
        why.contains("serial-pool: at most 1 request(s) in flight") && why.contains("must reach 5"),
        "{why}"
    );
}

#[test]
fn a_serial_external_client_fails_the_concurrency_floor() {
    // sh-curl fetches one base after another; declared as holding tasks it
    // promises `concurrency` in flight, as a serial client in disguise would.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients");
    let fake = rates_report::external::External::new(
        "serial-curl",
        "sh shell/rates_curl.sh",
        &root,
        "tasks",
        "sh-curl declared as tasks",
    )
    .unwrap();
    let why = failure_of(
        &check_named(external_checks(), "concurrency_bound_holds_at_the_server"),
        &fake,
    );
    assert!(
        why.contains("serial-curl: at most 1 request(s) in flight"),
        "{why}"
    );
}
