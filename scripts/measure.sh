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

$RATES serve --port "$PORT" --latency 0 --threads 1 --duration 900s --stats-every 3600s >/dev/null &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done

wrk -t1 -c64 -d5s "http://127.0.0.1:$PORT/rates?base=USD&symbols=USD,EUR,PLN,NOK,CZK" | tee "$OUT/wrk.txt"
WRK=$(awk '/Requests\/sec/ {print $2}' "$OUT/wrk.txt")
$RATES compare --scenario overhead --runs "$RUNS" \
  --endpoint "http://127.0.0.1:$PORT/rates?base={base}&symbols={symbols}" \
  --export-json "$OUT/overhead.json" --export-csv "$OUT/overhead.csv" >"$OUT/overhead.txt"
# requests/s of each strategy's median run against wrk's, from the CSV.
awk -F, -v wrk="$WRK" '
  NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; printf "%-15s %12s %8s\n", "strategy", "requests/s", "x wrk"; next }
  $col["median_s"] != "" {
    rate = $col["requests"] / $col["median_s"]
    printf "%-15s %12.0f %8.2f\n", $col["strategy"], rate, rate / wrk
  }' "$OUT/overhead.csv" | tee "$OUT/vs-wrk.txt"
echo "wrk: $WRK requests/s; results in $OUT"
