//! What `rates fetch` prints: the totals, the `cancelled` line of a
//! stopped run, each outcome as it completes (`--stream`), the JSON
//! document (`--json`, schema 1) and the progress line of a long run.

use std::io::Write as _;
use std::time::Duration;

use anyhow::Result;
use rates_core::Config;

/// The totals line, and for a stopped run the `cancelled: N bases` line
/// (with --json and --stream, on stderr: stdout holds only JSON lines).
pub fn print_totals(
    out: &mut impl std::io::Write,
    report: &rates_core::Report,
    json_lines: bool,
) -> Result<()> {
    let cancelled = report.cancelled();
    let failed = report.failures().count() - cancelled;
    let totals = format!(
        "{} ok, {failed} failed, {} requests",
        report.successes().count(),
        report.total_attempts()
    );
    let stopped = report.stopped.map(|cause| {
        let why = match cause {
            rates_core::StopCause::Deadline => "the run's deadline passed",
            rates_core::StopCause::Cancelled => "the run was interrupted",
        };
        let after = report
            .time_to_stop
            .map(|t| format!(", stopped {:.0} ms after", t.as_secs_f64() * 1e3))
            .unwrap_or_default();
        format!(
            "cancelled: {cancelled} base{} ({why}{after})",
            if cancelled == 1 { "" } else { "s" }
        )
    });
    if json_lines {
        eprintln!("{totals}");
        if let Some(line) = stopped {
            eprintln!("{line}");
        }
    } else {
        writeln!(out, "{totals}")?;
        if let Some(line) = stopped {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

/// Prints each outcome on stdout as it completes: a matrix row or the
/// error, or (`json`) the outcome's JSON with its `index`, one per line.
pub fn stream(json: bool, symbols: Vec<rates_core::CurrencyCode>) -> rates_core::OnOutcome {
    rates_core::OnOutcome::new(move |index, outcome| {
        let line = if json {
            let mut value = serde_json::to_value(outcome).unwrap_or_default();
            if let Some(object) = value.as_object_mut() {
                object.insert("index".to_owned(), index.into());
            }
            value.to_string()
        } else {
            match &outcome.result {
                Ok(rates) => rates_core::matrix_row(rates, &symbols),
                Err(_) => crate::names::named(&outcome.to_string()),
            }
        };
        // One write per line, whole, whichever thread completes it.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    })
}

/// The `fetch --json` document (schema 1): the run's totals, then one
/// outcome per base in input order (see `Outcome`'s JSON shape).
#[derive(Debug, serde::Serialize)]
pub struct JsonReport<'a> {
    schema: u32,
    strategy: &'a str,
    endpoint: &'a str,
    concurrency: usize,
    bases: usize,
    ok: usize,
    failed: usize,
    requests: u64,
    wall_s: f64,
    note: Option<&'a str>,
    /// Bases a stop left undone (also counted in `failed`).
    cancelled: usize,
    /// `deadline` or `cancelled` when the run was stopped, else null.
    stopped: Option<rates_core::StopCause>,
    /// From the stop to the run's return, seconds, when it was stopped.
    time_to_stop_s: Option<f64>,
    /// This process's CPU time and peak memory (`fetch --resources`).
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: Option<JsonResources>,
    outcomes: &'a [rates_core::Outcome],
}

/// `fetch --json --resources`: what this process used, and what that
/// covers.
#[derive(Debug, serde::Serialize)]
struct JsonResources {
    cpu_user_s: f64,
    cpu_sys_s: f64,
    peak_rss_bytes: u64,
    /// Syscalls of this process (every thread) since the run started,
    /// counted by the kernel; `null` where the counter cannot be opened.
    syscalls: Option<u64>,
    /// Why `syscalls` is `null`, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    syscalls_unavailable: Option<String>,
    /// What the figures cover: this process alone, with or without the
    /// embedded server in it.
    scope: &'static str,
}

impl JsonReport<'_> {
    /// With this process's resources (`usage`, and its `syscalls` since the
    /// run started), which include the embedded server's when
    /// `embedded_server`.
    pub fn with_resources(
        mut self,
        usage: &crate::resources::Usage,
        syscalls: Result<u64, String>,
        embedded_server: bool,
    ) -> Self {
        self.resources = Some(JsonResources {
            cpu_user_s: usage.user.as_secs_f64(),
            cpu_sys_s: usage.system.as_secs_f64(),
            peak_rss_bytes: usage.peak_rss_bytes,
            syscalls: syscalls.as_ref().ok().copied(),
            syscalls_unavailable: syscalls.err(),
            scope: if embedded_server {
                "this process, embedded server included"
            } else {
                "this process alone"
            },
        });
        self
    }
}

/// The `fetch --json` document of `report`, a run made with `config`.
pub fn json_report<'a>(report: &'a rates_core::Report, config: &'a Config) -> JsonReport<'a> {
    JsonReport {
        schema: 1,
        strategy: &report.strategy,
        endpoint: config.endpoint.template(),
        concurrency: config.concurrency,
        bases: report.outcomes.len(),
        ok: report.successes().count(),
        failed: report.failures().count(),
        requests: report.total_attempts(),
        wall_s: report.wall.as_secs_f64(),
        note: report.note.as_deref(),
        cancelled: report.cancelled(),
        stopped: report.stopped,
        time_to_stop_s: report.time_to_stop.map(|t| t.as_secs_f64()),
        resources: None,
        outcomes: &report.outcomes,
    }
}

/// The failed outcomes of a run as lines, the bases that failed the same
/// way on one line (`USD, EUR: tls error after 1 attempt: ...`), in input
/// order of their first base, at most `most` lines (then how many more).
pub fn failure_lines<'a>(
    failed: impl IntoIterator<Item = &'a rates_core::Outcome>,
    most: usize,
) -> Vec<String> {
    // (what went wrong, its bases), in order of first appearance.
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for o in failed {
        let line = o.to_string();
        let what = line
            .strip_prefix(o.base.as_str())
            .and_then(|rest| rest.strip_prefix(": "))
            .unwrap_or(&line)
            .to_owned();
        match groups.iter_mut().find(|(w, _)| *w == what) {
            Some((_, bases)) => bases.push(o.base.as_str()),
            None => groups.push((what, vec![o.base.as_str()])),
        }
    }
    let mut lines: Vec<String> = groups
        .iter()
        .take(most)
        .map(|(what, bases)| {
            const NAMED: usize = 8;
            let mut who = bases[..bases.len().min(NAMED)].join(", ");
            if bases.len() > NAMED {
                who.push_str(&format!(" and {} more", bases.len() - NAMED));
            }
            format!("{who}: {what}")
        })
        .collect();
    if groups.len() > most {
        lines.push(format!(
            "... and {} more kinds of failure (use --json for all)",
            groups.len() - most
        ));
    }
    lines
}

/// Runs `f`, printing to stderr how many of `total` bases are done every
/// second once the run has taken longer than two seconds.
pub fn with_progress<T>(progress: &rates_core::Progress, total: usize, f: impl FnOnce() -> T) -> T {
    use std::io::IsTerminal as _;
    use std::sync::mpsc;

    let (stop, stopped) = mpsc::channel::<()>();
    let progress = progress.clone();
    let reporter = std::thread::spawn(move || {
        let terminal = std::io::stderr().is_terminal();
        let started = std::time::Instant::now();
        let mut printed = false;
        // Wakes once a second; the channel closing ends it at once.
        while let Err(mpsc::RecvTimeoutError::Timeout) =
            stopped.recv_timeout(Duration::from_secs(1))
        {
            if started.elapsed() < Duration::from_secs(2) {
                continue;
            }
            let line = format!(
                "  {}/{total} bases done after {:.0}s",
                progress.done(),
                started.elapsed().as_secs_f64()
            );
            if terminal {
                eprint!("\r{line}");
            } else {
                eprintln!("{line}");
            }
            printed = true;
        }
        if printed && terminal {
            eprintln!();
        }
    });
    let result = f();
    drop(stop);
    let _ = reporter.join();
    result
}

#[cfg(test)]
mod tests {
    use rates_core::{CurrencyCode, Error, ErrorKind, Outcome};

    use super::*;

    fn failed(base: &str, kind: ErrorKind, why: &str) -> Outcome {
        Outcome::failed(CurrencyCode::new(base).unwrap(), 1, Error::new(kind, why))
    }

    #[test]
    fn bases_that_failed_the_same_way_share_a_line() {
        let outcomes = [
            failed("USD", ErrorKind::Tls, "not trusted"),
            failed("EUR", ErrorKind::Tls, "not trusted"),
            failed("PLN", ErrorKind::Timeout, "no answer in 5s"),
            failed("NOK", ErrorKind::Tls, "not trusted"),
        ];
        let lines = failure_lines(&outcomes, 20);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].starts_with("USD, EUR, NOK: tls error after 1 attempt"),
            "{lines:?}"
        );
        assert!(lines[0].ends_with("not trusted"), "{lines:?}");
        assert!(lines[1].starts_with("PLN: timeout error"), "{lines:?}");
        // At most `most` lines, then how many kinds were left out.
        let lines = failure_lines(&outcomes, 1);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[1].contains("1 more kinds of failure"), "{lines:?}");
        // Many bases alike: the first eight named, the rest counted.
        let many: Vec<Outcome> = rates_core::generated_codes(12)
            .into_iter()
            .map(|c| Outcome::failed(c, 1, Error::new(ErrorKind::Connection, "refused")))
            .collect();
        let lines = failure_lines(&many, 20);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains(" and 4 more: connection error"),
            "{lines:?}"
        );
    }
}
