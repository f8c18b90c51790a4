//! `rates compare --against BUILD`: a paired comparison of two builds, or
//! of two settings of one build. Each strategy's timed children alternate
//! between A (the baseline) and B (the candidate: this build) in pairs, A B
//! then B A, against the one server, and the ratios B / A of the pairs are
//! judged by the rule in [`rates_measure::paired`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use crate::scenario::Scenario;
use anyhow::{Context as _, Result, bail};
use rates_core::Strategy;
use rates_measure::paired::{
    Change, Figure, LEVEL, PAIRED_SCHEMA, Pair, PairedExport, PairedStrategy, Side, Verdict,
};
use rates_measure::{Options, PROTOCOL};

use crate::draw::export;
use crate::draw::fmt::{bytes, count, micros, secs};
use crate::draw::machine;
use crate::inputs::{CompareOptions, Inputs};
use crate::runner::{Pairing, Program, Session, Setup, scenario_info};

/// Each figure's default threshold, as a share: the change a gate should
/// catch, set from the paired spread measured on a 2-core shared VM (see
/// docs/CI.md for the measurement and the error rates it gives).
pub(crate) const DEFAULT_THRESHOLDS: [(Figure, f64); 6] = [
    (Figure::Wall, 0.05),
    (Figure::Cpu, 0.05),
    (Figure::Memory, 0.10),
    (Figure::CtxVoluntary, 0.25),
    (Figure::CtxInvoluntary, 0.50),
    (Figure::Syscalls, 0.10),
];

/// The default thresholds as `--help` states them: `wall 5%, cpu 5%, ...`,
/// read from the table the gate uses (so the help cannot drift from it).
pub fn default_thresholds_text() -> String {
    DEFAULT_THRESHOLDS
        .iter()
        .map(|(figure, share)| format!("{} {}%", figure.name(), share * 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How a paired comparison runs and judges.
#[derive(Clone, Debug)]
pub(crate) struct Rules {
    pub(crate) a: Program,
    pub(crate) b: Program,
    pub(crate) a_side: Side,
    pub(crate) b_side: Side,
    /// Strategies A's build knows.
    pub(crate) a_strategies: Vec<String>,
    pub(crate) thresholds: BTreeMap<Figure, f64>,
    pub(crate) gated: Vec<Figure>,
    pub(crate) min_pairs: u32,
    pub(crate) max_pairs: u32,
    pub(crate) max_time: Duration,
    pub(crate) accepted: Vec<Accept>,
}

/// Parses `--max-regression` for a paired comparison: `5%` sets every
/// figure, `cpu=5%,ctx-invol=50%` some; the rest keep their defaults.
pub(crate) fn thresholds(spec: Option<&str>) -> Result<BTreeMap<Figure, f64>> {
    let mut map: BTreeMap<Figure, f64> = DEFAULT_THRESHOLDS.into_iter().collect();
    let Some(spec) = spec else { return Ok(map) };
    for part in spec.split(',') {
        let (figure, value) = match part.split_once('=') {
            Some((f, v)) => (Some(figure_named(f)?), v),
            None => (None, part),
        };
        let share = share(value).with_context(|| {
            format!("in --max-regression: `{value}` is not a limit: write 5% or cpu=5%")
        })?;
        for (f, v) in &mut map {
            if figure.is_none_or(|x| x == *f) {
                *v = share;
            }
        }
    }
    Ok(map)
}

/// Parses `--gate` for a paired comparison: the figures that decide the
/// exit code (default: all).
pub(crate) fn gated(spec: Option<&str>) -> Result<Vec<Figure>> {
    match spec {
        None => Ok(Figure::ALL.to_vec()),
        Some(list) => list.split(',').map(figure_named).collect(),
    }
}

fn figure_named(name: &str) -> Result<Figure> {
    Figure::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Figure::ALL.iter().map(|f| f.name()).collect();
        anyhow::anyhow!(
            "unknown figure `{}`: choose {}",
            name.trim(),
            names.join(", ")
        )
    })
}

/// `5%`, `+5%` or `0.05`, finite and not negative.
fn share(value: &str) -> Result<f64> {
    let v = value.trim().trim_start_matches('+');
    let share = match v.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => v.parse::<f64>(),
    };
    match share {
        Ok(s) if s.is_finite() && s >= 0.0 => Ok(s),
        _ => bail!("`{value}` is not a share"),
    }
}

