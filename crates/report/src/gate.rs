//! The regression gate: a comparison's figures against a baseline export.
//!
//! The rule, per strategy and metric (every gated metric is "lower is
//! better"): with baseline value `b`, current value `c` and the runs' median
//! absolute deviations `mad_b` and `mad_c`, the change `d = c - b` is
//! - `regressed` when `d > threshold x b` **and** `d > 2 x (mad_b + mad_c)`;
//! - `improved` when `-d` passes both tests;
//! - `noise` when `|d|` passes the threshold but not the spread test;
//! - `ok` otherwise.
//!
//! The threshold alone would flag every noisy run; the spread alone would
//! flag tiny, steady changes that matter to nobody. A strategy that looks
//! regressed is measured once more, and the verdict is the re-run's.
//!
//! Memory is judged at equal threads. Where a strategy's threads are not
//! fixed by the scenario (`threads` starts one per base and holds as many as
//! are alive at once), its peak memory follows how many happened to overlap,
//! which is the machine's scheduling: the same build gave 284 threads and
//! 10.3 MiB in one fanout run and 482 threads and 11.3 MiB in another. So
//! when the peak thread count moved by more than the memory limit, a memory
//! change counts only if memory per thread alive moved the same way past
//! the limit too; otherwise it is `noise` and the line names both counts.
//! For a strategy of more than one process the unit is processes instead:
//! each holds a copy of the program, and its threads say little (`process`
//! lost a third of its threads when its reader threads went, and none of
//! its memory).

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use rates_measure::{Export, StrategyResult};

use crate::draw::fmt::{bytes, micros, ratio, secs};

/// A gated metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Metric {
    /// Median wall time / ideal (scenarios with an ideal).
    Ratio,
    /// CPU per request.
    Cpu,
    /// Peak memory of the process tree.
    Memory,
    /// Median wall time, absolute (only when asked: it depends on the machine).
    Wall,
}

impl Metric {
    pub(crate) const ALL: [Self; 4] = [Self::Ratio, Self::Cpu, Self::Memory, Self::Wall];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Ratio => "ratio",
            Self::Cpu => "cpu",
            Self::Memory => "memory",
            Self::Wall => "wall",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s.trim())
            .ok_or_else(|| {
                anyhow::anyhow!("unknown metric `{s}`: choose ratio, cpu, memory or wall")
            })
    }

    /// The value and its spread in `r`.
    pub(crate) fn of(self, r: &StrategyResult) -> Option<(f64, f64)> {
        match self {
            Self::Ratio => {
                let ideal = r.ideal_s;
                let walls: Vec<f64> = r.runs_s.iter().map(|w| w / ideal).collect();
                r.ratio_to_ideal
                    .filter(|_| ideal > 0.0)
                    .map(|v| (v, rates_measure::mad(&walls).unwrap_or(0.0)))
            }
            Self::Cpu => r
                .cpu_per_request_us
                .map(|v| (v, r.cpu_per_request_mad_us.unwrap_or(0.0))),
            Self::Memory => r
                .peak_rss_bytes
                .map(|v| (v as f64, r.peak_rss_mad_bytes.unwrap_or(0) as f64)),
            Self::Wall => r.median_s.map(|v| (v, r.mad_s.unwrap_or(0.0))),
        }
    }

    fn show(self, v: f64) -> String {
        match self {
            Self::Ratio => ratio(v),
            Self::Cpu => micros(v),
            Self::Memory => bytes(v.max(0.0) as u64),
            Self::Wall => secs(v),
        }
    }
}

/// Which metrics are gated and how much each may regress.
#[derive(Clone, Debug)]
pub(crate) struct Rules {
    pub(crate) metrics: Vec<Metric>,
    /// Allowed regression per metric, as a share (0.10 = 10%).
    pub(crate) max: [(Metric, f64); 4],
}

impl Rules {
    /// `gate`: extra metrics (`wall`) or a full list; `max`: `10%`, or
    /// `cpu=20%,memory=15%` (a bare value sets every metric).
    pub(crate) fn parse(gate: Option<&str>, max: &str) -> Result<Self> {
        let mut metrics = vec![Metric::Ratio, Metric::Cpu, Metric::Memory];
        if let Some(list) = gate {
            for m in list.split(',') {
                let m = Metric::parse(m)?;
                if !metrics.contains(&m) {
                    metrics.push(m);
                }
            }
        }
        let mut rules = Self {
            metrics,
            max: Metric::ALL.map(|m| (m, 0.10)),
        };
        for part in max.split(',') {
            let (metric, value) = match part.split_once('=') {
                Some((m, v)) => (Some(Metric::parse(m)?), v),
                None => (None, part),
            };
            let share = limit(value)?;
            for (m, v) in &mut rules.max {
                if metric.is_none_or(|x| x == *m) {
                    *v = share;
                }
            }
        }
        Ok(rules)
    }

