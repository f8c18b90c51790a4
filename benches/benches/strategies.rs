//! Every registered strategy on every named scenario, side by side.
//!
//! One criterion group per scenario (`classic`, `fanout`, `scale`,
//! `throttled`, `overhead`, `gate`, `faulty`, `tls`, `huge`, `cancel`; see
//! `rates scenarios`), one benchmark
//! per strategy, named `SCENARIO/STRATEGY/BASES` so reports line strategies
//! up. The embedded server is started once per group, before any strategy
//! runs, and every strategy gets the same scenario, config and server.
//! Criterion warms up and measures each strategy in turn.
//!
//! What a figure measures: the wall time of one whole `Strategy::fetch` call
//! for all the scenario's bases, including the strategy's own start-up
//! (spawning threads, building a pool or runtime on first use, starting
//! child processes) and every retry. Compare it with the scenario's ideal,
//! printed before each group: `ceil(bases / in flight) x latency` (and at
//! least `bases / rate` under a rate limit).
//!
//! A strategy whose ideal on a scenario is over the scenario's budget (30 s;
//! say `sync` on `scale`) is skipped, with the reason printed, rather than
//! run. `huge` (100,000 bases) caps OS threads at 1,000 and has a 2 s
//! budget, so only the async strategies run it: about 10 s in all for
//! `-- --test`.
//!
//! `cancel` stops every run 1.5 s after it starts (here through the run's
//! deadline, which fires its stop handle); its figure is that time plus
//! the time the strategy takes to stop (`rates compare --scenario cancel`
//! reports the time to stop apart, and what was left alive).
//!
//! What it does not measure: CPU time and memory (the server shares this
//! process; use `rates fetch` against `rates serve` for a client's own
//! resources), nor the server's capacity (`wrk` on `rates serve` shows it is
//! far above what any scenario asks).
//!
//! Run one scenario: `cargo bench -p rates-benches -- classic` (only the
//! servers of the scenarios a filter selects are started).
//! Check they all run once, quickly: `cargo bench -p rates-benches -- --test`.
//! Criterion's HTML report, every scenario's strategies side by side, is left
//! in `target/criterion/report/index.html`.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use rates_core::Strategy;
use rates_report::Scenario;
use rates_server::RatesServer;

fn bench_scenario(c: &mut Criterion, scenario: &Scenario) {
    let server = match RatesServer::start(scenario.server_config()) {
        Ok(s) => s,
        Err(e) => panic!(
            "cannot start the embedded server for {}: {e}",
            scenario.name
        ),
    };
    let mut config = match scenario.client_config_for(&server) {
        Ok(c) => c,
        Err(e) => panic!("scenario {} has a bad config: {e}", scenario.name),
    };
    config.deadline = scenario.cancel_after;
    let bases = scenario.bases();
    let mut group = c.benchmark_group(scenario.name);
    group.throughput(Throughput::Elements(bases.len() as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(if bases.len() >= 10_000 {
        20
    } else {
        5
    }));
    // Read once, while the server runs in this process (two descriptors a
    // connection).
    let limits = rates_core::limits::MachineLimits::read();
    for strategy in rates_registry::strategies() {
        let plan = scenario.plan(strategy.as_ref(), &config, &limits);
        let ideal = scenario.ideal(strategy.as_ref(), &config, &limits);
        if let Some(why) = scenario.skip_reason(strategy.as_ref(), &config, &limits) {
            eprintln!("{}/{}: {why}", scenario.name, strategy.name());
            continue;
        }
        eprintln!(
            "{}/{}: ideal {:.3}s{}",
            scenario.name,
            strategy.name(),
            ideal.as_secs_f64(),
            plan.note
                .as_ref()
                .map(|why| format!(" (note: {why})"))
                .unwrap_or_default()
        );
        let id = BenchmarkId::new(strategy.name(), bases.len());
        group.bench_function(id, |b| {
            b.iter(|| run_once(strategy.as_ref(), &bases, &config));
        });
    }
    group.finish();
    drop(server);
}

/// One whole run; a run that cannot happen, or loses a base, stops the bench
/// loudly rather than timing a failure.
fn run_once(
    strategy: &dyn Strategy,
    bases: &[rates_core::CurrencyCode],
    config: &rates_core::Config,
) -> rates_core::Report {
    let report = strategy
        .fetch(bases, config)
        .unwrap_or_else(|e| panic!("{} could not run: {e}", strategy.name()));
    assert_eq!(
        report.outcomes.len(),
        bases.len(),
        "{} lost bases",
        strategy.name()
    );
    report
}

/// Criterion's positional filter, if one was given: every argument that is
/// not a flag or a flag's value.
fn filter_from_args() -> Option<String> {
    const TAKES_VALUE: &[&str] = &[
        "--save-baseline",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--measurement-time",
        "--warm-up-time",
        "--sample-size",
        "--profile-time",
        "--output-format",
        "--color",
        "--plotting-backend",
        "--format",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--nresamples",
        "-c",
        "-b",
        "-s",
    ];
    let mut args = std::env::args().skip(1);
    let mut filter = None;
    while let Some(arg) = args.next() {
        if arg.starts_with('-') {
            if TAKES_VALUE.contains(&arg.as_str()) {
                args.next();
            }
        } else {
            filter = Some(arg);
        }
    }
    filter
}

/// Whether any benchmark of `scenario` can match criterion's `filter`. Plain
/// filters are matched as substrings of `scenario/strategy/bases`, as
/// criterion does; a filter with regex syntax starts every scenario.
fn selected(scenario: &Scenario, filter: Option<&str>) -> bool {
    let Some(filter) = filter else { return true };
    if filter.contains(['^', '$', '*', '+', '?', '(', '[', '|', '\\', '.']) {
        return true;
    }
    rates_registry::names()
        .iter()
        .any(|s| format!("{}/{s}/{}", scenario.name, scenario.size).contains(filter))
}

fn main() -> std::process::ExitCode {
    // The `process` strategy starts this program again as its workers.
    if let Some(code) = rates_report::child_if_asked() {
        return code;
    }
    let filter = filter_from_args();
    let mut c = Criterion::default().configure_from_args();
    for scenario in rates_report::scenarios() {
        if selected(&scenario, filter.as_deref()) {
            bench_scenario(&mut c, &scenario);
        }
    }
    c.final_summary();
    std::process::ExitCode::SUCCESS
}
