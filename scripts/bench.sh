#!/usr/bin/env bash
# Runs `rates compare --json` for every scenario (or those named) and keeps
# the JSON in a results folder, for reports and for tracking regressions
# run over run: each row has median_s, ideal_s and ratio_to_ideal.
#
# Usage: scripts/bench.sh [SCENARIO...]     (RUNS=5 OUT=results/... to change)
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
RUNS=${RUNS:-5}
OUT=${OUT:-results/$(date -u +%Y-%m-%dT%H%M)-compare}
$CARGO build --release -q -p rates-cli
RATES=target/release/rates
SCENARIOS=("$@")
if [ ${#SCENARIOS[@]} -eq 0 ]; then
  mapfile -t SCENARIOS < <($RATES scenarios | awk '{print $1}')
fi
mkdir -p "$OUT"
for s in "${SCENARIOS[@]}"; do
  echo "== $s ($RUNS runs each)" >&2
  # compare exits 1 when a base failed; keep the JSON and go on.
  $RATES compare --scenario "$s" --runs "$RUNS" --json > "$OUT/$s.json" || echo "   $s: some bases failed (see $OUT/$s.json)" >&2
done
echo "results in $OUT" >&2
