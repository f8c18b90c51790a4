//! `rates profile`: its flags; the work is `rates_report::profile`'s.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use rates_report::profile::ProfileOptions;

#[derive(Debug, Args)]
#[command(after_help = "What it writes in DIR:
  summary.txt     per request: CPU, syscalls, context switches; syscalls by name; the kernel's
                  share of the CPU samples; where the time went (runtime, transport, decode, the
                  strategy's own code, kernel, libc); the frames with the most time of their own
  flamegraph.svg  the CPU samples of the whole process tree (open it in a browser: click to zoom)
  stacks.folded   the same samples as folded stacks (inferno, FlameGraph)
  syscalls.csv    each syscall's count and count per request
  profile.json    everything in summary.txt, for programs

The measured run's figures are as `rates compare` takes them; the runs under perf are slowed by
it and give only counts and shares. Needs perf (Debian: linux-perf) and, for syscalls by name,
tracefs (scripts/perf-setup.sh). How to read a profile: docs/USAGE.md, \"Profiles\".

Examples:
  rates profile --strategy tokio --out results/profile-tokio
  rates profile --strategy smol --scenario overhead --out /tmp/smol
  rates profile --strategy py-asyncio --out /tmp/py   (an external client of clients/clients.toml)")]
pub(crate) struct ProfileArgs {
    // The options, defined once in the library (help, defaults, parsing).
    #[command(flatten)]
    options: ProfileOptions,
}

pub(crate) fn run(a: ProfileArgs) -> Result<ExitCode> {
    rates_report::profile::run(&a.options)
}
