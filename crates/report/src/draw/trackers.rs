//! The figures of a comparison in the formats of the trackers people keep
//! benchmark history in: Bencher's Metric Format (BMF, bencher.dev,
//! `bencher run --adapter json`) and github-action-benchmark's
//! `customSmallerIsBetter` JSON. Every figure here is smaller-is-better.
//!
//! Each benchmark is named `SCENARIO/STRATEGY`. What is written, per
//! strategy that ran:
//!
//! | figure | BMF measure | unit | bounds (BMF `lower_value`/`upper_value`, benchmark-action `range`) |
//! |---|---|---|---|
//! | median wall time | `latency` (Bencher's own) | ns | fastest and slowest run |
//! | CPU per request | `cpu-per-request` | µs | ± the runs' MAD |
//! | peak memory of the tree | `peak-memory` | bytes | ± the runs' MAD |
//! | syscalls per request | `syscalls-per-request` | | ± the runs' MAD |
//! | voluntary context switches | `context-switches` | per run | |
//!
//! A paired comparison writes B's median of each figure, and the median
//! ratio B/A with its 95% interval as `FIGURE-ratio` (BMF) or
//! `FIGURE B/A` (benchmark-action).

use std::path::Path;

use anyhow::Result;
use rates_measure::paired::{Figure, PairedExport};
use rates_measure::{Export, StrategyResult};
use serde_json::{Map, Value, json};

/// One figure of one benchmark: its name for each format, unit, value and
/// bounds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Metric {
    /// `SCENARIO/STRATEGY`.
    pub(crate) benchmark: String,
    /// The BMF measure's slug.
    pub(crate) measure: String,
    /// The figure as benchmark-action names it (after the benchmark).
    pub(crate) label: String,
    pub(crate) unit: &'static str,
    pub(crate) value: f64,
    /// Lower and upper bounds, where the figure has them.
    pub(crate) bounds: Option<(f64, f64)>,
    /// What the bounds are, for benchmark-action's `extra`.
    pub(crate) about: String,
}

/// The metrics of plain comparisons' exports.
pub(crate) fn of_exports(exports: &[Export]) -> Vec<Metric> {
    exports
        .iter()
        .flat_map(|e| {
            e.results
                .iter()
                .filter(|r| r.ran())
                .flat_map(move |r| of_result(&e.scenario.name, e.runs, r))
        })
        .collect()
}

fn of_result(scenario: &str, runs: u32, r: &StrategyResult) -> Vec<Metric> {
    let benchmark = format!("{scenario}/{}", r.strategy);
    let runs_text = format!("median of {runs} runs");
    let spread = |v: f64, mad: Option<f64>| mad.map(|m| ((v - m).max(0.0), v + m));
    let mut out = Vec::new();
    let mut push = |measure: &str,
                    label: &str,
                    unit: &'static str,
                    value: Option<f64>,
                    bounds: Option<(f64, f64)>,
                    about: String| {
        if let Some(value) = value {
            out.push(Metric {
                benchmark: benchmark.clone(),
                measure: measure.to_owned(),
                label: label.to_owned(),
                unit,
                value,
                bounds,
                about,
            });
        }
    };
    push(
        "latency",
        "wall time",
        "ns",
        r.median_s.map(|s| s * 1e9),
        r.min_s.zip(r.max_s).map(|(lo, hi)| (lo * 1e9, hi * 1e9)),
        format!("{runs_text}; bounds: fastest and slowest run"),
    );
    let cpu = r.cpu_per_request_us;
    push(
        "cpu-per-request",
        "CPU per request",
        "us",
        cpu,
        cpu.and_then(|v| spread(v, r.cpu_per_request_mad_us)),
        format!("{runs_text}, whole process tree; bounds: +/- the runs' MAD"),
    );
    let memory = r.peak_rss_bytes.map(|b| b as f64);
    push(
        "peak-memory",
        "peak memory",
        "bytes",
        memory,
        memory.and_then(|v| spread(v, r.peak_rss_mad_bytes.map(|m| m as f64))),
        format!("{runs_text}, RSS summed over the process tree; bounds: +/- the runs' MAD"),
    );
    let syscalls = r.syscalls_per_request;
    push(
        "syscalls-per-request",
        "syscalls per request",
        "syscalls",
        syscalls,
        syscalls.and_then(|v| spread(v, r.syscalls_per_request_mad)),
        format!("{runs_text}, counted by the kernel; bounds: +/- the runs' MAD"),
    );
    push(
        "context-switches",
        "voluntary context switches",
        "switches",
        r.voluntary_ctx_switches.map(|c| c as f64),
        None,
        format!("{runs_text}, per run, whole process tree"),
    );
    out
}

