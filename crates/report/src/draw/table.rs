//! The comparison as tables (terminal and Markdown) and a short summary.

use comfy_table::{Cell, CellAlignment, ContentArrangement, Table, TableComponent, presets};
use rates_measure::{Export, StrategyResult};

use super::fmt::{bytes, count, micros, opt, ratio, secs, setting_secs, things};

/// Terminal or Markdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Style {
    Terminal,
    Markdown,
}

/// A table in `style` with `header`: the first column left-aligned, the
/// rest right-aligned.
pub(crate) fn table(style: Style, header: &[&str]) -> Table {
    let mut t = Table::new();
    match style {
        Style::Terminal => {
            t.load_preset(presets::NOTHING)
                .set_style(TableComponent::HeaderLines, '-')
                .set_content_arrangement(ContentArrangement::Dynamic)
                .set_width(100);
        }
        Style::Markdown => {
            t.load_preset(presets::ASCII_MARKDOWN);
        }
    }
    t.set_header(header.iter().map(Cell::new));
    for i in 0..header.len() {
        if let Some(col) = t.column_mut(i) {
            if i > 0 {
                col.set_cell_alignment(CellAlignment::Right);
            }
            if style == Style::Terminal {
                col.set_padding((if i == 0 { 0 } else { 2 }, 0));
            }
        }
    }
    t
}

/// What a row that did not run shows in its first figure column.
fn not_run(r: &StrategyResult) -> Option<&'static str> {
    if r.skipped.is_some() {
        Some("skipped")
    } else if !r.ran() {
        Some("error")
    } else {
        None
    }
}

/// One row per strategy: its name, then `cells(row)`, or what it did
/// instead of running.
fn per_strategy(
    export: &Export,
    style: Style,
    header: &[&str],
    cells: impl Fn(&StrategyResult) -> Vec<String>,
) -> Table {
    let mut t = table(style, header);
    for r in &export.results {
        let mut row = vec![r.strategy.clone()];
        match not_run(r) {
            Some(what) => row.push(what.to_owned()),
            None => row.extend(cells(r)),
        }
        t.add_row(row);
    }
    t
}

/// Wall time, its spread and the ideal; start-up, first result, latency.
pub(crate) fn time_table(export: &Export, style: Style) -> Table {
    per_strategy(
        export,
        style,
        &[
            "strategy",
            "median",
            "min",
            "max",
            "+/- MAD",
            "x ideal",
            "start-up",
            "1st result",
            "p50 req",
            "p99 req",
        ],
        |r| {
            vec![
                opt(r.median_s, secs),
                opt(r.min_s, secs),
                opt(r.max_s, secs),
                opt(r.mad_s, secs),
                opt(r.ratio_to_ideal, ratio),
                opt(r.startup_s, secs),
                opt(r.first_result_s, secs),
                opt(r.latency_p50_s, secs),
                opt(r.latency_p99_s, secs),
            ]
        },
    )
}

/// What each strategy cost, measured over its own process tree.
pub(crate) fn cost_table(export: &Export, style: Style) -> Table {
    per_strategy(
        export,
        style,
        &[
            "strategy",
            "CPU",
            "user/sys",
            "CPU/req",
            "syscalls/req",
            "mem tree",
            "mem own",
            "threads",
            "procs",
            "ctx vol",
            "ctx invol",
        ],
        |r| {
            vec![
                opt(r.cpu_s(), secs),
                cpu_split(r),
                opt(r.cpu_per_request_us, micros),
                syscalls_per_request(r),
                opt(r.peak_rss_bytes, bytes),
                opt(r.parent_peak_rss_bytes, bytes),
                opt(r.peak_threads, count),
                opt(r.peak_processes, count),
                opt(r.voluntary_ctx_switches, count),
                opt(r.involuntary_ctx_switches, count),
            ]
        },
    )
}

/// The user/system split of a run's CPU, as shares (`71/29%`), where
/// enough of it was sampled to tell ([`rates_measure::SPLIT_MIN_CPU_S`]).
fn cpu_split(r: &StrategyResult) -> String {
    match (r.cpu_user_s, r.cpu_s()) {
        (Some(user), Some(total)) if r.cpu_split_known() && total > 0.0 => {
            let u = (user / total * 100.0).round();
            format!("{u:.0}/{:.0}%", 100.0 - u)
        }
        (Some(_), Some(_)) => "~".to_owned(),
        _ => "-".to_owned(),
    }
}

