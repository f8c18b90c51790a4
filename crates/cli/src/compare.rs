//! `rates compare`: its flags; the work is `rates_report::compare`'s.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use rates_report::compare::CompareOptions;

#[derive(Debug, Args)]
#[command(after_help = after_help())]
pub(crate) struct CompareArgs {
    // The options, defined once in the library (help, defaults, parsing).
    #[command(flatten)]
    options: CompareOptions,
}

/// Examples, the paired comparison and the exit codes; the default
/// thresholds are read from the code's own table.
fn after_help() -> String {
    AFTER_HELP.replace(
        "{thresholds}",
        &rates_report::paired::default_thresholds_text(),
    )
}

const AFTER_HELP: &str = "Examples:
  rates compare                                   classic, every strategy, two tables and a summary
  rates compare --scenario fanout --runs 3 --export-json a.json --export-csv a.csv
  rates compare --scenario all --out results/my-run   exports, SVG charts and REPORT.md
  rates compare --scenario fanout --strategies tokio,threads --json
  rates compare --scenario fanout --runs 3 --export-json b.json
  rates compare --scenario fanout --runs 3 --baseline b.json      exit code 3 on a regression
  rates compare --scenario classic,fanout,throttled --baseline results/baseline
  rates compare --scenario fanout --save-baseline       refresh results/baseline/fanout.json
  rates compare --scenario gate --against ../base/target/release/rates
                                 paired: this build (B) against another (A), run against run
  rates compare --scenario overhead --strategies tokio --against self \
      --env-a TOKIO_WORKER_THREADS=1          two settings of one build, paired
  rates compare --scenario overhead --pin     server on some cores, the runs on the others

Paired comparison (--against): each strategy's runs alternate between A and B
(A B, then B A, ...) against the one server, so a slow minute hits both. Each
pair gives the ratio B/A of every figure: wall time, CPU per request, peak
memory of the tree, voluntary and involuntary context switches, syscalls per
request. The estimate is the median ratio with a distribution-free 95%
interval; pairs are added until every gated interval is narrower than its
threshold, or --max-time runs out. Verdicts: REGRESSED (interval wholly above
1, median past the threshold), improved, same (interval within the
threshold), inconclusive. Default thresholds (--max-regression):
  {thresholds}.

Exit codes: 0 all ran (with --against: no figure regressed, or the builds speak
other protocols and there is no verdict), 1 a strategy failed bases or could not
run, 2 bad input, 3 the gate found a regression.";

pub(crate) fn run(a: CompareArgs) -> Result<ExitCode> {
    rates_report::compare::run(&a.options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory as _, Parser};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: CompareArgs,
    }

    #[test]
    fn the_flags_defaults_are_the_librarys_defaults() {
        let parsed = Cli::try_parse_from(["compare"]).unwrap();
        assert_eq!(
            format!("{:?}", parsed.args.options),
            format!("{:?}", CompareOptions::default())
        );
    }

    #[test]
    fn the_help_states_the_defaults_the_code_uses() {
        let help = Cli::command().render_long_help().to_string();
        for (flag, default) in [
            (
                "--scenario",
                rates_report::compare::DEFAULT_SCENARIO.to_string(),
            ),
            ("--runs", rates_report::compare::DEFAULT_RUNS.to_string()),
            (
                "--warmup",
                rates_report::compare::DEFAULT_WARMUP.to_string(),
            ),
            (
                "--sample-interval",
                rates_report::compare::DEFAULT_SAMPLE_INTERVAL.to_string(),
            ),
            (
                "--min-pairs",
                rates_report::compare::DEFAULT_MIN_PAIRS.to_string(),
            ),
            (
                "--max-pairs",
                rates_report::compare::DEFAULT_MAX_PAIRS.to_string(),
            ),
            (
                "--max-time",
                rates_report::compare::DEFAULT_MAX_TIME.to_string(),
            ),
        ] {
            let at = help
                .find(&format!("{flag} <"))
                .unwrap_or_else(|| panic!("{flag} in the help"));
            let after = &help[at..];
            let section = &after[..after[2..].find("\n  -").map_or(after.len(), |i| i + 2)];
            assert!(
                section.contains(&format!("[default: {default}]")),
                "{flag}: {section}"
            );
        }
        // The paired gate's thresholds, generated from the code's table.
        assert!(help.contains(&rates_report::paired::default_thresholds_text()));
    }
}
