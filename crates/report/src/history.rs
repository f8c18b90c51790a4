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
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct HistoryOptions {
    /// The folder holding run folders (each with manifest.json and
    /// SCENARIO.json exports, as `rates compare --out` writes them).
    pub dir: PathBuf,
    /// What to follow: ratio (to the ideal), cpu (per request), memory
    /// (peak), wall (median).
    #[cfg_attr(feature = "cli", arg(long, default_value = "ratio"))]
    pub metric: String,
    /// Where the charts go (one SVG per scenario); default: a `history`
    /// folder inside DIR (which is then not read as a run).
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: Option<PathBuf>,
}

impl HistoryOptions {
    /// Where the charts go.
    pub fn out_dir(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(|| self.dir.join("history"))
    }
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

/// The run folders under `dir` (not `out`), oldest first, and the folders
/// that are not runs (no manifest, no exports, or a copy of another run such
/// as `baseline/`), each with why.
fn read_runs(dir: &Path, out: &Path) -> Result<(Vec<Run>, Vec<String>)> {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}: give the results folder", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !same_path(p, out))
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
        // The same measurements saved twice (a baseline is a copy of a
        // run's exports): read once, under the run's own folder name.
        let key = |e: &Export| (e.machine.date.clone(), e.machine.commit.clone());
        if let Some(first) = runs
            .iter()
            .find(|r: &&Run| r.exports.first().map(key) == exports.first().map(key))
        {
            skipped.push(format!("{name}: the same run as {}", first.folder));
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

fn same_path(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// One line for every folder that was not read as a run.
fn skipped_line(skipped: &[String]) -> Option<String> {
    const SHOWN: usize = 4;
    if skipped.is_empty() {
        return None;
    }
    let mut shown = skipped[..skipped.len().min(SHOWN)].join("; ");
    if skipped.len() > SHOWN {
        shown.push_str(&format!("; and {} more", skipped.len() - SHOWN));
    }
    Some(format!(
        "not read as runs: {} ({shown})",
        crate::draw::fmt::things(skipped.len() as u64, "folder", "folders")
    ))
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
    let out = a.out_dir();
    let (runs, skipped) = read_runs(&a.dir, &out)?;
    if let Some(line) = skipped_line(&skipped) {
        eprintln!("{line}");
    }
    if runs.is_empty() {
        bail!(
            "no run folders with exports under {}: make one with `rates compare --out DIR`",
            a.dir.display()
        );
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
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
    let order = rates_registry::names();
    let rank = |s: &str| order.iter().position(|n| *n == s).unwrap_or(order.len());
    for (scenario, strategies) in &series {
        let mut names: Vec<&String> = strategies.keys().collect();
        names.sort_by_key(|s| (rank(s), (*s).clone()));
        // One table per machine: figures of two machines are not compared.
        let mut machines: Vec<String> = Vec::new();
        for p in strategies.values().flatten() {
            if !machines.contains(&p.1) {
                machines.push(p.1.clone());
            }
        }
        println!("{scenario}: {} per run", metric.name());
        for machine in &machines {
            let used: Vec<usize> = {
                let mut u: Vec<usize> = strategies
                    .values()
                    .flatten()
                    .filter(|p| &p.1 == machine)
                    .map(|p| p.0)
                    .collect();
                u.sort_unstable();
                u.dedup();
                u
            };
            let mut t = Table::new();
            t.load_preset(comfy_table::presets::NOTHING)
                .set_style(comfy_table::TableComponent::HeaderLines, '-');
            let mut header = vec!["strategy".to_owned()];
            header.extend(
                used.iter()
                    .map(|&i| format!("{}\n{}", runs[i].folder, runs[i].machine.commit)),
            );
            t.set_header(header);
            for strategy in &names {
                let points = &strategies[*strategy];
                if !points.iter().any(|p| &p.1 == machine) {
                    continue;
                }
                let mut row = vec![(*strategy).clone()];
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
            println!("on {machine}:\n{t}\n");
        }
        let path = out.join(format!("{scenario}-{}.svg", metric.name()));
        chart(&path, scenario, metric, &runs, strategies, &names)
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
    order: &[&String],
) -> Result<()> {
    use crate::draw::canvas::{self, Axis, color_of, err};
    // Which runs were on which machine, under the chart.
    let mut machines: Vec<(String, Vec<&str>)> = Vec::new();
    for run in runs {
        let id = run.machine.identity();
        match machines.iter_mut().find(|(m, _)| *m == id) {
            Some((_, folders)) => folders.push(&run.folder),
            None => machines.push((id, vec![&run.folder])),
        }
    }
    let footnote = machines
        .iter()
        .enumerate()
        .map(|(j, (m, folders))| {
            let line = if j == 0 { "solid" } else { "dashed" };
            format!("{line}: {m}: {}", folders.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let foot = canvas::footnote_height(&footnote);
    let root = canvas::canvas(path, (960, 560 + foot))?;
    let (plot, _) = root.split_vertically(560);
    let (scale, unit) = match metric {
        Metric::Ratio => (1.0, "x ideal"),
        Metric::Cpu => (1.0, "µs CPU per request"),
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
    let mut chart = ChartBuilder::on(&plot)
        .caption(
            format!(
                "{scenario}: {} over runs (one line per strategy and machine)",
                metric.name()
            ),
            ("sans-serif", 20),
        )
        .margin(14)
        .margin_right(40)
        .x_label_area_size(60)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.3..(n as f64 - 0.7), 0.0..top.max(1e-9))
        .map_err(err)?;
    // Each run by its folder's name (dates repeat; folders do not), cut
    // to its first 15 characters (a dated folder's date and time).
    let folder = |x: f64| {
        let i = x.round() as usize;
        if (x - x.round()).abs() < 0.01 && i < runs.len() {
            runs[i].folder.chars().take(15).collect()
        } else {
            String::new()
        }
    };
    let value = |v: f64| crate::draw::fmt::tick(v);
    canvas::axes(
        &mut chart,
        &Axis {
            desc: "run (results folder)",
            log: false,
            labels: n.min(12),
            show: &folder,
        },
        Some(&Axis {
            desc: unit,
            log: false,
            labels: 8,
            show: &value,
        }),
    )?;
    for strategy in order {
        let Some(points) = strategies.get(*strategy) else {
            continue;
        };
        let color = color_of(strategy);
        // Machines in the footnote's order: solid for the first, dashed after.
        let mut labelled = false;
        for (j, (id, _)) in machines.iter().enumerate() {
            let pts: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.1 == *id)
                .map(|(i, _, v)| (*i as f64, v * scale))
                .collect();
            if pts.is_empty() {
                continue;
            }
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(err)?;
            // The first machine's runs joined by a solid line, any other's
            // by a dashed one (the footnote says which runs were where).
            let s = if j == 0 {
                chart.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            } else {
                chart.draw_series(DashedLineSeries::new(
                    pts.clone(),
                    8,
                    5,
                    color.stroke_width(2),
                ))
            }
            .map_err(err)?;
            if !labelled {
                labelled = true;
                s.label((*strategy).clone())
                    .legend(canvas::line_mark(color));
            }
        }
    }
    canvas::legend(&mut chart)?;
    canvas::footnote(&root, &footnote)?;
    canvas::finish(&root)
}
