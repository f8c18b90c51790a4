//! The conformance suite, written once and run for every registered strategy
//! by `tests/conformance.rs` (one named test per strategy and check, like
//! `tokio::retry_after_is_honoured`), plus helpers for strategy tests.
//!
//! Every check starts its own [`RatesServer`] on an ephemeral port and asserts
//! from the server's side where it can (arrival times, peak in-flight
//! requests, counts). Checks assert behaviour, bounds and counts, never speed.
//!
//! # What a check can fail
//!
//! Each kind of check is shown failing on a strategy that breaks it, in
//! this crate's own tests (`tests/fakes.rs`, `tests/rate_checks.rs`): a
//! serial "pool" and a serial external client fail the concurrency floor
//! ([`IN_FLIGHT_FLOOR`] of the plan's in flight, counted at the server); a
//! throttle 10% over its limit fails the client's send log and, on its
//! own, the server's arrivals ([`arrivals_held`], with the fixed
//! [`ARRIVAL_ALLOWANCE`]); so does an external client given a limit 10%
//! over.
//!
//! # The timed assertions, and why their margins are safe
//!
//! Checks count and order; where one must time, the scenario is built so
//! that a broken client is far past the bound and a right one far below it:
//!
//! - stop checks ([`STOP_BOUND`], 3 s after the stop): a run that ignored
//!   its stop would wait 35 s or more (requests held unanswered under a
//!   60 s request timeout, a 40 s latency, a throttle slot 42 s away); one
//!   that stops takes milliseconds.
//! - timeouts (`stalled_server_times_out`, `tls_…`): 200 ms request
//!   timeout, 100 s connect timeout, the server silent for 120 s; bound
//!   8 s, where a right client needs under a second and one on the wrong
//!   timeout 100 s.
//! - `nothing_listening`: a refused connect fails in milliseconds; bound
//!   3 s, where waiting out the 30 s connect timeout would take a minute.
//! - lower bounds that hold by construction for a right client and fail a
//!   wrong one by its own design: a retry after `Retry-After: 1` (or a date
//!   two seconds ahead) comes 1 s or more after the 429, as the server
//!   stamps them, where a client that ignores it retries after 10 ms;
//!   `latency_excludes_the_throttle_wait`: the slowest latency is under
//!   three throttle intervals, which a latency that counted the wait
//!   reaches by construction.
//!
//! # Examples
//!
//! ```
//! use rates_testkit::{Harness, checks};
//!
//! let harness = Harness::default();
//! let check = checks().into_iter().find(|c| c.name == "empty_input").unwrap();
//! (check.run)(&rates_sync::Sequential, &harness);
//! ```

mod checks;

use std::time::Duration;

use rates_core::{Config, Strategy};
use rates_server::{RatesServer, ServerConfig};

pub use checks::{
    ARRIVAL_ALLOWANCE, CLASSIC_MATRIX, Check, IN_FLIGHT_FLOOR, STOP_BOUND, arrivals_held, checks,
    external_checks, limit_held, sends_within_limit,
};

/// What the checks share: servers and client configs made the same way.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Harness {}

impl Harness {
    /// Starts a server; panics with a clear message if it cannot.
    pub fn server(&self, config: ServerConfig) -> RatesServer {
        RatesServer::start(config).unwrap_or_else(|e| panic!("cannot start the test server: {e}"))
    }

    /// Starts a server that serves HTTPS with a certificate of its own.
    pub fn tls_server(&self, config: ServerConfig) -> RatesServer {
        self.server(config.with_generated_tls())
    }

    /// A client config for `server` with test-friendly backoff (10 ms start);
    /// for a TLS server, it trusts the server's certificate.
    pub fn config(&self, server: &RatesServer) -> Config {
        let mut config = Config::new(&server.endpoint())
            .unwrap_or_else(|e| panic!("server endpoint rejected: {e}"));
        config.ca_cert_pem = server.certificate_pem().map(str::to_owned);
        config.retry.initial_backoff = Duration::from_millis(10);
        config
    }
}

/// The check named `name` of `list` ([`checks`] or [`external_checks`]).
///
/// # Panics
/// When there is no such check.
pub fn check_named(list: Vec<Check>, name: &str) -> Check {
    list.into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name}"))
}

/// Runs `check` against `strategy`, which breaks what the check checks,
/// and returns why the check failed it: for showing that a check can fail
/// (this crate's own tests do, with fakes).
///
/// # Panics
/// When the check passed.
pub fn failure_of(check: &Check, strategy: &dyn Strategy) -> String {
    let harness = Harness::default();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        (check.run)(strategy, &harness);
    }));
    let payload = caught.err().unwrap_or_else(|| {
        panic!(
            "{}::{} passed a strategy that breaks it",
            strategy.name(),
            check.name
        )
    });
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

/// Runs `strategy` and panics, naming it, if the run itself fails.
pub fn run(strategy: &dyn Strategy, bases: &[&str], config: &Config) -> rates_core::Report {
    strategy
        .fetch_codes(bases, config)
        .unwrap_or_else(|e| panic!("{}: the run failed: {e}", strategy.name()))
}

/// The environment variable that makes the conformance program the
/// isolated child of the check `a_stopped_run_leaves_nothing_behind`:
/// `STRATEGY FAST_ENDPOINT SLOW_ENDPOINT`.
pub const LEFTOVER_CHILD: &str = "RATES_TESTKIT_LEFTOVERS";