/// Syscalls per request, or `n/a` where the counter could not be opened.
pub(crate) fn syscalls_per_request(r: &StrategyResult) -> String {
    match r.syscalls_per_request {
        Some(v) => format!("{v:.2}"),
        None if r.syscalls_unavailable.is_some() => "n/a".to_owned(),
        None => "-".to_owned(),
    }
}

/// Why syscalls are not counted, once for the export, when they are not.
pub(crate) fn syscalls_unavailable(export: &Export) -> Option<&str> {
    export
        .results
        .iter()
        .find_map(|r| r.syscalls_unavailable.as_deref())
}

/// Whether any strategy's runs were stopped (a deadline, or the `cancel`
/// scenario): then the report has a third table.
pub(crate) fn has_stops(export: &Export) -> bool {
    export.results.iter().any(|r| r.time_to_stop_s.is_some())
}

/// How each strategy stopped: the time from the stop to `fetch`
/// returning, and what the run left alive just after.
pub(crate) fn stop_table(export: &Export, style: Style) -> Table {
    per_strategy(
        export,
        style,
        &[
            "strategy",
            "to stop",
            "max",
            "fetched",
            "cancelled",
            "left: threads",
            "procs",
            "sockets",
            "kept",
        ],
        |r| {
            let left = r.left.as_ref();
            vec![
                opt(r.time_to_stop_s, secs),
                opt(r.time_to_stop_max_s, secs),
                r.ok.to_string(),
                r.cancelled.to_string(),
                opt(left.map(|l| l.threads), count),
                opt(left.map(|l| l.processes), count),
                opt(left.map(|l| l.sockets), count),
                left.and_then(|l| l.kept.as_ref())
                    .map_or_else(|| "-".to_owned(), |(_, n)| count(*n)),
            ]
        },
    )
}

/// What the stopping table's figures are.
const STOP_LEGEND: &str = "to stop: from the stop handle firing to `fetch` returning (every \
    thread it started joined, every child reaped), the median and the longest over the runs; \
    fetched and cancelled: bases of the last run (they add up to the bases); left: threads, \
    child processes and open sockets alive in the strategy's process just after `fetch` \
    returned, beyond those alive before it, the most of any run; kept: the threads of a \
    runtime pool the strategy keeps for its next run or does not own (tokio's and \
    tokio-blocking's runtimes, async-std's global executor, async-io's reactor), not counted \
    as left.";

/// Lines under the tables: skipped and failed strategies, notes, and the
/// server's view where it matters.
pub(crate) fn notes(export: &Export) -> Vec<String> {
    notes_as_written(export)
        .iter()
        .map(|n| crate::names::named(n))
        .collect()
}

fn notes_as_written(export: &Export) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(why) = syscalls_unavailable(export) {
        out.push(format!("syscalls/req: n/a: {why}"));
    }
    for r in &export.results {
        if let Some(why) = &r.skipped {
            out.push(format!("{}: {why}", r.strategy));
        }
        if let Some(e) = &r.error {
            out.push(format!("{}: did not run: {e}", r.strategy));
        }
        if let Some(note) = &r.note {
            out.push(format!("{}: note: {note}", r.strategy));
        }
        if r.ran() && r.failed > r.cancelled {
            let first = r
                .runs
                .last()
                .and_then(|run| run.child.first_failure.clone())
                .unwrap_or_default();
            out.push(format!(
                "{}: {} bases failed ({first})",
                r.strategy,
                r.failed - r.cancelled
            ));
        }
        if let (Some(limit), Some(busiest)) = (export.scenario.rate_limit_per_s, r.busiest_second)
            && r.ran()
        {
            out.push(format!(
                "{}: busiest second at the server: {busiest} requests (limit {limit}/s)",
                r.strategy
            ));
        }
        if let Some(c) = r.connections {
            out.push(format!(
                "{}: {c} connection{} opened per run",
                r.strategy,
                if c == 1 { "" } else { "s" }
            ));
        }
    }
    out
}