/// A regression named as accepted (a line of `.ci/gate-accept`): a change
/// that costs more on purpose.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Accept {
    /// The strategy, or `*` for every one.
    pub(crate) strategy: String,
    pub(crate) figure: Figure,
    /// The change allowed, as a share (0.08 for +8%).
    pub(crate) allowed: f64,
    pub(crate) reason: String,
}

/// Reads an accept file: one accepted change per line, `STRATEGY FIGURE
/// CHANGE REASON...` (`process cpu +8% the worker checks each line`);
/// blank lines and `#` comments are skipped.
///
/// # Errors
/// The file cannot be read, or a line is not of that shape (named by
/// number).
pub(crate) fn read_accept(
    path: &Path,
    registry: &crate::registry::Registry,
) -> Result<Vec<Accept>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the accepted changes in {}", path.display()))?;
    parse_accept(&text, registry).with_context(|| format!("in {}", path.display()))
}

fn parse_accept(text: &str, registry: &crate::registry::Registry) -> Result<Vec<Accept>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(strategy), Some(figure), Some(change)) =
            (words.next(), words.next(), words.next())
        else {
            bail!(
                "line {}: `{line}` is not `STRATEGY FIGURE CHANGE REASON` \
                 (say `process cpu +8% the worker checks each line`)",
                i + 1
            );
        };
        let reason = words.collect::<Vec<_>>().join(" ");
        if reason.is_empty() {
            bail!(
                "line {}: `{line}` gives no reason: say why the change is worth its cost",
                i + 1
            );
        }
        if strategy != "*" && registry.find_external(strategy).is_none() {
            rates_registry::find(strategy).with_context(|| format!("line {}", i + 1))?;
        }
        out.push(Accept {
            strategy: strategy.to_owned(),
            figure: figure_named(figure).with_context(|| format!("line {}", i + 1))?,
            allowed: share(change).with_context(|| {
                format!("line {}: `{change}` is not a change: write +8%", i + 1)
            })?,
            reason,
        });
    }
    Ok(out)
}

/// Finds out what `exe` is: a build of `rates`, its version, the protocol
/// of measured runs it speaks, and the strategies it knows.
///
/// # Errors
/// `exe` cannot be run or is not a build of `rates`, named.
pub(crate) fn probe(exe: &Path) -> Result<(Side, Vec<String>)> {
    let run = |args: &[&str]| -> Result<(bool, String, String)> {
        let mut cmd = Command::new(exe);
        cmd.args(args);
        let options = Options {
            interval: Duration::from_millis(20),
            timeout: Duration::from_secs(30),
            affinity: None,
            interrupt: None,
        };
        let m = rates_measure::measure(cmd, None, &options).with_context(|| {
            format!(
                "--against {}: cannot run it (give the path of another build of rates, \
                 say target/release/rates of another checkout)",
                exe.display()
            )
        })?;
        if m.timed_out {
            bail!(
                "--against {}: `{}` did not answer within 30 s",
                exe.display(),
                args.join(" ")
            );
        }
        Ok((
            m.status.success(),
            String::from_utf8_lossy(&m.stdout).trim().to_owned(),
            m.stderr_tail,
        ))
    };
    let (ok, version, _) = run(&["--version"])?;
    if !ok || !version.starts_with("rates ") {
        bail!(
            "--against {}: not a build of rates (`--version` printed `{version}`)",
            exe.display()
        );
    }
    let (ok, out, err) = run(&["measured-run", "--protocol"])?;
    let protocol = if ok {
        out.parse::<u32>().with_context(|| {
            format!(
                "--against {}: `measured-run --protocol` printed `{out}`, not a version",
                exe.display()
            )
        })?
    } else if err.contains("--protocol") {
        // A build from before the protocol had a version: version 1.
        1
    } else {
        bail!(
            "--against {}: `measured-run --protocol` failed: {}",
            exe.display(),
            err.trim()
        );
    };
    let (ok, list, err) = run(&["strategies"])?;
    if !ok {
        bail!(
            "--against {}: `strategies` failed: {}",
            exe.display(),
            err.trim()
        );
    }
    let strategies = list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    Ok((
        Side {
            exe: exe.display().to_string(),
            version,
            protocol,
            env: Vec::new(),
        },
        strategies,
    ))
}

