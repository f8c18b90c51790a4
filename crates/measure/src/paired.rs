//! Paired comparison of two builds (or two settings of one build): the
//! figures of one pair of runs, the rule that turns a strategy's pairs into
//! a verdict per figure, and the export of a whole paired comparison.
//!
//! Two runs of the same code on a shared machine differ by more than the
//! changes worth catching, because the machine's speed drifts from minute
//! to minute. A pair is one run of build A and one of build B taken back to
//! back (in the order A B, then B A, and so on), so a slow minute hits both;
//! what is judged is the distribution of the ratios `B / A`, one per pair,
//! not two medians taken at different times.
//!
//! # The rule
//!
//! For each figure the estimate is the median of the pairs' ratios, with a
//! distribution-free 95% interval for that median
//! ([`median_interval`]: the sign test's order
//! statistics, which assume neither symmetry nor normality of the ratios;
//! a bootstrap of the median is unreliable at the 10 to 60 pairs a gate
//! takes, and would make the verdict depend on a random seed). With the
//! figure's threshold `t` (a share: 0.05 for 5%):
//!
//! - `regressed`: the whole interval is above `1 + t/2` **and** the
//!   estimate is above `1 + t`: B is worse, by more than the threshold, and
//!   even the interval's low end is worse by half of it;
//! - `improved`: the same the other way round (the interval wholly below
//!   `1 / (1 + t/2)`, the estimate below `1 / (1 + t)`);
//! - `same`: the whole interval lies within `[1 / (1 + t), 1 + t]`;
//! - `inconclusive`: anything else (too few pairs, or too much spread to
//!   tell). Never a silent "ok".
//!
//! Why half the threshold as a margin, rather than "the interval excludes
//! 1": a gate judges dozens of figures (five for each of nine strategies),
//! and a 95% interval misses the truth one time in forty. For a figure whose
//! interval is as wide as its threshold (wall time and CPU per request of
//! the noisiest strategies, at the pairs a gate's budget allows), "wholly
//! above 1 and the estimate past the threshold" is then about one chance in
//! forty per figure on unchanged code, and some figure of a gate fires in
//! about one gate of five. The margin makes such a figure fire only when the
//! estimate is past one and a half thresholds, which unchanged code almost
//! never gives, while a real change of twice the threshold is still caught
//! as soon as the interval is narrower than the threshold. The error rates
//! this rule gives are measured by `scripts/gate-power.sh` (see
//! `docs/CI.md`).
//!
//! Every figure is "lower is better".

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Machine, RunRecord, ScenarioInfo, median, median_interval};

/// The version of the paired export's JSON shape ([`PairedExport`]).
pub const PAIRED_SCHEMA: u32 = 1;

/// The confidence level of every interval of a paired comparison.
pub const LEVEL: f64 = 0.95;

/// A figure of one run that a paired comparison judges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Figure {
    /// Wall time of the whole fetch (its ratio to the ideal moves the same
    /// way: both builds share the scenario's ideal).
    Wall,
    /// CPU (user + system) of the process tree per request sent.
    Cpu,
    /// Peak resident memory of the process tree.
    Memory,
    /// Voluntary context switches of the tree (waits).
    #[serde(rename = "ctx-vol")]
    CtxVoluntary,
    /// Involuntary context switches of the tree (preemptions).
    #[serde(rename = "ctx-invol")]
    CtxInvoluntary,
    /// Syscalls of the tree per request sent, counted by the kernel.
    Syscalls,
}

impl Figure {
    /// Every figure, in table order.
    pub const ALL: [Self; 6] = [
        Self::Wall,
        Self::Cpu,
        Self::Memory,
        Self::CtxVoluntary,
        Self::CtxInvoluntary,
        Self::Syscalls,
    ];

