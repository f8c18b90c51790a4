#!/usr/bin/env bash
# A results run: `rates compare --out` over every scenario (or those named),
# written to results/<UTC date>-report: manifest, exports, SVG charts and
# REPORT.md. Commit the folder to keep it; `rates history results/` reads it.
#
# Usage: scripts/bench.sh [SCENARIO...]     (RUNS=5 OUT=results/... to change)
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
RUNS=${RUNS:-5}
OUT=${OUT:-results/$(date -u +%Y-%m-%dT%H%M)-report}
SCENARIOS=all
if [ $# -gt 0 ]; then
  SCENARIOS=$(IFS=,; echo "$*")
fi
$CARGO build --release -q -p rates-cli
# compare exits 1 when a strategy lost bases; the folder is still written.
target/release/rates compare --scenario "$SCENARIOS" --runs "$RUNS" --out "$OUT" || {
  code=$?
  [ "$code" -eq 1 ] || exit "$code"
  echo "some strategy lost bases: see $OUT/REPORT.md" >&2
}
