//! `rates compare` without `--against`: each scenario measured once per
//! strategy (warm-up and timed runs), gated against a baseline when one is
//! given, printed, and written where asked.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use rates_measure::Export;

use crate::draw::{export, machine, out, table, trackers};
use crate::gate::{self, Rules};
use crate::inputs::{CompareOptions, Inputs, exit_code};
use crate::runner::Session;
use crate::scenario::Scenario;

/// Measures every scenario `inputs` name, gates each against its baseline,
/// prints and writes it; the exit code as [`crate::compare::run`]'s.
pub(crate) fn run_measured(
    a: &CompareOptions,
    inputs: &Inputs,
    interrupts: &crate::interrupt::Interrupts,
) -> Result<ExitCode> {
    let mut exports = Vec::new();
    let mut regressed = false;
    for (i, scenario) in inputs.scenarios.iter().enumerate() {
        let mut export = inputs.session.measure(scenario, &inputs.strategies)?;
        let interrupted = interrupts.exit_code().is_some();
        let gate_report = match inputs.baselines.get(i).filter(|_| !interrupted) {
            Some((base, file)) => {
                if let Some(warning) = gate::check_comparable(base, &export, file)? {
                    eprintln!("{warning}");
                }
                let (lines, rerun) =
                    gate_with_rerun(&inputs.session, scenario, base, &mut export, &inputs.rules)?;
                regressed |= lines.iter().any(|l| l.regressed);
                Some((lines, rerun, file.clone()))
            }
            None => None,
        };
        let ran = export.results.iter().any(|r| r.ran());
        if ran || !interrupted {
            show(a, &export, gate_report.as_ref(), &inputs.rules)?;
            write_scenario(a, scenario, &export)?;
            exports.push(export);
        }
        if interrupted {
            break;
        }
    }
    if let Some(code) = interrupts.exit_code() {
        let why = format!(
            "interrupted: {} of {} scenario(s) measured, the last one perhaps in part",
            exports.len(),
            inputs.scenarios.len()
        );
        eprintln!("{why}");
        if exports.is_empty() {
            inputs.remove_empty_out_dir();
        } else {
            write_manifests(a, &inputs.session, &exports, Some(why))?;
        }
        return Ok(code);
    }
    write_manifests(a, &inputs.session, &exports, None)?;
    let code = exit_code(&exports);
    Ok(if code == ExitCode::SUCCESS && regressed {
        ExitCode::from(3)
    } else {
        code
    })
}

/// A scenario's gate verdict: the lines, the strategies re-run, the baseline file.
type GateReport = (Vec<gate::Line>, Vec<String>, PathBuf);

/// Prints one scenario's tables (or JSON) and its gate verdict.
fn show(
    a: &CompareOptions,
    export: &Export,
    gate_report: Option<&GateReport>,
    rules: &Rules,
) -> Result<()> {
    if a.json {
        println!("{}", serde_json::to_string_pretty(export)?);
    } else {
        println!("{}", table::terminal(export));
    }
    if let Some((lines, rerun, file)) = gate_report {
        let out = if a.json { eprint } else { print };
        out(format_args!(
            "{}",
            gate::table(&export.scenario.name, file, lines, rerun, rules)
        ));
    }
    Ok(())
}

/// Writes one scenario's exports where asked: single files, the results
/// folder, the baseline folder.
fn write_scenario(a: &CompareOptions, scenario: &Scenario, export: &Export) -> Result<()> {
    if let Some(p) = &a.export_json {
        export::write_json(export, p)?;
    }
    if let Some(p) = &a.export_csv {
        export::write_csv(export, p)?;
    }
    if let Some(p) = &a.export_markdown {
        export::write_markdown(export, p)?;
    }
    if let Some(dir) = &a.out {
        out::write_scenario(dir, export)?;
    }
    if let Some(dir) = &a.save_baseline {
        let file = dir.join(format!("{}.json", scenario.name));
        export::write_json(export, &file)?;
        eprintln!("saved the baseline {}", file.display());
    }
    Ok(())
}

/// Writes the tracker exports asked for, the results folder's REPORT.md
/// and tracker exports, and the baseline folder's manifest, with the
/// machine's load after the runs.
fn write_manifests(
    a: &CompareOptions,
    session: &Session,
    exports: &[Export],
    incomplete: Option<String>,
) -> Result<()> {
    let metrics = trackers::of_exports(exports);
    trackers::write(
        &metrics,
        a.export_bencher.as_deref(),
        a.export_benchmark_action.as_deref(),
    )?;
    if let Some(dir) = &a.out {
        let mut machine = session.machine.clone();
        machine.load_after = machine::load();
        machine.incomplete = incomplete;
        out::write_report(dir, &machine, exports)?;
        trackers::write(
            &metrics,
            Some(&dir.join("bencher.json")),
            Some(&dir.join("benchmark-action.json")),
        )?;
        eprintln!("wrote {}", dir.join("REPORT.md").display());
    }
    if let Some(dir) = &a.save_baseline {
        let mut machine = session.machine.clone();
        machine.load_after = machine::load();
        export::write(
            &dir.join("manifest.json"),
            serde_json::to_string_pretty(&machine)?.as_bytes(),
        )?;
    }
    Ok(())
}

fn print(args: std::fmt::Arguments<'_>) {
    print!("{args}");
}

fn eprint(args: std::fmt::Arguments<'_>) {
    eprint!("{args}");
}

/// Judges `export` against `base`; strategies that look regressed are
/// measured once more and judged on the re-run. Returns the lines and the
/// strategies re-run.
fn gate_with_rerun(
    session: &Session,
    scenario: &Scenario,
    base: &Export,
    export: &mut Export,
    rules: &Rules,
) -> Result<(Vec<gate::Line>, Vec<String>)> {
    let lines = gate::judge(base, export, rules);
    let mut suspects: Vec<String> = lines
        .iter()
        .filter(|l| l.regressed)
        .map(|l| l.strategy.clone())
        .collect();
    suspects.dedup();
    if suspects.is_empty() {
        return Ok((lines, suspects));
    }
    eprintln!(
        "{} looked regressed: measuring once more before the verdict",
        suspects.join(", ")
    );
    let again = session.measure(
        scenario,
        &session.registry.resolve(Some(&suspects.join(",")))?,
    )?;
    for row in again.results {
        if let Some(slot) = export
            .results
            .iter_mut()
            .find(|r| r.strategy == row.strategy)
        {
            *slot = row;
        }
    }
    Ok((gate::judge(base, export, rules), suspects))
}
