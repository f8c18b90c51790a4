//! The summary `cargo bench` prints after each scenario's group, read from
//! criterion's own estimates (see `benches/strategies.rs`).
//!
//! Criterion analyses each benchmark and writes its estimates to
//! `<criterion home>/<group>/<strategy>/<bases>/new/estimates.json` (and,
//! when compared with a saved baseline, the relative change to
//! `change/estimates.json`). A [`GroupSummary`] reads those files back for
//! one group, so the summary shows exactly criterion's numbers: its typical
//! time per run (the slope of a linear sampling, else the mean) with its 95%
//! confidence interval. Nothing is timed twice. Files older than the group's
//! start are not read: they belong to an earlier `cargo bench`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use comfy_table::{Cell, CellAlignment, Table, presets};
use serde::Deserialize;

/// Where criterion writes its output, found as criterion finds it:
/// `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else the target
/// directory `cargo metadata` names, else `target/criterion`. The harness
/// hands the result to criterion as its output directory, so both agree.
pub fn criterion_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    #[derive(Deserialize)]
    struct Metadata {
        target_directory: PathBuf,
    }
    std::env::var_os("CARGO")
        .and_then(|cargo| {
            std::process::Command::new(cargo)
                .args(["metadata", "--format-version", "1", "--no-deps"])
                .stderr(std::process::Stdio::null())
                .output()
                .ok()
        })
        .and_then(|out| serde_json::from_slice::<Metadata>(&out.stdout).ok())
        .map_or_else(
            || PathBuf::from("target/criterion"),
            |m| m.target_directory.join("criterion"),
        )
}

/// One of criterion's estimates: a point and its confidence interval, in
/// the unit criterion wrote (nanoseconds for times, a fraction for changes).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Estimate {
    /// The point estimate.
    pub point_estimate: f64,
    /// Its confidence interval.
    pub confidence_interval: Interval,
}

/// A confidence interval as criterion writes it.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Interval {
    /// The level, 0.95 by default.
    pub confidence_level: f64,
    /// The lower bound.
    pub lower_bound: f64,
    /// The upper bound.
    pub upper_bound: f64,
}

#[derive(Deserialize)]
struct Estimates {
    mean: Estimate,
    slope: Option<Estimate>,
}

#[derive(Deserialize)]
struct ChangeEstimates {
    mean: Estimate,
}

/// What criterion measured for one strategy in one group.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// Criterion's typical time of one run (the slope if it sampled
    /// linearly, else the mean), in nanoseconds, with its interval.
    pub time: Estimate,
    /// The relative change against the baseline criterion compared with
    /// (`--baseline NAME`, or the previous run), if it compared.
    pub change: Option<Estimate>,
}

/// Reads what criterion wrote for `group/function/value` under `home`, if
/// it wrote it at or after `since`.
///
/// `Ok(None)`: nothing fresh (the benchmark was filtered out, or ran in
/// `--test` mode, which analyses nothing).
///
/// # Errors
///
/// A file that exists and is fresh but cannot be read or parsed, with its
/// path.
pub fn read_measured(
    home: &Path,
    group: &str,
    function: &str,
    value: &str,
    since: SystemTime,
) -> Result<Option<Measured>, String> {
    let dir = home
        .join(safe(group))
        .join(safe(function))
        .join(safe(value));
    let Some(est) = read_fresh::<Estimates>(&dir.join("new/estimates.json"), since)? else {
        return Ok(None);
    };
    let change = read_fresh::<ChangeEstimates>(&dir.join("change/estimates.json"), since)?;
    Ok(Some(Measured {
        time: est.slope.unwrap_or(est.mean),
        change: change.map(|c| c.mean),
    }))
}

fn read_fresh<T: serde::de::DeserializeOwned>(
    path: &Path,
    since: SystemTime,
) -> Result<Option<T>, String> {
    let fresh = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t >= since);
    if !fresh {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read criterion's {}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("cannot parse criterion's {}: {e}", path.display()))
}

