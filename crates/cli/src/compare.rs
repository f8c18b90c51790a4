//! `rates compare`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use rates_core::Strategy;
use rates_server::RatesServer;
use serde_json::json;

#[derive(Debug, Args)]
pub(crate) struct CompareArgs {
    /// Scenario to run (see `rates scenarios`).
    #[arg(long, default_value = "classic")]
    scenario: String,
    /// Timed runs per strategy; the table shows their median.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    runs: u32,
    /// Untimed warm-up runs per strategy before timing starts.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=100))]
    warmup: u32,
    /// Only these strategies (comma-separated); default: all registered.
    #[arg(long)]
    strategies: Option<String>,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Default)]
struct Row {
    walls: Vec<Duration>,
    ok: usize,
    failed: usize,
    peak_in_flight: usize,
    /// Most requests the server saw in any one second, over the timed runs.
    busiest_second: usize,
    requests: u64,
    error: Option<String>,
    note: Option<String>,
}

pub(crate) fn run(a: &CompareArgs) -> Result<ExitCode> {
    let scenario = rates_registry::scenario(&a.scenario)?;
    let mut strategies: Vec<Box<dyn Strategy>> = rates_registry::strategies();
    if let Some(only) = &a.strategies {
        let wanted: Vec<&str> = only.split(',').map(str::trim).collect();
        for name in &wanted {
            rates_registry::find(name)?;
        }
        strategies.retain(|s| wanted.contains(&s.name()));
    }
    if strategies.is_empty() {
        bail!("no strategies to compare");
    }
    let server =
        RatesServer::start(scenario.server_config()).context("starting the embedded server")?;
    let mut config = scenario.client_config(&server.endpoint())?;
    config.worker = crate::fetch::self_worker();
    config.server_in_process = true;
    let bases = scenario.bases();
    eprintln!(
        "scenario {}: {}; {} strategies, {} warm-up + {} timed runs each",
        scenario.name,
        scenario.about,
        strategies.len(),
        a.warmup,
        a.runs
    );

    let mut rows: Vec<Row> = strategies
        .iter()
        .map(|s| match scenario.skip_reason(s.as_ref(), &config) {
            Some(why) => Row {
                error: Some(why),
                ..Row::default()
            },
            None => Row {
                note: s.limitation(bases.len(), &config),
                ..Row::default()
            },
        })
        .collect();
    let k = strategies.len();
    // Round r runs every strategy once, starting at strategy r mod k, so no
    // strategy always goes first (cold caches) or last (warm server).
    for round in 0..(a.warmup + a.runs) {
        let timed = round >= a.warmup;
        for i in 0..k {
            let idx = (i + round as usize) % k;
            let strategy = &strategies[idx];
            let row = &mut rows[idx];
            if row.error.is_some() {
                continue;
            }
            server.reset_stats();
            match strategy.fetch(&bases, &config) {
                Ok(report) => {
                    let stats = server.stats();
                    eprintln!(
                        "  {} {:<15} {:>8.3}s  {} ok, {} failed",
                        if timed {
                            format!("run {}/{}", round - a.warmup + 1, a.runs)
                        } else {
                            "warm-up".to_owned()
                        },
                        strategy.name(),
                        report.wall.as_secs_f64(),
                        report.successes().count(),
                        report.failures().count()
                    );
                    if timed {
                        row.walls.push(report.wall);
                        row.ok = report.successes().count();
                        row.failed = report.failures().count();
                        row.peak_in_flight = row.peak_in_flight.max(stats.peak_in_flight);
                        row.busiest_second = row
                            .busiest_second
                            .max(stats.max_in_window(Duration::from_secs(1)));
                        row.requests = stats.requests;
                        if row.note.is_none() {
                            row.note.clone_from(&report.note);
                        }
                    }
                }
                Err(e) => {
                    eprintln!("  {}: {e}", strategy.name());
                    row.error = Some(format!("did not run: {e}"));
                }
            }
        }
    }

    let medians: Vec<Option<Duration>> = rows.iter().map(|r| median(&r.walls)).collect();
    let fastest = medians.iter().flatten().min().copied();
    if a.json {
        let out: Vec<_> = strategies
            .iter()
            .zip(&rows)
            .zip(&medians)
            .map(|((s, r), m)| {
                let ideal = scenario.ideal(s.as_ref(), &config);
                json!({
                    "strategy": s.name(),
                    "scenario": scenario.name,
                    "bases": bases.len(),
                    "runs_s": r.walls.iter().map(Duration::as_secs_f64).collect::<Vec<_>>(),
                    "median_s": m.map(|d| d.as_secs_f64()),
                    "ideal_s": ideal.as_secs_f64(),
                    "ratio_to_ideal": m.map(|d| d.as_secs_f64() / ideal.as_secs_f64().max(1e-9)),
                    "ok": r.ok,
                    "failed": r.failed,
                    "requests_per_s": m.map(|d| bases.len() as f64 / d.as_secs_f64().max(1e-9)),
                    "requests_last_run": r.requests,
                    "peak_in_flight": r.peak_in_flight,
                    "busiest_second_at_server": r.busiest_second,
                    "error": r.error,
                    "note": r.note,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{:<15} {:>9} {:>9} {:>9} {:>9} {:>8} {:>9} {:>11} {:>6}",
            "strategy",
            "median",
            "min",
            "max",
            "ideal",
            "x ideal",
            "x fastest",
            "ok/failed",
            "peak"
        );
        for ((s, r), m) in strategies.iter().zip(&rows).zip(&medians) {
            let ideal = scenario.ideal(s.as_ref(), &config);
            match (m, &r.error) {
                (Some(m), None) => println!(
                    "{:<15} {:>8.3}s {:>8.3}s {:>8.3}s {:>8.3}s {:>8} {:>9.2} {:>9.0} {:>11} {:>6}",
                    s.name(),
                    m.as_secs_f64(),
                    r.walls.iter().min().unwrap_or(m).as_secs_f64(),
                    r.walls.iter().max().unwrap_or(m).as_secs_f64(),
                    ideal.as_secs_f64(),
                    if ideal.is_zero() {
                        "-".to_owned()
                    } else {
                        format!("{:.2}", m.as_secs_f64() / ideal.as_secs_f64())
                    },
                    fastest.map_or(f64::NAN, |f| m.as_secs_f64() / f.as_secs_f64().max(1e-9)),
                    bases.len() as f64 / m.as_secs_f64().max(1e-9),
                    format!("{}/{}", r.ok, r.failed),
                    r.peak_in_flight,
                ),
                (_, Some(e)) => println!("{:<15} {e}", s.name()),
                (None, None) => println!("{:<15} no timed runs", s.name()),
            }
            if let Some(limit) = scenario.rate_limit.filter(|_| r.error.is_none()) {
                println!(
                    "{:<15}   busiest second at the server: {} requests (limit {limit}/s)",
                    "", r.busiest_second
                );
            }
            if let Some(note) = &r.note {
                println!("{:<15}   note: {note}", "");
            }
        }
        println!();
        println!(
            "median/min/max: wall time of one whole run (start-up of threads, pools, runtimes \
             or child processes included) over {} timed runs after {} warm-up run(s), every \
             strategy against the same embedded server, in rotating order.",
            a.runs, a.warmup
        );
        println!(
            "ideal: ceil(bases / max in flight) x server latency (and >= bases / rate limit): \
             no strategy can beat it. peak: most requests in flight seen by the server. Not \
             measured here: CPU time and memory (see `cargo bench` and the report scripts)."
        );
    }
    // Skipped strategies are not failures; strategies that errored or lost
    // bases are.
    let all_ran = rows
        .iter()
        .all(|r| r.failed == 0 && r.error.as_ref().is_none_or(|e| e.starts_with("skipped")));
    Ok(if all_ran {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn median(walls: &[Duration]) -> Option<Duration> {
    let mut sorted = walls.to_vec();
    sorted.sort_unstable();
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[n / 2]),
        n => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        let ms = Duration::from_millis;
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[ms(3), ms(1), ms(2)]), Some(ms(2)));
        assert_eq!(
            median(&[ms(4), ms(1), ms(2), ms(3)]),
            Some(Duration::from_micros(2500))
        );
    }
}
