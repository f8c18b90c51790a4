//! The one drawing layer every chart uses (plotters, SVG): the canvas with
//! its title and footnote, axes (linear or log, in the figure's unit),
//! legends, each strategy's colour, the note where a strategy has no figure,
//! and the error a drawing failure becomes. Bar charts, line charts,
//! heatmaps and history charts differ only in what they put on it.

use std::fmt::Display;
use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use rates_measure::StrategyResult;

pub(crate) const BLUE: RGBColor = RGBColor(59, 117, 175);
pub(crate) const LIGHT_BLUE: RGBColor = RGBColor(151, 191, 230);
pub(crate) const ORANGE: RGBColor = RGBColor(239, 133, 54);
pub(crate) const GREEN: RGBColor = RGBColor(81, 158, 62);
pub(crate) const RED: RGBColor = RGBColor(197, 58, 50);
pub(crate) const GREY: RGBColor = RGBColor(110, 110, 110);

/// A chart's drawing area: an SVG file.
pub(crate) type Canvas<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// A chart with two numeric axes.
pub(crate) type Plane<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// What any drawing failure becomes (the caller names the file).
pub(crate) fn err<E: Display>(e: E) -> anyhow::Error {
    anyhow!("plotters: {e}")
}

/// A white canvas of `size` pixels that draws to `path`.
pub(crate) fn canvas(path: &Path, size: (u32, u32)) -> Result<Canvas<'_>> {
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    Ok(root)
}

/// Writes the canvas out.
pub(crate) fn finish(root: &Canvas<'_>) -> Result<()> {
    root.present().map_err(err)
}

/// One line of text at `at` (pixels), `size` points, anchored by `h` on
/// the left, centre or right and centred vertically.
pub(crate) fn text(
    root: &Canvas<'_>,
    s: &str,
    at: (i32, i32),
    size: u32,
    color: &RGBColor,
    h: HPos,
) -> Result<()> {
    root.draw(&Text::new(
        s.to_owned(),
        at,
        ("sans-serif", size)
            .into_font()
            .color(color)
            .pos(Pos::new(h, VPos::Center)),
    ))
    .map_err(err)
}

/// The footnote (what was measured, where, when): its lines at the bottom
/// left, in grey, the last line 12 pixels above the edge.
pub(crate) fn footnote(root: &Canvas<'_>, note: &str) -> Result<()> {
    let (_, h) = root.dim_in_pixel();
    let lines: Vec<&str> = note.lines().collect();
    for (k, line) in lines.iter().enumerate() {
        let from_bottom = i32::try_from(lines.len() - k).unwrap_or(1);
        let y = i32::try_from(h).unwrap_or(0) + 4 - 16 * from_bottom;
        text(root, line, (12, y), 12, &GREY, HPos::Left)?;
    }
    Ok(())
}

/// Pixels a footnote of `note` takes at the bottom of a canvas.
pub(crate) fn footnote_height(note: &str) -> u32 {
    16 * u32::try_from(note.lines().count()).unwrap_or(1) + 8
}

/// One axis of a [`Plane`].
pub(crate) struct Axis<'f> {
    /// What the axis measures, in its unit.
    pub(crate) desc: &'f str,
    /// Whether the coordinates are log10 of the values.
    pub(crate) log: bool,
    /// About how many labels (on a log axis, one a power of ten).
    pub(crate) labels: usize,
    /// How a value reads on it (on a log axis, the power of ten it marks).
    pub(crate) show: &'f dyn Fn(f64) -> String,
}

impl Axis<'_> {
    /// The axis's description, saying when it is a log scale.
    fn described(&self) -> String {
        if self.log {
            format!("{} (log scale)", self.desc)
        } else {
            self.desc.to_owned()
        }
    }

    /// The label at coordinate `v`: the value it stands for, and on a log
    /// axis only at powers of ten.
    fn label(&self, v: f64) -> String {
        if !self.log {
            (self.show)(v)
        } else if (v - v.round()).abs() < 1e-6 {
            (self.show)(10f64.powf(v.round()))
        } else {
            String::new()
        }
    }
}

/// Draws the axes of `chart`: `x` along the bottom, and `y` up the left
/// (or no y labels and no horizontal grid, for bar charts whose rows are
/// labelled by the chart itself).
pub(crate) fn axes(chart: &mut Plane<'_, '_>, x: &Axis<'_>, y: Option<&Axis<'_>>) -> Result<()> {
    let x_label = |v: &f64| x.label(*v);
    let y_label = |v: &f64| y.map_or_else(String::new, |y| y.label(*v));
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(WHITE.mix(0.0))
        .x_desc(x.described())
        .x_labels(x.labels)
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15));
    match y {
        Some(y) => {
            mesh.y_desc(y.described()).y_labels(y.labels);
        }
        None => {
            mesh.disable_y_mesh().y_labels(0);
        }
    }
    mesh.draw().map_err(err)
}

/// The legend of the series labelled on `chart`, in its upper right corner.
pub(crate) fn legend<'a, 'b: 'a>(chart: &mut Plane<'a, 'b>) -> Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(err)
}

/// A line's legend mark in `color`, from `(x, y)`.
pub(crate) fn line_mark(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3))
}

