//! SVG charts of a comparison, drawn with plotters: one horizontal bar per
//! strategy, so long names read without rotation.
//!
//! Bar lengths mean what they say: value axes are linear from zero; a bar
//! far longer than the others is cut at the chart's edge, marked as cut and
//! labelled with its value, rather than putting every bar on a log scale.
//! Only counts spanning decades (threads, processes) use a log axis, and
//! nothing is stacked on it.

use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;
use plotters::style::text_anchor::HPos;
use rates_measure::{Export, StrategyResult};

use super::canvas::{
    self, Axis, BLUE, GREEN, GREY, LIGHT_BLUE, ORANGE, RED, err, missing, power_of_ten,
};
use super::fmt::{bytes, count, micros, secs, setting_secs, things, tick};

/// One strategy's row.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) label: String,
    /// Sub-bars side by side (top to bottom); each a stack of segments.
    pub(crate) bars: Vec<Vec<f64>>,
    /// A min..max whisker over the first bar.
    pub(crate) whisker: Option<(f64, f64)>,
    /// The figure printed after the bar.
    pub(crate) text: String,
    /// Why there is no bar (skipped, failed): the row is not drawn and the
    /// footnote names it.
    pub(crate) missing: Option<String>,
}

impl Row {
    /// Whether one of its bars is longer than `limit` (and so cut).
    fn is_cut(&self, limit: f64) -> bool {
        self.bars.iter().any(|b| b.iter().sum::<f64>() > limit)
    }
}

/// How the value axis maps values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scale {
    /// From zero, linear: a bar's length is its value. A bar more than
    /// [`CUT`] times the median bar is cut at the edge (marked, labelled).
    Linear,
    /// log10, for counts that span decades; bars are never stacked on it.
    Log,
}

/// A bar longer than this many times the median bar is cut at the edge.
const CUT: f64 = 8.0;

/// The linear axis ends this many times past the longest bar or whisker
/// drawn whole, leaving room for its label.
const EDGE: f64 = 1.4;

/// A horizontal bar chart.
#[derive(Debug)]
pub(crate) struct BarChart<'a> {
    pub(crate) title: String,
    /// The scenario's settings, under the title.
    pub(crate) subtitle: String,
    pub(crate) x_desc: &'a str,
    /// For each sub-bar, its segments' names and colours (for the legend).
    pub(crate) series: Vec<Vec<(&'a str, RGBColor)>>,
    /// A vertical reference line across every row (the scenario's ideal),
    /// and its name in the legend.
    pub(crate) line: Option<(f64, String)>,
    pub(crate) scale: Scale,
    pub(crate) rows: Vec<Row>,
    pub(crate) footnote: String,
}

/// Pixels above the plot: title, subtitle, legend.
const HEAD: u32 = 88;

/// The value axis of a bar chart, fitted to its rows.
#[derive(Debug, Clone, Copy)]
struct XScale {
    log: bool,
    /// Where bars start, in axis units (log10 on a log axis).
    floor: f64,
    /// On a log axis, the value at `floor`: half a decade below the
    /// smallest value, so that one shows.
    floor_value: f64,
    /// The axis' end, in axis units.
    max: f64,
}