    /// The short name used in flags, tables and the export.
    pub fn name(self) -> &'static str {
        match self {
            Self::Wall => "wall",
            Self::Cpu => "cpu",
            Self::Memory => "memory",
            Self::CtxVoluntary => "ctx-vol",
            Self::CtxInvoluntary => "ctx-invol",
            Self::Syscalls => "syscalls",
        }
    }

    /// The figure called `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name.trim())
    }

    /// Its value in one run, in the unit of [`FigureValues`].
    pub fn of(self, values: &FigureValues) -> Option<f64> {
        match self {
            Self::Wall => Some(values.wall_s),
            Self::Cpu => values.cpu_per_request_us,
            Self::Memory => values.peak_rss_bytes.map(|b| b as f64),
            Self::CtxVoluntary => values.voluntary_ctx_switches.map(|c| c as f64),
            Self::CtxInvoluntary => values.involuntary_ctx_switches.map(|c| c as f64),
            Self::Syscalls => values.syscalls_per_request,
        }
    }

    /// True for counts of events, whose ratio is taken over a floor (see
    /// [`Figure::ratio`]).
    fn is_count(self) -> bool {
        matches!(self, Self::CtxVoluntary | Self::CtxInvoluntary)
    }

    /// The ratio `b / a` of one pair, `None` when it has no meaning (a
    /// figure missing, or zero in A for a figure that is not a count).
    ///
    /// Context switches are compared over a floor of one switch per ten
    /// requests (at least one): `(b + f) / (a + f)`. A strategy that hardly
    /// ever switches (an async runtime: a few dozen switches for thousands
    /// of requests, as many as the machine's scheduling happens to give)
    /// would otherwise be judged on a handful of switches, and a run with
    /// none would divide by zero. A blocking strategy switches about once per
    /// request, far above the floor, and is judged nearly as its counts.
    pub fn ratio(self, a: &FigureValues, b: &FigureValues) -> Option<f64> {
        let floor = (a.requests.max(b.requests) as f64 / 10.0).max(1.0);
        let (a, b) = (self.of(a)?, self.of(b)?);
        if self.is_count() {
            Some((b + floor) / (a + floor))
        } else {
            (a > 0.0 && a.is_finite() && b.is_finite()).then(|| b / a)
        }
    }
}

impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The judged figures of one run, as a pair keeps them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FigureValues {
    /// Wall time of the fetch, seconds.
    pub wall_s: f64,
    /// CPU per request sent, microseconds.
    pub cpu_per_request_us: Option<f64>,
    /// Peak RSS of the tree (never below the child's own high-water mark).
    pub peak_rss_bytes: Option<u64>,
    /// Voluntary context switches of the tree.
    pub voluntary_ctx_switches: Option<u64>,
    /// Involuntary context switches of the tree.
    pub involuntary_ctx_switches: Option<u64>,
    /// Syscalls of the tree per request sent (absent where the counter
    /// could not be opened, and in builds before it).
    #[serde(default)]
    pub syscalls_per_request: Option<f64>,
    /// Requests sent in the run, retries included.
    #[serde(default)]
    pub requests: u64,
    /// Bases that failed in the run.
    pub failed: usize,
}

impl From<&RunRecord> for FigureValues {
    fn from(r: &RunRecord) -> Self {
        Self {
            wall_s: r.child.wall_s,
            cpu_per_request_us: r.cpu_per_request_us(),
            peak_rss_bytes: r
                .usage
                .peak_rss_bytes
                .map(|b| b.max(r.child.own_peak_rss_bytes.unwrap_or(0))),
            voluntary_ctx_switches: r.usage.voluntary_ctx_switches,
            involuntary_ctx_switches: r.usage.involuntary_ctx_switches,
            syscalls_per_request: r.syscalls_per_request(),
            requests: r.child.requests,
            failed: r.child.failed,
        }
    }
}

/// One pair: a run of A and a run of B, back to back.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    /// `"ab"` when A ran first, `"ba"` when B did.
    pub order: String,
    /// A's run.
    pub a: FigureValues,
    /// B's run.
    pub b: FigureValues,
}

/// What became of one figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// B is worse, past the threshold, and the interval excludes no change.
    Regressed,
    /// B is better, past the threshold, and the interval excludes no change.
    Improved,
    /// The whole interval is within the threshold either way.
    Same,
    /// Neither can be said from these pairs.
    Inconclusive,
    /// Regressed, but by no more than a change named as accepted.
    Accepted,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Regressed => "REGRESSED",
            Self::Improved => "improved",
            Self::Same => "same",
            Self::Inconclusive => "inconclusive",
            Self::Accepted => "accepted",
        })
    }
}

/// The estimate of one figure's change over a strategy's pairs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The figure.
    pub figure: Figure,
    /// Median of the figure over A's runs (its unit: see [`FigureValues`]).
    pub a: Option<f64>,
    /// Median over B's runs.
    pub b: Option<f64>,
    /// Pairs that gave a ratio.
    pub pairs: usize,
    /// Median of the ratios `B / A`.
    pub ratio: Option<f64>,
    /// The 95% interval of that median, low end.
    pub low: Option<f64>,
    /// The 95% interval of that median, high end.
    pub high: Option<f64>,
    /// The threshold, as a share (0.05 for 5%).
    pub threshold: f64,
    /// Whether this figure decides the exit code.
    pub gated: bool,
    /// The verdict ([`judge`]).
    pub verdict: Verdict,
    /// The accepted change that turned `regressed` into `accepted`, and why.
    pub accepted: Option<String>,
}