/// Each known strategy's colour, by name: the same in every chart, and
/// unchanged when strategies are added or removed (a colour belongs to its
/// name, not to a position in a list). A new strategy gets a line here, or
/// else a colour of [`SPARE`] picked by a hash of its name.
const NAMED: &[(&str, RGBColor)] = &[
    ("sync", RGBColor(31, 119, 180)),
    ("threads", RGBColor(255, 127, 14)),
    ("pool", RGBColor(44, 160, 44)),
    ("rayon", RGBColor(214, 39, 40)),
    ("process", RGBColor(148, 103, 189)),
    ("tokio", RGBColor(140, 86, 75)),
    ("tokio-blocking", RGBColor(227, 119, 194)),
    ("smol", RGBColor(127, 127, 127)),
    ("async-std", RGBColor(128, 128, 0)),
    ("sharded", RGBColor(210, 105, 30)),
    ("compio-uring", RGBColor(0, 100, 200)),
    ("compio-epoll", RGBColor(120, 170, 230)),
    // External programs (clients/clients.toml): apart from the built-in
    // ones and from each other (maroon read as tokio's brown in a line
    // chart, so py-asyncio is near-black).
    ("py-sync", RGBColor(0, 128, 128)),
    ("py-threads", RGBColor(23, 190, 207)),
    ("py-threadpool", RGBColor(188, 189, 34)),
    ("py-processpool", RGBColor(0, 0, 128)),
    ("py-asyncio", RGBColor(20, 20, 20)),
    ("sh-curl", RGBColor(230, 190, 0)),
];

/// Colours for strategies not in [`NAMED`], picked by a hash of the name.
const SPARE: [RGBColor; 4] = [
    RGBColor(152, 223, 138),
    RGBColor(197, 176, 213),
    RGBColor(255, 152, 150),
    RGBColor(158, 218, 229),
];

/// A strategy's colour, the same in every chart: its own in [`NAMED`], else
/// one of [`SPARE`] by a hash of its name (stable from run to run).
pub(crate) fn color_of(strategy: &str) -> RGBColor {
    if let Some((_, color)) = NAMED.iter().find(|(name, _)| *name == strategy) {
        return *color;
    }
    let hash = strategy.bytes().fold(0usize, |h, b| {
        h.wrapping_mul(31).wrapping_add(usize::from(b))
    });
    SPARE[hash % SPARE.len()]
}

#[cfg(test)]
mod colour_tests {
    use super::*;

    #[test]
    fn every_registered_strategy_has_a_colour_of_its_own() {
        for name in rates_registry::names() {
            assert!(
                NAMED.iter().any(|(n, _)| *n == name),
                "{name} has no line in NAMED: give it a colour of its own"
            );
        }
        let mut colours: Vec<_> = NAMED.iter().map(|(_, c)| (c.0, c.1, c.2)).collect();
        colours.sort_unstable();
        colours.dedup();
        assert_eq!(colours.len(), NAMED.len(), "two strategies share a colour");
        // A known name keeps its own colour; another gets a spare one,
        // never a known strategy's.
        assert_eq!(color_of("tokio"), RGBColor(140, 86, 75));
        for name in ["mine", "go-net-http", "node-undici"] {
            let c = color_of(name);
            assert!(SPARE.contains(&c), "{name}");
            assert!(NAMED.iter().all(|(_, n)| *n != c), "{name}");
        }
    }
}

/// Why a strategy has no figure in a chart (skipped, or did not run), in a
/// line short enough to draw in its place.
pub(crate) fn missing(r: &StrategyResult) -> Option<String> {
    if let Some(why) = &r.skipped {
        let why = why.strip_prefix("skipped: ").unwrap_or(why);
        Some(format!("skipped: {}", shorten(why, 105)))
    } else if !r.ran() {
        Some(format!(
            "did not run: {}",
            shorten(r.error.as_deref().unwrap_or("no runs"), 90)
        ))
    } else {
        None
    }
}

/// `s` in at most about `n` characters: whole, or without the
/// parentheses at its end (the table below the chart has it all), or cut with `...`.
fn shorten(s: &str, n: usize) -> String {
    let fits = |t: &str| t.chars().count() <= n;
    if fits(s) {
        s.to_owned()
    } else if let Some(head) = s
        .match_indices(" (")
        .map(|(i, _)| &s[..i])
        .filter(|h| fits(h))
        .last()
    {
        head.to_owned()
    } else {
        format!("{}...", s.chars().take(n).collect::<String>())
    }
}

/// `10^k` written plainly, for the label of a power of ten `v` on a log
/// axis: `0.01`, `1`, `1000`.
pub(crate) fn power_of_ten(v: f64) -> String {
    let k = v.log10().round() as i32;
    if k < 0 {
        format!("{:.*}", k.unsigned_abs() as usize, 10f64.powi(k))
    } else {
        format!("{:.0}", 10f64.powi(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_notes_lose_their_parenthesis_before_being_cut() {
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(
            shorten("over budget (threads run in waves)", 12),
            "over budget"
        );
        assert_eq!(shorten("over (a) budget (b (c))", 16), "over (a) budget");
        assert_eq!(shorten("a long note without a parenthesis", 6), "a long...");
    }

    #[test]
    fn log_axes_label_powers_of_ten_only() {
        let show = |v: f64| power_of_ten(v);
        let axis = Axis {
            desc: "seconds",
            log: true,
            labels: 5,
            show: &show,
        };
        assert_eq!(axis.label(-2.0), "0.01");
        assert_eq!(axis.label(3.0), "1000");
        assert_eq!(axis.label(0.5), "");
        assert_eq!(axis.described(), "seconds (log scale)");
        let plain = |v: f64| format!("{v}");
        let linear = Axis {
            log: false,
            show: &plain,
            ..axis
        };
        assert_eq!(linear.label(2.5), "2.5");
        assert_eq!(linear.described(), "seconds");
    }

    #[test]
    fn every_strategy_has_its_own_colour() {
        let names = rates_registry::names();
        let colours: std::collections::HashSet<_> = names
            .iter()
            .map(|n| color_of(n))
            .map(|c| (c.0, c.1, c.2))
            .collect();
        assert_eq!(colours.len(), names.len());
    }
}
