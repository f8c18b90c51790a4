//! The exports, under hyperfine's names: JSON (the versioned schema), CSV
//! (one tidy row per scenario and strategy) and Markdown.

use std::path::Path;

use anyhow::{Context as _, Result};
use rates_measure::{Export, StrategyResult};

/// The CSV columns, in order, and how each is read from a row.
type Column = (&'static str, fn(&StrategyResult) -> String);

/// Seconds, to the microsecond (what the clocks resolve).
fn s6(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.6}")).unwrap_or_default()
}

/// Microseconds, to a tenth.
fn us1(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.1}")).unwrap_or_default()
}

/// A ratio, to three decimals.
fn r3(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.3}")).unwrap_or_default()
}

fn u(v: Option<u64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// The columns: the JSON export's scalar fields, rounded to what the
/// measurement resolves, the spreads beside their figures, and `mem own`
/// as the tables name it (`own_peak_rss_bytes`; the JSON's
/// `parent_peak_rss_bytes`). Each run's time is in the JSON export
/// (`runs_s`); here `runs` counts them.
const COLUMNS: &[Column] = &[
    ("strategy", |r| r.strategy.clone()),
    ("median_s", |r| s6(r.median_s)),
    ("min_s", |r| s6(r.min_s)),
    ("max_s", |r| s6(r.max_s)),
    ("mad_s", |r| s6(r.mad_s)),
    ("ideal_s", |r| s6(Some(r.ideal_s))),
    ("ratio_to_ideal", |r| r3(r.ratio_to_ideal)),
    ("cpu_user_s", |r| s6(r.cpu_user_s)),
    ("cpu_sys_s", |r| s6(r.cpu_sys_s)),
    ("cpu_per_request_us", |r| us1(r.cpu_per_request_us)),
    ("cpu_per_request_mad_us", |r| us1(r.cpu_per_request_mad_us)),
    ("syscalls_per_request", |r| r3(r.syscalls_per_request)),
    ("syscalls_per_request_mad", |r| {
        r3(r.syscalls_per_request_mad)
    }),
    ("peak_rss_bytes", |r| u(r.peak_rss_bytes)),
    ("peak_rss_mad_bytes", |r| u(r.peak_rss_mad_bytes)),
    ("own_peak_rss_bytes", |r| u(r.parent_peak_rss_bytes)),
    ("peak_threads", |r| u(r.peak_threads)),
    ("peak_processes", |r| u(r.peak_processes)),
    ("voluntary_ctx_switches", |r| u(r.voluntary_ctx_switches)),
    (
        "involuntary_ctx_switches",
        |r| u(r.involuntary_ctx_switches),
    ),
    ("startup_s", |r| s6(r.startup_s)),
    ("first_result_s", |r| s6(r.first_result_s)),
    ("latency_p50_s", |r| s6(r.latency_p50_s)),
    ("latency_p99_s", |r| s6(r.latency_p99_s)),
    ("ok", |r| r.ok.to_string()),
    ("failed", |r| r.failed.to_string()),
    ("requests", |r| u(r.requests)),
    ("peak_in_flight", |r| u(r.peak_in_flight.map(|x| x as u64))),
    ("connections", |r| u(r.connections)),
    ("runs", |r| r.runs_s.len().to_string()),
    ("skipped", |r| r.skipped.clone().unwrap_or_default()),
    ("error", |r| r.error.clone().unwrap_or_default()),
    ("note", |r| r.note.clone().unwrap_or_default()),
];

/// The CSV header and one row per strategy; `extra` columns (a sweep's
/// varied knob, say) come first.
pub(crate) fn csv_rows(rows: &[(Vec<String>, &StrategyResult)], extra: &[&str]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let header: Vec<&str> = extra
        .iter()
        .copied()
        .chain(COLUMNS.iter().map(|c| c.0))
        .collect();
    w.write_record(&header)?;
    for (lead, r) in rows {
        let record: Vec<String> = lead
            .iter()
            .cloned()
            .chain(COLUMNS.iter().map(|c| (c.1)(r)))
            .collect();
        w.write_record(&record)?;
    }
    w.into_inner().context("finishing the CSV")
}

/// Writes the JSON export.
pub(crate) fn write_json(export: &Export, path: &Path) -> Result<()> {
    let json = serde_json::to_string_pretty(export)?;
    write(path, json.as_bytes())
}

/// Writes the CSV export: one row per strategy, each with its scenario
/// and the date the comparison started, so that files concatenate.
pub(crate) fn write_csv(export: &Export, path: &Path) -> Result<()> {
    let rows: Vec<(Vec<String>, &StrategyResult)> = export
        .results
        .iter()
        .map(|r| {
            (
                vec![export.scenario.name.clone(), export.machine.date.clone()],
                r,
            )
        })
        .collect();
    write(path, &csv_rows(&rows, &["scenario", "date"])?)
}

/// Writes the Markdown export.
pub(crate) fn write_markdown(export: &Export, path: &Path) -> Result<()> {
    write(path, super::table::markdown(export).as_bytes())
}

/// Writes `bytes` to `path`, naming the path on failure.
pub(crate) fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Reads a JSON export, checking its schema.
pub(crate) fn read_json(path: &Path) -> Result<Export> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let export: Export = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a `rates compare --export-json` file of schema {}",
            path.display(),
            rates_measure::SCHEMA
        )
    })?;
    anyhow::ensure!(
        (rates_measure::MIN_SCHEMA..=rates_measure::SCHEMA).contains(&export.schema),
        "{} has schema {}, this rates reads schemas {} to {}: re-run the comparison that \
         made it",
        path.display(),
        export.schema,
        rates_measure::MIN_SCHEMA,
        rates_measure::SCHEMA
    );
    Ok(export)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_are_rounded_and_tidy() {
        let r = StrategyResult {
            strategy: "tokio".into(),
            median_s: Some(0.037_254_658_000_000_16),
            ratio_to_ideal: Some(1.047_123_9),
            cpu_per_request_us: Some(24.137_4),
            cpu_per_request_mad_us: Some(0.512),
            parent_peak_rss_bytes: Some(6_000_000),
            runs_s: vec![0.037, 0.038, 0.036],
            ..StrategyResult::default()
        };
        let csv = String::from_utf8(
            csv_rows(
                &[(vec!["fanout".into(), "2026-12-07T03:46:57Z".into()], &r)],
                &["scenario", "date"],
            )
            .unwrap(),
        )
        .unwrap();
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let row: Vec<&str> = lines.next().unwrap().split(',').collect();
        let cell = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
        assert_eq!(&header[..3], ["scenario", "date", "strategy"]);
        assert_eq!(cell("scenario"), "fanout");
        assert_eq!(cell("median_s"), "0.037255");
        assert_eq!(cell("ratio_to_ideal"), "1.047");
        assert_eq!(cell("cpu_per_request_us"), "24.1");
        assert_eq!(cell("cpu_per_request_mad_us"), "0.5");
        assert_eq!(cell("own_peak_rss_bytes"), "6000000");
        assert_eq!(cell("runs"), "3");
        assert!(!header.contains(&"runs_s"), "{header:?}");
    }
}