    fn max_for(&self, m: Metric) -> f64 {
        self.max.iter().find(|(x, _)| *x == m).map_or(0.10, |x| x.1)
    }
}

/// A regression limit: `10%` or `0.1`; more than 100% is allowed (`200%`
/// lets a figure triple before it fails).
fn limit(value: &str) -> Result<f64> {
    let v = value.trim();
    let share = match v.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => v.parse::<f64>(),
    };
    match share {
        Ok(s) if s.is_finite() && s >= 0.0 => Ok(s),
        _ => bail!("in --max-regression: `{value}` is not a limit: write 10% or cpu=20%"),
    }
}

/// What became of one figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Ok,
    Improved,
    Regressed,
    Noise,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ok => "ok",
            Self::Improved => "improved",
            Self::Regressed => "REGRESSED",
            Self::Noise => "noise",
        })
    }
}

/// The verdict on `current` against `baseline`, each `(value, spread)`.
pub(crate) fn verdict(baseline: (f64, f64), current: (f64, f64), max_share: f64) -> Verdict {
    let (b, mad_b) = baseline;
    let (c, mad_c) = current;
    let d = c - b;
    let past_threshold = d.abs() > max_share * b.abs();
    let past_spread = d.abs() > 2.0 * (mad_b + mad_c);
    match (past_threshold, past_spread) {
        (true, true) if d > 0.0 => Verdict::Regressed,
        (true, true) => Verdict::Improved,
        (true, false) => Verdict::Noise,
        _ => Verdict::Ok,
    }
}

/// One line of the gate's table.
#[derive(Clone, Debug)]
pub(crate) struct Line {
    pub(crate) strategy: String,
    pub(crate) metric: Option<Metric>,
    pub(crate) baseline: String,
    pub(crate) current: String,
    pub(crate) change: String,
    pub(crate) verdict: String,
    pub(crate) regressed: bool,
}

/// Every strategy's gated figures against the baseline.
pub(crate) fn judge(baseline: &Export, current: &Export, rules: &Rules) -> Vec<Line> {
    let mut lines = Vec::new();
    for cur in &current.results {
        let Some(base) = baseline.results.iter().find(|b| b.strategy == cur.strategy) else {
            lines.push(note(&cur.strategy, "not in the baseline: not gated"));
            continue;
        };
        if !cur.ran() || !base.ran() {
            let why = if !cur.ran() {
                "did not run now"
            } else {
                "did not run in the baseline"
            };
            lines.push(note(&cur.strategy, why));
            continue;
        }
        for &m in &rules.metrics {
            let (Some(b), Some(c)) = (m.of(base), m.of(cur)) else {
                continue;
            };
            let mut v = verdict(b, c, rules.max_for(m));
            let mut why = String::new();
            if m == Metric::Memory
                && v != Verdict::Ok
                && let Some((w, unit)) = units_moved(base, cur, rules.max_for(m))
            {
                let per = |x: (f64, f64), n: f64| (x.0 / n, x.1 / n);
                if verdict(per(b, w.0), per(c, w.1), rules.max_for(m)) != v {
                    v = Verdict::Noise;
                    why = format!(" ({} vs {} {unit})", w.1, w.0);
                }
            }
            let change = if b.0 == 0.0 {
                "-".to_owned()
            } else {
                format!("{:+.1}%", (c.0 - b.0) / b.0 * 100.0)
            };
            lines.push(Line {
                strategy: cur.strategy.clone(),
                metric: Some(m),
                baseline: format!("{} +/- {}", m.show(b.0), m.show(b.1)),
                current: format!("{} +/- {}", m.show(c.0), m.show(c.1)),
                change,
                verdict: format!("{v}{why}"),
                regressed: v == Verdict::Regressed,
            });
        }
    }
    for base in &baseline.results {
        if !current.results.iter().any(|c| c.strategy == base.strategy) {
            lines.push(note(&base.strategy, "in the baseline but not run now"));
        }
    }
    lines
}

