//! Every registered strategy on every named scenario, side by side.
//!
//! One criterion group per scenario (`classic`, `fanout`, `scale`,
//! `throttled`, `overhead`, `gate`, `faulty`, `tls`, `huge`, `cancel`; see
//! `rates scenarios`), one benchmark
//! per strategy, named `SCENARIO/STRATEGY/BASES` so reports line strategies
//! up. Strategies that hold one request at a time (`sync`) are in a group
//! of their own, `SCENARIO-one-at-a-time`, so that their seconds do not set
//! the scale of the others' milliseconds in criterion's plots. After each
//! scenario the harness prints a summary read from criterion's own
//! estimates (its interval, the ratio to the ideal, the fastest, what was
//! skipped) and writes it to `target/criterion/SCENARIO/summary.md`. The embedded server is started once per group, before any strategy
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
use rates_benches::{GroupSummary, Row};
use rates_core::Strategy;
use rates_report::Scenario;
use rates_server::RatesServer;

/// The strategies of one criterion group, each with its ideal.
type Members<'a> = Vec<(&'a dyn Strategy, Duration)>;

fn bench_scenario(c: &mut Criterion, home: &std::path::Path, test_mode: bool, scenario: &Scenario) {
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
    let started = std::time::SystemTime::now();
    let mut summary = GroupSummary {
        scenario: scenario.name.to_string(),
        bases: bases.len(),
        test_mode,
        ..GroupSummary::default()
    };
    // Read once, while the server runs in this process (two descriptors a
    // connection).
    let limits = rates_core::limits::MachineLimits::read();
    // Strategies that hold one request at a time take many times the others'
    // time wherever latency dominates (sync on fanout: 10 s against 0.2 s);
    // on one plot's linear axis the others would be slivers at its left
    // edge. So they get a group of their own, `SCENARIO-one-at-a-time`, and
    // every other strategy shares the scenario's group and its scale.
    let serial_group = format!("{}-one-at-a-time", scenario.name);
    let mut groups: [(String, Members<'_>); 2] = [
        (scenario.name.to_string(), Vec::new()),
        (serial_group, Vec::new()),
    ];
    let strategies = rates_registry::strategies();
    for strategy in &strategies {
        let strategy = strategy.as_ref();
        let plan = scenario.plan(strategy, &config, &limits);
        let ideal = scenario.ideal(strategy, &config, &limits);
        if let Some(why) = scenario.skip_reason(strategy, &config, &limits) {
            eprintln!("{}/{}: {why}", scenario.name, strategy.name());
            summary.skipped.push((strategy.name().to_string(), why));
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
        let serial = matches!(strategy.shape(), rates_core::plan::Shape::OneAtATime);
        groups[usize::from(serial)].1.push((strategy, ideal));
    }
    for (name, members) in &groups {
        if members.is_empty() {
            continue;
        }
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(bases.len() as u64));
        group.sample_size(10);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(if bases.len() >= 10_000 {
            20
        } else {
            5
        }));
        for &(strategy, _) in members {
            let id = BenchmarkId::new(strategy.name(), bases.len());
            group.bench_function(id, |b| {
                b.iter(|| run_once(strategy, &bases, &config));
            });
        }
        group.finish();
    }
    drop(server);
    // Back in the registry's order, whichever group measured them.
    for strategy in &strategies {
        let Some((group, ideal)) = groups.iter().find_map(|(g, m)| {
            m.iter()
                .find(|(s, _)| s.name() == strategy.name())
                .map(|&(_, ideal)| (g, ideal))
        }) else {
            continue;
        };
        let name = strategy.name();
        match rates_benches::read_measured(home, group, name, &bases.len().to_string(), started) {
            Ok(Some(measured)) => summary.rows.push(Row {
                strategy: name.to_string(),
                measured,
                ideal: (!ideal.is_zero()).then_some(ideal),
            }),
            Ok(None) => summary.unmeasured.push(name.to_string()),
            Err(e) => eprintln!("{}/{name}: {e}", scenario.name),
        }
    }
    write_summary(home, &summary);
}

/// Prints `summary` and writes it as `<home>/<scenario>/summary.md`, beside
/// criterion's report of the group.
fn write_summary(home: &std::path::Path, summary: &GroupSummary) {
    print!("{}", summary.render(false));
    if summary.rows.is_empty() {
        return;
    }
    let path = home.join(&summary.scenario).join("summary.md");
    match std::fs::write(&path, summary.render(true)) {
        Ok(()) => println!("summary written to {}", path.display()),
        Err(e) => eprintln!("cannot write {}: {e}", path.display()),
    }
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
    let home = rates_benches::criterion_home();
    let test_mode = std::env::args().any(|a| a == "--test");
    let mut c = Criterion::default()
        .output_directory(&home)
        .configure_from_args();
    for scenario in rates_report::scenarios() {
        if selected(&scenario, filter.as_deref()) {
            bench_scenario(&mut c, &home, test_mode, &scenario);
        }
    }
    c.final_summary();
    std::process::ExitCode::SUCCESS
}
