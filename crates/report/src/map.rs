//! `rates map`: the decision map. Every strategy at every cell of a grid of
//! latency per request x CPU work per item; heatmaps of who wins and of who
//! is cheapest among those close to the winner.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use rates_measure::{Export, StrategyResult};
use serde::{Deserialize, Serialize};

use crate::draw::plot::{Cell, Heatmap, cpu_detail, memory_detail};
use crate::draw::{export, fmt};
use crate::inputs::exit_code;
use crate::registry::Registry;
use crate::sweep::{Knob, custom_scenario, interruptible_session, measure_point, show};

/// What a decision map is asked to do: the `rates map` flags, as the library takes them.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct MapOptions {
    /// Server latencies, the rows.
    #[cfg_attr(feature = "cli", arg(long, default_value = "0,1ms,10ms,100ms", value_delimiter = ',', value_parser = crate::parse::duration))]
    pub latency: Vec<Duration>,
    /// CPU work per item, the columns.
    #[cfg_attr(feature = "cli", arg(long, default_value = "0,10us,100us,1ms", value_delimiter = ',', value_parser = crate::parse::duration))]
    pub work: Vec<Duration>,
    /// Bases per run at every cell.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 100))]
    pub bases: usize,
    /// Most requests in flight at every cell.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 10))]
    pub concurrency: usize,
    /// Strategies (comma-separated); default: all registered.
    #[cfg_attr(feature = "cli", arg(long))]
    pub strategies: Option<String>,
    /// Timed runs per strategy and cell (three, so that a winner can be
    /// told from a tie within the runs' spread).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100)))]
    pub runs: u32,
    /// Untimed warm-up runs per strategy and cell.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=100)))]
    pub warmup: u32,
    /// Strategies within this share of the winner's time count as "close"
    /// for the cheapest-in-CPU and cheapest-in-memory maps.
    #[cfg_attr(feature = "cli", arg(long, default_value = "10%", value_parser = crate::parse::share))]
    pub within: f64,
    /// The folder for map.csv, map.json and the heatmaps.
    #[cfg_attr(feature = "cli", arg(long, value_name = "DIR"))]
    pub out: PathBuf,
    /// External programs as strategies (--external, --clients).
    #[cfg_attr(feature = "cli", command(flatten))]
    pub external: crate::registry::ExternalOptions,
}

/// One measured cell.
#[derive(Debug, Serialize, Deserialize)]
struct MapCell {
    latency_s: f64,
    work_s: f64,
    export: Export,
}

/// `map.json`.
#[derive(Debug, Serialize, Deserialize)]
struct MapFile {
    schema: u32,
    within: f64,
    cells: Vec<MapCell>,
}

/// Whether `r` held more requests in flight than the cell's concurrency
/// (`threads`, a thread per base): it is ranked apart, since it does not
/// do the same job under the same limit.
fn unbounded(e: &Export, r: &StrategyResult) -> bool {
    r.peak_in_flight.is_some_and(|p| p > e.scenario.concurrency)
}

/// The ran rows of a cell that kept its concurrency, fastest first.
fn ranked(e: &Export) -> Vec<&StrategyResult> {
    let mut ran: Vec<&StrategyResult> = e
        .results
        .iter()
        .filter(|r| r.ran() && !unbounded(e, r))
        .collect();
    ran.sort_by(|a, b| {
        a.median_s
            .unwrap_or(f64::MAX)
            .total_cmp(&b.median_s.unwrap_or(f64::MAX))
    });
    ran
}

/// The cheapest by `key` among the strategies within `within` of the winner.
fn cheapest_close(
    e: &Export,
    within: f64,
    key: fn(&StrategyResult) -> Option<f64>,
) -> Option<&StrategyResult> {
    let ranked = ranked(e);
    let best = ranked.first()?.median_s?;
    ranked
        .into_iter()
        .filter(|r| r.median_s.is_some_and(|m| m <= best * (1.0 + within)))
        .filter(|r| key(r).is_some())
        .min_by(|a, b| {
            key(a)
                .unwrap_or(f64::MAX)
                .total_cmp(&key(b).unwrap_or(f64::MAX))
        })
}