/// What a strategy's memory grows with, as peak counts `(baseline,
/// current)`, when they differ by more than `max_share` of the baseline's:
/// processes where it runs more than one (each holds a copy of the
/// program), else threads (each holds a stack).
fn units_moved(
    base: &StrategyResult,
    cur: &StrategyResult,
    max_share: f64,
) -> Option<((f64, f64), &'static str)> {
    let many = |r: &StrategyResult| r.peak_processes.is_some_and(|p| p > 1);
    let processes = (many(base) || many(cur)).then_some((base.peak_processes, cur.peak_processes));
    let ((b, c), unit) = match processes {
        Some(counts) => (counts, "processes"),
        None => ((base.peak_threads, cur.peak_threads), "threads"),
    };
    let (b, c) = (b? as f64, c? as f64);
    (b > 0.0 && c > 0.0 && (c - b).abs() > max_share * b).then_some(((b, c), unit))
}

fn note(strategy: &str, why: &str) -> Line {
    Line {
        strategy: strategy.to_owned(),
        metric: None,
        baseline: String::new(),
        current: String::new(),
        change: String::new(),
        verdict: why.to_owned(),
        regressed: false,
    }
}

/// Refuses a baseline of other scenario parameters; returns a warning when
/// it was made on another machine.
pub(crate) fn check_comparable(
    baseline: &Export,
    current: &Export,
    path: &Path,
) -> Result<Option<String>> {
    let (b, c) = (&baseline.scenario, &current.scenario);
    let same = b.name == c.name
        && b.bases == c.bases
        && b.latency_s == c.latency_s
        && b.concurrency == c.concurrency
        && b.rate_limit_per_s == c.rate_limit_per_s
        && b.faults == c.faults
        && b.work_s == c.work_s
        && b.tls == c.tls;
    if !same {
        bail!(
            "{} is a baseline of `{}` ({} bases, {} s latency, concurrency {}), not of this \
             `{}` ({} bases, {} s, concurrency {}): compare like with like, or refresh it with \
             --save-baseline",
            path.display(),
            b.name,
            b.bases,
            b.latency_s,
            b.concurrency,
            c.name,
            c.bases,
            c.latency_s,
            c.concurrency
        );
    }
    let (mb, mc) = (baseline.machine.identity(), current.machine.identity());
    Ok((mb != mc).then(|| {
        format!(
            "warning: {} was made on another machine ({mb}; this is {mc}): ratios to the ideal \
             travel between machines, CPU and memory less so",
            path.display()
        )
    }))
}

/// The baseline file for `scenario`: `path` itself, or `path/SCENARIO.json`
/// when it is a folder.
pub(crate) fn baseline_file(path: &Path, scenario: &str) -> PathBuf {
    if path.is_dir() {
        path.join(format!("{scenario}.json"))
    } else {
        path.to_owned()
    }
}

/// The gate's verdicts as a table, with the rule and the re-runs.
pub(crate) fn table(
    scenario: &str,
    baseline: &std::path::Path,
    lines: &[Line],
    rerun: &[String],
    rules: &Rules,
) -> String {
    let mut t = crate::draw::table::table(
        crate::draw::table::Style::Terminal,
        &["strategy", "metric", "baseline", "now", "change", "verdict"],
    );
    // One line per verdict, however long: a wrapped verdict reads as two.
    t.set_content_arrangement(comfy_table::ContentArrangement::Disabled);
    for l in lines {
        let verdict = if rerun.contains(&l.strategy) && l.metric.is_some() {
            format!("{} (re-run)", l.verdict)
        } else {
            l.verdict.clone()
        };
        t.add_row(vec![
            l.strategy.clone(),
            l.metric.map(|m| m.name().to_owned()).unwrap_or_default(),
            l.baseline.clone(),
            l.current.clone(),
            l.change.clone(),
            verdict,
        ]);
    }
    let regressed: Vec<String> = lines
        .iter()
        .filter(|l| l.regressed)
        .map(|l| format!("{} {}", l.strategy, l.metric.map_or("", |m| m.name())))
        .collect();
    let limits: Vec<String> = rules
        .metrics
        .iter()
        .map(|m| {
            let share = rules.max.iter().find(|x| x.0 == *m).map_or(0.1, |x| x.1);
            format!("{} {:.0}%", m.name(), share * 100.0)
        })
        .collect();
    let rule = format!(
        "A figure regresses when it is worse by more than its limit ({}) and by more than \
         twice the two runs' spreads (+/- MAD) combined; memory is judged at equal threads \
         (when the peak thread count moved past the limit, per thread alive too; per \
         process for a strategy of several processes); a strategy \
         that looks regressed is measured once more and judged on that run.",
        limits.join(", ")
    );
    format!(
        "Gate: {scenario} against {}\n{t}\n{}\n{}\n\n",
        baseline.display(),
        if regressed.is_empty() {
            "no regression".to_owned()
        } else {
            format!("REGRESSED: {}", regressed.join(", "))
        },
        crate::draw::wrap(&rule, 100)
    )
}

