//! `rates sweep`: one knob varied over a list of values, every chosen
//! strategy measured at each point as `compare` measures (a fresh process
//! per run, the tree's figures), written as CSV, JSON and line charts.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::scenario::Scenario;
use anyhow::{Context as _, Result, bail};
use rates_measure::{Export, StrategyResult};
use serde::{Deserialize, Serialize};

use crate::draw::export;
use crate::draw::plot::{LineChart, Mark, XUnit};
use crate::inputs::exit_code;
use crate::parse;
use crate::registry::Registry;
use crate::runner::{Session, Timing};

/// What a sweep is asked to do: the `rates sweep` flags, as the library takes them.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct SweepOptions {
    /// The knob and its values: bases=10,100,1k | concurrency=1,10,100 |
    /// latency=0,1ms,10ms | work=0,10us,1ms.
    #[cfg_attr(feature = "cli", arg(long, value_parser = crate::sweep::Vary::parse))]
    pub vary: Vary,
    /// Strategies (comma-separated); default: all registered.
    #[cfg_attr(feature = "cli", arg(long))]
    pub strategies: Option<String>,
    /// Bases per run, where not varied.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 100))]
    pub bases: usize,
    /// Most requests in flight, where not varied.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 16))]
    pub concurrency: usize,
    /// Server latency per answer, where not varied.
    #[cfg_attr(feature = "cli", arg(long, default_value = "20ms", value_parser = crate::parse::duration))]
    pub latency: Duration,
    /// CPU work per item, where not varied.
    #[cfg_attr(feature = "cli", arg(long, default_value = "0", value_parser = crate::parse::duration))]
    pub work: Duration,
    /// Timed runs per strategy and point.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100)))]
    pub runs: u32,
    /// Untimed warm-up runs per strategy and point.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=100)))]
    pub warmup: u32,
    /// The folder for sweep.csv, sweep.json and the SVG charts.
    #[cfg_attr(feature = "cli", arg(long, value_name = "DIR"))]
    pub out: PathBuf,
    /// External programs as strategies (--external, --clients).
    #[cfg_attr(feature = "cli", command(flatten))]
    pub external: crate::registry::ExternalOptions,
}

/// Which knob a sweep or a map varies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Knob {
    /// How many bases a run fetches.
    Bases,
    /// How many requests are in flight at most.
    Concurrency,
    /// The server's delay before each answer.
    Latency,
    /// CPU work per fetched item, in the client.
    Work,
}

impl Knob {
    /// How its values read on an axis.
    pub(crate) fn unit(self) -> XUnit {
        match self {
            Self::Bases | Self::Concurrency => XUnit::Count,
            Self::Latency | Self::Work => XUnit::Seconds,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Bases => "bases",
            Self::Concurrency => "concurrency",
            Self::Latency => "latency",
            Self::Work => "work",
        }
    }

    /// The axis title.
    pub(crate) fn title(self) -> &'static str {
        match self {
            Self::Bases => "bases per run",
            Self::Concurrency => "most requests in flight",
            Self::Latency => "server latency per request (seconds)",
            Self::Work => "CPU work per item (seconds)",
        }
    }

    /// Sets this knob of `scenario` to `value` (a count, or seconds).
    pub(crate) fn set(self, scenario: &mut Scenario, value: f64) {
        match self {
            Self::Bases => scenario.size = value as usize,
            Self::Concurrency => scenario.concurrency = value as usize,
            Self::Latency => scenario.latency = Duration::from_secs_f64(value),
            Self::Work => scenario.work = Duration::from_secs_f64(value),
        }
    }
}

/// `--vary knob=v1,v2,...`.
#[derive(Clone, Debug)]
pub struct Vary {
    pub(crate) knob: Knob,
    pub(crate) values: Vec<f64>,
}

/// A count like `100`, `1k`, `10k`, `1m`.
pub(crate) fn count(s: &str) -> Result<f64, String> {
    let t = s.trim().to_ascii_lowercase().replace('_', "");
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1e3),
        Some('m') => (&t[..t.len() - 1], 1e6),
        _ => (t.as_str(), 1.0),
    };
    let v = num
        .parse::<f64>()
        .map_err(|_| format!("`{s}` is not a count: write 100, 1k or 10k"))?
        * mult;
    if v >= 1.0 && v.fract() == 0.0 && v <= 1e6 {
        Ok(v)
    } else {
        Err(format!("`{s}` must be a whole count from 1 to 1,000,000"))
    }
}

