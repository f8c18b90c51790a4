//! SVG charts of a comparison, drawn with plotters: one horizontal bar per
//! strategy, so long names read without rotation.

use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;
use plotters::style::text_anchor::HPos;
use rates_measure::{Export, StrategyResult};

use super::canvas::{
    self, Axis, BLUE, GREEN, GREY, LIGHT_BLUE, ORANGE, RED, err, missing, power_of_ten,
};
use super::fmt::{bytes, micros, secs, things, tick};

/// One strategy's row.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) label: String,
    /// Sub-bars side by side (top to bottom); each a stack of segments.
    pub(crate) bars: Vec<Vec<f64>>,
    /// A min..max whisker over the first bar.
    pub(crate) whisker: Option<(f64, f64)>,
    /// A marker line (the ideal).
    pub(crate) marker: Option<f64>,
    /// The figure printed after the bar.
    pub(crate) text: String,
    /// Why there is no bar (skipped, failed).
    pub(crate) missing: Option<String>,
}

/// A horizontal bar chart.
#[derive(Debug)]
pub(crate) struct BarChart<'a> {
    pub(crate) title: String,
    pub(crate) x_desc: &'a str,
    /// For each sub-bar, its segments' names and colours (for the legend).
    pub(crate) series: Vec<Vec<(&'a str, RGBColor)>>,
    /// The marker's name in the legend.
    pub(crate) marker_name: Option<&'a str>,
    /// A log10 x axis (for counts spanning decades).
    pub(crate) log: bool,
    /// A linear axis whatever the values span (bar length is then the
    /// value: what a reader compares).
    pub(crate) linear: bool,
    pub(crate) rows: Vec<Row>,
    pub(crate) footnote: String,
}