/// Runs `rates map` with `a`: measures each cell, prints the map and writes
/// its chart. Exit 0, 1 when a run failed, or 130/143 when interrupted (what completed is
/// printed).
pub fn run(a: &MapOptions) -> Result<ExitCode> {
    let registry = Registry::new(a.external.read()?);
    let strategies = registry.named(a.strategies.as_deref())?;
    if a.latency.is_empty() || a.work.is_empty() || a.bases == 0 || a.concurrency == 0 {
        bail!("--latency and --work need at least one value; --bases and --concurrency at least 1");
    }
    if a.latency.len() * a.work.len() > 64 {
        bail!("at most 64 cells: give fewer --latency or --work values");
    }
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("creating the folder {}", a.out.display()))?;
    let total = a.latency.len() * a.work.len();
    // Ctrl-C stops the run being measured and writes what completed.
    let interrupts = crate::interrupt::Interrupts::watch(|| {})?;
    let session = interruptible_session((a.runs, a.warmup), registry, &interrupts);
    let mut cells = Vec::new();
    for &latency in &a.latency {
        for &work in &a.work {
            if interrupts.exit_code().is_some() {
                // The cells not measured stay empty in the maps.
                cells.push(MapCell {
                    latency_s: latency.as_secs_f64(),
                    work_s: work.as_secs_f64(),
                    export: Export::default(),
                });
                continue;
            }
            eprintln!(
                "cell {}/{total}: latency {}, work {}",
                cells.len() + 1,
                show(Knob::Latency, latency.as_secs_f64()),
                show(Knob::Work, work.as_secs_f64())
            );
            let scenario = custom_scenario(a.bases, a.concurrency, latency, work);
            let name = format!(
                "latency={},work={}",
                show(Knob::Latency, latency.as_secs_f64()),
                show(Knob::Work, work.as_secs_f64())
            );
            let export = measure_point(&session, &scenario, name, &strategies)?;
            cells.push(MapCell {
                latency_s: latency.as_secs_f64(),
                work_s: work.as_secs_f64(),
                export,
            });
        }
    }
    if let Some(code) = interrupts.exit_code() {
        let measured = cells
            .iter()
            .filter(|c| !c.export.results.is_empty())
            .count();
        eprintln!("interrupted: {measured} of {total} cells measured; the rest are left empty");
        write(a, cells)?;
        return Ok(code);
    }
    write(a, cells)
}