impl XScale {
    /// The axis for `shown` rows' totals and whiskers and the reference
    /// `line`: linear from zero with bars past [`CUT`] times the median cut
    /// at the edge, or log from half a decade below the smallest value.
    fn fit(shown: &[&Row], line: Option<f64>, scale: Scale) -> Self {
        let totals: Vec<f64> = shown
            .iter()
            .flat_map(|r| r.bars.iter().map(|b| b.iter().sum::<f64>()))
            .filter(|v| *v > 0.0)
            .collect();
        let values: Vec<f64> = totals
            .iter()
            .copied()
            .chain(shown.iter().filter_map(|r| r.whisker.map(|w| w.1)))
            .chain(line)
            .collect();
        let biggest = values.iter().copied().fold(0.0_f64, f64::max);
        let log = scale == Scale::Log;
        let smallest = totals.iter().copied().fold(f64::MAX, f64::min);
        let floor_value = if smallest < f64::MAX {
            10f64.powf(smallest.log10().floor()) / 2.0
        } else {
            0.5
        };
        let mut sorted = totals;
        sorted.sort_by(f64::total_cmp);
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
        // The longest bar shorter than `limit`, with its whisker (so that a
        // whisker and its label stay inside the chart), and the line.
        let uncut = |limit: f64| {
            shown
                .iter()
                .filter(|r| !r.is_cut(limit))
                .flat_map(|r| {
                    r.bars
                        .iter()
                        .map(|b| b.iter().sum::<f64>())
                        .chain(r.whisker.map(|w| w.1))
                })
                .chain(line.filter(|v| *v <= limit))
                .fold(0.0_f64, f64::max)
        };
        let cap = if !log && median > 0.0 && biggest > CUT * median {
            // Twice: a bar between CUT times the median and the edge the
            // first pass sets is drawn whole, so its whisker counts too.
            uncut(uncut(CUT * median) * EDGE)
        } else {
            biggest
        };
        Self {
            log,
            floor: if log { floor_value.log10() } else { 0.0 },
            floor_value,
            max: if log {
                (biggest.max(floor_value).log10().ceil() + 0.3).max(1.0)
            } else {
                (cap * EDGE).max(1e-9)
            },
        }
    }

    /// Where value `v` goes on the axis (clamped to its ends).
    fn at(&self, v: f64) -> f64 {
        if self.log {
            v.max(self.floor_value).log10()
        } else {
            v.min(self.max)
        }
    }
}

