//! The manifest of the machine and conditions a run was taken in.

use std::process::Command;

use rates_measure::Machine;

fn first_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned()
    })
}

/// Where and how a report was taken, in one sentence: the date, the
/// machine, the build. (The Markdown and HTML reports both open with it.)
pub(crate) fn taken(m: &Machine) -> String {
    format!(
        "Taken {} on {} ({} cores, {}), {} kernel {}, built with {}, commit {}.",
        m.date,
        m.cpu,
        m.cores,
        super::fmt::bytes(m.memory_bytes),
        m.os,
        m.kernel,
        m.rustc,
        m.commit
    )
}

/// The one-minute load average, where the platform gives it.
pub(crate) fn load() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// What this machine is, now.
pub(crate) fn describe() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown".to_owned(), |(_, v)| v.trim().to_owned());
    let memory_bytes = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024);
    let commit = first_line("git", &["rev-parse", "--short=12", "HEAD"]).map_or_else(
        || "unknown".to_owned(),
        |c| {
            // Changes to results/ (a baseline this run saves there) are
            // not changes to the code that was measured.
            let dirty = first_line(
                "git",
                &[
                    "status",
                    "--porcelain",
                    "--untracked-files=no",
                    "--",
                    ":(top,exclude)results",
                ],
            )
            .is_some_and(|s| !s.is_empty());
            if dirty { format!("{c}-dirty") } else { c }
        },
    );
    Machine {
        date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        commit,
        rustc: env!("RATES_RUSTC_VERSION").to_owned(),
        os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".to_owned(), |k| k.trim().to_owned()),
        cpu,
        cores: std::thread::available_parallelism().map_or(0, usize::from),
        memory_bytes,
        load_before: load(),
        load_after: None,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        affinity: None,
        incomplete: None,
        busy: None,
    }
}
