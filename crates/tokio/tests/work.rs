//! CPU work per item on an executor stalls the tasks behind it. This is the
//! point of the `--work` knob, so it is checked here by a lower bound that
//! holds by construction (a request answered while its worker computes
//! waits for that work), never by comparing two timings: how much the
//! blocking pool gains is measured in results/ (the `cpu` scenario), not
//! asserted on a shared machine.

use std::time::Duration;

use rates_core::{Config, Progress, Strategy, Work};
use rates_server::{RatesServer, ServerConfig};
use rates_tokio::{Tokio, TokioBlocking};

/// The p99 latency of one request (send to recorded answer) when every
/// item needs `work` of CPU and `4 x cores` requests run at once.
fn p99_with_work(strategy: &dyn Strategy, server: &RatesServer, work: Duration) -> Duration {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let n = 4 * cores;
    let progress = Progress::default();
    let mut config = Config::new(&server.endpoint())
        .unwrap()
        .with_concurrency(n)
        .with_work(Some(Work::calibrated(work)));
    config.progress = Some(progress.clone());
    let bases = rates_core::generated_codes(n);
    let report = strategy.fetch(&bases, &config).unwrap();
    assert!(report.all_succeeded());
    assert_eq!(progress.worked(), n);
    progress.latency_quantile(0.99).unwrap()
}

#[test]
fn work_on_the_executor_delays_other_tasks() {
    let server = RatesServer::start(ServerConfig::default()).unwrap();
    let work = Duration::from_millis(40);
    let on_executor = p99_with_work(&Tokio::new(), &server, work);
    // The same run in the blocking pool completes with the work done once
    // per item (checked inside); its latency is reported, not compared.
    let in_blocking_pool = p99_with_work(&TokioBlocking::new(), &server, work);
    eprintln!("p99: tokio {on_executor:?}, tokio-blocking {in_blocking_pool:?}");
    // tokio runs one worker per core; with 4 tasks per worker, answers that
    // arrive while a worker computes wait for it: some request waits for at
    // least two others' work.
    assert!(
        on_executor >= work * 2,
        "tokio: p99 {on_executor:?} with {work:?} of work per item"
    );
}
