//! No worker outlives its pool: after a run, after crashes and after an
//! early drop, this process has no child left, running or zombie.
//!
//! One test in its own binary, so no other test's children are counted. The
//! workers are this program itself, re-run as a worker (its `main` calls
//! `worker_if_asked` first, so the file runs without libtest's harness).

use std::time::Duration;

use rates_core::{Config, ErrorKind, Strategy};
use rates_process::{ProcessPool, Processes, WorkerCommand};
use rates_server::{RatesServer, ServerConfig};

/// The pids of this process's children, zombies included, from /proc.
fn children() -> Vec<u32> {
    let me = std::process::id();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        // A process may exit between listing and reading: skip it.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(me) {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

fn config(server: &RatesServer, concurrency: usize) -> Config {
    let mut config = Config::new(&server.endpoint())
        .unwrap()
        .with_concurrency(concurrency);
    config.retry.initial_backoff = Duration::from_millis(10);
    config
}

fn main() -> std::process::ExitCode {
    if let Some(code) = rates_process::worker_if_asked() {
        return code;
    }
    no_child_outlives_the_pool();
    println!("no_child_outlives_the_pool: ok");
    std::process::ExitCode::SUCCESS
}

fn no_child_outlives_the_pool() {
    let worker = WorkerCommand::current_exe().unwrap();
    let server = RatesServer::start(ServerConfig::default()).unwrap();
    let bases = rates_core::parse_codes("USD,EUR,PLN,NOK,CZK").unwrap();
    assert_eq!(children(), Vec::<u32>::new(), "children before the test");

    // A whole run through the strategy.
    let report = Processes::new(worker.clone())
        .fetch(&bases, &config(&server, 4))
        .unwrap();
    assert!(report.all_succeeded());
    assert_eq!(children(), Vec::<u32>::new(), "after a run");

    // A pool dropped without a run: the scan does see its workers first,
    // and the fork server they were forked from (this program, run with no
    // arguments, is its own worker).
    let pool = ProcessPool::start(worker.clone(), &config(&server, 3), 3).unwrap();
    let server_pid = pool.fork_server_pid().expect("a fork server");
    let mut pids = pool.pids();
    assert_eq!(pids.len(), 3);
    assert!(!pids.contains(&server_pid), "{pids:?} {server_pid}");
    pids.push(server_pid);
    pids.sort_unstable();
    assert_eq!(
        children(),
        pids,
        "the pool's workers (forked) and its fork server are this process's children"
    );
    drop(pool);
    assert_eq!(children(), Vec::<u32>::new(), "after an early drop");

    // The same program with an argument is run for each worker: no fork
    // server.
    let exe = std::env::current_exe().unwrap();
    let run_each = WorkerCommand::new(&exe, ["as-a-worker"]);
    let pool = ProcessPool::start(run_each, &config(&server, 2), 2).unwrap();
    assert_eq!(pool.fork_server_pid(), None);
    let mut pids = pool.pids();
    pids.sort_unstable();
    assert_eq!(children(), pids, "workers run as programs of their own");
    assert!(pool.run(&bases).all_succeeded());
    drop(pool);
    assert_eq!(
        children(),
        Vec::<u32>::new(),
        "after a pool without a fork server"
    );

    // A pool dropped after a run, without shutdown.
    let pool = ProcessPool::start(worker.clone(), &config(&server, 2), 2).unwrap();
    assert!(pool.run(&bases).all_succeeded());
    drop(pool);
    assert_eq!(children(), Vec::<u32>::new(), "after a run and a drop");

    // Workers that crash on every request are each reaped and replaced.
    let crashing = WorkerCommand::new(
        "/bin/sh",
        [
            "-c",
            r#"read hello; echo '{"ready":{"protocol":3}}'; read req; exit 3"#,
        ],
    );
    let report = Processes::new(crashing)
        .fetch(&bases, &config(&server, 2).with_retries(1))
        .unwrap();
    assert!(report.outcomes.iter().all(|o| {
        o.result
            .as_ref()
            .is_err_and(|e| e.kind() == ErrorKind::WorkerCrash)
    }));
    assert_eq!(children(), Vec::<u32>::new(), "after crashing workers");

    // A start that fails half-way (the program does not exist).
    let missing = WorkerCommand::new("/nonexistent/rates-worker", [""; 0]);
    assert!(ProcessPool::start(missing, &config(&server, 2), 2).is_err());
    assert_eq!(children(), Vec::<u32>::new(), "after a failed start");
}
