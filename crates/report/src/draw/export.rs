//! The exports, under hyperfine's names: JSON (the versioned schema), CSV
//! (one flat row per strategy) and Markdown.

use std::path::Path;

use anyhow::{Context as _, Result};
use rates_measure::{Export, StrategyResult};

/// The CSV columns, in order, and how each is read from a row.
type Column = (&'static str, fn(&StrategyResult) -> String);

fn f(v: Option<f64>) -> String {
    v.map(|x| format!("{x}")).unwrap_or_default()
}

fn u(v: Option<u64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

const COLUMNS: &[Column] = &[
    ("strategy", |r| r.strategy.clone()),
    ("median_s", |r| f(r.median_s)),
    ("min_s", |r| f(r.min_s)),
    ("max_s", |r| f(r.max_s)),
    ("mad_s", |r| f(r.mad_s)),
    ("ideal_s", |r| r.ideal_s.to_string()),
    ("ratio_to_ideal", |r| f(r.ratio_to_ideal)),
    ("cpu_user_s", |r| f(r.cpu_user_s)),
    ("cpu_sys_s", |r| f(r.cpu_sys_s)),
    ("cpu_per_request_us", |r| f(r.cpu_per_request_us)),
    ("peak_rss_bytes", |r| u(r.peak_rss_bytes)),
    ("parent_peak_rss_bytes", |r| u(r.parent_peak_rss_bytes)),
    ("peak_threads", |r| u(r.peak_threads)),
    ("peak_processes", |r| u(r.peak_processes)),
    ("voluntary_ctx_switches", |r| u(r.voluntary_ctx_switches)),
    (
        "involuntary_ctx_switches",
        |r| u(r.involuntary_ctx_switches),
    ),
    ("startup_s", |r| f(r.startup_s)),
    ("first_result_s", |r| f(r.first_result_s)),
    ("latency_p50_s", |r| f(r.latency_p50_s)),
    ("latency_p99_s", |r| f(r.latency_p99_s)),
    ("ok", |r| r.ok.to_string()),
    ("failed", |r| r.failed.to_string()),
    ("requests", |r| u(r.requests)),
    ("peak_in_flight", |r| u(r.peak_in_flight.map(|x| x as u64))),
    ("connections", |r| u(r.connections)),
    ("runs_s", |r| {
        r.runs_s
            .iter()
            .map(f64::to_string)
            .collect::<Vec<_>>()
            .join(";")
    }),
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

/// Writes the CSV export.
pub(crate) fn write_csv(export: &Export, path: &Path) -> Result<()> {
    let rows: Vec<(Vec<String>, &StrategyResult)> =
        export.results.iter().map(|r| (Vec::new(), r)).collect();
    write(path, &csv_rows(&rows, &[])?)
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
        export.schema == rates_measure::SCHEMA,
        "{} has schema {}, this rates reads schema {}: re-run the comparison that made it",
        path.display(),
        export.schema,
        rates_measure::SCHEMA
    );
    Ok(export)
}