#[cfg(test)]
mod tests {
    use rates_measure::{Machine, ScenarioInfo};

    use super::*;

    fn row(name: &str, cpu: f64, cpu_mad: f64, rss: u64) -> StrategyResult {
        StrategyResult {
            strategy: name.into(),
            median_s: Some(0.21),
            mad_s: Some(0.001),
            ideal_s: 0.2,
            ratio_to_ideal: Some(1.05),
            runs_s: vec![0.21, 0.21, 0.211],
            cpu_per_request_us: Some(cpu),
            cpu_per_request_mad_us: Some(cpu_mad),
            peak_rss_bytes: Some(rss),
            peak_rss_mad_bytes: Some(0),
            ..StrategyResult::default()
        }
    }

    fn export(rows: Vec<StrategyResult>) -> Export {
        Export {
            schema: 1,
            scenario: ScenarioInfo {
                name: "fanout".into(),
                bases: 500,
                latency_s: 0.02,
                concurrency: 50,
                ..ScenarioInfo::default()
            },
            machine: Machine {
                cpu: "X".into(),
                cores: 2,
                ..Machine::default()
            },
            results: rows,
            ..Export::default()
        }
    }

    fn rules() -> Rules {
        Rules::parse(None, "10%").unwrap()
    }

    fn verdict_of<'a>(lines: &'a [Line], strategy: &str, m: Metric) -> &'a str {
        &lines
            .iter()
            .find(|l| l.strategy == strategy && l.metric == Some(m))
            .unwrap()
            .verdict
    }

    #[test]
    fn the_rule() {
        // Past the threshold and the spread: regressed, or improved.
        assert_eq!(verdict((100.0, 2.0), (120.0, 2.0), 0.1), Verdict::Regressed);
        assert_eq!(verdict((100.0, 2.0), (80.0, 2.0), 0.1), Verdict::Improved);
        // Past the threshold but within twice the runs' spread: noise.
        assert_eq!(verdict((100.0, 6.0), (120.0, 6.0), 0.1), Verdict::Noise);
        // Within the threshold, however steady: ok.
        assert_eq!(verdict((100.0, 0.0), (109.0, 0.0), 0.1), Verdict::Ok);
        assert_eq!(verdict((100.0, 0.0), (91.0, 0.0), 0.1), Verdict::Ok);
    }

    #[test]
    fn thirty_percent_better_baselines_regress_every_metric() {
        let now = export(vec![row("tokio", 20.0, 0.5, 10 << 20)]);
        let mut better = now.clone();
        let b = &mut better.results[0];
        b.cpu_per_request_us = Some(14.0);
        b.peak_rss_bytes = Some(7 << 20);
        b.ratio_to_ideal = Some(1.05 * 0.7);
        let lines = judge(&better, &now, &rules());
        for m in [Metric::Ratio, Metric::Cpu, Metric::Memory] {
            assert_eq!(verdict_of(&lines, "tokio", m), "REGRESSED", "{m:?}");
        }
        // Wall is gated only when asked.
        assert!(lines.iter().all(|l| l.metric != Some(Metric::Wall)));
        let with_wall = Rules::parse(Some("wall"), "10%").unwrap();
        assert!(
            judge(&better, &now, &with_wall)
                .iter()
                .any(|l| l.metric == Some(Metric::Wall))
        );
    }

    #[test]
    fn memory_is_judged_at_equal_threads() {
        let with_threads = |rss: u64, threads: u64| {
            let mut r = row("threads", 20.0, 0.0, rss);
            r.peak_threads = Some(threads);
            export(vec![r])
        };
        let memory = |base: &Export, now: &Export| {
            verdict_of(&judge(base, now, &rules()), "threads", Metric::Memory).to_owned()
        };
        // More threads overlapped, each no heavier: not a regression.
        let base = with_threads(10 << 20, 284);
        assert_eq!(
            memory(&base, &with_threads(12 << 20, 482)),
            "noise (482 vs 284 threads)"
        );
        // More memory at the same thread count: regressed, as for any strategy.
        assert_eq!(memory(&base, &with_threads(12 << 20, 290)), "REGRESSED");
        // Fewer threads and more memory: each thread got heavier.
        assert_eq!(memory(&base, &with_threads(12 << 20, 200)), "REGRESSED");
        // More threads, and each heavier too.
        assert_eq!(memory(&base, &with_threads(24 << 20, 400)), "REGRESSED");
        // Fewer threads overlapped: less memory, but no lighter thread.
        assert_eq!(
            memory(&base, &with_threads(8 << 20, 200)),
            "noise (200 vs 284 threads)"
        );
    }

    #[test]
    fn a_strategy_of_many_processes_is_judged_per_process() {
        let with = |rss: u64, threads: u64, processes: u64| {
            let mut r = row("process", 20.0, 0.0, rss);
            r.peak_threads = Some(threads);
            r.peak_processes = Some(processes);
            export(vec![r])
        };
        let memory = |base: &Export, now: &Export| {
            verdict_of(&judge(base, now, &rules()), "process", Metric::Memory).to_owned()
        };
        let base = with(256 << 20, 193, 65);
        // A third fewer threads, the same processes: memory is judged as it
        // is, since it grows with processes.
        assert_eq!(memory(&base, &with(200 << 20, 129, 65)), "improved");
        assert_eq!(memory(&base, &with(300 << 20, 129, 65)), "REGRESSED");
        // Fewer processes, less memory, but none lighter: noise.
        assert_eq!(
            memory(&base, &with(128 << 20, 129, 33)),
            "noise (33 vs 65 processes)"
        );
    }

    #[test]
    fn per_metric_thresholds() {
        let r = Rules::parse(None, "10%,cpu=50%").unwrap();
        assert_eq!(r.max_for(Metric::Cpu), 0.5);
        assert_eq!(r.max_for(Metric::Memory), 0.1);
        let now = export(vec![row("tokio", 20.0, 0.0, 10 << 20)]);
        let base = export(vec![row("tokio", 14.0, 0.0, 10 << 20)]);
        assert_eq!(
            verdict_of(&judge(&base, &now, &r), "tokio", Metric::Cpu),
            "ok"
        );
        assert!(Rules::parse(None, "lots").is_err());
        assert!(Rules::parse(None, "-5%").is_err());
        let lenient = Rules::parse(None, "10%,cpu=200%").unwrap();
        assert_eq!(lenient.max_for(Metric::Cpu), 2.0);
        assert!(Rules::parse(Some("speed"), "10%").is_err());
    }

    #[test]
    fn missing_and_new_strategies_are_said_not_gated() {
        let base = export(vec![row("tokio", 20.0, 0.5, 1), row("smol", 20.0, 0.5, 1)]);
        let now = export(vec![row("tokio", 20.0, 0.5, 1), row("sync", 20.0, 0.5, 1)]);
        let lines = judge(&base, &now, &rules());
        assert!(lines.iter().all(|l| !l.regressed));
        assert!(
            lines
                .iter()
                .any(|l| l.strategy == "sync" && l.verdict.contains("not in the baseline"))
        );
        assert!(
            lines
                .iter()
                .any(|l| l.strategy == "smol" && l.verdict.contains("not run now"))
        );
    }

    #[test]
    fn other_parameters_are_refused_other_machines_warned() {
        let base = export(vec![]);
        let mut other = base.clone();
        other.scenario.concurrency = 10;
        let err = check_comparable(&base, &other, Path::new("b.json")).unwrap_err();
        assert!(err.to_string().contains("b.json") && err.to_string().contains("concurrency 10"));
        let mut elsewhere = base.clone();
        elsewhere.machine.cores = 64;
        let warning = check_comparable(&base, &elsewhere, Path::new("b.json")).unwrap();
        assert!(warning.unwrap().contains("another machine"));
        assert_eq!(
            check_comparable(&base, &base, Path::new("b.json")).unwrap(),
            None
        );
    }
}