impl BarChart<'_> {
    /// The footnote, with a line naming the strategies not drawn.
    fn footnote_in_full(&self) -> String {
        let mut note = self.footnote.clone();
        let mut skipped = Vec::new();
        let mut failed = Vec::new();
        for r in &self.rows {
            match &r.missing {
                Some(why) if why.starts_with("skipped") => skipped.push(r.label.as_str()),
                Some(_) => failed.push(r.label.as_str()),
                None => {}
            }
        }
        if !skipped.is_empty() {
            note.push_str(&format!(
                "\nnot drawn, skipped (the report's table says why): {}",
                skipped.join(", ")
            ));
        }
        if !failed.is_empty() {
            note.push_str(&format!(
                "\nnot drawn, no run completed: {}",
                failed.join(", ")
            ));
        }
        note
    }

    /// Draws it as an SVG at `path`: the head (title, subtitle, legend),
    /// the value axis ([`XScale`]), a row per strategy shown
    /// ([`draw_row`](Self::draw_row)), the reference line, the value labels
    /// over everything, and the footnote.
    pub(crate) fn draw(&self, path: &Path) -> Result<()> {
        let shown: Vec<&Row> = self.rows.iter().filter(|r| r.missing.is_none()).collect();
        let footnote = self.footnote_in_full();
        let n = shown.len().max(1);
        let plot_height = 44 * n as u32 + 64;
        let foot = canvas::footnote_height(&footnote);
        let root = canvas::canvas(path, (960, HEAD + plot_height + foot))?;
        let (head, rest) = root.split_vertically(HEAD);
        let (body, _) = rest.split_vertically(plot_height);
        canvas::text(&head, &self.title, (480, 18), 20, &BLACK, HPos::Center)?;
        canvas::text(&head, &self.subtitle, (480, 42), 14, &GREY, HPos::Center)?;
        self.legend(&head, 70)?;

        let x = XScale::fit(&shown, self.line.as_ref().map(|l| l.0), self.scale);
        let mut chart = ChartBuilder::on(&body)
            .margin(12)
            .margin_right(30)
            .margin_top(4)
            .x_label_area_size(48)
            .y_label_area_size(130)
            .build_cartesian_2d(x.floor..x.max, 0.0..n as f64)
            .map_err(err)?;
        let show: &dyn Fn(f64) -> String = if x.log { &power_of_ten } else { &tick };
        canvas::axes(
            &mut chart,
            &Axis {
                desc: self.x_desc,
                log: x.log,
                labels: if x.log {
                    ((x.max - x.floor).ceil() as usize) * 2 + 1
                } else {
                    8
                },
                show,
            },
            None,
        )?;
        // Texts go on the root: the chart's pixel coordinates are the
        // root's, not the body's.
        let mut labels = Vec::new();
        for (i, row) in shown.iter().enumerate() {
            // Row i from the top.
            let (lx, ly) = chart.backend_coord(&(x.floor, (n - i) as f64 - 0.5));
            canvas::text(&root, &row.label, (lx - 8, ly), 15, &BLACK, HPos::Right)?;
            labels.push(self.draw_row(&mut chart, &x, row, (n - i) as f64)?);
        }
        if let Some((v, _)) = &self.line {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(x.at(*v), 0.0), (x.at(*v), n as f64)],
                    6,
                    4,
                    RED.stroke_width(2),
                ))
                .map_err(err)?;
        }
        // The labels last, over the bars and the line.
        for (label, at, color, h) in &labels {
            canvas::text(&root, label, *at, 13, color, *h)?;
        }
        canvas::footnote(&root, &footnote)?;
        canvas::finish(&root)
    }

    /// Draws one row's bars (stacked segments side by side), its whisker
    /// and, where a bar runs past the edge, the cut marks; returns its
    /// value label and where it goes. `slot_top` is the row's top in
    /// chart units (the rows count down from `n`).
    fn draw_row(
        &self,
        chart: &mut canvas::Plane<'_, '_>,
        x: &XScale,
        row: &Row,
        slot_top: f64,
    ) -> Result<(String, (i32, i32), RGBColor, HPos)> {
        let top = slot_top - 0.12;
        let bottom = slot_top - 1.0 + 0.12;
        let k = row.bars.len().max(1);
        let slot = (top - bottom) / k as f64;
        let mut end = x.floor;
        let mut row_cut = false;
        let stroke = |chart: &mut canvas::Plane<'_, '_>, points, width| {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    points,
                    BLACK.stroke_width(width),
                )))
                .map(|_| ())
                .map_err(err)
        };
        for (b, stack) in row.bars.iter().enumerate() {
            let hi = top - slot * b as f64;
            let lo = hi - slot * 0.92;
            let mut acc = 0.0;
            for (s, v) in stack.iter().enumerate() {
                let color = self
                    .series
                    .get(b)
                    .and_then(|ss| ss.get(s))
                    .map_or(BLUE, |(_, c)| *c);
                let (x0, x1) = (if acc == 0.0 { x.floor } else { x.at(acc) }, x.at(acc + v));
                acc += v;
                if x1 > x0 {
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(x0, lo), (x1, hi)],
                            color.filled(),
                        )))
                        .map_err(err)?;
                }
            }
            if !x.log && acc > x.max {
                row_cut = true;
                // Two white strokes across the bar near the edge: cut.
                for dx in [0.955, 0.975] {
                    let at = x.max * dx;
                    chart
                        .draw_series(std::iter::once(PathElement::new(
                            vec![
                                (at - x.max * 0.006, lo - 0.02),
                                (at + x.max * 0.006, hi + 0.02),
                            ],
                            WHITE.stroke_width(3),
                        )))
                        .map_err(err)?;
                }
            }
            end = end.max(x.at(acc));
        }
        // A cut bar's whisker would cross its label; its spread is in the
        // report's table.
        if let Some((lo, hi)) = row.whisker.filter(|_| !row_cut) {
            let y = top - slot * 0.46;
            if x.at(hi) > x.at(lo) {
                stroke(chart, vec![(x.at(lo), y), (x.at(hi), y)], 2)?;
            }
            for at in [lo, hi]
                .into_iter()
                .filter(|v| x.log || *v <= x.max)
                .map(|v| x.at(v))
            {
                stroke(chart, vec![(at, y - slot * 0.25), (at, y + slot * 0.25)], 2)?;
            }
            end = end.max(x.at(hi));
        }
        Ok(if row_cut {
            // No room past the edge: the value goes inside the bar.
            let at = chart.backend_coord(&(x.max * 0.94, top - slot * 0.46));
            (format!("{} (cut)", row.text), at, WHITE, HPos::Right)
        } else {
            let (px, py) = chart.backend_coord(&(end, (top + bottom) / 2.0));
            (row.text.clone(), (px + 8, py), BLACK, HPos::Left)
        })
    }

    /// The legend as one row of entries at height `y` of `head`.
    fn legend(&self, head: &canvas::Canvas<'_>, y: i32) -> Result<()> {
        let mut x = 142;
        let mut seen = Vec::new();
        for (name, color) in self.series.iter().flatten() {
            if name.is_empty() || seen.contains(name) {
                continue;
            }
            seen.push(*name);
            head.draw(&Rectangle::new(
                [(x, y - 6), (x + 14, y + 6)],
                color.filled(),
            ))
            .map_err(err)?;
            canvas::text(head, name, (x + 20, y), 14, &BLACK, HPos::Left)?;
            x += 20 + 8 * i32::try_from(name.chars().count()).unwrap_or(10) + 24;
        }
        if let Some((_, name)) = &self.line {
            head.draw(&PathElement::new(
                vec![(x, y), (x + 22, y)],
                RED.stroke_width(2),
            ))
            .map_err(err)?;
            canvas::text(head, name, (x + 28, y), 14, &BLACK, HPos::Left)?;
        }
        Ok(())
    }
}

