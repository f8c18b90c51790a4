#!/usr/bin/env bash
# What starting and stopping `process`'s workers costs: a run of 64 bases at
# concurrency 64 against `rates serve --latency 0 --threads 1` in a process
# of its own, which is nearly all the start and stop of 64 workers; with the
# workers forked from a fork server (the default) and with the program run
# for each worker (RATES_PROCESS_FORK_SERVER=0), alternating.
#
# Usage: scripts/startup.sh [OUT_DIR]   (default: results/<UTC date>-startup)
#   RUNS=N     runs of each, alternating (default 10)
#   BASES=N    bases per run (default 64; the concurrency is 64)
#   PORT=N     the server's port (default 18184)
# Writes startup.txt: per setting the median wall time and CPU time (user +
# system of the whole process tree, from bash's `time`) over the runs, and
# runs.txt with every run.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
OUT=${1:-results/$(date -u +%Y-%m-%dT%H%M)-startup}
PORT=${PORT:-18184}
RUNS=${RUNS:-10}
BASES=${BASES:-64}
mkdir -p "$OUT"

$CARGO build --release -q -p rates-cli
RATES=target/release/rates
MACHINE="$(uname -srm), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg) at start, $(date -u +%FT%TZ)"

. scripts/serve.sh
serve_in_background "$RATES" --latency 0 --threads 1
ENDPOINT="http://127.0.0.1:$PORT/rates?base={base}&symbols={symbols}"

# One run: "wall_s cpu_s" (bash's time: the process and every child it
# reaped, so the workers and the fork server are in the CPU time).
one_run() {
  local TIMEFORMAT='%R %U %S'
  local times
  times=$({ time RATES_PROCESS_FORK_SERVER=$1 "$RATES" fetch --strategy process \
    --bases "$BASES" --concurrency 64 --endpoint "$ENDPOINT" >/dev/null 2>&1; } 2>&1)
  awk '{ printf "%.4f %.4f\n", $1, $2 + $3 }' <<<"$times"
}

echo "setting run wall_s cpu_s" >"$OUT/runs.txt"
for ((i = 1; i <= RUNS; i++)); do
  for setting in 1 0; do
    echo "$setting $i $(one_run "$setting")" >>"$OUT/runs.txt"
  done
done

# The median of column $2 (seconds) over setting $1's runs, in ms.
median() {
  awk -v s="$1" -v c="$2" 'NR > 1 && $1 == s { print $c }' "$OUT/runs.txt" | sort -g |
    awk '{ v[NR] = $1 } END { printf "%.1f ms", 1000 * v[int((NR + 1) / 2)] }'
}
{
  echo "# $MACHINE; $RUNS runs each, alternating; $BASES bases, concurrency 64, process strategy"
  printf "%-40s %14s %13s\n" "workers" "wall (median)" "CPU (median)"
  printf "%-40s %14s %13s\n" "forked (RATES_PROCESS_FORK_SERVER=1)" "$(median 1 3)" "$(median 1 4)"
  printf "%-40s %14s %13s\n" "run each (RATES_PROCESS_FORK_SERVER=0)" "$(median 0 3)" "$(median 0 4)"
  echo "CPU: user + system of rates and every process it reaped (workers, fork server); every run in runs.txt"
} | tee "$OUT/startup.txt"