impl Vary {
    /// Parses `KNOB=V1,V2,...` (`bases=10,100,1k`).
    ///
    /// # Errors
    /// An unknown knob or a value it cannot take, named.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (knob, list) = s.split_once('=').ok_or_else(|| {
            format!("`{s}`: write KNOB=V1,V2,... like bases=10,100,1k or latency=0,10ms")
        })?;
        let knob = match knob.trim() {
            "bases" => Knob::Bases,
            "concurrency" => Knob::Concurrency,
            "latency" => Knob::Latency,
            "work" => Knob::Work,
            other => {
                return Err(format!(
                    "unknown knob `{other}`: vary bases, concurrency, latency or work"
                ));
            }
        };
        let values = list
            .split(',')
            .map(|v| match knob {
                Knob::Bases | Knob::Concurrency => count(v),
                Knob::Latency | Knob::Work => parse::duration(v).map(|d| d.as_secs_f64()),
            })
            .collect::<Result<Vec<f64>, String>>()?;
        if values.len() < 2 {
            return Err(format!("`{s}`: give at least two values to sweep over"));
        }
        if values.len() > 20 {
            return Err(format!("`{s}`: at most 20 values per sweep"));
        }
        Ok(Self { knob, values })
    }
}

/// One point of a sweep: the knob's value and the comparison there.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Point {
    pub(crate) value: f64,
    pub(crate) export: Export,
}

/// `sweep.json`.
#[derive(Debug, Serialize, Deserialize)]
struct SweepFile {
    schema: u32,
    knob: Knob,
    points: Vec<Point>,
}

/// The scenario a sweep or map point measures: the flags' shape.
pub(crate) fn custom_scenario(
    bases: usize,
    concurrency: usize,
    latency: Duration,
    work: Duration,
) -> Scenario {
    Scenario::new(
        "custom",
        "a sweep or map point",
        (bases, latency, concurrency),
    )
    .with_work(work)
}

/// The session of a sweep or map: `runs` timed runs after `warmup` each,
/// on the embedded server, stopped by `interrupts`.
pub(crate) fn interruptible_session(
    (runs, warmup): (u32, u32),
    registry: Registry,
    interrupts: &crate::interrupt::Interrupts,
) -> Session {
    let mut timing = Timing::new(runs, warmup);
    timing.interrupt = Some(interrupts.flag());
    Session::new(timing, registry)
}

/// Measures one sweep point or map cell as `compare` measures, on the
/// embedded server, and names its export `name`.
pub(crate) fn measure_point(
    session: &Session,
    scenario: &Scenario,
    name: String,
    strategies: &[Box<dyn rates_core::Strategy>],
) -> Result<Export> {
    let mut export = session.measure(scenario, strategies)?;
    export.scenario.name = name;
    Ok(export)
}

/// The value as the knob shows it: `1,000` or `10 ms`.
pub(crate) fn show(knob: Knob, v: f64) -> String {
    knob.unit().show(v)
}

/// Runs `rates sweep` with `a`: measures each value of the knob, prints
/// the table and writes its chart. Exit 0, 1 when a run failed, or 130/143
/// when interrupted (what completed is printed).
pub fn run(a: &SweepOptions) -> Result<ExitCode> {
    let registry = Registry::new(a.external.read()?);
    let strategies = registry.named(a.strategies.as_deref())?;
    if a.bases == 0 || a.concurrency == 0 {
        bail!("--bases and --concurrency must be at least 1");
    }
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("creating the folder {}", a.out.display()))?;
    // Ctrl-C stops the run being measured and writes what completed.
    let interrupts = crate::interrupt::Interrupts::watch(|| {})?;
    let session = interruptible_session((a.runs, a.warmup), registry, &interrupts);
    let mut points = Vec::new();
    for (i, &value) in a.vary.values.iter().enumerate() {
        if interrupts.exit_code().is_some() {
            break;
        }
        let mut scenario = custom_scenario(a.bases, a.concurrency, a.latency, a.work);
        a.vary.knob.set(&mut scenario, value);
        eprintln!(
            "point {}/{}: {} = {}",
            i + 1,
            a.vary.values.len(),
            a.vary.knob.name(),
            show(a.vary.knob, value)
        );
        let name = format!("{}={}", a.vary.knob.name(), show(a.vary.knob, value));
        let export = measure_point(&session, &scenario, name, &strategies)?;
        if export.results.iter().any(|r| r.ran()) {
            points.push(Point { value, export });
        }
    }
    if let Some(code) = interrupts.exit_code() {
        eprintln!(
            "interrupted: {} of {} points measured; writing those",
            points.len(),
            a.vary.values.len()
        );
        if !points.is_empty() {
            write(&a.out, a.vary.knob, points)?;
        }
        return Ok(code);
    }
    write(&a.out, a.vary.knob, points)
}