fn row(r: &StrategyResult, bars: Vec<Vec<f64>>, text: String) -> Row {
    let missing = missing(r);
    Row {
        label: r.strategy.clone(),
        bars: if missing.is_some() { Vec::new() } else { bars },
        whisker: None,
        text,
        missing,
    }
}

fn footnote(export: &Export) -> String {
    format!(
        "{}, medians; {} x{}, {}; commit {}",
        things(
            export.runs as u64,
            "timed run each in a fresh process",
            "timed runs each in a fresh process"
        ),
        export.machine.cpu,
        export.machine.cores,
        export.machine.date,
        export.machine.commit
    )
}

/// The scenario's settings in one line: `500 bases, 20 ms latency, 50 in
/// flight`, then whatever else it sets.
pub(crate) fn settings(export: &Export) -> String {
    let s = &export.scenario;
    let mut parts = vec![
        things(s.bases as u64, "base", "bases"),
        format!(
            "{} latency",
            if s.latency_s > 0.0 {
                setting_secs(s.latency_s)
            } else {
                "no".to_owned()
            }
        ),
        format!("{} in flight", count(s.concurrency as u64)),
    ];
    if let Some(r) = s.rate_limit_per_s {
        parts.push(format!("rate limit {}/s", tick(r)));
    }
    if s.work_s > 0.0 {
        parts.push(format!("work {} per item", setting_secs(s.work_s)));
    }
    if s.tls {
        parts.push("HTTPS".to_owned());
    }
    if !s.faults.is_empty() {
        parts.push(s.faults.join(", "));
    }
    if let Some(c) = s.cancel_after_s {
        parts.push(format!("stopped at {}", setting_secs(c)));
    }
    if let Some(d) = s.deadline_s {
        parts.push(format!("deadline {}", setting_secs(d)));
    }
    parts.join(", ")
}

/// The ideal most strategies share here (the scenario's, at its
/// concurrency), if any.
fn scenario_ideal(export: &Export) -> Option<f64> {
    let mut ideals: Vec<f64> = export
        .results
        .iter()
        .filter(|r| missing(r).is_none() && r.ideal_s > 0.0)
        .map(|r| r.ideal_s)
        .collect();
    ideals.sort_by(f64::total_cmp);
    let same = |a: f64, b: f64| (a - b).abs() <= 1e-6 * a.max(b);
    ideals
        .iter()
        .copied()
        .max_by_key(|a| ideals.iter().filter(|b| same(*a, **b)).count())
}