/// The summary's first line: which bases failed, or that none did.
fn outcome_line(export: &Export, ran: &[&StrategyResult]) -> String {
    let failed: Vec<String> = ran
        .iter()
        .filter(|r| r.failed > r.cancelled)
        .map(|r| {
            format!(
                "{} ({} of {})",
                r.strategy,
                r.failed - r.cancelled,
                r.ok + r.failed
            )
        })
        .collect();
    if !failed.is_empty() {
        return format!("bases failed:         {}", failed.join(", "));
    }
    if has_stops(export) {
        return "no base failed: each was fetched, or cancelled by the stop".to_owned();
    }
    let could_not: Vec<&str> = export
        .results
        .iter()
        .filter(|r| r.error.is_some())
        .map(|r| r.strategy.as_str())
        .collect();
    let runs = if could_not.is_empty() {
        "in every strategy's last run".to_owned()
    } else {
        format!(
            "in the last run of every other strategy ({} could not run)",
            could_not.join(", ")
        )
    };
    let first = ran[0];
    format!(
        "every base succeeded: {} of {} {runs}",
        first.ok + first.failed,
        first.ok + first.failed
    )
}

/// The hyperfine-style summary: the fastest, the cheapest in CPU and in
/// memory, then one line per strategy.
pub(crate) fn summary(export: &Export) -> Vec<String> {
    let ran: Vec<&StrategyResult> = export.results.iter().filter(|r| r.ran()).collect();
    let mut out = Vec::new();
    let best = |key: fn(&StrategyResult) -> Option<f64>| {
        ran.iter()
            .filter_map(|r| key(r).map(|v| (*r, v)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    };
    if !ran.is_empty() {
        out.push(outcome_line(export, &ran));
    }
    if let Some((r, m)) = best(|r| r.median_s) {
        let vs = r
            .ratio_to_ideal
            .map(|x| format!(", {} its own ideal", ratio(x)))
            .unwrap_or_default();
        // Others whose runs overlap the fastest's: a tie, not a win.
        let tied: Vec<&str> = ran
            .iter()
            .filter(|o| o.strategy != r.strategy)
            .filter(|o| o.min_s.zip(r.max_s).is_some_and(|(lo, hi)| lo <= hi))
            .map(|o| o.strategy.as_str())
            .collect();
        let ties = if tied.is_empty() {
            String::new()
        } else {
            format!("; tied within the runs' spread: {}", tied.join(", "))
        };
        out.push(format!(
            "fastest:              {} ({}{vs}){ties}",
            r.strategy,
            secs(m)
        ));
    }
    if let Some((r, c)) = best(|r| r.cpu_per_request_us) {
        out.push(format!(
            "least CPU/request:    {} ({} per request)",
            r.strategy,
            micros(c)
        ));
    }
    if let Some((r, b)) = best(|r| r.peak_rss_bytes.map(|b| b as f64)) {
        out.push(format!(
            "least memory:         {} ({} peak, whole process tree)",
            r.strategy,
            bytes(b as u64)
        ));
    }
    for r in &ran {
        let mut parts = Vec::new();
        parts.push(match r.ratio_to_ideal {
            Some(x) => format!("{} its ideal", ratio(x)),
            None => opt(r.median_s, secs),
        });
        if let Some(c) = r.cpu_per_request_us {
            parts.push(format!("{} CPU/request", micros(c)));
        }
        if let Some(b) = r.peak_rss_bytes {
            parts.push(bytes(b));
        }
        if let Some(t) = r.peak_threads {
            parts.push(format!("{t} thread{}", if t == 1 { "" } else { "s" }));
        }
        if let Some(p) = r.peak_processes.filter(|&p| p > 1) {
            parts.push(format!("{p} processes"));
        }
        out.push(format!("  {:<15} {}", r.strategy, parts.join(", ")));
    }
    out
}

/// `name: about`, and every setting the scenario was run with that its
/// one line does not say (`classic: ... concurrency 4, work 1 ms per item`).
pub(crate) fn title(export: &Export) -> String {
    let s = &export.scenario;
    let mut title = format!("{}: {}", s.name, s.about);
    if s.work_s > 0.0 && !s.about.contains("work") {
        title.push_str(&format!(", work {} per item", setting_secs(s.work_s)));
    }
    if let Some(d) = s.deadline_s {
        title.push_str(&format!(", deadline {}", setting_secs(d)));
    }
    title
}

/// The warning that other work took too much of the machine while this
/// was measured, if it did.
pub(crate) fn busy_warning(export: &Export) -> Option<&str> {
    export.machine.busy.as_ref()?.warning.as_deref()
}

/// What the figures are, for the text under every report.
pub(crate) fn legend(export: &Export) -> String {
    format!(
        "Each of {runs} per strategy (after {warmup} warm-up) ran in a fresh \
         `rates` child process against the same server in the parent, in rotating order. \
         median/min..max/MAD: wall time of one whole run (start-up of threads, pools, \
         runtimes or workers included). x ideal: median / (ceil(bases / in flight) x latency, \
         and >= bases / rate). start-up: spawn to the first request at the server; 1st \
         result: spawn to the first finished base; p50/p99 req: one request's latency from the \
         attempt loop's timestamps. CPU: user plus system time of the whole process tree \
         per run, exact (the scheduler's clock), and per request sent (process start-up \
         included); user/sys: its split, which the kernel samples at clock ticks, shown only \
         for runs of at least {split} s of CPU (~: fewer ticks than that, split not shown). syscalls/req: \
         syscalls of the whole tree per request sent, start-up included, counted by the \
         kernel (perf events on raw_syscalls:sys_enter, inherited by every thread and \
         process; with keep-alive, one request needs at least one write and one read on epoll; \
         io_uring submits them in batches and can go under that). \
         mem tree: most RSS summed \
         over the child and all its descendants at one sample (every {interval} ms; shared \
         pages count once per process); mem own: the child process alone. threads, procs: \
         most alive at one sample. ctx: context switches of the tree per run. Figures are \
         medians over the runs; threads and procs are the most seen in any run. Not measured: \
         the server's own costs (it runs in the parent), and spikes shorter than the \
         sampling interval.",
        runs = things(export.runs as u64, "timed run", "timed runs"),
        warmup = export.warmup,
        interval = export.sample_interval_ms,
        split = rates_measure::SPLIT_MIN_CPU_S,
    ) + &external_legend(export)
}

/// What differs for external programs, when the export has any.
fn external_legend(export: &Export) -> String {
    let names: Vec<&str> = export
        .results
        .iter()
        .filter(|r| r.external.is_some())
        .map(|r| r.strategy.as_str())
        .collect();
    if names.is_empty() {
        return String::new();
    }
    format!(
        " External programs ({}; docs/EXTERNAL.md) were started directly (`sh -c 'exec \
         COMMAND'`), their job on stdin, and measured the same way; their wall time runs from \
         the `ready` line they print to their last result line (an interpreter's start-up is \
         in start-up and 1st result, not in wall), p50/p99 req are not known for them (the \
         server keeps no per-request times), and every base's rates were checked against the \
         server's.",
        names.join(", ")
    )
}

/// The whole terminal report for one scenario.
pub(crate) fn terminal(export: &Export) -> String {
    let mut out = String::new();
    if let Some(w) = busy_warning(export) {
        out.push_str(&textwrap(&format!("WARNING: {w}"), 100));
        out.push_str("\n\n");
    }
    out.push_str(&format!(
        "{}\n\nTime\n{}\n\nCost (each strategy's own process tree)\n{}\n",
        title(export),
        time_table(export, Style::Terminal),
        cost_table(export, Style::Terminal)
    ));
    if has_stops(export) {
        out.push_str(&format!(
            "\nStopping\n{}\n{}\n",
            stop_table(export, Style::Terminal),
            textwrap(STOP_LEGEND, 100)
        ));
    }
    let notes = notes(export);
    if !notes.is_empty() {
        out.push('\n');
        for n in notes {
            out.push_str(&n);
            out.push('\n');
        }
    }
    out.push_str("\nSummary\n");
    for line in summary(export) {
        out.push_str(&line);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&textwrap(&legend(export), 100));
    out.push('\n');
    out
}

/// The Markdown report for one scenario (no charts).
pub(crate) fn markdown(export: &Export) -> String {
    let mut out = format!(
        "## {}\n\n{}### Time\n\n{}\n\n### Cost (each strategy's own process tree)\n\n{}\n\n",
        title(export),
        busy_warning(export).map_or(String::new(), |w| format!("> **Warning**: {w}\n\n")),
        time_table(export, Style::Markdown),
        cost_table(export, Style::Markdown)
    );
    if has_stops(export) {
        out.push_str(&format!(
            "### Stopping\n\n{}\n\n{STOP_LEGEND}\n\n",
            stop_table(export, Style::Markdown)
        ));
    }
    for n in notes(export) {
        out.push_str(&format!("- {n}\n"));
    }
    out.push_str("\n**Summary**\n\n```text\n");
    for line in summary(export) {
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str("```\n\n");
    out.push_str(&legend(export));
    out.push_str(&format!(
        "\n\nMachine: {}, {} cores, {}, kernel {}; one-minute load average {} before this \
         scenario and {} after (the runs' own threads count in it); {}commit {}.\n",
        export.machine.cpu,
        export.machine.cores,
        bytes(export.machine.memory_bytes),
        export.machine.kernel,
        opt(export.machine.load_before, |l| format!("{l:.2}")),
        opt(export.machine.load_after, |l| format!("{l:.2}")),
        export
            .machine
            .busy
            .as_ref()
            .map_or(String::new(), |b| format!(
                "other work took {:.0}% of its CPU while measuring; ",
                b.other_share * 100.0
            )),
        export.machine.commit,
    ));
    out
}

/// Wraps `text` at `width` columns on spaces.
/// `text` wrapped at `width` columns, at spaces.
pub(crate) fn textwrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = 0;
    for word in text.split_whitespace() {
        if line > 0 && line + 1 + word.len() > width {
            out.push('\n');
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += word.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use rates_measure::{ScenarioInfo, StrategyResult};

    use super::*;

    fn row(name: &str, runs: [f64; 3]) -> StrategyResult {
        StrategyResult {
            strategy: name.into(),
            median_s: Some(runs[1]),
            min_s: Some(runs[0]),
            max_s: Some(runs[2]),
            ideal_s: 0.2,
            ratio_to_ideal: Some(runs[1] / 0.2),
            runs_s: runs.to_vec(),
            ok: 500,
            ..StrategyResult::default()
        }
    }

    fn export(rows: Vec<StrategyResult>) -> Export {
        Export {
            scenario: ScenarioInfo {
                name: "fanout".into(),
                bases: 500,
                ..ScenarioInfo::default()
            },
            results: rows,
            ..Export::default()
        }
    }

    fn fastest(e: &Export) -> String {
        summary(e)
            .into_iter()
            .find(|l| l.starts_with("fastest:"))
            .expect("a fastest line")
    }

    #[test]
    fn a_scenario_gives_its_own_load_before_and_after_and_what_counts_in_it() {
        let mut e = export(vec![row("tokio", [0.2, 0.2, 0.2])]);
        e.machine.load_before = Some(1.0);
        e.machine.load_after = Some(2.5);
        let md = markdown(&e);
        assert!(
            md.contains(
                "one-minute load average 1.00 before this scenario and 2.50 after (the runs' \
                 own threads count in it)"
            ),
            "{md}"
        );
    }

    #[test]
    fn a_strategy_that_could_not_run_is_not_counted_as_succeeding() {
        let mut broken = row("liar", [0.2, 0.2, 0.2]);
        broken.median_s = None;
        broken.error = Some("liar broke the job protocol".into());
        let mut ok = row("tokio", [0.2, 0.2, 0.2]);
        ok.ok = 5;
        let lines = summary(&export(vec![ok, broken]));
        assert_eq!(
            lines[0],
            "every base succeeded: 5 of 5 in the last run of every other strategy (liar could \
             not run)"
        );
    }

    #[test]
    fn titles_say_the_settings_their_line_does_not() {
        let mut e = export(vec![row("tokio", [0.2, 0.2, 0.2])]);
        e.scenario.about = "the classic five bases, 100 ms latency, concurrency 4".into();
        assert_eq!(
            title(&e),
            "fanout: the classic five bases, 100 ms latency, concurrency 4"
        );
        e.scenario.work_s = 0.001;
        e.scenario.deadline_s = Some(2.0);
        assert_eq!(
            title(&e),
            "fanout: the classic five bases, 100 ms latency, concurrency 4, work 1 ms per item, \
             deadline 2 s"
        );
        assert!(terminal(&e).starts_with(&title(&e)));
        assert!(markdown(&e).starts_with(&format!("## {}", title(&e))));
    }

    #[test]
    fn a_winner_within_the_runs_spread_is_a_tie() {
        let close = export(vec![
            row("tokio", [0.205, 0.209, 0.213]),
            row("smol", [0.207, 0.211, 0.214]),
            row("pool", [0.214, 0.216, 0.219]),
        ]);
        let line = fastest(&close);
        assert!(
            line.contains("tokio (209 ms, 1.04x its own ideal)"),
            "{line}"
        );
        assert!(
            line.ends_with("tied within the runs' spread: smol"),
            "{line}"
        );

        let apart = export(vec![
            row("tokio", [0.205, 0.209, 0.210]),
            row("pool", [0.214, 0.216, 0.219]),
        ]);
        let line = fastest(&apart);
        assert!(!line.contains("tied"), "{line}");
    }
}