/// Writes sweep.json, sweep.csv and the charts.
fn write(dir: &std::path::Path, knob: Knob, points: Vec<Point>) -> Result<ExitCode> {
    let rows: Vec<(Vec<String>, &rates_measure::StrategyResult)> = points
        .iter()
        .flat_map(|p| {
            p.export
                .results
                .iter()
                .map(move |r| (vec![p.value.to_string()], r))
        })
        .collect();
    export::write(
        &dir.join("sweep.csv"),
        &export::csv_rows(&rows, &[knob.name()])?,
    )?;
    for chart in sweep_charts(knob, &points) {
        let path = dir.join(format!("sweep-{}.svg", chart.file));
        chart
            .draw(&path)
            .with_context(|| format!("drawing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    println!("{}", result_table(knob, &points));
    let exports: Vec<Export> = points.iter().map(|p| p.export.clone()).collect();
    let file = SweepFile {
        schema: rates_measure::SCHEMA,
        knob,
        points,
    };
    export::write(
        &dir.join("sweep.json"),
        serde_json::to_string_pretty(&file)?.as_bytes(),
    )?;
    eprintln!("wrote {}", dir.join("sweep.csv").display());
    eprintln!("wrote {}", dir.join("sweep.json").display());
    Ok(exit_code(&exports))
}

/// The sweep's result: each strategy's median wall time at each value of
/// the knob (a dash where it did not run there).
fn result_table(knob: Knob, points: &[Point]) -> String {
    use crate::draw::fmt::{opt, secs};
    use crate::draw::table::{Style, table};
    let columns: Vec<String> = points
        .iter()
        .map(|p| format!("{}={}", knob.name(), show(knob, p.value)))
        .collect();
    let mut header = vec!["median wall time"];
    header.extend(columns.iter().map(String::as_str));
    let mut t = table(Style::Terminal, &header);
    let names: Vec<&str> = points
        .first()
        .map(|p| {
            p.export
                .results
                .iter()
                .map(|r| r.strategy.as_str())
                .collect()
        })
        .unwrap_or_default();
    for name in names {
        let mut row = vec![name.to_owned()];
        for p in points {
            let r = p.export.results.iter().find(|r| r.strategy == name);
            row.push(r.map_or_else(|| "-".to_owned(), |r| opt(r.median_s, secs)));
        }
        t.add_row(row);
    }
    t.to_string()
}

fn mark(r: &StrategyResult) -> Mark {
    if !r.ran() {
        Mark::Skipped
    } else if r.note.is_some() {
        Mark::Capped
    } else {
        Mark::Ran
    }
}

/// The charts of a sweep: ratio to ideal, median wall time, CPU per
/// request and peak memory against the knob.
pub(crate) fn sweep_charts(knob: Knob, points: &[Point]) -> Vec<LineChart> {
    let (x_desc, x_unit) = (knob.title(), knob.unit());
    let mut names: Vec<String> = Vec::new();
    for p in points {
        for r in &p.export.results {
            if !names.contains(&r.strategy) {
                names.push(r.strategy.clone());
            }
        }
    }
    let series = |f: fn(&StrategyResult) -> Option<f64>| {
        names
            .iter()
            .map(|n| {
                let pts = points
                    .iter()
                    .filter_map(|p| {
                        let r = p.export.results.iter().find(|r| &r.strategy == n)?;
                        Some((p.value, f(r).filter(|_| r.ran()), mark(r)))
                    })
                    .collect();
                (n.clone(), pts)
            })
            .collect::<Vec<_>>()
    };
    let machine = points.first().map(|p| &p.export.machine);
    let footnote = format!(
        "filled: ran; ring: capped or in waves (see the note in sweep.csv); cross on the axis: \
         not run. {} per point. {}",
        crate::draw::fmt::things(
            points.first().map_or(0, |p| p.export.runs) as u64,
            "run",
            "runs"
        ),
        machine.map_or(String::new(), |m| format!(
            "{} x{}, {}",
            m.cpu, m.cores, m.date
        ))
    );
    let k = knob.name();
    vec![
        LineChart {
            file: "ratio",
            title: format!("wall time / ideal against {k}"),
            x_desc,
            x_unit,
            y_desc: "median wall time / ideal",
            series: series(|r| r.ratio_to_ideal),
            footnote: footnote.clone(),
        },
        LineChart {
            file: "wall",
            title: format!("median wall time against {k}"),
            x_desc,
            x_unit,
            y_desc: "seconds",
            series: series(|r| r.median_s),
            footnote: footnote.clone(),
        },
        LineChart {
            file: "cpu",
            title: format!("CPU per request (whole process tree) against {k}"),
            x_desc,
            x_unit,
            y_desc: "microseconds per request",
            series: series(|r| r.cpu_per_request_us),
            footnote: footnote.clone(),
        },
        LineChart {
            file: "memory",
            title: format!("peak memory (process tree) against {k}"),
            x_desc,
            x_unit,
            y_desc: "MiB",
            series: series(|r| r.peak_rss_bytes.map(|b| b as f64 / f64::from(1 << 20))),
            footnote,
        },
    ]
}