impl BarChart<'_> {
    /// Draws it as an SVG at `path`.
    pub(crate) fn draw(&self, path: &Path) -> Result<()> {
        let n = self.rows.len().max(1);
        let height = 240 + 44 * n as u32;
        let root = canvas::canvas(path, (960, height))?;
        let values = || {
            self.rows.iter().flat_map(|r| {
                r.bars
                    .iter()
                    .map(|b| b.iter().sum::<f64>())
                    .chain(r.whisker.map(|w| w.1))
                    .chain(r.marker)
            })
        };
        let biggest = values().fold(0.0_f64, f64::max);
        let smallest = values().filter(|v| *v > 0.0).fold(f64::MAX, f64::min);
        // A log axis when asked, or when the bars span more than a factor of
        // 20 (one sequential strategy next to concurrent ones); it starts
        // half a decade below the smallest value so that one still shows.
        let log = !self.linear && (self.log || (smallest < f64::MAX && biggest / smallest > 20.0));
        let floor_value = if smallest < f64::MAX {
            10f64.powf(smallest.log10().floor()) / 2.0
        } else {
            0.5
        };
        let floor = if log { floor_value.log10() } else { 0.0 };
        let t = |v: f64| if log { v.max(floor_value).log10() } else { v };
        let x_max = if log {
            (t(biggest).ceil() + 0.3).max(1.0)
        } else {
            (biggest * 1.25).max(1e-9)
        };
        // The rows take 0..n; the band above them holds the legend.
        let band = 1.8;
        let mut chart = ChartBuilder::on(&root)
            .caption(&self.title, ("sans-serif", 20))
            .margin(12)
            .margin_right(30)
            .margin_bottom(28)
            .x_label_area_size(48)
            .y_label_area_size(130)
            .build_cartesian_2d(floor..x_max, 0.0..n as f64 + band)
            .map_err(err)?;
        let show: &dyn Fn(f64) -> String = if log { &power_of_ten } else { &tick };
        canvas::axes(
            &mut chart,
            &Axis {
                desc: self.x_desc,
                log,
                labels: if log {
                    ((x_max - floor).ceil() as usize) * 2 + 1
                } else {
                    8
                },
                show,
            },
            None,
        )?;

        let mut legend_done = vec![vec![false; 4]; self.series.len()];
        // The marker's legend entry goes with the first row that has one
        // (the first rows can be skipped strategies, with none).
        let mut marker_labelled = false;
        for (i, row) in self.rows.iter().enumerate() {
            // Row i from the top.
            let top = (n - i) as f64 - 0.12;
            let bottom = (n - i - 1) as f64 + 0.12;
            let (lx, ly) = chart.backend_coord(&(floor, (top + bottom) / 2.0));
            canvas::text(&root, &row.label, (lx - 8, ly), 15, &BLACK, HPos::Right)?;
            if let Some(why) = &row.missing {
                canvas::text(&root, why, (lx + 6, ly), 13, &GREY, HPos::Left)?;
                continue;
            }
            let k = row.bars.len().max(1);
            let slot = (top - bottom) / k as f64;
            let mut end = floor;
            for (b, stack) in row.bars.iter().enumerate() {
                let hi = top - slot * b as f64;
                let lo = hi - slot * 0.92;
                let mut acc = 0.0;
                for (s, v) in stack.iter().enumerate() {
                    let start = if acc == 0.0 { floor } else { t(acc) };
                    let (name, color) = self
                        .series
                        .get(b)
                        .and_then(|ss| ss.get(s))
                        .copied()
                        .unwrap_or(("", BLUE));
                    let (x0, x1) = (start, t(acc + v));
                    acc += v;
                    if x1 <= x0 {
                        continue;
                    }
                    let series = chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(x0, lo), (x1, hi)],
                            color.filled(),
                        )))
                        .map_err(err)?;
                    if !name.is_empty() && !legend_done[b].get(s).copied().unwrap_or(true) {
                        legend_done[b][s] = true;
                        series.label(name).legend(move |(x, y)| {
                            Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled())
                        });
                    }
                }
                end = end.max(t(acc));
            }
            if let Some((lo, hi)) = row.whisker {
                let y = top - slot * 0.46;
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(t(lo), y), (t(hi), y)],
                        BLACK.stroke_width(2),
                    )))
                    .map_err(err)?;
                for x in [t(lo), t(hi)] {
                    chart
                        .draw_series(std::iter::once(PathElement::new(
                            vec![(x, y - slot * 0.25), (x, y + slot * 0.25)],
                            BLACK.stroke_width(2),
                        )))
                        .map_err(err)?;
                }
                end = end.max(t(hi));
            }
            if let Some(m) = row.marker {
                let series = chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(t(m), bottom - 0.06), (t(m), top + 0.06)],
                        RED.stroke_width(3),
                    )))
                    .map_err(err)?;
                if !marker_labelled {
                    marker_labelled = true;
                    if let Some(name) = self.marker_name {
                        series.label(name).legend(|(x, y)| {
                            PathElement::new(
                                vec![(x + 7, y - 7), (x + 7, y + 7)],
                                RED.stroke_width(3),
                            )
                        });
                    }
                }
                end = end.max(t(m));
            }
            let (x, y) = chart.backend_coord(&(end, (top + bottom) / 2.0));
            canvas::text(&root, &row.text, (x + 8, y), 13, &BLACK, HPos::Left)?;
        }
        canvas::legend(&mut chart)?;
        canvas::footnote(&root, &self.footnote)?;
        canvas::finish(&root)
    }
}

fn row(r: &StrategyResult, bars: Vec<Vec<f64>>, text: String) -> Row {
    let missing = missing(r);
    Row {
        label: r.strategy.clone(),
        bars: if missing.is_some() { Vec::new() } else { bars },
        whisker: None,
        marker: None,
        text,
        missing,
    }
}

fn footnote(export: &Export) -> String {
    format!(
        "{} timed runs each in a fresh process, medians; {} x{}, {}; commit {}",
        export.runs,
        export.machine.cpu,
        export.machine.cores,
        export.machine.date,
        export.machine.commit
    )
}

