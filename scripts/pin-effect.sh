#!/usr/bin/env bash
# What pinning (rates compare --pin) does to the spread of the figures on
# this machine: ROUNDS self-comparisons of this build on the `gate`
# scenario unpinned and ROUNDS pinned, alternating (so a slow spell of the
# machine hits both), each a fixed number of pairs. For each strategy and
# mode it reports:
#   - the spread between runs of unchanged code (the median absolute
#     deviation of a figure over every run, as a share of its median):
#     what a gate against stored figures would have to tell a change from;
#   - the spread of the paired ratios B/A (the same, over the pairs): what
#     the paired gate has to tell a change from.
# For CPU per request and wall time. The spread of the request rate against
# wrk, pinned and not, is measure.sh's to show (PIN=1).
#
# Usage: scripts/pin-effect.sh [OUT_DIR]   (default: results/<UTC date>-pin)
#   ROUNDS=N   self-comparisons per mode (default 4)
#   PAIRS=N    pairs per strategy in each (default 20)
# Writes summary.txt, and each comparison's table and JSON export
# (unpinned-N.*, pinned-N.*). Needs python3.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
OUT=${1:-results/$(date -u +%Y-%m-%dT%H%M)-pin}
ROUNDS=${ROUNDS:-4}
PAIRS=${PAIRS:-20}
mkdir -p "$OUT"
command -v python3 >/dev/null || { echo "python3 is needed to summarise" >&2; exit 1; }

$CARGO build --release -q -p rates-cli
RATES=target/release/rates
MACHINE="$(uname -srm), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg) at start, $(date -u +%FT%TZ), commit $(git rev-parse --short=12 HEAD)$(git diff --quiet HEAD || echo -dirty)"

for i in $(seq "$ROUNDS"); do
  for mode in unpinned pinned; do
    flag=()
    [ "$mode" = pinned ] && flag=(--pin)
    echo "round $i/$ROUNDS: $mode" >&2
    "$RATES" compare --scenario gate "${flag[@]}" --against self --min-pairs "$PAIRS" \
      --max-pairs "$PAIRS" --max-time 10m --max-regression 100% \
      --export-json "$OUT/$mode-$i.json" >"$OUT/$mode-$i.txt" 2>"$OUT/$mode-$i.log"
  done
done

python3 - "$OUT" "$ROUNDS" "$PAIRS" "$MACHINE" <<'PY' | tee "$OUT/summary.txt"
import json, sys, pathlib, statistics
out, rounds, pairs, machine = pathlib.Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]

def rel_mad(values):
    m = statistics.median(values)
    return statistics.median(abs(v - m) for v in values) / m if m else 0.0

figures = {"cpu": "cpu_per_request_us", "wall": "wall_s"}
data = {}  # (mode, strategy, figure) -> (runs, ratios)
order = []
for mode in ("unpinned", "pinned"):
    for i in range(1, rounds + 1):
        doc = json.loads((out / f"{mode}-{i}.json").read_text())
        for s in doc["strategies"]:
            if s["strategy"] not in order:
                order.append(s["strategy"])
            for f, field in figures.items():
                runs, ratios = data.setdefault((mode, s["strategy"], f), ([], []))
                for p in s["pairs"]:
                    a, b = p["a"].get(field), p["b"].get(field)
                    if a and b:
                        runs += [a, b]
                        ratios.append(b / a)
print("What pinning does to the spread of the figures")
print(f"machine: {machine}")
print(f"command: ROUNDS={rounds} PAIRS={pairs} scripts/pin-effect.sh {out}")
print(f"each mode: {rounds} self-comparisons of the gate scenario, {pairs} pairs per strategy, "
      "the modes alternating")
print("pinned: the server (the comparing process) on CPU 0, every run's process tree on CPU 1")
print()
print("spread = median absolute deviation as a share of the median; runs: over every run of the")
print("(unchanged) build; pairs: over the ratios B/A of its pairs")
print()
for f in figures:
    print(f"{'CPU per request' if f == 'cpu' else 'wall time'}")
    print(f"  {'strategy':<15} {'runs unpinned':>14} {'runs pinned':>12} {'pairs unpinned':>15} "
          f"{'pairs pinned':>13} {'median unpinned':>16} {'median pinned':>14}")
    for s in order:
        u = data.get(("unpinned", s, f))
        p = data.get(("pinned", s, f))
        if not u or not p or not u[0] or not p[0]:
            continue
        unit = (lambda v: f"{v:.1f} us") if f == "cpu" else (lambda v: f"{v * 1e3:.1f} ms")
        print(f"  {s:<15} {rel_mad(u[0]):>13.1%} {rel_mad(p[0]):>12.1%} {rel_mad(u[1]):>15.1%} "
              f"{rel_mad(p[1]):>13.1%} {unit(statistics.median(u[0])):>16} "
              f"{unit(statistics.median(p[0])):>14}")
    print()
PY