/// In the conformance program's `main`, first thing (after
/// `worker_if_asked`): when started as the leftover check's child, runs it
/// and returns the exit code. `find` gives a strategy by name.
///
/// The child warms the strategy up (one base from the fast server: a
/// runtime it keeps is built), counts what is alive, runs 40 bases against
/// the slow server (3 s a request) with its stop handle fired after 0.5 s,
/// counts again, and prints `left N threads, N processes, N sockets`: what
/// the stopped run left beyond what was alive before it (the threads of
/// the pool the strategy keeps, [`Strategy::kept_threads`], not counted).
pub fn leftover_child_if_asked(
    find: impl Fn(&str) -> Option<Box<dyn Strategy>>,
) -> Option<std::process::ExitCode> {
    let spec = std::env::var(LEFTOVER_CHILD).ok()?;
    let parts: Vec<&str> = spec.split(' ').collect();
    let [name, fast, slow] = parts[..] else {
        eprintln!("{LEFTOVER_CHILD}: `{spec}` is not STRATEGY FAST_ENDPOINT SLOW_ENDPOINT");
        return Some(std::process::ExitCode::from(2));
    };
    let Some(strategy) = find(name) else {
        eprintln!("{LEFTOVER_CHILD}: no strategy `{name}`");
        return Some(std::process::ExitCode::from(2));
    };
    let config = |endpoint: &str| {
        let mut c = Config::new(endpoint).unwrap_or_else(|e| panic!("{e}"));
        c.retry.initial_backoff = Duration::from_millis(10);
        c.concurrency = 20;
        c.max_threads = Some(20);
        c
    };
    let _ = run(&*strategy, &["USD"], &config(fast));
    let kept = strategy.kept_threads();
    let before = alive::Alive::now(kept);
    let stop = rates_core::Stop::new();
    let slow = config(slow).with_stop(stop.clone());
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        stop.cancel();
    });
    let names = rates_core::generated_codes(40);
    let codes: Vec<&str> = names.iter().map(|c| c.as_str()).collect();
    let report = run(&*strategy, &codes, &slow);
    if canceller.join().is_err() {
        eprintln!("the thread that fires the stop handle panicked");
        return Some(std::process::ExitCode::FAILURE);
    }
    let left = alive::Alive::now(kept).since(&before);
    if report.cancelled() != 40 {
        eprintln!("expected 40 cancelled, got {}", report.cancelled());
        return Some(std::process::ExitCode::FAILURE);
    }
    println!(
        "left {} threads, {} processes, {} sockets",
        left.threads.len(),
        left.processes.len(),
        left.sockets.len()
    );
    if !(left.threads.is_empty() && left.processes.is_empty() && left.sockets.is_empty()) {
        println!(
            "left: threads {:?}, processes {:?}, sockets {:?}",
            left.threads, left.processes, left.sockets
        );
    }
    Some(std::process::ExitCode::SUCCESS)
}

/// What this process has alive, from /proc, as sets: what a stopped run
/// left is what is in the set after it and was not before (a socket closed
/// elsewhere cannot hide a leaked one, as it would in a net count).
mod alive {
    use std::collections::BTreeSet;
    use std::fs;

    #[derive(Debug, Default)]
    pub(crate) struct Alive {
        /// Thread ids.
        pub(crate) threads: BTreeSet<u32>,
        /// Child process ids.
        pub(crate) processes: BTreeSet<u32>,
        /// Socket inodes (`socket:[N]` links of open descriptors).
        pub(crate) sockets: BTreeSet<String>,
    }

    impl Alive {
        /// Now; the threads named `kept*` are not counted.
        pub(crate) fn now(kept: Option<&str>) -> Self {
            let threads = fs::read_dir("/proc/self/task")
                .into_iter()
                .flatten()
                .flatten()
                .filter(|t| {
                    let comm = fs::read_to_string(t.path().join("comm")).unwrap_or_default();
                    // The kernel keeps the first 15 bytes of a thread's name.
                    !kept.is_some_and(|k| comm.trim().starts_with(&k[..k.len().min(15)]))
                })
                .filter_map(|t| t.file_name().to_str()?.parse().ok())
                .collect();
            let me = std::process::id().to_string();
            let processes = fs::read_dir("/proc")
                .into_iter()
                .flatten()
                .flatten()
                .filter(|p| {
                    fs::read_to_string(p.path().join("stat")).is_ok_and(|stat| {
                        // The parent pid is the second field after the
                        // command's closing parenthesis.
                        stat.rsplit_once(')')
                            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                            == Some(me.as_str())
                    })
                })
                .filter_map(|p| p.file_name().to_str()?.parse().ok())
                .collect();
            let sockets = fs::read_dir("/proc/self/fd")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|fd| {
                    let target = fs::read_link(fd.path()).ok()?;
                    let target = target.to_string_lossy();
                    target.starts_with("socket:").then(|| target.into_owned())
                })
                .collect();
            Self {
                threads,
                processes,
                sockets,
            }
        }

        /// What is alive now and was not in `before`.
        pub(crate) fn since(&self, before: &Self) -> Self {
            Self {
                threads: self.threads.difference(&before.threads).copied().collect(),
                processes: self
                    .processes
                    .difference(&before.processes)
                    .copied()
                    .collect(),
                sockets: self.sockets.difference(&before.sockets).cloned().collect(),
            }
        }
    }
}
