//! Line charts of sweeps and heatmaps of the decision map (plotters, SVG).

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use rates_measure::StrategyResult;

use super::fmt::{bytes, micros, sig3};
use crate::sweep::{Knob, Point, show};

fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing a chart: {e}")
}

/// A strategy's colour, the same in every chart.
pub(crate) fn color_of(strategy: &str) -> RGBColor {
    const COLORS: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    let names = rates_registry::names();
    let i = names
        .iter()
        .position(|n| *n == strategy)
        .unwrap_or(names.len());
    COLORS[i % COLORS.len()]
}

/// How a point was measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mark {
    /// Ran as asked.
    Ran,
    /// Ran, capped or in waves (its note says how).
    Capped,
    /// Not run (skipped or failed): drawn on the x axis as a cross.
    Skipped,
}

/// One point of a line: the knob's value, the figure (none where it did
/// not run), and how it ran.
pub(crate) type LinePoint = (f64, Option<f64>, Mark);

/// A line chart: one line per strategy over the varied knob.
#[derive(Debug)]
pub(crate) struct LineChart {
    pub(crate) file: &'static str,
    pub(crate) title: String,
    pub(crate) knob: Knob,
    pub(crate) y_desc: &'static str,
    pub(crate) series: Vec<(String, Vec<LinePoint>)>,
    pub(crate) footnote: String,
}

