#!/usr/bin/env bash
# Makes the kernel's syscall counter available to `rates` (the syscalls per
# request of every report, docs/METRICS.md): perf_event_open on the
# raw_syscalls:sys_enter tracepoint needs tracefs mounted, to read the
# tracepoint's id, and the right to open it (root, CAP_PERFMON, or
# kernel.perf_event_paranoid -1). Mounts tracefs when it is missing and this
# runs as root; otherwise says what is missing. Installs perf (linux-perf) for
# `rates profile` when it is missing. Never fails: without the
# counter, rates still runs and its reports say why the column is empty.
set -uo pipefail

# perf itself, for `rates profile` (Debian's linux-perf), when missing and
# this runs as root with apt-get.
if ! command -v perf >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "perf-setup: installing linux-perf (for rates profile)"
  { apt-get update -qq && apt-get install -y -qq linux-perf >/dev/null; } \
    || echo "perf-setup: could not install linux-perf: rates profile will say so" >&2
fi

for dir in "${RATES_TRACEFS:-}" /sys/kernel/tracing /sys/kernel/debug/tracing; do
  if [ -n "$dir" ] && [ -r "$dir/events/raw_syscalls/sys_enter/id" ]; then
    echo "perf-setup: tracefs at $dir: syscalls are counted"
    exit 0
  fi
done
if [ "$(id -u)" = 0 ]; then
  if mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null \
    && [ -r /sys/kernel/tracing/events/raw_syscalls/sys_enter/id ]; then
    echo "perf-setup: mounted tracefs at /sys/kernel/tracing: syscalls are counted"
    exit 0
  fi
  echo "perf-setup: could not mount tracefs (a container?): reports will say n/a for syscalls" >&2
else
  echo "perf-setup: tracefs is not mounted and this is not root: as root, run" \
    "'mount -t tracefs nodev /sys/kernel/tracing' (and, for a user, 'sysctl" \
    "kernel.perf_event_paranoid=-1'); until then reports say n/a for syscalls" >&2
fi
exit 0
