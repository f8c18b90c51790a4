//! `rates history`: every results run folder's exports, per scenario and
//! strategy, over time, as tables and SVG line charts. Runs from different
//! machines are never joined by one line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use comfy_table::Table;
use plotters::prelude::*;
use rates_measure::{Export, Machine};

use crate::gate::Metric;

/// What `rates history` is asked to do.
#[derive(Debug, Clone)]
pub struct HistoryOptions {
    /// The folder holding run folders (each with manifest.json and
    /// SCENARIO.json exports, as `rates compare --out` writes them).
    pub dir: PathBuf,
    /// What to follow: ratio (to the ideal), cpu (per request), memory
    /// (peak), wall (median).
    pub metric: String,
    /// Where the charts go (one SVG per scenario).
    pub out: PathBuf,
}

/// Per strategy, its points: (run index, machine identity, value).
type Lines = BTreeMap<String, Vec<(usize, String, f64)>>;

/// One run folder's figures.
#[derive(Debug)]
struct Run {
    folder: String,
    machine: Machine,
    exports: Vec<Export>,
}

fn read_runs(dir: &Path) -> Result<(Vec<Run>, Vec<String>)> {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}: give the results folder", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    let mut runs = Vec::new();
    let mut skipped = Vec::new();
    for folder in folders {
        let name = folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Ok(text) = std::fs::read_to_string(folder.join("manifest.json")) else {
            skipped.push(format!("{name}: no manifest.json"));
            continue;
        };
        let manifest: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: manifest.json is not JSON", folder.display()))?;
        // A results run nests the machine; a baseline folder's manifest is one.
        let machine: Machine =
            serde_json::from_value(manifest.get("machine").cloned().unwrap_or(manifest))
                .with_context(|| format!("{}: manifest.json has no machine", folder.display()))?;
        let mut exports = Vec::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .filter(|p| p.file_name().is_some_and(|n| n != "manifest.json"))
            .collect();
        files.sort();
        for file in files {
            if let Ok(e) = crate::draw::export::read_json(&file) {
                exports.push(e);
            }
        }
        if exports.is_empty() {
            skipped.push(format!(
                "{name}: no schema-{} exports",
                rates_measure::SCHEMA
            ));
            continue;
        }
        runs.push(Run {
            folder: name,
            machine,
            exports,
        });
    }
    runs.sort_by(|a, b| a.machine.date.cmp(&b.machine.date));
    Ok((runs, skipped))
}