impl Change {
    /// The change over `pairs` of `figure`, judged against `threshold`.
    pub fn over(figure: Figure, pairs: &[Pair], threshold: f64, gated: bool) -> Self {
        let ratios: Vec<f64> = pairs
            .iter()
            .filter_map(|p| figure.ratio(&p.a, &p.b))
            .collect();
        let side = |f: fn(&Pair) -> &FigureValues| {
            let v: Vec<f64> = pairs.iter().filter_map(|p| figure.of(f(p))).collect();
            median(&v)
        };
        let ratio = median(&ratios);
        let interval = median_interval(&ratios, LEVEL);
        Self {
            figure,
            a: side(|p| &p.a),
            b: side(|p| &p.b),
            pairs: ratios.len(),
            ratio,
            low: interval.map(|i| i.0),
            high: interval.map(|i| i.1),
            threshold,
            gated,
            verdict: judge(ratio, interval, threshold),
            accepted: None,
        }
    }

    /// True when more pairs would not change what can be said: the
    /// interval is known and narrower than the threshold, or no pair has
    /// the figure at all (not measured on this machine).
    pub fn settled(&self) -> bool {
        match (self.low, self.high) {
            (Some(lo), Some(hi)) => hi - lo < self.threshold,
            _ => self.pairs == 0 && self.a.is_none() && self.b.is_none(),
        }
    }
}

/// The verdict on a figure whose median ratio is `ratio`, with the 95%
/// interval `interval`, against `threshold` (a share): the rule in the
/// [module docs](self).
pub fn judge(ratio: Option<f64>, interval: Option<(f64, f64)>, threshold: f64) -> Verdict {
    let (Some(r), Some((lo, hi))) = (ratio, interval) else {
        return Verdict::Inconclusive;
    };
    let up = 1.0 + threshold;
    let down = 1.0 / up;
    let margin = 1.0 + threshold / 2.0;
    if lo > margin && r > up {
        Verdict::Regressed
    } else if hi < 1.0 / margin && r < down {
        Verdict::Improved
    } else if lo >= down && hi <= up {
        Verdict::Same
    } else {
        Verdict::Inconclusive
    }
}

/// One side of a paired comparison: which program, with which settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Side {
    /// The program's path.
    pub exe: String,
    /// What it says of its version (`rates 0.1.0`).
    pub version: String,
    /// The protocol of measured runs it speaks ([`crate::PROTOCOL`]).
    pub protocol: u32,
    /// Environment settings of its runs only, `NAME=VALUE`.
    pub env: Vec<String>,
}

/// One strategy in a paired comparison.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PairedStrategy {
    /// The strategy.
    pub strategy: String,
    /// One line per figure, in [`Figure::ALL`] order (empty when it did not run).
    pub changes: Vec<Change>,
    /// Every pair, in the order run.
    pub pairs: Vec<Pair>,
    /// Why it was not run, when it was not.
    pub skipped: Option<String>,
    /// Why it stopped with an error, when it did (the side named).
    pub error: Option<String>,
}

impl PairedStrategy {
    /// True when some gated figure regressed (and was not accepted).
    pub fn regressed(&self) -> bool {
        self.changes
            .iter()
            .any(|c| c.gated && c.verdict == Verdict::Regressed)
    }

    /// Bases failed in the runs of A and of B, summed over the pairs.
    pub fn failed(&self) -> (usize, usize) {
        self.pairs
            .iter()
            .fold((0, 0), |(a, b), p| (a + p.a.failed, b + p.b.failed))
    }
}

