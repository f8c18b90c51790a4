#!/usr/bin/env bash
# The one figure `rates compare` cannot make alone: each strategy's request
# rate on `overhead` (20,000 bases, no latency, concurrency 64) as a share of
# what wrk -t1 -c64 gets from the same server, `rates serve --threads 1` in a
# process of its own, in one run. Everything else is `rates compare`.
#
# Usage: scripts/measure.sh [OUT_DIR]   (default: results/<UTC date>-vs-wrk)
# Needs wrk (installed from Debian's packages if missing and apt-get exists).
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
OUT=${1:-results/$(date -u +%Y-%m-%dT%H%M)-vs-wrk}
PORT=${PORT:-18181}
RUNS=${RUNS:-3}
mkdir -p "$OUT"

if ! command -v wrk >/dev/null; then
  if command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
  else
    echo "wrk is needed: install it (Debian: apt-get install wrk)" >&2
    exit 1
  fi
fi

$CARGO build --release -q -p rates-cli
RATES=target/release/rates
# The machine, and how busy it was: the ratios are only as good as the quiet.
MACHINE="$(uname -srm), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg) at start, $(date -u +%FT%TZ)"

. scripts/serve.sh
serve_in_background "$RATES" --latency 0 --threads 1

# wrk runs once before the strategies and once after them, so a machine
# that drifts during the run moves the baseline too; the ratios use the mean
# of the two, and both are printed. wrk's own CPU (user + system, from GNU
# time's -f when it is there) gives its CPU per request, to set beside each
# strategy's.
WRK_URL="http://127.0.0.1:$PORT/rates?base=USD&symbols=USD,EUR,PLN,NOK,CZK"
run_wrk() {
  local name=$1
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f "wrk-cpu %U %S" -o "$OUT/$name-cpu.txt" wrk -t1 -c64 -d5s "$WRK_URL" >"$OUT/$name.txt"
  else
    wrk -t1 -c64 -d5s "$WRK_URL" >"$OUT/$name.txt"
  fi
  awk '/Requests\/sec/ {print $2}' "$OUT/$name.txt"
}
wrk_cpu() {
  local name=$1 requests
  requests=$(awk '/requests in/ {print $1}' "$OUT/$name.txt")
  awk -v n="$requests" '/^wrk-cpu/ && n > 0 && $2 + $3 > 0 {
    printf "%.1f us of CPU per request (%.0f%% of it system)", ($2 + $3) * 1e6 / n, 100 * $3 / ($2 + $3)
  }' "$OUT/$name-cpu.txt" 2>/dev/null || true
}
WRK_BEFORE=$(run_wrk wrk-before)
echo "wrk before: $WRK_BEFORE requests/s"
$RATES compare --scenario overhead --runs "$RUNS" \
  --endpoint "http://127.0.0.1:$PORT/rates?base={base}&symbols={symbols}" \
  --export-json "$OUT/overhead.json" --export-csv "$OUT/overhead.csv" >"$OUT/overhead.txt"
WRK_AFTER=$(run_wrk wrk-after)
echo "wrk after: $WRK_AFTER requests/s"
WRK=$(awk -v a="$WRK_BEFORE" -v b="$WRK_AFTER" 'BEGIN { printf "%.0f", (a + b) / 2 }')
# requests/s of each strategy's median run against wrk's, from the CSV.
awk -F, -v wrk="$WRK" '
  NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; printf "%-15s %12s %8s %12s\n", "strategy", "requests/s", "x wrk", "CPU/request"; next }
  $col["median_s"] != "" {
    rate = $col["requests"] / $col["median_s"]
    printf "%-15s %12.0f %8.2f %9.1f us\n", $col["strategy"], rate, rate / wrk, $col["cpu_per_request_us"]
  }' "$OUT/overhead.csv" | { echo "# $MACHINE"; cat; } | tee "$OUT/vs-wrk.txt"
{
  echo "wrk: $WRK requests/s, the mean of $WRK_BEFORE (before the strategies) and $WRK_AFTER (after)"
  echo "wrk before: $(wrk_cpu wrk-before)"
  echo "wrk after:  $(wrk_cpu wrk-after)"
  echo "results in $OUT"
} | tee -a "$OUT/vs-wrk.txt"