/// A name as criterion makes it a directory name (its `make_filename_safe`
/// on Linux).
fn safe(name: &str) -> String {
    name.replace(['?', '"', '/', '\\', '*', '<', '>', ':', '|', '^'], "_")
}

/// One strategy's line of a group's summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The strategy's name.
    pub strategy: String,
    /// What criterion measured.
    pub measured: Measured,
    /// The scenario's ideal for this strategy's plan; `None` where it has
    /// none (`cancel`, stopped part-way).
    pub ideal: Option<Duration>,
}

/// The summary of one scenario's group: criterion's estimate per strategy,
/// its ratio to the ideal, the fastest, and what was skipped and why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupSummary {
    /// The scenario (criterion's group).
    pub scenario: String,
    /// Bases per run.
    pub bases: usize,
    /// The strategies criterion measured, in the registry's order.
    pub rows: Vec<Row>,
    /// The strategies not run, each with why.
    pub skipped: Vec<(String, String)>,
    /// Strategies run but with no fresh estimate (filtered out by name, or
    /// `--test` mode).
    pub unmeasured: Vec<String>,
    /// Criterion ran in `--test` mode: each benchmark once, nothing
    /// analysed.
    pub test_mode: bool,
}

impl GroupSummary {
    /// The row with the lowest estimate, and the others whose intervals
    /// overlap its interval (so they cannot be told apart from it).
    pub fn fastest(&self) -> Option<(&Row, Vec<&Row>)> {
        let best = self.rows.iter().min_by(|a, b| {
            a.measured
                .time
                .point_estimate
                .total_cmp(&b.measured.time.point_estimate)
        })?;
        let ci = best.measured.time.confidence_interval;
        let tied = self
            .rows
            .iter()
            .filter(|r| r.strategy != best.strategy)
            .filter(|r| r.measured.time.confidence_interval.lower_bound <= ci.upper_bound)
            .collect();
        Some((best, tied))
    }