/// Parses `NAME=VALUE` settings for one side's runs.
pub(crate) fn env_settings(flag: &str, values: &[String]) -> Result<Vec<(String, String)>> {
    values
        .iter()
        .map(|v| match v.split_once('=') {
            Some((k, val)) if !k.is_empty() && !k.contains(char::is_whitespace) => {
                Ok((k.to_owned(), val.to_owned()))
            }
            _ => bail!("{flag} `{v}` is not NAME=VALUE (say {flag} TOKIO_WORKER_THREADS=1)"),
        })
        .collect()
}

/// Measures `strategies` on `scenario` in pairs of A and B, and judges them.
///
/// # Errors
/// The server cannot start; a strategy's failure is its row's error.
pub(crate) fn measure_paired(
    session: &Session,
    scenario: &Scenario,
    strategies: &[Box<dyn Strategy>],
    rules: &Rules,
) -> Result<PairedExport> {
    let started = Instant::now();
    eprintln!(
        "scenario {}: {}; {} in pairs of A = {} and B = {}, at least {} pairs each, \
         until every gated interval is narrower than its threshold or {} have passed",
        scenario.name,
        scenario.about,
        crate::draw::fmt::things(strategies.len() as u64, "strategy", "strategies"),
        describe(&rules.a_side),
        describe(&rules.b_side),
        rules.min_pairs,
        secs(rules.max_time.as_secs_f64())
    );
    let not_in_a = |name: &str| {
        let in_a = rules.a_strategies.iter().any(|n| n == name)
            || session.registry.find_external(name).is_some();
        (!in_a).then(|| format!("not in A ({}): nothing to compare with", rules.a_side.exe))
    };
    let settled = |name: &str, pairs: &[Pair]| {
        changes(pairs, rules, name)
            .iter()
            .filter(|c| c.gated)
            .all(Change::settled)
    };
    let pairing = Pairing {
        a: &rules.a,
        b: &rules.b,
        warmup: session.timing.warmup,
        min_pairs: rules.min_pairs,
        max_pairs: rules.max_pairs,
        max_time: rules.max_time,
    };
    let setup = Setup::new(session, scenario, strategies)?;
    let (tracks, stopped) = setup.measure_pairs(strategies, &pairing, not_in_a, settled);
    let elapsed = started.elapsed();
    let results: Vec<PairedStrategy> = tracks
        .into_iter()
        .map(|t| PairedStrategy {
            strategy: t.strategy.name().to_owned(),
            changes: if t.pairs.is_empty() {
                Vec::new()
            } else {
                changes(&t.pairs, rules, t.strategy.name())
            },
            pairs: t.pairs,
            skipped: t.skipped,
            error: t.error,
        })
        .collect();
    let regressed: Vec<String> = results
        .iter()
        .flat_map(|s| {
            s.changes
                .iter()
                .filter(|c| c.gated && c.verdict == Verdict::Regressed)
                .map(|c| format!("{} {}", s.strategy, c.figure))
        })
        .collect();
    let mut machine = session.machine.clone();
    machine.load_after = machine::load();
    Ok(PairedExport {
        schema: PAIRED_SCHEMA,
        kind: "paired".to_owned(),
        tool: format!("rates {}", env!("CARGO_PKG_VERSION")),
        scenario: scenario_info(scenario),
        a: rules.a_side.clone(),
        b: rules.b_side.clone(),
        warmup: session.timing.warmup,
        min_pairs: rules.min_pairs,
        max_pairs: rules.max_pairs,
        max_time_s: rules.max_time.as_secs_f64(),
        level: LEVEL,
        thresholds: rules
            .thresholds
            .iter()
            .map(|(f, t)| (f.name().to_owned(), *t))
            .collect(),
        stopped,
        elapsed_s: elapsed.as_secs_f64(),
        machine,
        verdict: if regressed.is_empty() {
            "no regression".to_owned()
        } else {
            format!("regressed: {}", regressed.join(", "))
        },
        strategies: results,
    })
}