/// The export of one scenario's paired comparison (schema
/// [`PAIRED_SCHEMA`]): what `rates compare --against` prints with `--json`
/// and writes with `--export-json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PairedExport {
    /// Always [`PAIRED_SCHEMA`] for this shape.
    pub schema: u32,
    /// Always `"paired"` (the comparison export has no `kind`).
    pub kind: String,
    /// The tool and its version (the candidate's, B).
    pub tool: String,
    /// The scenario and its parameters.
    pub scenario: ScenarioInfo,
    /// The baseline.
    pub a: Side,
    /// The candidate.
    pub b: Side,
    /// Untimed runs of each side per strategy before the pairs.
    pub warmup: u32,
    /// Pairs always taken per strategy.
    pub min_pairs: u32,
    /// Most pairs taken per strategy.
    pub max_pairs: u32,
    /// The time budget of the scenario, seconds.
    pub max_time_s: f64,
    /// The confidence level of the intervals.
    pub level: f64,
    /// Each figure's threshold, as a share.
    pub thresholds: BTreeMap<String, f64>,
    /// Why no more pairs were taken.
    pub stopped: String,
    /// How long the pairs took, seconds (warm-up included).
    pub elapsed_s: f64,
    /// Where and when it ran.
    pub machine: Machine,
    /// `regressed`, `no regression`, or why there is no verdict.
    pub verdict: String,
    /// One per strategy, in registry order.
    pub strategies: Vec<PairedStrategy>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(ratios: &[f64]) -> Vec<Pair> {
        ratios
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let a = FigureValues {
                    wall_s: 1.0,
                    cpu_per_request_us: Some(10.0),
                    involuntary_ctx_switches: Some(0),
                    ..FigureValues::default()
                };
                let b = FigureValues {
                    wall_s: *r,
                    cpu_per_request_us: Some(10.0 * r),
                    involuntary_ctx_switches: Some(3),
                    ..FigureValues::default()
                };
                Pair {
                    order: if i % 2 == 0 { "ab" } else { "ba" }.into(),
                    a,
                    b,
                }
            })
            .collect()
    }

    #[test]
    fn the_rule() {
        let i = |lo, hi| Some((lo, hi));
        // Wholly above 1 + t/2 and past the threshold.
        assert_eq!(judge(Some(1.10), i(1.06, 1.14), 0.05), Verdict::Regressed);
        // Past the threshold and wholly above 1, but the low end within
        // half the threshold: not yet a verdict.
        assert_eq!(
            judge(Some(1.06), i(1.01, 1.12), 0.05),
            Verdict::Inconclusive
        );
        // Wholly above 1, but the estimate within the threshold: within the
        // band, so the same for this threshold.
        assert_eq!(judge(Some(1.02), i(1.01, 1.04), 0.05), Verdict::Same);
        // Past the threshold, but the interval reaches below 1.
        assert_eq!(
            judge(Some(1.10), i(0.99, 1.20), 0.05),
            Verdict::Inconclusive
        );
        assert_eq!(judge(Some(0.90), i(0.85, 0.94), 0.05), Verdict::Improved);
        assert_eq!(judge(Some(1.00), i(0.97, 1.03), 0.05), Verdict::Same);
        // Too wide to say anything.
        assert_eq!(
            judge(Some(1.00), i(0.90, 1.10), 0.05),
            Verdict::Inconclusive
        );
        assert_eq!(judge(None, None, 0.05), Verdict::Inconclusive);
        assert_eq!(judge(Some(1.5), None, 0.05), Verdict::Inconclusive);
    }

    #[test]
    fn a_change_is_the_median_ratio_with_its_interval() {
        let p = pairs(&[
            1.09, 1.11, 1.10, 1.12, 1.08, 1.10, 1.13, 1.07, 1.10, 1.11, 1.09, 1.10,
        ]);
        let cpu = Change::over(Figure::Cpu, &p, 0.05, true);
        assert_eq!(cpu.pairs, 12);
        assert!((cpu.ratio.unwrap() - 1.10).abs() < 1e-9);
        assert_eq!(cpu.a, Some(10.0));
        assert!((cpu.b.unwrap() - 11.0).abs() < 1e-9);
        assert!(cpu.low.unwrap() > 1.05 && cpu.high.unwrap() < 1.15);
        assert_eq!(cpu.verdict, Verdict::Regressed);
        assert!(cpu.settled());
        // Counts over a floor of one per ten requests, at least one:
        // (3 + 1) / (0 + 1), never a division by zero.
        let ctx = Change::over(Figure::CtxInvoluntary, &p, 0.5, false);
        assert_eq!(ctx.ratio, Some(4.0));
        let mut many = p.clone();
        for pair in &mut many {
            (pair.a.requests, pair.b.requests) = (60, 60);
        }
        // (3 + 6) / (0 + 6).
        let ctx = Change::over(Figure::CtxInvoluntary, &many, 0.5, false);
        assert_eq!(ctx.ratio, Some(1.5));
        // Memory was not measured: no ratio, inconclusive, and settled, as
        // more pairs cannot measure it either (a machine without the
        // figure must not keep the gate running to its budget).
        let memory = Change::over(Figure::Memory, &p, 0.05, true);
        assert_eq!((memory.pairs, memory.verdict), (0, Verdict::Inconclusive));
        assert!(memory.settled());
        // Measured but too few pairs for an interval: not settled.
        let wall = Change::over(Figure::Wall, &p[..1], 0.05, true);
        assert!(wall.low.is_none() && !wall.settled());
    }

    #[test]
    fn five_pairs_say_nothing_at_95_percent() {
        let p = pairs(&[1.5, 1.5, 1.5, 1.5, 1.5]);
        let c = Change::over(Figure::Wall, &p, 0.05, true);
        assert_eq!(c.verdict, Verdict::Inconclusive);
        let six = pairs(&[1.5; 6]);
        assert_eq!(
            Change::over(Figure::Wall, &six, 0.05, true).verdict,
            Verdict::Regressed
        );
    }

    #[test]
    fn figures_round_trip_by_name() {
        for f in Figure::ALL {
            assert_eq!(Figure::parse(f.name()), Some(f));
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(json, format!("\"{}\"", f.name()));
        }
        assert_eq!(Figure::parse("speed"), None);
    }
}