    /// The summary as a table with a title and the fastest, for the
    /// terminal (`markdown == false`) or a Markdown file.
    pub fn render(&self, markdown: bool) -> String {
        let mut out = String::new();
        let title = format!(
            "{}: {} bases a run, criterion's estimate of one run's wall time",
            self.scenario, self.bases
        );
        if markdown {
            let _ = writeln!(out, "# `cargo bench`: {title}\n");
        } else {
            let _ = writeln!(out, "\n== {title}");
        }
        if self.rows.is_empty() && self.test_mode {
            let _ = writeln!(
                out,
                "each strategy ran once (--test): nothing is measured in this mode."
            );
        } else if self.rows.is_empty() {
            let _ = writeln!(
                out,
                "nothing measured{}.",
                if self.unmeasured.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (ran without analysis, as `--test` does, or filtered out: {})",
                        self.unmeasured.join(", ")
                    )
                }
            );
        } else {
            let level = self.rows[0]
                .measured
                .time
                .confidence_interval
                .confidence_level;
            let with_change = self.rows.iter().any(|r| r.measured.change.is_some());
            let mut table = Table::new();
            table.load_preset(if markdown {
                presets::ASCII_MARKDOWN
            } else {
                presets::UTF8_FULL_CONDENSED
            });
            let mut header = vec![
                "strategy".to_string(),
                "time".to_string(),
                format!("{:.0}% interval", level * 100.0),
                "ideal".to_string(),
                "x ideal".to_string(),
            ];
            if with_change {
                header.push("change vs baseline".to_string());
            }
            table.set_header(header);
            for row in &self.rows {
                let t = row.measured.time;
                let ci = t.confidence_interval;
                let mut cells = vec![
                    Cell::new(&row.strategy),
                    Cell::new(ns(t.point_estimate)).set_alignment(CellAlignment::Right),
                    Cell::new(format!("{} .. {}", ns(ci.lower_bound), ns(ci.upper_bound)))
                        .set_alignment(CellAlignment::Right),
                    Cell::new(row.ideal.map_or("-".into(), |d| ns(d.as_nanos() as f64)))
                        .set_alignment(CellAlignment::Right),
                    Cell::new(row.ideal.filter(|d| !d.is_zero()).map_or("-".into(), |d| {
                        format!("{:.2}", t.point_estimate / d.as_nanos() as f64)
                    }))
                    .set_alignment(CellAlignment::Right),
                ];
                if with_change {
                    cells.push(
                        Cell::new(row.measured.change.map_or("-".into(), |c| {
                            let ci = c.confidence_interval;
                            format!(
                                "{:+.1}% [{:+.1}, {:+.1}]",
                                c.point_estimate * 100.0,
                                ci.lower_bound * 100.0,
                                ci.upper_bound * 100.0
                            )
                        }))
                        .set_alignment(CellAlignment::Right),
                    );
                }
                table.add_row(cells);
            }
            let _ = writeln!(out, "{table}");
            if let Some((best, tied)) = self.fastest() {
                let _ = write!(out, "\nfastest: {}", best.strategy);
                if tied.is_empty() {
                    let _ = writeln!(
                        out,
                        ", clear of the rest (no other interval overlaps its own)"
                    );
                } else {
                    let names: Vec<&str> = tied.iter().map(|r| r.strategy.as_str()).collect();
                    let _ = writeln!(
                        out,
                        ", tied with {} (their intervals overlap its own)",
                        names.join(", ")
                    );
                }
            }
            if !self.unmeasured.is_empty() {
                let _ = writeln!(
                    out,
                    "not measured this time (filtered out): {}",
                    self.unmeasured.join(", ")
                );
            }
        }
        for (strategy, why) in &self.skipped {
            let _ = writeln!(out, "skipped {strategy}: {why}");
        }
        if markdown {
            let _ = writeln!(
                out,
                "\nTime: one whole `Strategy::fetch` of every base, start-up included, \
                 the server in the same process. x ideal: the time over \
                 `ceil(bases / in flight) x latency` (at least `bases / rate`) for the \
                 strategy's plan; 1.00 is the bound no run can beat. Change: criterion's \
                 estimate of the change against the baseline it compared with \
                 (`--baseline NAME`, else its previous run of this benchmark), with its \
                 interval. Criterion's report: `report/index.html` in this folder \
                 (one-at-a-time strategies: `../{}-one-at-a-time/report/index.html`).",
                self.scenario
            );
        }
        out
    }
}