/// Every figure's change over `pairs`, with accepted regressions applied.
fn changes(pairs: &[Pair], rules: &Rules, strategy: &str) -> Vec<Change> {
    Figure::ALL
        .into_iter()
        .map(|f| {
            let threshold = rules.thresholds.get(&f).copied().unwrap_or(0.05);
            let mut c = Change::over(f, pairs, threshold, rules.gated.contains(&f));
            if c.verdict == Verdict::Regressed {
                let found = rules
                    .accepted
                    .iter()
                    .find(|x| (x.strategy == "*" || x.strategy == strategy) && x.figure == f);
                if let (Some(accept), Some(r)) = (found, c.ratio) {
                    let allowed = format!("{:+.0}%", accept.allowed * 100.0);
                    if r <= 1.0 + accept.allowed {
                        c.verdict = Verdict::Accepted;
                        c.accepted = Some(format!("up to {allowed}: {}", accept.reason));
                    } else {
                        c.accepted =
                            Some(format!("past the {allowed} accepted: {}", accept.reason));
                    }
                }
            }
            c
        })
        .collect()
}

fn describe(side: &Side) -> String {
    if side.env.is_empty() {
        side.exe.clone()
    } else {
        format!("{} with {}", side.exe, side.env.join(" "))
    }
}

/// A figure's value in its unit.
fn show(figure: Figure, v: Option<f64>) -> String {
    let Some(v) = v else { return "-".to_owned() };
    match figure {
        Figure::Wall => secs(v),
        Figure::Cpu => micros(v),
        Figure::Memory => bytes(v.max(0.0) as u64),
        Figure::CtxVoluntary | Figure::CtxInvoluntary => count(v.max(0.0).round() as u64),
        Figure::Syscalls => format!("{v:.2}/req"),
    }
}

fn percent(r: f64) -> String {
    format!("{:+.1}%", (r - 1.0) * 100.0)
}

/// The paired comparison of one scenario as a table, with how the pairs
/// ended, the verdict and the rule.
pub(crate) fn table(export: &PairedExport, markdown: bool) -> String {
    use crate::draw::table::Style;
    let style = if markdown {
        Style::Markdown
    } else {
        Style::Terminal
    };
    let mut t = crate::draw::table::table(
        style,
        &[
            "strategy",
            "figure",
            "A",
            "B",
            "B/A [95% interval]",
            "pairs",
            "threshold",
            "verdict",
        ],
    );
    // One line per figure, however long: a wrapped verdict reads as two.
    t.set_content_arrangement(comfy_table::ContentArrangement::Disabled);
    if let Some(col) = t.column_mut(7) {
        col.set_cell_alignment(comfy_table::CellAlignment::Left);
    }
    if let Some(col) = t.column_mut(1) {
        col.set_cell_alignment(comfy_table::CellAlignment::Left);
    }
    for s in &export.strategies {
        if let Some(why) = s.skipped.as_ref().or(s.error.as_ref()) {
            let what = if s.skipped.is_some() {
                "skipped"
            } else {
                "error"
            };
            t.add_row(vec![
                s.strategy.clone(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                s.pairs.len().to_string(),
                String::new(),
                format!("{what}: {why}"),
            ]);
            if s.changes.is_empty() {
                continue;
            }
        }
        for c in &s.changes {
            let change = match (c.ratio, c.low, c.high) {
                (Some(r), Some(lo), Some(hi)) => {
                    format!("{} [{}, {}]", percent(r), percent(lo), percent(hi))
                }
                (Some(r), _, _) => format!("{} [too few pairs]", percent(r)),
                _ => "-".to_owned(),
            };
            let mut verdict = c.verdict.to_string();
            if !c.gated {
                verdict.push_str(" (not gated)");
            }
            if let Some(why) = &c.accepted {
                verdict.push_str(&format!(" ({why})"));
            }
            t.add_row(vec![
                s.strategy.clone(),
                c.figure.name().to_owned(),
                show(c.figure, c.a),
                show(c.figure, c.b),
                change,
                c.pairs.to_string(),
                format!("{:.0}%", c.threshold * 100.0),
                verdict,
            ]);
        }
    }
    let failed: Vec<String> = export
        .strategies
        .iter()
        .filter_map(|s| {
            let (a, b) = s.failed();
            (a + b > 0).then(|| format!("{}: {a} bases failed in A's runs, {b} in B's", s.strategy))
        })
        .collect();
    let heading = format!(
        "Paired: {} ({}), A = {} against B = {}",
        export.scenario.name,
        export.scenario.about,
        describe(&export.a),
        describe(&export.b)
    );
    let rule = "Each pair is a run of A and a run of B back to back (A B, then B A), against \
                the same server; B/A is the median of the pairs' ratios with a distribution-free \
                95% interval (the sign test's order statistics). A figure REGRESSED when the \
                median is past its threshold and the whole interval past half of it, improved \
                the other way round, same when the whole interval is within the threshold \
                either way, and inconclusive otherwise. Lower is better for every figure. \
                Context switches are compared over a floor of one switch per ten requests.";
    let mut out = String::new();
    if markdown {
        out.push_str(&format!("## {heading}\n\n{t}\n\n"));
    } else {
        out.push_str(&format!("{heading}\n{t}\n"));
    }
    for f in &failed {
        out.push_str(&format!("{f}\n"));
    }
    out.push_str(&format!(
        "pairs stopped: {} ({} in all)\n{}\n",
        export.stopped,
        secs(export.elapsed_s),
        match export.verdict.strip_prefix("regressed: ") {
            Some(what) => format!("verdict: REGRESSED: {what}"),
            None => format!("verdict: {}", export.verdict),
        }
    ));
    out.push_str(&crate::draw::wrap(rule, 100));
    out.push_str("\n\n");
    out
}

/// The rules for `--against`: both sides probed, their protocols named.
pub(crate) struct Against {
    pub(crate) rules: Rules,
    /// Why the builds cannot be compared, when they speak other protocols.
    pub(crate) mismatch: Option<String>,
}

/// The flags of a paired comparison, as given.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Flags<'a> {
    pub(crate) against: &'a Path,
    pub(crate) env_a: &'a [String],
    pub(crate) env_b: &'a [String],
    pub(crate) max_regression: Option<&'a str>,
    pub(crate) gate: Option<&'a str>,
    pub(crate) min_pairs: u32,
    pub(crate) max_pairs: u32,
    pub(crate) max_time: Duration,
    pub(crate) accept: Option<&'a Path>,
    /// The measured-run protocol the runs need (2 to stop them).
    pub(crate) needed: u32,
    /// The strategies the command can name (for the accept file's).
    pub(crate) registry: &'a crate::registry::Registry,
}