/// The metrics of paired comparisons: B's medians, and each figure's
/// ratio B/A with its interval.
pub(crate) fn of_paired(exports: &[PairedExport]) -> Vec<Metric> {
    let mut out = Vec::new();
    for e in exports {
        for s in &e.strategies {
            let benchmark = format!("{}/{}", e.scenario.name, s.strategy);
            for c in &s.changes {
                let (measure, unit, scale) = match c.figure {
                    Figure::Wall => ("latency", "ns", 1e9),
                    Figure::Cpu => ("cpu-per-request", "us", 1.0),
                    Figure::Memory => ("peak-memory", "bytes", 1.0),
                    Figure::CtxVoluntary => ("context-switches", "switches", 1.0),
                    Figure::CtxInvoluntary => ("involuntary-context-switches", "switches", 1.0),
                    Figure::Syscalls => ("syscalls-per-request", "syscalls", 1.0),
                };
                let about = format!("{} pairs of A and B", c.pairs);
                if let Some(b) = c.b {
                    out.push(Metric {
                        benchmark: benchmark.clone(),
                        measure: measure.to_owned(),
                        label: c.figure.name().to_owned(),
                        unit,
                        value: b * scale,
                        bounds: None,
                        about: format!("B's median over {about}"),
                    });
                }
                if let Some(ratio) = c.ratio {
                    out.push(Metric {
                        benchmark: benchmark.clone(),
                        measure: format!("{}-ratio", c.figure.name()),
                        label: format!("{} B/A", c.figure.name()),
                        unit: "ratio",
                        value: ratio,
                        bounds: c.low.zip(c.high),
                        about: format!("median ratio over {about}; bounds: its 95% interval"),
                    });
                }
            }
        }
    }
    out
}