/// A time in nanoseconds, in the unit that reads best.
fn ns(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.3} s", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2} ms", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} µs", v / 1e3)
    } else {
        format!("{v:.0} ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ESTIMATES: &str = r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":2.0e8,"upper_bound":2.2e8},"point_estimate":2.1e8,"standard_error":1.0e6},"median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":2.0e8,"upper_bound":2.2e8},"point_estimate":2.1e8,"standard_error":1.0e6},"median_abs_dev":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0},"point_estimate":1.5,"standard_error":0.1},"slope":null,"std_dev":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0},"point_estimate":1.5,"standard_error":0.1}}"#;

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rates-benches-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn reads_criterions_mean_when_it_did_not_sample_linearly() {
        let home = tempdir("mean");
        let since = SystemTime::now() - Duration::from_secs(5);
        write(&home, "fanout/tokio/500/new/estimates.json", ESTIMATES);
        let m = read_measured(&home, "fanout", "tokio", "500", since)
            .unwrap()
            .unwrap();
        assert_eq!(m.time.point_estimate, 2.1e8);
        assert_eq!(m.time.confidence_interval.upper_bound, 2.2e8);
        assert_eq!(m.change, None);
        // A file written before the group started is an earlier run's.
        let later = SystemTime::now() + Duration::from_secs(60);
        assert_eq!(
            read_measured(&home, "fanout", "tokio", "500", later).unwrap(),
            None
        );
        assert_eq!(
            read_measured(&home, "fanout", "smol", "500", since).unwrap(),
            None
        );
        write(&home, "fanout/smol/500/new/estimates.json", "{garbage");
        let err = read_measured(&home, "fanout", "smol", "500", since).unwrap_err();
        assert!(err.contains("fanout/smol/500/new/estimates.json"), "{err}");
        let _ = std::fs::remove_dir_all(&home);
    }

    #[test]
    fn prefers_the_slope_and_reads_the_change_against_a_baseline() {
        let home = tempdir("slope");
        let since = SystemTime::now() - Duration::from_secs(5);
        let with_slope = ESTIMATES.replace(
            r#""slope":null"#,
            r#""slope":{"confidence_interval":{"confidence_level":0.95,"lower_bound":9.0,"upper_bound":11.0},"point_estimate":10.0,"standard_error":0.5}"#,
        );
        write(&home, "gate/pool/4000/new/estimates.json", &with_slope);
        write(
            &home,
            "gate/pool/4000/change/estimates.json",
            r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":0.01,"upper_bound":0.05},"point_estimate":0.03,"standard_error":0.01},"median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":0.01,"upper_bound":0.05},"point_estimate":0.03,"standard_error":0.01}}"#,
        );
        let m = read_measured(&home, "gate", "pool", "4000", since)
            .unwrap()
            .unwrap();
        assert_eq!(m.time.point_estimate, 10.0);
        assert_eq!(m.change.unwrap().point_estimate, 0.03);
        let _ = std::fs::remove_dir_all(&home);
    }

    fn row(name: &str, point: f64, lo: f64, hi: f64, ideal_ms: u64) -> Row {
        Row {
            strategy: name.into(),
            measured: Measured {
                time: Estimate {
                    point_estimate: point,
                    confidence_interval: Interval {
                        confidence_level: 0.95,
                        lower_bound: lo,
                        upper_bound: hi,
                    },
                },
                change: None,
            },
            ideal: Some(Duration::from_millis(ideal_ms)),
        }
    }

    #[test]
    fn names_the_fastest_and_the_strategies_it_cannot_be_told_from() {
        let summary = GroupSummary {
            scenario: "fanout".into(),
            bases: 500,
            rows: vec![
                row("sync", 10.2e9, 10.1e9, 10.3e9, 10_000),
                row("tokio", 207e6, 206e6, 209e6, 200),
                row("smol", 208e6, 208.5e6, 210e6, 200),
                row("pool", 212e6, 211e6, 214e6, 200),
            ],
            skipped: vec![("threads".into(), "over budget".into())],
            unmeasured: vec![],
            test_mode: false,
        };
        let (best, tied) = summary.fastest().unwrap();
        assert_eq!(best.strategy, "tokio");
        let tied: Vec<&str> = tied.iter().map(|r| r.strategy.as_str()).collect();
        assert_eq!(tied, ["smol"]);
        let text = summary.render(false);
        assert!(text.contains("fastest: tokio, tied with smol"), "{text}");
        assert!(text.contains("207.00 ms"), "{text}");
        assert!(text.contains("206.00 ms .. 209.00 ms"), "{text}");
        assert!(text.contains("1.03"), "ratio to ideal: {text}");
        assert!(text.contains("skipped threads: over budget"), "{text}");
        let md = summary.render(true);
        assert!(md.starts_with("# `cargo bench`: fanout"), "{md}");
        assert!(md.contains("| tokio "), "{md}");
    }

    #[test]
    fn says_when_nothing_was_measured() {
        let summary = GroupSummary {
            scenario: "classic".into(),
            bases: 5,
            rows: vec![],
            skipped: vec![],
            unmeasured: vec!["tokio".into()],
            test_mode: false,
        };
        let text = summary.render(false);
        assert!(text.contains("nothing measured"), "{text}");
        assert!(text.contains("tokio"), "{text}");
        let test_mode = GroupSummary {
            test_mode: true,
            ..summary
        };
        let text = test_mode.render(false);
        assert!(text.contains("ran once (--test)"), "{text}");
    }
}