/// Sets up a paired comparison of `flags.against` (A) with this build (B).
///
/// # Errors
/// A side that is not a build of `rates`, or a bad setting, named.
pub(crate) fn against_build(flags: &Flags<'_>) -> Result<Against> {
    let Flags {
        against,
        env_a,
        env_b,
        max_regression,
        gate,
        min_pairs,
        max_pairs,
        max_time,
        accept,
        needed,
        registry,
    } = *flags;
    let a_exe: PathBuf = if against == Path::new("self") {
        std::env::current_exe().context("finding the rates executable")?
    } else {
        against.to_owned()
    };
    let mut a = Program {
        exe: a_exe,
        env: env_settings("--env-a", env_a)?,
        protocol: 1,
    };
    let mut b = Program::this()?;
    b.env = env_settings("--env-b", env_b)?;
    let (mut a_side, a_strategies) = probe(&a.exe)?;
    let (mut b_side, _) = probe(&b.exe)?;
    let setting = |env: &[(String, String)]| env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    a_side.env = setting(&a.env);
    b_side.env = setting(&b.env);
    a.protocol = a_side.protocol;
    // The absolute path, so that the runs find it whatever they change.
    a.exe = std::fs::canonicalize(&a.exe).unwrap_or(a.exe);
    if max_pairs < min_pairs {
        bail!("--max-pairs {max_pairs} is less than --min-pairs {min_pairs}: raise it");
    }
    // Every build speaks the versions from the first up to its own: they
    // meet at the lower one, unless the runs need more of it.
    let mismatch = (a_side.protocol.min(PROTOCOL) < needed).then(|| {
        format!(
            "no verdict: A ({}) speaks measured-run protocol {} and these runs need protocol \
             {needed} (this build speaks {PROTOCOL}), so their runs cannot be compared (a \
             changed protocol is not a regression; compare against a build of protocol \
             {needed} or later)",
            a_side.exe, a_side.protocol
        )
    });
    Ok(Against {
        rules: Rules {
            a,
            b,
            a_side,
            b_side,
            a_strategies,
            thresholds: thresholds(max_regression)?,
            gated: gated(gate)?,
            min_pairs,
            max_pairs,
            max_time,
            accepted: match accept {
                Some(path) => read_accept(path, registry)?,
                None => Vec::new(),
            },
        },
        mismatch,
    })
}