fn spans_decades(values: impl Iterator<Item = f64>) -> bool {
    let v: Vec<f64> = values.collect();
    let (lo, hi) = v
        .iter()
        .fold((f64::MAX, 0.0_f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    !v.is_empty() && lo > 0.0 && hi / lo >= 100.0
}

impl LineChart {
    pub(crate) fn draw(&self, path: &Path) -> Result<()> {
        let xs = self.series.iter().flat_map(|s| s.1.iter().map(|p| p.0));
        let log_x = spans_decades(xs.clone());
        let ys = || {
            self.series
                .iter()
                .flat_map(|s| s.1.iter().filter_map(|p| p.1))
        };
        let log_y = spans_decades(ys());
        let tx = |x: f64| if log_x { x.log10() } else { x };
        let ty = |y: f64| if log_y { y.max(1e-12).log10() } else { y };
        let (x_lo, x_hi) = xs.fold((f64::MAX, f64::MIN), |(lo, hi), x| {
            (lo.min(tx(x)), hi.max(tx(x)))
        });
        let pad = ((x_hi - x_lo) * 0.05).max(1e-9);
        let (y_lo, y_hi) = ys().fold((f64::MAX, f64::MIN), |(lo, hi), y| {
            (lo.min(ty(y)), hi.max(ty(y)))
        });
        let (y_lo, y_hi) = if y_lo > y_hi {
            (0.0, 1.0)
        } else if log_y {
            (y_lo.floor(), y_hi.ceil())
        } else {
            (0.0, (y_hi * 1.15).max(1e-9))
        };
        let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&self.title, ("sans-serif", 20))
            .margin(14)
            .margin_right(170)
            .margin_bottom(24)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d((x_lo - pad)..(x_hi + pad), y_lo..y_hi)
            .map_err(err)?;
        let knob = self.knob;
        chart
            .configure_mesh()
            .light_line_style(WHITE.mix(0.0))
            .x_desc(format!(
                "{}{}",
                knob.title(),
                if log_x { " (log scale)" } else { "" }
            ))
            .y_desc(format!(
                "{}{}",
                self.y_desc,
                if log_y { " (log scale)" } else { "" }
            ))
            .x_labels(if log_x {
                (x_hi - x_lo).ceil() as usize + 1
            } else {
                8
            })
            .y_labels(if log_y {
                (y_hi - y_lo).ceil() as usize + 1
            } else {
                8
            })
            .x_label_formatter(&|v| {
                if !log_x {
                    show(knob, *v)
                } else if (v - v.round()).abs() < 1e-6 {
                    show(knob, 10f64.powf(v.round()))
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|v| {
                if !log_y {
                    sig3(*v)
                } else if (v - v.round()).abs() < 1e-6 {
                    super::chart::pow10_label(v.round() as i32)
                } else {
                    String::new()
                }
            })
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        for (name, points) in &self.series {
            let color = color_of(name);
            let ran: Vec<(f64, f64)> = points
                .iter()
                .filter_map(|&(x, y, _)| y.map(|y| (tx(x), ty(y))))
                .collect();
            chart
                .draw_series(LineSeries::new(ran.clone(), color.stroke_width(2)))
                .map_err(err)?;
            for &(x, y, mark) in points {
                match (y, mark) {
                    (Some(y), Mark::Capped) => {
                        chart
                            .draw_series(std::iter::once(Circle::new(
                                (tx(x), ty(y)),
                                6,
                                color.stroke_width(2),
                            )))
                            .map_err(err)?;
                    }
                    (Some(y), _) => {
                        chart
                            .draw_series(std::iter::once(Circle::new(
                                (tx(x), ty(y)),
                                4,
                                color.filled(),
                            )))
                            .map_err(err)?;
                    }
                    (None, _) => {
                        chart
                            .draw_series(std::iter::once(Cross::new(
                                (tx(x), y_lo),
                                7,
                                color.stroke_width(3),
                            )))
                            .map_err(err)?;
                    }
                }
            }
        }
        // The legend, in the right margin, in the lines' order.
        for (k, (name, _)) in self.series.iter().enumerate() {
            let y = 60 + 22 * i32::try_from(k).unwrap_or(0);
            let color = color_of(name);
            root.draw(&PathElement::new(
                vec![(800, y), (826, y)],
                color.stroke_width(3),
            ))
            .map_err(err)?;
            root.draw(&Text::new(
                name.clone(),
                (834, y),
                ("sans-serif", 14)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(err)?;
        }
        let (_, h) = root.dim_in_pixel();
        root.draw(&Text::new(
            self.footnote.clone(),
            (12, i32::try_from(h).unwrap_or(0) - 12),
            ("sans-serif", 12)
                .into_font()
                .color(&RGBColor(110, 110, 110))
                .pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(err)?;
        root.present().map_err(err)?;
        Ok(())
    }
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
         not run. {} runs per point. {}",
        points.first().map_or(0, |p| p.export.runs),
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
            knob,
            y_desc: "median wall time / ideal",
            series: series(|r| r.ratio_to_ideal),
            footnote: footnote.clone(),
        },
        LineChart {
            file: "wall",
            title: format!("median wall time against {k}"),
            knob,
            y_desc: "seconds",
            series: series(|r| r.median_s),
            footnote: footnote.clone(),
        },
        LineChart {
            file: "cpu",
            title: format!("CPU per request (whole process tree) against {k}"),
            knob,
            y_desc: "microseconds per request",
            series: series(|r| r.cpu_per_request_us),
            footnote: footnote.clone(),
        },
        LineChart {
            file: "memory",
            title: format!("peak memory (process tree) against {k}"),
            knob,
            y_desc: "MiB",
            series: series(|r| r.peak_rss_bytes.map(|b| b as f64 / f64::from(1 << 20))),
            footnote,
        },
    ]
}

/// One cell of a heatmap.
#[derive(Clone, Debug, Default)]
pub(crate) struct Cell {
    pub(crate) strategy: Option<String>,
    pub(crate) detail: String,
}

/// A grid: rows top to bottom, columns left to right.
#[derive(Debug)]
pub(crate) struct Heatmap {
    pub(crate) title: String,
    pub(crate) row_desc: String,
    pub(crate) col_desc: String,
    pub(crate) rows: Vec<String>,
    pub(crate) cols: Vec<String>,
    pub(crate) cells: Vec<Vec<Cell>>,
    pub(crate) footnote: String,
}

impl Heatmap {
    pub(crate) fn draw(&self, path: &Path) -> Result<()> {
        let (nr, nc) = (self.rows.len().max(1), self.cols.len().max(1));
        let (left, top, cw, ch) = (150i32, 70i32, 190i32, 84i32);
        let w = u32::try_from((left + cw * nc as i32 + 30).max(900)).unwrap_or(960);
        let h = u32::try_from(top + ch * nr as i32 + 90).unwrap_or(600);
        let root = SVGBackend::new(path, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let text = |s: &str, x: i32, y: i32, size: u32, hp: HPos| {
            Text::new(
                s.to_owned(),
                (x, y),
                ("sans-serif", size)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(hp, VPos::Center)),
            )
        };
        root.draw(&text(
            &self.title,
            i32::try_from(w).unwrap_or(0) / 2,
            20,
            19,
            HPos::Center,
        ))
        .map_err(err)?;
        root.draw(&text(
            &self.col_desc,
            left + cw * nc as i32 / 2,
            46,
            14,
            HPos::Center,
        ))
        .map_err(err)?;
        for (j, c) in self.cols.iter().enumerate() {
            root.draw(&text(
                c,
                left + cw * j as i32 + cw / 2,
                top - 8,
                14,
                HPos::Center,
            ))
            .map_err(err)?;
        }
        root.draw(&text(&self.row_desc, 10, top - 8, 14, HPos::Left))
            .map_err(err)?;
        for (i, r) in self.rows.iter().enumerate() {
            root.draw(&text(
                r,
                left - 12,
                top + ch * i as i32 + ch / 2,
                14,
                HPos::Right,
            ))
            .map_err(err)?;
            for (j, cell) in self
                .cells
                .get(i)
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .enumerate()
            {
                let (x0, y0) = (left + cw * j as i32, top + ch * i as i32);
                let fill = cell
                    .strategy
                    .as_deref()
                    .map_or(RGBColor(235, 235, 235), color_of);
                root.draw(&Rectangle::new(
                    [(x0, y0), (x0 + cw, y0 + ch)],
                    fill.mix(0.35).filled(),
                ))
                .map_err(err)?;
                root.draw(&Rectangle::new(
                    [(x0, y0), (x0 + cw, y0 + ch)],
                    WHITE.stroke_width(2),
                ))
                .map_err(err)?;
                let name = cell.strategy.clone().unwrap_or_else(|| "-".to_owned());
                root.draw(&text(
                    &name,
                    x0 + cw / 2,
                    y0 + ch / 2 - 11,
                    16,
                    HPos::Center,
                ))
                .map_err(err)?;
                root.draw(&text(
                    &cell.detail,
                    x0 + cw / 2,
                    y0 + ch / 2 + 13,
                    12,
                    HPos::Center,
                ))
                .map_err(err)?;
            }
        }
        for (k, line) in self.footnote.lines().enumerate() {
            root.draw(&Text::new(
                line.to_owned(),
                (10, top + ch * nr as i32 + 22 + 16 * k as i32),
                ("sans-serif", 12)
                    .into_font()
                    .color(&RGBColor(90, 90, 90))
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(err)?;
        }
        root.present().map_err(err)?;
        Ok(())
    }
}

/// `(value, detail)` for a heatmap cell's second line.
pub(crate) fn cpu_detail(r: &StrategyResult) -> String {
    r.cpu_per_request_us.map(micros).unwrap_or_default() + " CPU/req"
}

/// The memory line of a heatmap cell.
pub(crate) fn memory_detail(r: &StrategyResult) -> String {
    r.peak_rss_bytes.map(bytes).unwrap_or_default() + " peak"
}