/// Wall time per strategy: median bars, min..max whiskers, the ideal as a line.
fn wall_chart(export: &Export) -> BarChart<'static> {
    let name = &export.scenario.name;
    let rs = &export.results;
    let subtitle = settings(export);
    let ideal = scenario_ideal(export);
    BarChart {
        title: format!("{name}: wall time of one run (median, whiskers min..max)"),
        subtitle,
        x_desc: "seconds",
        series: vec![vec![("median wall time", BLUE)]],
        line: ideal.map(|v| {
            (
                v,
                format!(
                    "ideal at {} in flight: {} (no run can beat it)",
                    count(export.scenario.concurrency as u64),
                    secs(v)
                ),
            )
        }),
        scale: Scale::Linear,
        rows: rs
            .iter()
            .map(|r| {
                // A strategy that holds another number in flight (sync one,
                // threads all, process at most its workers) has an ideal of
                // its own: said beside its time.
                let own = ideal
                    .filter(|i| r.ideal_s > 0.0 && (r.ideal_s - i).abs() > 1e-6 * i)
                    .map(|_| format!(" (its own ideal {})", setting_secs(r.ideal_s)))
                    .unwrap_or_default();
                let mut row = row(
                    r,
                    vec![vec![r.median_s.unwrap_or(0.0)]],
                    r.median_s
                        .map(|m| format!("{}{own}", secs(m)))
                        .unwrap_or_default(),
                );
                if row.missing.is_none() {
                    row.whisker = r.min_s.zip(r.max_s);
                }
                row
            })
            .collect(),
        footnote: footnote(export),
    }
}

/// CPU per request per strategy, user and system stacked where the split
/// is known ([`rates_measure::SPLIT_MIN_CPU_S`]), the exact total alone
/// where it is not.
fn cpu_chart(export: &Export) -> BarChart<'static> {
    let name = &export.scenario.name;
    let rs = &export.results;
    let subtitle = settings(export);
    BarChart {
        title: format!("{name}: CPU per request, whole process tree"),
        subtitle,
        x_desc: "microseconds of CPU per request, process start-up included (user/system split \
                 sampled at clock ticks; not split under 0.2 s of CPU a run)",
        series: vec![vec![
            ("user", BLUE),
            ("system", ORANGE),
            ("total, too few ticks to split", GREY),
        ]],
        line: None,
        scale: Scale::Linear,
        rows: rs
            .iter()
            .map(|r| {
                // The bar is the figure its label gives (the median over
                // the runs of CPU per request), split by the user share.
                let total = r.cpu_per_request_us.unwrap_or(0.0);
                let bars = match (r.cpu_user_s, r.cpu_s()) {
                    (Some(user), Some(cpu)) if r.cpu_split_known() && cpu > 0.0 => {
                        let user = total * user / cpu;
                        vec![user, total - user, 0.0]
                    }
                    _ => vec![0.0, 0.0, total],
                };
                row(
                    r,
                    vec![bars],
                    r.cpu_per_request_us.map(micros).unwrap_or_default(),
                )
            })
            .collect(),
        footnote: footnote(export),
    }
}

/// Syscalls per request per strategy, against the floor of one write and
/// one read per request.
fn syscalls_chart(export: &Export) -> BarChart<'static> {
    let name = &export.scenario.name;
    BarChart {
        title: format!("{name}: syscalls per request, whole process tree"),
        subtitle: settings(export),
        x_desc: "syscalls per request sent, process start-up included, counted by the kernel",
        series: vec![vec![("syscalls per request", BLUE)]],
        line: Some((
            SYSCALL_FLOOR,
            "epoll floor: one write and one read per request (keep-alive)".to_owned(),
        )),
        scale: Scale::Linear,
        rows: export
            .results
            .iter()
            .map(|r| {
                let mut row = row(
                    r,
                    vec![vec![r.syscalls_per_request.unwrap_or(0.0)]],
                    super::table::syscalls_per_request(r),
                );
                if row.missing.is_none() && r.syscalls_per_request.is_none() {
                    row.missing = Some("n/a: not counted (see the table's notes)".to_owned());
                    row.bars = Vec::new();
                }
                row
            })
            .collect(),
        footnote: footnote(export),
    }
}

/// The fewest syscalls a request over a kept-alive connection can take:
/// one write of the request, one read of the answer.
pub(crate) const SYSCALL_FLOOR: f64 = 2.0;