/// The charts of one scenario: `(file name, chart)`.
pub(crate) fn charts(export: &Export) -> Vec<(&'static str, BarChart<'static>)> {
    let name = &export.scenario.name;
    let rs = &export.results;
    let wall = BarChart {
        title: format!("{name}: wall time of one run (median, whiskers min..max)"),
        x_desc: "seconds",
        series: vec![vec![("median wall time", BLUE)]],
        marker_name: Some("ideal (no run can beat it)"),
        log: false,
        linear: false,
        rows: rs
            .iter()
            .map(|r| {
                let mut row = row(
                    r,
                    vec![vec![r.median_s.unwrap_or(0.0)]],
                    match (r.median_s, r.ratio_to_ideal) {
                        (Some(m), Some(x)) => format!("{} ({x:.2}x)", secs(m)),
                        (Some(m), None) => secs(m),
                        _ => String::new(),
                    },
                );
                if row.missing.is_none() {
                    row.whisker = r.min_s.zip(r.max_s);
                    row.marker = (r.ideal_s > 0.0).then_some(r.ideal_s);
                }
                row
            })
            .collect(),
        footnote: footnote(export),
    };
    let per_req = |r: &StrategyResult, cpu: Option<f64>| {
        cpu.zip(r.requests.filter(|&q| q > 0))
            .map_or(0.0, |(c, q)| c * 1e6 / q as f64)
    };
    let cpu = BarChart {
        title: format!("{name}: CPU per request, whole process tree"),
        x_desc: "microseconds of CPU per request, process start-up included (user/system split sampled at clock ticks)",
        series: vec![vec![("user", BLUE), ("system", ORANGE)]],
        marker_name: None,
        log: false,
        linear: false,
        rows: rs
            .iter()
            .map(|r| {
                row(
                    r,
                    vec![vec![per_req(r, r.cpu_user_s), per_req(r, r.cpu_sys_s)]],
                    r.cpu_per_request_us.map(micros).unwrap_or_default(),
                )
            })
            .collect(),
        footnote: footnote(export),
    };
    let mib = |b: Option<u64>| b.map_or(0.0, |b| b as f64 / f64::from(1 << 20));
    let memory = BarChart {
        title: format!("{name}: peak memory (RSS summed over the process tree)"),
        x_desc: "MiB",
        series: vec![vec![
            ("the strategy's own process", GREEN),
            ("its child processes", LIGHT_BLUE),
        ]],
        marker_name: None,
        log: false,
        linear: false,
        rows: rs
            .iter()
            .map(|r| {
                let own = mib(r.parent_peak_rss_bytes).min(mib(r.peak_rss_bytes));
                let rest = (mib(r.peak_rss_bytes) - own).max(0.0);
                row(
                    r,
                    vec![vec![own, rest]],
                    r.peak_rss_bytes.map(bytes).unwrap_or_default(),
                )
            })
            .collect(),
        footnote: footnote(export),
    };
    let threads = BarChart {
        title: format!("{name}: OS threads and processes (most alive at once)"),
        x_desc: "count",
        series: vec![vec![("threads", BLUE)], vec![("processes", ORANGE)]],
        marker_name: None,
        log: true,
        linear: false,
        rows: rs
            .iter()
            .map(|r| {
                let t = r.peak_threads.unwrap_or(0);
                let p = r.peak_processes.unwrap_or(0);
                row(
                    r,
                    vec![vec![t as f64], vec![p as f64]],
                    format!(
                        "{}, {}",
                        things(t, "thread", "threads"),
                        things(p, "proc", "procs")
                    ),
                )
            })
            .collect(),
        footnote: footnote(export),
    };
    let mut charts = vec![
        ("wall", wall),
        ("cpu", cpu),
        ("memory", memory),
        ("threads", threads),
    ];
    if super::table::has_stops(export) {
        charts.push((
            "stop",
            BarChart {
                title: format!(
                    "{name}: time from the stop to the run's return (median, whiskers \
                     fastest..slowest)"
                ),
                x_desc: "milliseconds (every thread joined, every child reaped)",
                series: vec![vec![("time to stop", BLUE)]],
                marker_name: None,
                log: false,
                linear: true,
                rows: rs
                    .iter()
                    .map(|r| {
                        let ms = |s: Option<f64>| s.map(|s| s * 1e3);
                        let left = r.left.as_ref().map_or(String::new(), |l| {
                            if l.threads + l.processes + l.sockets == 0 {
                                ", nothing left".to_owned()
                            } else {
                                format!(
                                    ", left {}, {}, {}",
                                    things(l.threads, "thread", "threads"),
                                    things(l.processes, "proc", "procs"),
                                    things(l.sockets, "socket", "sockets")
                                )
                            }
                        });
                        let mut row = row(
                            r,
                            vec![vec![ms(r.time_to_stop_s).unwrap_or(0.0)]],
                            format!("{}{left}", r.time_to_stop_s.map(secs).unwrap_or_default()),
                        );
                        if row.missing.is_none() {
                            let fastest = r
                                .runs
                                .iter()
                                .filter_map(|run| run.child.time_to_stop_s)
                                .reduce(f64::min);
                            row.whisker = ms(fastest).zip(ms(r.time_to_stop_max_s));
                        }
                        row
                    })
                    .collect(),
                footnote: footnote(export),
            },
        ));
    }
    charts
}