fn write(a: &MapOptions, cells: Vec<MapCell>) -> Result<ExitCode> {
    let rows: Vec<String> = a
        .latency
        .iter()
        .map(|l| show(Knob::Latency, l.as_secs_f64()))
        .collect();
    let cols: Vec<String> = a
        .work
        .iter()
        .map(|w| show(Knob::Work, w.as_secs_f64()))
        .collect();
    let grid = |f: &dyn Fn(&Export) -> Cell| -> Vec<Vec<Cell>> {
        cells
            .chunks(a.work.len())
            .map(|row| row.iter().map(|c| f(&c.export)).collect())
            .collect()
    };
    let first = cells.first().map(|c| &c.export);
    // Strategies that held more in flight than the limit somewhere: ranked
    // apart, and said so under every map.
    let mut apart: Vec<&str> = Vec::new();
    for c in &cells {
        for r in &c.export.results {
            if r.ran() && unbounded(&c.export, r) && !apart.contains(&r.strategy.as_str()) {
                apart.push(&r.strategy);
            }
        }
    }
    let conditions = format!(
        "{} bases, concurrency {}, {} per strategy and cell; a tie: the runner-up's runs \
         overlap the winner's\n{}{}",
        a.bases,
        a.concurrency,
        fmt::things(u64::from(a.runs), "timed run", "timed runs"),
        first.map_or(String::new(), |e| format!(
            "{} x{}, {}, commit {}",
            e.machine.cpu, e.machine.cores, e.machine.date, e.machine.commit
        )),
        if apart.is_empty() {
            String::new()
        } else {
            format!(
                "\nnot ranked: {} (more than {} requests in flight: not the same job under \
                 the same limit; its times are in map.csv)",
                apart.join(", "),
                a.concurrency
            )
        }
    );
    let maps = [
        (
            "map-winner.svg",
            Heatmap {
                title: "Fastest strategy (median wall time), and its margin over the runner-up"
                    .to_owned(),
                row_desc: "latency".to_owned(),
                col_desc: "CPU work per item".to_owned(),
                rows: rows.clone(),
                cols: cols.clone(),
                cells: grid(&|e| {
                    let r = ranked(e);
                    match (r.first(), r.get(1)) {
                        // The runner-up's runs overlap the winner's: a tie.
                        (Some(w), Some(s))
                            if s.min_s.zip(w.max_s).is_some_and(|(lo, hi)| lo <= hi) =>
                        {
                            Cell {
                                strategy: Some(w.strategy.clone()),
                                detail: format!(
                                    "{}, tied with {}",
                                    w.median_s.map(fmt::secs).unwrap_or_default(),
                                    s.strategy
                                ),
                            }
                        }
                        (Some(w), second) => Cell {
                            strategy: Some(w.strategy.clone()),
                            detail: format!(
                                "{}{}",
                                w.median_s.map(fmt::secs).unwrap_or_default(),
                                second
                                    .and_then(|s| Some((s, s.median_s? / w.median_s? - 1.0)))
                                    .map(|(s, m)| format!(", +{:.0}% to {}", m * 100.0, s.strategy))
                                    .unwrap_or_default()
                            ),
                        },
                        _ => Cell::default(),
                    }
                }),
                footnote: conditions.clone(),
            },
        ),
        (
            "map-cpu.svg",
            Heatmap {
                title: format!(
                    "Least CPU per request among strategies within {:.0}% of the fastest",
                    a.within * 100.0
                ),
                row_desc: "latency".to_owned(),
                col_desc: "CPU work per item".to_owned(),
                rows: rows.clone(),
                cols: cols.clone(),
                cells: grid(&|e| {
                    cheapest_close(e, a.within, |r| r.cpu_per_request_us).map_or_else(
                        Cell::default,
                        |r| Cell {
                            strategy: Some(r.strategy.clone()),
                            detail: cpu_detail(r),
                        },
                    )
                }),
                footnote: conditions.clone(),
            },
        ),
        (
            "map-memory.svg",
            Heatmap {
                title: format!(
                    "Least peak memory among strategies within {:.0}% of the fastest",
                    a.within * 100.0
                ),
                row_desc: "latency".to_owned(),
                col_desc: "CPU work per item".to_owned(),
                rows,
                cols,
                cells: grid(&|e| {
                    cheapest_close(e, a.within, |r| r.peak_rss_bytes.map(|b| b as f64)).map_or_else(
                        Cell::default,
                        |r| Cell {
                            strategy: Some(r.strategy.clone()),
                            detail: memory_detail(r),
                        },
                    )
                }),
                footnote: conditions,
            },
        ),
    ];
    for (file, map) in &maps {
        let path = a.out.join(file);
        map.draw(&path)
            .with_context(|| format!("drawing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    let rows: Vec<(Vec<String>, &StrategyResult)> = cells
        .iter()
        .flat_map(|c| {
            let winner = ranked(&c.export).first().map(|w| w.strategy.clone());
            c.export.results.iter().map(move |r| {
                (
                    vec![
                        c.latency_s.to_string(),
                        c.work_s.to_string(),
                        (winner.as_deref() == Some(r.strategy.as_str())).to_string(),
                    ],
                    r,
                )
            })
        })
        .collect();
    export::write(
        &a.out.join("map.csv"),
        &export::csv_rows(&rows, &["latency_s", "work_s", "winner"])?,
    )?;
    let exports: Vec<Export> = cells.iter().map(|c| c.export.clone()).collect();
    let file = MapFile {
        schema: rates_measure::SCHEMA,
        within: a.within,
        cells,
    };
    export::write(
        &a.out.join("map.json"),
        serde_json::to_string_pretty(&file)?.as_bytes(),
    )?;
    eprintln!("wrote {}", a.out.join("map.csv").display());
    Ok(exit_code(&exports))
}