/// Peak memory per strategy: its own process and its children stacked.
fn memory_chart(export: &Export) -> BarChart<'static> {
    let name = &export.scenario.name;
    let rs = &export.results;
    let subtitle = settings(export);
    let mib = |b: Option<u64>| b.map_or(0.0, |b| b as f64 / f64::from(1 << 20));
    BarChart {
        title: format!("{name}: peak memory (RSS summed over the process tree)"),
        subtitle,
        x_desc: "MiB",
        series: vec![vec![
            ("the strategy's own process", GREEN),
            ("its child processes", LIGHT_BLUE),
        ]],
        line: None,
        scale: Scale::Linear,
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
    }
}

/// Most threads and processes alive at once, on a log axis.
fn threads_chart(export: &Export) -> BarChart<'static> {
    let name = &export.scenario.name;
    let rs = &export.results;
    let subtitle = settings(export);
    BarChart {
        title: format!("{name}: OS threads and processes (most alive at once)"),
        subtitle,
        x_desc: "count",
        series: vec![vec![("threads", BLUE)], vec![("processes", ORANGE)]],
        line: None,
        scale: Scale::Log,
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
    }
}

/// Time from the stop to the run's return, where runs were stopped.
fn stop_chart(export: &Export) -> BarChart<'static> {
    let name = &export.scenario.name;
    let rs = &export.results;
    let subtitle = settings(export);
    BarChart {
        title: format!(
            "{name}: time from the stop to the run's return (median, whiskers \
             fastest..slowest)"
        ),
        subtitle,
        x_desc: "milliseconds (every thread joined, every child reaped)",
        series: vec![vec![("time to stop", BLUE)]],
        line: None,
        scale: Scale::Linear,
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
    }
}

/// Every chart of a scenario, with the name its file takes
/// (`SCENARIO-KIND.svg`): wall, cpu, memory, threads, and stop where runs
/// were stopped.
pub(crate) fn charts(export: &Export) -> Vec<(&'static str, BarChart<'static>)> {
    let mut charts = vec![
        ("wall", wall_chart(export)),
        ("cpu", cpu_chart(export)),
        ("memory", memory_chart(export)),
        ("threads", threads_chart(export)),
    ];
    if export
        .results
        .iter()
        .any(|r| r.syscalls_per_request.is_some())
    {
        charts.push(("syscalls", syscalls_chart(export)));
    }
    if super::table::has_stops(export) {
        charts.push(("stop", stop_chart(export)));
    }
    charts
}

#[cfg(test)]
mod axis_tests {
    use super::*;

    fn row(value: f64, whisker: Option<(f64, f64)>) -> Row {
        Row {
            label: String::new(),
            bars: vec![vec![value]],
            whisker,
            text: String::new(),
            missing: None,
        }
    }

    #[test]
    fn whiskers_of_bars_drawn_whole_fit_and_far_bars_are_cut() {
        // Stop times as on `cancel`: most near 3 ms, a 22 ms bar whose
        // slowest run took 28 ms, a 34.5 ms bar whose slowest took 40.6 ms,
        // and one at 60 ms.
        let mut rows: Vec<Row> = [0.5, 2.2, 2.3, 2.4, 2.5, 2.9, 3.4, 10.6, 15.3]
            .into_iter()
            .map(|v| row(v, Some((v * 0.9, v * 1.1))))
            .collect();
        rows.push(row(22.1, Some((21.8, 27.9))));
        rows.push(row(34.5, Some((20.2, 40.6))));
        rows.push(row(60.3, Some((59.0, 61.2))));
        let shown: Vec<&Row> = rows.iter().collect();
        let x = XScale::fit(&shown, None, Scale::Linear);
        // Every whisker of a bar drawn whole ends inside, with room for a
        // label after it.
        assert!(x.max >= 40.6 * EDGE - 1e-9, "{}", x.max);
        // The far bar is cut.
        assert!(60.3 > x.max, "{}", x.max);
        // With no bar far from the rest, the axis holds them all.
        let near: Vec<&Row> = rows[..9].iter().collect();
        let x = XScale::fit(&near, None, Scale::Linear);
        assert!((x.max - 15.3 * 1.1 * EDGE).abs() < 1e-9, "{}", x.max);
    }
}
