#!/usr/bin/env bash
# Measures the paired gate itself on this machine: how often it raises a
# false alarm on unchanged code, and how often it catches a known regression.
#
#   (a) SELF gates of this build against itself (the same binary as A and B):
#       every exit 3 is a false alarm. As CI does, a gate that exits 3 runs
#       once more and is judged on that run; both counts are reported.
#   (b) A copy of the tree (target/gate-power/tree; never this tree) gets a
#       known CPU cost per successful response: a spin, in the attempt loop
#       every strategy shares, whose length the copy reads per strategy from
#       RATES_GATE_POWER_SPIN_NS (`tokio=1200,pool=1500,...` in ns; `*=N` for
#       all). Each strategy's spin is EXTRA (default 10%) of its CPU per
#       request in the self-comparisons. POWER gates of the copy (B) against
#       this build (A) count, per strategy, how often its `cpu` figure is
#       REGRESSED (first gate; and as CI judges, with the re-run).
#
# Usage: scripts/gate-power.sh [OUT_DIR]   (default: results/<UTC date>-gate-power)
#   SELF=N       self-comparisons (default 20)
#   POWER=N      gates of the slowed copy (default 10)
#   EXTRA=S      the added CPU per response, a share of each strategy's CPU per
#                request (default 0.10)
#   GATE_ARGS    the gate's flags (default: CI's, --scenario gate --pin --max-time 2m)
# Writes summary.txt (the counts, the spins, each gate's time), gates.txt (a
# line per gate) and every gate's table and JSON export (self-N.*, power-N.*).
# Needs jq and python3 (installed from Debian's packages if missing and
# apt-get exists). Takes about (SELF + POWER) x 2 minutes, plus two builds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CARGO=${CARGO:-cargo}
OUT=${1:-results/$(date -u +%Y-%m-%dT%H%M)-gate-power}
SELF=${SELF:-20}
POWER=${POWER:-10}
EXTRA=${EXTRA:-0.10}
GATE_ARGS=${GATE_ARGS:---scenario gate --pin --max-time 2m}
COPY=$ROOT/target/gate-power/tree
COPY_TARGET=$ROOT/target/gate-power/target
mkdir -p "$OUT"

for tool in jq python3; do
  if ! command -v "$tool" >/dev/null; then
    if command -v apt-get >/dev/null; then
      apt-get update -qq && apt-get install -y -qq "$tool" >/dev/null
    else
      echo "$tool is needed: install it (Debian: apt-get install $tool)" >&2
      exit 1
    fi
  fi
done

$CARGO build --release -q -p rates-cli
RATES=$ROOT/target/release/rates
MACHINE="$(uname -srm), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg) at start, $(date -u +%FT%TZ), commit $(git rev-parse --short=12 HEAD)$(git diff --quiet HEAD || echo -dirty)"

# The copy, with the spin: the working tree as it is (uncommitted changes
# included), then two insertions, each at an anchor that must be there.
rm -rf "$COPY"
mkdir -p "$COPY"
tar --exclude=./target --exclude=./.git --exclude="./$OUT" -cf - . | tar -xf - -C "$COPY"
python3 - "$COPY" <<'PY'
import sys, pathlib
root = pathlib.Path(sys.argv[1])

def insert(path, anchor, text, after=True):
    p = root / path
    s = p.read_text()
    if s.count(anchor) != 1:
        sys.exit(f"gate-power: the anchor {anchor!r} is not in {path} exactly once; "
                 "update scripts/gate-power.sh to where the code moved")
    s = s.replace(anchor, anchor + text if after else text + anchor)
    p.write_text(s)

# Every successful response passes here, in every strategy, in the
# strategy's own process (the attempt loop; process's too runs in the parent).
insert("crates/core/src/fetch.rs",
       "            Ok(r) if (200..300).contains(&r.status) => match decode(self.base, &r.body) {\n                Ok(rates) => {\n",
       "                    crate::gate_power::spin();\n")
(root / "crates/core/src/lib.rs").write_text((root / "crates/core/src/lib.rs").read_text() + '''
/// scripts/gate-power.sh's known cost (in its copy of the tree only).
#[doc(hidden)]
pub mod gate_power {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    /// Nanoseconds of CPU to spend on every successful response.
    pub static SPIN_NS: AtomicU64 = AtomicU64::new(0);

    /// Spends them.
    pub fn spin() {
        let ns = SPIN_NS.load(Ordering::Relaxed);
        if ns > 0 {
            let start = Instant::now();
            while start.elapsed() < Duration::from_nanos(ns) {
                std::hint::spin_loop();
            }
        }
    }

    /// Sets the spin for `strategy` from RATES_GATE_POWER_SPIN_NS.
    pub fn set_for(strategy: &str) {
        let Ok(map) = std::env::var("RATES_GATE_POWER_SPIN_NS") else { return };
        for entry in map.split(',') {
            if let Some((name, ns)) = entry.split_once('=') {
                if name == strategy || name == "*" {
                    SPIN_NS.store(ns.trim().parse().unwrap_or(0), Ordering::Relaxed);
                }
            }
        }
    }
}
''')
insert("crates/cli/src/bench.rs",
       '        let spec: RunSpec = serde_json::from_str(&input).context("decoding the run spec")?;\n',
       "        rates_core::gate_power::set_for(&spec.strategy);\n")
PY
echo "building the slowed copy in $COPY"
(cd "$COPY" && CARGO_TARGET_DIR=$COPY_TARGET $CARGO build --release -q -p rates-cli)
SLOW=$COPY_TARGET/release/rates