/// Bencher Metric Format: `{benchmark: {measure: {value, lower_value,
/// upper_value}}}`.
pub(crate) fn bencher(metrics: &[Metric]) -> Value {
    let mut doc = Map::new();
    for m in metrics {
        let mut metric = Map::new();
        metric.insert("value".to_owned(), json!(m.value));
        if let Some((lo, hi)) = m.bounds {
            metric.insert("lower_value".to_owned(), json!(lo));
            metric.insert("upper_value".to_owned(), json!(hi));
        }
        let benchmark = doc
            .entry(m.benchmark.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(measures) = benchmark {
            measures.insert(m.measure.clone(), Value::Object(metric));
        }
    }
    Value::Object(doc)
}

/// github-action-benchmark's `customSmallerIsBetter`: `[{name, unit,
/// value, range, extra}]`.
pub(crate) fn benchmark_action(metrics: &[Metric]) -> Value {
    Value::Array(
        metrics
            .iter()
            .map(|m| {
                let mut entry = json!({
                    "name": format!("{} {}", m.benchmark, m.label),
                    "unit": m.unit,
                    "value": m.value,
                    "extra": m.about,
                });
                if let Some((lo, hi)) = m.bounds {
                    entry["range"] = json!(format!("{lo:.6}..{hi:.6}"));
                }
                entry
            })
            .collect(),
    )
}

/// Writes the tracker files asked for.
pub(crate) fn write(
    metrics: &[Metric],
    bencher_file: Option<&Path>,
    action_file: Option<&Path>,
) -> Result<()> {
    if let Some(p) = bencher_file {
        super::export::write(
            p,
            serde_json::to_string_pretty(&bencher(metrics))?.as_bytes(),
        )?;
    }
    if let Some(p) = action_file {
        super::export::write(
            p,
            serde_json::to_string_pretty(&benchmark_action(metrics))?.as_bytes(),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks `doc` against BMF's JSON schema (bencher.dev/bmf.json: an
    /// object of benchmarks, each an object of measures, each an object with
    /// a number `value` and optional number `lower_value`, `upper_value`,
    /// nothing else required), naming the first violation.
    pub(crate) fn valid_bmf(doc: &Value) -> Result<(), String> {
        let benchmarks = doc.as_object().ok_or("not an object")?;
        for (name, measures) in benchmarks {
            let measures = measures
                .as_object()
                .ok_or(format!("{name}: not an object"))?;
            for (slug, metric) in measures {
                let metric = metric
                    .as_object()
                    .ok_or(format!("{name}/{slug}: not an object"))?;
                if !metric.get("value").is_some_and(Value::is_number) {
                    return Err(format!("{name}/{slug}: no number `value`"));
                }
                for bound in ["lower_value", "upper_value"] {
                    if metric.get(bound).is_some_and(|v| !v.is_number()) {
                        return Err(format!("{name}/{slug}: `{bound}` is not a number"));
                    }
                }
                if slug.len() > 64 {
                    return Err(format!("{slug}: a measure slug is at most 64 characters"));
                }
            }
        }
        Ok(())
    }

    /// Checks `doc` against github-action-benchmark's custom tool format:
    /// an array of objects with a string `name` and `unit` and a number
    /// `value`; `range` and `extra`, where given, strings.
    pub(crate) fn valid_benchmark_action(doc: &Value) -> Result<(), String> {
        for (i, e) in doc.as_array().ok_or("not an array")?.iter().enumerate() {
            for key in ["name", "unit"] {
                if !e.get(key).is_some_and(Value::is_string) {
                    return Err(format!("entry {i}: no string `{key}`"));
                }
            }
            if !e.get("value").is_some_and(Value::is_number) {
                return Err(format!("entry {i}: no number `value`"));
            }
            for key in ["range", "extra"] {
                if e.get(key).is_some_and(|v| !v.is_string()) {
                    return Err(format!("entry {i}: `{key}` is not a string"));
                }
            }
        }
        Ok(())
    }

    fn export() -> Export {
        let mut r = StrategyResult {
            strategy: "tokio".into(),
            median_s: Some(0.2),
            min_s: Some(0.19),
            max_s: Some(0.25),
            cpu_per_request_us: Some(10.0),
            cpu_per_request_mad_us: Some(0.5),
            peak_rss_bytes: Some(7 << 20),
            peak_rss_mad_bytes: Some(1 << 10),
            syscalls_per_request: Some(2.4),
            voluntary_ctx_switches: Some(80),
            ..StrategyResult::default()
        };
        r.runs_s = vec![0.19, 0.2, 0.25];
        let skipped = StrategyResult::skipped("sync", 0.0, "too slow".into());
        let mut e = Export {
            runs: 3,
            results: vec![r, skipped],
            ..Export::default()
        };
        e.scenario.name = "gate".into();
        e
    }

    #[test]
    fn a_comparison_reads_as_bmf_and_as_benchmark_action() {
        let metrics = of_exports(&[export()]);
        let bmf = bencher(&metrics);
        valid_bmf(&bmf).unwrap();
        assert_eq!(
            bmf.as_object().unwrap().len(),
            1,
            "the skipped row is left out"
        );
        let tokio = &bmf["gate/tokio"];
        assert_eq!(tokio["latency"]["value"], json!(0.2e9));
        assert_eq!(tokio["latency"]["lower_value"], json!(0.19e9));
        assert_eq!(tokio["cpu-per-request"]["upper_value"], json!(10.5));
        assert_eq!(tokio["syscalls-per-request"]["value"], json!(2.4));
        assert!(tokio["context-switches"].get("lower_value").is_none());
        let action = benchmark_action(&metrics);
        valid_benchmark_action(&action).unwrap();
        let names: Vec<&str> = action
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "gate/tokio wall time",
                "gate/tokio CPU per request",
                "gate/tokio peak memory",
                "gate/tokio syscalls per request",
                "gate/tokio voluntary context switches"
            ]
        );
        assert_eq!(action[1]["range"], "9.500000..10.500000");
    }

    #[test]
    fn the_validators_refuse_what_the_formats_do_not_allow() {
        assert!(valid_bmf(&json!({"b": {"m": {"value": "1"}}})).is_err());
        assert!(valid_bmf(&json!({"b": {"m": {"lower_value": 1}}})).is_err());
        assert!(valid_bmf(&json!([])).is_err());
        assert!(valid_benchmark_action(&json!([{"name": "x", "value": 1}])).is_err());
        assert!(
            valid_benchmark_action(&json!([{"name": "x", "unit": "s", "value": 1, "range": 2}]))
                .is_err()
        );
        assert!(valid_benchmark_action(&json!({"name": "x"})).is_err());
    }
}
