//! The conformance checks that apply to any client (`external_checks`),
//! run against every external strategy of the project's clients file
//! (clients/clients.toml): the five Python clients and the shell one. One
//! test per program and check, named `PROGRAM::CHECK` (filter with
//! `cargo test -p rates-testkit --test external -- py-asyncio::`).
//!
//! The Python clients need their virtual environment: this program runs
//! `bash scripts/python-clients.sh` first (it installs the pinned
//! requirements from PyPI once, then only checks), and fails naming it
//! when that fails.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};
use rates_core::Strategy;
use rates_testkit::{Harness, external_checks};

/// The shell client fetches one base at a time with curl: only the checks
/// that stay short at that pace, and none of the rate-limit or
/// concurrency ones (it has neither).
const SHELL_CHECKS: [&str; 5] = [
    "classic_matrix",
    "one_failing_base_spares_the_others",
    "not_found_is_not_retried",
    "nothing_listening",
    "stalled_server_times_out",
];

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let setup = Command::new("bash")
        .arg(root.join("scripts/python-clients.sh"))
        .output();
    let setup_failure = match setup {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "scripts/python-clients.sh failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run bash scripts/python-clients.sh: {e}")),
    };
    let clients = root.join(rates_report::external::DEFAULT_CLIENTS);
    let list = rates_report::external::read_clients(&clients)
        .unwrap_or_else(|e| panic!("{}: {e:#}", clients.display()));
    let harness = Arc::new(Harness::default());
    let mut trials = Vec::new();
    for external in list {
        let shell = external.name().starts_with("sh-");
        let python = external.name().starts_with("py-");
        let strategy: Arc<dyn Strategy> = Arc::new(external);
        for check in external_checks() {
            if shell && !SHELL_CHECKS.contains(&check.name) {
                continue;
            }
            let strategy = Arc::clone(&strategy);
            let harness = Arc::clone(&harness);
            let setup_failure = setup_failure.clone().filter(|_| python);
            trials.push(Trial::test(
                format!("{}::{}", strategy.name(), check.name),
                move || {
                    if let Some(why) = setup_failure {
                        return Err(Failed::from(format!(
                            "{why}: the Python clients are not set up; run bash \
                             scripts/python-clients.sh"
                        )));
                    }
                    (check.run)(&*strategy, &harness);
                    Ok(())
                },
            ));
        }
    }
    libtest_mimic::run(&args, trials).exit_code()
}
