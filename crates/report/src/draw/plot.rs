//! Line charts of sweeps and heatmaps of the decision map (plotters, SVG).

use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;
use plotters::style::text_anchor::HPos;
use rates_measure::StrategyResult;

use super::canvas::{self, Axis, color_of, err, power_of_ten};
use super::fmt::{bytes, micros, tick};

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

/// How an x value reads on a line chart's axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum XUnit {
    /// A count: `1,000`.
    Count,
    /// Seconds in the unit that reads best: `10 ms` (and `0`).
    Seconds,
}

impl XUnit {
    /// `v` as the axis shows it.
    pub(crate) fn show(self, v: f64) -> String {
        match self {
            Self::Count => super::fmt::count(v.max(0.0) as u64),
            Self::Seconds if v == 0.0 => "0".to_owned(),
            Self::Seconds => super::fmt::secs(v),
        }
    }
}

/// A line chart: one line per strategy over the varied knob.
#[derive(Debug)]
pub(crate) struct LineChart {
    pub(crate) file: &'static str,
    pub(crate) title: String,
    /// The x axis: what it is, and how its values read.
    pub(crate) x_desc: &'static str,
    pub(crate) x_unit: XUnit,
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

/// Where a line chart's points go: each axis linear or log10, and the
/// bottom, where a point that did not run is marked.
#[derive(Debug, Clone, Copy)]
struct Frame {
    log_x: bool,
    log_y: bool,
    y_lo: f64,
}

impl Frame {
    fn x(&self, x: f64) -> f64 {
        if self.log_x { x.log10() } else { x }
    }

    fn y(&self, y: f64) -> f64 {
        if self.log_y { y.max(1e-12).log10() } else { y }
    }

    /// One strategy's line in its colour: a dot per point, a ring where
    /// it was capped, a cross at the bottom where it did not run.
    fn draw_line(
        &self,
        chart: &mut canvas::Plane<'_, '_>,
        name: &str,
        points: &[(f64, Option<f64>, Mark)],
    ) -> Result<()> {
        let color = color_of(name);
        let ran: Vec<(f64, f64)> = points
            .iter()
            .filter_map(|&(x, y, _)| y.map(|y| (self.x(x), self.y(y))))
            .collect();
        chart
            .draw_series(LineSeries::new(ran, color.stroke_width(2)))
            .map_err(err)?;
        for &(x, y, mark) in points {
            let x = self.x(x);
            match (y, mark) {
                (Some(y), Mark::Capped) => chart.draw_series(std::iter::once(Circle::new(
                    (x, self.y(y)),
                    6,
                    color.stroke_width(2),
                ))),
                (Some(y), _) => chart.draw_series(std::iter::once(Circle::new(
                    (x, self.y(y)),
                    4,
                    color.filled(),
                ))),
                (None, _) => chart.draw_series(std::iter::once(Cross::new(
                    (x, self.y_lo),
                    7,
                    color.stroke_width(3),
                ))),
            }
            .map_err(err)?;
        }
        Ok(())
    }
}

impl LineChart {
    /// Draws it as an SVG at `path`: axes fitted to the points (log where
    /// they span two decades or more), a line per strategy, the legend in
    /// the right margin, and the footnote.
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
        let root = canvas::canvas(path, (960, 600))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&self.title, ("sans-serif", 20))
            .margin(14)
            .margin_right(170)
            .margin_bottom(24)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d((x_lo - pad)..(x_hi + pad), y_lo..y_hi)
            .map_err(err)?;
        let unit = self.x_unit;
        let show_x = |v: f64| unit.show(v);
        let show_y: &dyn Fn(f64) -> String = if log_y { &power_of_ten } else { &tick };
        canvas::axes(
            &mut chart,
            &Axis {
                desc: self.x_desc,
                log: log_x,
                labels: if log_x {
                    (x_hi - x_lo).ceil() as usize + 1
                } else {
                    8
                },
                show: &show_x,
            },
            Some(&Axis {
                desc: self.y_desc,
                log: log_y,
                labels: if log_y {
                    (y_hi - y_lo).ceil() as usize + 1
                } else {
                    8
                },
                show: show_y,
            }),
        )?;
        let frame = Frame { log_x, log_y, y_lo };
        for (name, points) in &self.series {
            frame.draw_line(&mut chart, name, points)?;
        }
        // The legend, in the right margin, in the lines' order.
        for (k, (name, _)) in self.series.iter().enumerate() {
            let y = 60 + 22 * i32::try_from(k).unwrap_or(0);
            let color = color_of(name);
            root.draw(&canvas::line_mark(color)((800, y)))
                .map_err(err)?;
            canvas::text(&root, name, (826, y), 14, &BLACK, HPos::Left)?;
        }
        canvas::footnote(&root, &self.footnote)?;
        canvas::finish(&root)
    }
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
        // The colour legend: each strategy named in a cell, in the
        // registry's order, in a column right of the grid.
        let names = rates_registry::names();
        let mut shown: Vec<&str> = self
            .cells
            .iter()
            .flatten()
            .filter_map(|c| c.strategy.as_deref())
            .collect();
        shown.sort_by_key(|s| names.iter().position(|n| n == s).unwrap_or(names.len()));
        shown.dedup();
        let legend_x = left + cw * nc as i32 + 30;
        let w = u32::try_from((legend_x + 170).max(900)).unwrap_or(960);
        let grid_bottom = (top + ch * nr as i32).max(top + 24 * shown.len() as i32);
        let h = u32::try_from(grid_bottom + 20).unwrap_or(600)
            + canvas::footnote_height(&self.footnote);
        let root = canvas::canvas(path, (w, h))?;
        let text = |s: &str, x: i32, y: i32, size: u32, hp: HPos| {
            canvas::text(&root, s, (x, y), size, &BLACK, hp)
        };
        text(
            &self.title,
            i32::try_from(w).unwrap_or(0) / 2,
            20,
            19,
            HPos::Center,
        )?;
        text(
            &self.col_desc,
            left + cw * nc as i32 / 2,
            46,
            14,
            HPos::Center,
        )?;
        for (j, c) in self.cols.iter().enumerate() {
            text(c, left + cw * j as i32 + cw / 2, top - 8, 14, HPos::Center)?;
        }
        text(&self.row_desc, 10, top - 8, 14, HPos::Left)?;
        for (i, r) in self.rows.iter().enumerate() {
            text(r, left - 12, top + ch * i as i32 + ch / 2, 14, HPos::Right)?;
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
                text(&name, x0 + cw / 2, y0 + ch / 2 - 11, 16, HPos::Center)?;
                text(
                    &cell.detail,
                    x0 + cw / 2,
                    y0 + ch / 2 + 13,
                    12,
                    HPos::Center,
                )?;
            }
        }
        for (k, name) in shown.iter().enumerate() {
            let y = top + 12 + 24 * k as i32;
            root.draw(&Rectangle::new(
                [(legend_x, y - 8), (legend_x + 16, y + 8)],
                color_of(name).mix(0.35).filled(),
            ))
            .map_err(err)?;
            text(name, legend_x + 24, y, 14, HPos::Left)?;
        }
        canvas::footnote(&root, &self.footnote)?;
        canvas::finish(&root)
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