GATES=$OUT/gates.txt
echo "# kind n exit exit_of_rerun seconds regressed" >"$GATES"
# One gate: B=$1 against A=$RATES; writes NAME.txt and NAME.json; prints
# "exit seconds".
one_gate() {
  local b=$1 name=$2 start code
  start=$(date +%s)
  set +e
  # shellcheck disable=SC2086
  "$b" compare $GATE_ARGS --against "$RATES" --export-json "$OUT/$name.json" \
    >"$OUT/$name.txt" 2>"$OUT/$name.log"
  code=$?
  set -e
  echo "$code $(($(date +%s) - start))"
}
regressed() {
  jq -r '[.strategies[] | .strategy as $s | .changes[] | select(.gated and .verdict == "regressed")
          | "\($s):\(.figure)"] | join(",")' "$1" 2>/dev/null || echo "no-export"
}

run_gates() {
  local kind=$1 count=$2 b=$3 i code secs again rerun
  for i in $(seq "$count"); do
    read -r code secs < <(one_gate "$b" "$kind-$i")
    again=-
    if [ "$code" -eq 3 ]; then
      read -r again rerun < <(one_gate "$b" "$kind-$i-rerun")
    fi
    echo "$kind $i $code $again $secs $(regressed "$OUT/$kind-$i.json")" | tee -a "$GATES"
  done
}

echo "(a) $SELF gates of this build against itself"
run_gates self "$SELF" "$RATES"

# Each strategy's CPU per request: the median over the self-comparisons of
# A's median there.
SELF_FILES=()
for i in $(seq "$SELF"); do
  [ -f "$OUT/self-$i.json" ] && SELF_FILES+=("$OUT/self-$i.json")
done
SPIN=$(jq -s -r --argjson extra "$EXTRA" '
  [.[].strategies[] | select(.changes | length > 0) | {s: .strategy, cpu: (.changes[] | select(.figure == "cpu") | .a)}]
  | group_by(.s) | map({s: .[0].s, cpu: (map(.cpu) | sort | .[(length / 2 | floor)])})
  | map("\(.s)=\((.cpu * 1000 * $extra) | round)") | join(",")' "${SELF_FILES[@]}")
echo "(b) $POWER gates of the copy, each strategy's responses slowed by $EXTRA of its CPU per request: $SPIN (ns)"
export RATES_GATE_POWER_SPIN_NS=$SPIN
run_gates power "$POWER" "$SLOW"
unset RATES_GATE_POWER_SPIN_NS

python3 - "$OUT" "$EXTRA" "$SPIN" "$MACHINE" "$GATE_ARGS" "$SELF" "$POWER" <<'PY' | tee "$OUT/summary.txt"
import json, sys, pathlib, statistics
out, extra, spin, machine, gate_args, n_self, n_power = sys.argv[1:]
out = pathlib.Path(out)
rows = [l.split() for l in (out / "gates.txt").read_text().splitlines() if not l.startswith("#")]
selfs = [r for r in rows if r[0] == "self"]
powers = [r for r in rows if r[0] == "power"]
first = lambda r: r[2] == "3"
as_ci = lambda r: r[2] == "3" and r[3] == "3"
print("Paired gate power on this machine")
print(f"machine: {machine}")
print(f"gate: rates compare {gate_args} --against <build>")
print(f"command: SELF={n_self} POWER={n_power} EXTRA={extra} scripts/gate-power.sh {out}")
print()
print(f"(a) false alarms in {len(selfs)} gates of unchanged code: "
      f"{sum(map(first, selfs))} in single gates, {sum(map(as_ci, selfs))} as CI judges (exit 3 twice)")
for r in selfs:
    if first(r):
        print(f"    self {r[1]}: {r[5] if len(r) > 5 else ''} (re-run exit {r[3]})")
spins = dict(e.split("=") for e in spin.split(",") if "=" in e)
print()
print(f"(b) a +{float(extra) * 100:.0f}% CPU-per-request regression (a spin per response), caught "
      f"(`cpu` REGRESSED) in {len(powers)} gates:")
print(f"    {'strategy':<15} {'CPU/req (A)':>11} {'spin':>8} {'single':>7} {'as CI':>6} {'median B/A':>10}")
cpu = {}
for r in selfs:
    d = json.loads((out / f"self-{r[1]}.json").read_text())
    for s in d["strategies"]:
        for c in s["changes"]:
            if c["figure"] == "cpu" and c["a"]:
                cpu.setdefault(s["strategy"], []).append(c["a"])
for strategy in spins:
    caught = caught_ci = 0
    ratios = []
    for r in powers:
        def cpu_verdict(name):
            p = out / f"{name}.json"
            if not p.exists():
                return None, None
            d = json.loads(p.read_text())
            for s in d["strategies"]:
                if s["strategy"] == strategy:
                    for c in s["changes"]:
                        if c["figure"] == "cpu":
                            return c["verdict"], c["ratio"]
            return None, None
        v, ratio = cpu_verdict(f"power-{r[1]}")
        if ratio:
            ratios.append(ratio)
        if v == "regressed":
            caught += 1
            # CI judges on the re-run when the first gate exits 3.
            v2, _ = cpu_verdict(f"power-{r[1]}-rerun")
            if r[2] == "3" and v2 == "regressed":
                caught_ci += 1
    base = statistics.median(cpu.get(strategy, [0]))
    print(f"    {strategy:<15} {base:>8.1f} us {int(spins[strategy]) / 1000:>5.2f} us {caught:>4}/{len(powers)} "
          f"{caught_ci:>3}/{len(powers)} {statistics.median(ratios) if ratios else 0:>10.3f}")
secs = [int(r[4]) for r in rows]
print()
print(f"one gate took {min(secs)} to {max(secs)} s (median {statistics.median(secs):.0f} s), builds excluded")
PY