/// `rates compare --against`: every scenario in pairs of A and B, printed
/// and written where `a` asks; the exit code as [`crate::compare::run`]'s.
pub(crate) fn run_paired(
    a: &CompareOptions,
    inputs: &Inputs,
    against: &Path,
    interrupts: &crate::interrupt::Interrupts,
) -> Result<ExitCode> {
    let stopping =
        a.deadline.is_some() || inputs.scenarios.iter().any(|s| s.cancel_after.is_some());
    let setup = against_build(&Flags {
        against,
        env_a: &a.env_a,
        env_b: &a.env_b,
        max_regression: a.max_regression.as_deref(),
        gate: a.gate.as_deref(),
        min_pairs: a.min_pairs,
        max_pairs: a.max_pairs,
        max_time: a.max_time,
        accept: a.accept.as_deref(),
        needed: if stopping { 2 } else { 1 },
        registry: &inputs.session.registry,
    })?;
    if let Some(accepted) = a.accept.as_ref() {
        for x in &setup.rules.accepted {
            eprintln!(
                "accepted ({}): {} {} up to {:+.0}%: {}",
                accepted.display(),
                x.strategy,
                x.figure,
                x.allowed * 100.0,
                x.reason
            );
        }
    }
    if let Some(why) = setup.mismatch {
        println!("{why}");
        return Ok(ExitCode::SUCCESS);
    }
    let mut exports = Vec::new();
    for scenario in &inputs.scenarios {
        let export = measure_paired(&inputs.session, scenario, &inputs.strategies, &setup.rules)?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&export)?);
        } else {
            print!("{}", table(&export, false));
        }
        if let Some(p) = &a.export_json {
            export::write(p, serde_json::to_string_pretty(&export)?.as_bytes())?;
        }
        if let Some(dir) = &a.out {
            let file = dir.join(format!("{}-paired.json", scenario.name));
            export::write(&file, serde_json::to_string_pretty(&export)?.as_bytes())?;
        }
        exports.push(export);
    }
    let metrics = crate::draw::trackers::of_paired(&exports);
    crate::draw::trackers::write(
        &metrics,
        a.export_bencher.as_deref(),
        a.export_benchmark_action.as_deref(),
    )?;
    let interrupted = interrupts.exit_code();
    let pairs_taken = exports
        .iter()
        .flat_map(|e| &e.strategies)
        .any(|s| !s.pairs.is_empty());
    if let Some(dir) = &a.out {
        if interrupted.is_some() && !pairs_taken {
            inputs.remove_empty_out_dir();
        } else {
            let mut machine = inputs.session.machine.clone();
            machine.load_after = machine::load();
            machine.incomplete = interrupted
                .is_some()
                .then(|| "interrupted: the pairs taken before it are judged".to_owned());
            export::write(
                &dir.join("manifest.json"),
                serde_json::to_string_pretty(&machine)?.as_bytes(),
            )?;
            let md: String = exports.iter().map(|e| table(e, true)).collect();
            export::write(&dir.join("PAIRED.md"), md.as_bytes())?;
            crate::draw::trackers::write(
                &metrics,
                Some(&dir.join("bencher.json")),
                Some(&dir.join("benchmark-action.json")),
            )?;
            eprintln!("wrote {}", dir.join("PAIRED.md").display());
        }
    }
    if let Some(code) = interrupted {
        return Ok(code);
    }
    let failed = exports.iter().flat_map(|e| &e.strategies).any(|s| {
        let (fa, fb) = s.failed();
        s.error.is_some() || fa + fb > 0
    });
    let regressed = exports
        .iter()
        .flat_map(|e| &e.strategies)
        .any(rates_measure::paired::PairedStrategy::regressed);
    Ok(if failed {
        ExitCode::FAILURE
    } else if regressed {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_default_and_override_by_figure() {
        let d = thresholds(None).unwrap();
        assert_eq!(d[&Figure::Cpu], 0.05);
        let t = thresholds(Some("cpu=3%,ctx-invol=80%")).unwrap();
        assert_eq!(t[&Figure::Cpu], 0.03);
        assert_eq!(t[&Figure::CtxInvoluntary], 0.8);
        assert_eq!(t[&Figure::Wall], d[&Figure::Wall]);
        let all = thresholds(Some("7%")).unwrap();
        assert!(all.values().all(|v| (*v - 0.07).abs() < 1e-12));
        let err = thresholds(Some("speed=5%")).unwrap_err().to_string();
        assert!(err.contains("`speed`") && err.contains("ctx-vol"), "{err}");
        assert!(thresholds(Some("cpu=lots")).is_err());
        assert_eq!(
            gated(Some("cpu,wall")).unwrap(),
            [Figure::Cpu, Figure::Wall]
        );
        assert_eq!(gated(None).unwrap(), Figure::ALL);
    }

    #[test]
    fn accept_lines_name_strategy_figure_change_and_reason() {
        let text =
            "# why\n\nprocess cpu +8% the worker checks each line\n* memory 5% a bigger buffer\n";
        let got = parse_accept(text, &crate::registry::Registry::default()).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].strategy, "process");
        assert_eq!(got[0].figure, Figure::Cpu);
        assert!((got[0].allowed - 0.08).abs() < 1e-12);
        assert_eq!(got[0].reason, "the worker checks each line");
        assert_eq!(got[1].strategy, "*");
        for (bad, says) in [
            ("tokio cpu", "line 1"),
            ("tokio cpu 5%", "gives no reason"),
            ("tokyo cpu 5% typo", "tokyo"),
            ("tokio speed 5% x", "speed"),
            ("tokio cpu lots x", "lots"),
        ] {
            let err = format!(
                "{:#}",
                parse_accept(bad, &crate::registry::Registry::default()).unwrap_err()
            );
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn env_settings_are_name_value() {
        assert_eq!(
            env_settings("--env-a", &["TOKIO_WORKER_THREADS=1".into()]).unwrap(),
            [("TOKIO_WORKER_THREADS".to_owned(), "1".to_owned())]
        );
        let err = env_settings("--env-b", &["oops".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--env-b `oops`"), "{err}");
    }

    fn rules_with(accepted: Vec<Accept>) -> Rules {
        let p = Program {
            exe: PathBuf::from("rates"),
            env: Vec::new(),
            protocol: PROTOCOL,
        };
        Rules {
            a: p.clone(),
            b: p,
            a_side: Side::default(),
            b_side: Side::default(),
            a_strategies: Vec::new(),
            thresholds: thresholds(None).unwrap(),
            gated: Figure::ALL.to_vec(),
            min_pairs: 6,
            max_pairs: 100,
            max_time: Duration::from_secs(60),
            accepted,
        }
    }

    fn pairs(cpu_ratio: f64, n: usize) -> Vec<Pair> {
        use rates_measure::paired::FigureValues;
        (0..n)
            .map(|i| {
                let v = |cpu: f64| FigureValues {
                    wall_s: 0.1,
                    cpu_per_request_us: Some(cpu),
                    peak_rss_bytes: Some(10 << 20),
                    voluntary_ctx_switches: Some(100),
                    involuntary_ctx_switches: Some(10),
                    syscalls_per_request: Some(2.5),
                    requests: 4000,
                    failed: 0,
                };
                // A little spread, the same in every pair's A.
                let jitter = 1.0 + (i % 3) as f64 * 0.001;
                Pair {
                    order: "ab".into(),
                    a: v(10.0),
                    b: v(10.0 * cpu_ratio * jitter),
                }
            })
            .collect()
    }

    #[test]
    fn accepted_regressions_pass_up_to_their_allowance_only() {
        let cpu = |rules: &Rules, ratio: f64| {
            changes(&pairs(ratio, 12), rules, "process")
                .into_iter()
                .find(|c| c.figure == Figure::Cpu)
                .unwrap()
        };
        let none = rules_with(Vec::new());
        assert_eq!(cpu(&none, 1.08).verdict, Verdict::Regressed);
        assert_eq!(cpu(&none, 1.0).verdict, Verdict::Same);
        let accept = rules_with(vec![Accept {
            strategy: "process".into(),
            figure: Figure::Cpu,
            allowed: 0.10,
            reason: "a new check".into(),
        }]);
        let c = cpu(&accept, 1.08);
        assert_eq!(c.verdict, Verdict::Accepted);
        assert!(c.accepted.unwrap().contains("a new check"));
        let past = cpu(&accept, 1.20);
        assert_eq!(past.verdict, Verdict::Regressed);
        assert!(past.accepted.unwrap().contains("past the +10%"));
        // Another strategy's allowance does not apply.
        let other = changes(&pairs(1.08, 12), &accept, "tokio");
        assert_eq!(other[1].verdict, Verdict::Regressed);
    }
}