/// Runs `rates history` with `a`: reads the run folders, prints one line per
/// strategy across them and writes the chart. Exit 0.
pub fn run(a: &HistoryOptions) -> Result<ExitCode> {
    let metric = match a.metric.as_str() {
        "ratio" => Metric::Ratio,
        "cpu" => Metric::Cpu,
        "memory" => Metric::Memory,
        "wall" => Metric::Wall,
        other => bail!("unknown --metric `{other}`: choose ratio, cpu, memory or wall"),
    };
    let (runs, skipped) = read_runs(&a.dir)?;
    for s in &skipped {
        eprintln!("skipped {s}");
    }
    if runs.is_empty() {
        bail!(
            "no run folders with exports under {}: make one with `rates compare --out DIR`",
            a.dir.display()
        );
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    // scenario -> strategy -> [(run index, machine, value)]
    let mut series: BTreeMap<String, Lines> = BTreeMap::new();
    for (i, run) in runs.iter().enumerate() {
        for e in &run.exports {
            for r in &e.results {
                if let Some((v, _)) = metric.of(r) {
                    series
                        .entry(e.scenario.name.clone())
                        .or_default()
                        .entry(r.strategy.clone())
                        .or_default()
                        .push((i, run.machine.identity(), v));
                }
            }
        }
    }
    if series.is_empty() {
        bail!("no run has the `{}` figure", metric.name());
    }
    for (scenario, strategies) in &series {
        let used: Vec<usize> = {
            let mut u: Vec<usize> = strategies.values().flatten().map(|p| p.0).collect();
            u.sort_unstable();
            u.dedup();
            u
        };
        let mut t = Table::new();
        t.load_preset(comfy_table::presets::NOTHING)
            .set_style(comfy_table::TableComponent::HeaderLines, '-');
        let mut header = vec!["strategy".to_owned()];
        header.extend(used.iter().map(|&i| {
            format!(
                "{}\n{}",
                runs[i]
                    .machine
                    .date
                    .get(..16)
                    .unwrap_or(&runs[i].machine.date),
                runs[i].machine.commit
            )
        }));
        t.set_header(header);
        for (strategy, points) in strategies {
            let mut row = vec![strategy.clone()];
            for &i in &used {
                row.push(
                    points
                        .iter()
                        .find(|p| p.0 == i)
                        .map_or_else(|| "-".to_owned(), |p| show(metric, p.2)),
                );
            }
            t.add_row(row);
        }
        println!("{scenario}: {} per run\n{t}\n", metric.name());
        let path = a.out.join(format!("{scenario}-{}.svg", metric.name()));
        chart(&path, scenario, metric, &runs, strategies)
            .with_context(|| format!("drawing {}", path.display()))?;
        println!("chart: {}\n", path.display());
    }
    let machines: Vec<String> = {
        let mut m: Vec<String> = runs.iter().map(|r| r.machine.identity()).collect();
        m.dedup();
        m
    };
    println!(
        "{} runs ({}) on {} machine(s): {}",
        runs.len(),
        runs.iter()
            .map(|r| r.folder.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        machines.len(),
        machines.join("; ")
    );
    Ok(ExitCode::SUCCESS)
}

fn show(metric: Metric, v: f64) -> String {
    use crate::draw::fmt::{bytes, micros, ratio, secs};
    match metric {
        Metric::Ratio => ratio(v),
        Metric::Cpu => micros(v),
        Metric::Memory => bytes(v as u64),
        Metric::Wall => secs(v),
    }
}

fn chart(
    path: &Path,
    scenario: &str,
    metric: Metric,
    runs: &[Run],
    strategies: &Lines,
) -> Result<()> {
    use crate::draw::canvas::{self, Axis, color_of, err};
    let root = canvas::canvas(path, (960, 560))?;
    let (scale, unit) = match metric {
        Metric::Ratio => (1.0, "x ideal"),
        Metric::Cpu => (1.0, "us CPU per request"),
        Metric::Memory => (1.0 / f64::from(1 << 20), "MiB peak"),
        Metric::Wall => (1.0, "seconds (median)"),
    };
    let top = strategies
        .values()
        .flatten()
        .map(|p| p.2 * scale)
        .fold(0.0_f64, f64::max)
        * 1.15;
    let n = runs.len().max(2);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{scenario}: {} over runs (one line per strategy and machine)",
                metric.name()
            ),
            ("sans-serif", 20),
        )
        .margin(14)
        .x_label_area_size(60)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.3..(n as f64 - 0.7), 0.0..top.max(1e-9))
        .map_err(err)?;
    let date = |x: f64| {
        let i = x.round() as usize;
        if (x - x.round()).abs() < 0.01 && i < runs.len() {
            runs[i]
                .machine
                .date
                .get(..10)
                .unwrap_or_default()
                .to_owned()
        } else {
            String::new()
        }
    };
    let value = |v: f64| crate::draw::fmt::sig3(v);
    canvas::axes(
        &mut chart,
        &Axis {
            desc: "run (date)",
            log: false,
            labels: n.min(12),
            show: &date,
        },
        Some(&Axis {
            desc: unit,
            log: false,
            labels: 8,
            show: &value,
        }),
    )?;
    for (strategy, points) in strategies {
        let color = color_of(strategy);
        let mut by_machine: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
        for (i, m, v) in points {
            by_machine
                .entry(m)
                .or_default()
                .push((*i as f64, v * scale));
        }
        for (j, (_, pts)) in by_machine.iter().enumerate() {
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(err)?;
            let s = chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                .map_err(err)?;
            if j == 0 {
                s.label(strategy.clone()).legend(canvas::line_mark(color));
            }
        }
    }
    canvas::legend(&mut chart)?;
    canvas::finish(&root)
}
