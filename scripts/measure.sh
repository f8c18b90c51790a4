#!/usr/bin/env bash
# The one figure `rates compare` cannot make alone: each strategy's request
# rate on `overhead` (20,000 bases, no latency, concurrency 64) as a share of
# what wrk -t1 -c64 gets from the same server, `rates serve --threads 1` in a
# process of its own, in one run. Everything else is `rates compare`.
#
# Usage: scripts/measure.sh [OUT_DIR]   (default: results/<UTC date>-vs-wrk)
#   RUNS=N          timed runs per strategy and round (default 3; the median is used)
#   ROUNDS=N        rounds over every strategy (default 3; the median round is shown)
#   STRATEGIES=a,b  which strategies (default: every registered one)
#   WRK_SECONDS=N   length of each wrk run (default 3)
#   PORT=N          the server's port (default 18181)
#   PIN=1           pin the server to the first half of the CPUs and wrk and each
#                   strategy's runs to the others (taskset; compare --pin), as
#                   pyperf's --affinity does: each client then has CPUs of its own,
#                   as wrk does. Default 0 (unpinned): measured here, pinning moved
#                   the ratios (tokio 0.75x to 0.84x) but did not steady the rounds
#                   (results/2026-12-07T0311-vs-wrk-pinned and -unpinned)
#   VARIANTS="..."  extra rows: NAME:STRATEGY:VAR=VALUE entries, space-separated,
#                   each a registered strategy run with one environment setting
#                   (default: tokio, smol and async-std with one executor thread,
#                   as wrk -t1 has; VARIANTS= for none)
# Writes vs-wrk.txt (the ratios), rounds.txt (every round's), overhead.txt
# and overhead.csv (every compare report and row, with its round),
# overhead-STRATEGY-ROUND.json, and each wrk run's output
# (wrk-before-STRATEGY-ROUND.txt, wrk-after-..., wrk-cpu.txt, and
# ...-syscalls.txt: wrk's syscalls, counted by perf stat where it can).
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

# Pinned: the server (every thread of it) on the first half of the CPUs,
# wrk and the measured runs on the rest, so neither takes the other's core.
PIN=${PIN:-0}
ON_CLIENT=()
PIN_FLAG=()
if [ "$PIN" = 1 ]; then
  cpus=$(nproc)
  if [ "$cpus" -lt 2 ]; then
    echo "PIN=1 needs at least two CPUs (this machine gives $cpus)" >&2
    exit 2
  fi
  half=$((cpus / 2))
  taskset -a -p -c "0-$((half - 1))" "$SERVER" >/dev/null
  ON_CLIENT=(taskset -c "$half-$((cpus - 1))")
  PIN_FLAG=(--pin)
  MACHINE="$MACHINE; pinned: the server on CPUs 0-$((half - 1)), wrk and the runs on $half-$((cpus - 1))"
fi

# Each strategy is measured between two wrk runs of its own (wrk, the
# strategy's RUNS timed runs, wrk), and its ratio is to the mean of those
# two: on a shared VM the machine's speed drifts within minutes (one run
# here saw wrk at 120k requests/s before the strategies and 91k after), so a
# baseline taken once for all would favour whichever strategy ran in a fast
# minute. wrk's own CPU (user + system, from GNU time's -f when it is there)
# gives its CPU per request, to set beside each strategy's.
WRK_URL="http://127.0.0.1:$PORT/rates?base=USD&symbols=USD,EUR,PLN,NOK,CZK"
WRK_SECONDS=${WRK_SECONDS:-3}
# wrk's syscalls, counted by the kernel as a strategy's are (perf stat on
# the raw_syscalls:sys_enter tracepoint), where perf and tracefs are there
# (scripts/perf-setup.sh); "-" otherwise.
COUNT_SYSCALLS=()
if command -v perf >/dev/null && [ -r /sys/kernel/tracing/events/raw_syscalls/sys_enter/id ]; then
  COUNT_SYSCALLS=(perf stat -x, -e raw_syscalls:sys_enter -o)
fi
run_wrk() {
  local name=$1
  local count=()
  [ ${#COUNT_SYSCALLS[@]} -eq 0 ] || count=("${COUNT_SYSCALLS[@]}" "$OUT/$name-syscalls.txt" --)
  if [ -x /usr/bin/time ]; then
    "${ON_CLIENT[@]}" "${count[@]}" /usr/bin/time -f "wrk-cpu %U %S" -o "$OUT/$name-cpu.txt" \
      wrk -t1 -c64 -d"${WRK_SECONDS}s" "$WRK_URL" >"$OUT/$name.txt"
  else
    "${ON_CLIENT[@]}" "${count[@]}" wrk -t1 -c64 -d"${WRK_SECONDS}s" "$WRK_URL" >"$OUT/$name.txt"
  fi
  awk '/Requests\/sec/ {print $2}' "$OUT/$name.txt"
}
# wrk's syscalls per request in run NAME, or nothing where not counted.
wrk_syscalls() {
  local name=$1 requests
  requests=$(awk '/requests in/ {print $1}' "$OUT/$name.txt")
  awk -F, -v n="$requests" '/raw_syscalls:sys_enter/ && n > 0 && $1 ~ /^[0-9]+$/ {
    printf "%.2f", $1 / n
  }' "$OUT/$name-syscalls.txt" 2>/dev/null || true
}
wrk_cpu_us() {
  local name=$1 requests
  requests=$(awk '/requests in/ {print $1}' "$OUT/$name.txt")
  awk -v n="$requests" '/^wrk-cpu/ && n > 0 && $2 + $3 > 0 {
    printf "%.1f", ($2 + $3) * 1e6 / n
  }' "$OUT/$name-cpu.txt" 2>/dev/null || true
}
STRATEGIES=${STRATEGIES:-$($RATES strategies | awk '{print $1}' | paste -sd, -)}
IFS=, read -r -a LIST <<<"$STRATEGIES"
# The async strategies run one executor thread per core by default; on a
# 2-core machine hosting the one-thread server, the second competes with the
# server for the cores, where wrk -t1 has one thread. Each variant is a row
# of its own, a strategy with its runtime's own setting for its threads.
VARIANTS=${VARIANTS-tokio-1thread:tokio:TOKIO_WORKER_THREADS=1 smol-1thread:smol:SMOL_THREADS=1 async-std-1thread:async-std:ASYNC_STD_THREAD_COUNT=1}
declare -A BASE SETTING
for s in "${LIST[@]}"; do BASE[$s]=$s; SETTING[$s]=""; done
for v in $VARIANTS; do
  IFS=: read -r name strategy setting <<<"$v"
  if [ -z "$name" ] || [ -z "$strategy" ] || [[ "$setting" != *=* ]]; then
    echo "VARIANTS: \`$v\` is not NAME:STRATEGY:VAR=VALUE" >&2
    exit 2
  fi
  # Only variants of the strategies being measured.
  if [ -n "${BASE[$strategy]+set}" ]; then
    LIST+=("$name"); BASE[$name]=$strategy; SETTING[$name]=$setting
  fi
done
# The whole loop runs ROUNDS times, each round starting one strategy later,
# and each strategy's figure is its median round (min and max beside it):
# one round of minutes on a shared VM can be fast for one strategy and slow
# for the next.
ROUNDS=${ROUNDS:-3}
rm -f "$OUT/overhead.csv" "$OUT/overhead.txt" "$OUT/wrk-cpu.txt" "$OUT/rounds.txt"
echo "round strategy requests_per_s ratio cpu_per_request_us wrk_before wrk_after wrk_cpu_per_request_us cpu_ratio syscalls_per_request wrk_syscalls_per_request" >"$OUT/rounds.txt"
n=${#LIST[@]}
for ((r = 1; r <= ROUNDS; r++)); do
  for ((k = 0; k < n; k++)); do
    s=${LIST[$(((k + r - 1) % n))]}
    echo "round $r/$ROUNDS: $s" >&2
    before=$(run_wrk "wrk-before-$s-$r")
    # shellcheck disable=SC2086 # the setting is one VAR=VALUE word, or none
    env ${SETTING[$s]} $RATES compare "${PIN_FLAG[@]}" --scenario overhead --strategies "${BASE[$s]}" --runs "$RUNS" \
      --endpoint "http://127.0.0.1:$PORT/rates?base={base}&symbols={symbols}" \
      --export-json "$OUT/overhead-$s-$r.json" --export-csv "$OUT/overhead-$s.csv" \
      >>"$OUT/overhead.txt" 2>/dev/null
    after=$(run_wrk "wrk-after-$s-$r")
    wrk_cpu="$(wrk_cpu_us "wrk-before-$s-$r") $(wrk_cpu_us "wrk-after-$s-$r")"
    echo "$s $wrk_cpu" >>"$OUT/wrk-cpu.txt"
    wrk_sys="$(wrk_syscalls "wrk-before-$s-$r") $(wrk_syscalls "wrk-after-$s-$r")"
    # The strategy's median run against the mean of its two wrk runs; and
    # its CPU per request against theirs (wrk's over CPU/request: 1 is as
    # cheap as wrk, 0.5 twice as dear), with "-" where either is unknown.
    awk -F, -v s="$s" -v base="${BASE[$s]}" -v r="$r" -v b="$before" -v a="$after" -v w="$wrk_cpu" -v ws="$wrk_sys" '
      NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
      $col["strategy"] == base && $col["median_s"] != "" {
        rate = $col["requests"] / $col["median_s"]
        cpu = $col["cpu_per_request_us"]
        n = split(w, wc, " "); wcpu = 0
        for (i = 1; i <= n; i++) wcpu += wc[i] / n
        printf "%d %s %.0f %.3f %.1f %.0f %.0f ", r, s, rate, rate / ((a + b) / 2), cpu, b, a
        if (n > 0 && wcpu > 0 && cpu > 0) printf "%.1f %.3f ", wcpu, wcpu / cpu
        else printf "- - "
        sys = ("syscalls_per_request" in col) ? $col["syscalls_per_request"] : ""
        k = split(ws, wsc, " "); wsys = 0
        for (i = 1; i <= k; i++) wsys += wsc[i] / k
        printf "%s %s\n", (sys != "" ? sys : "-"), (k > 0 && wsys > 0 ? sprintf("%.2f", wsys) : "-")
      }' "$OUT/overhead-$s.csv" >>"$OUT/rounds.txt"
    # One CSV for every strategy and round, as compare writes it plus the
    # round and the row's name (a variant's, or the strategy's).
    if [ -f "$OUT/overhead.csv" ]; then
      tail -n +2 "$OUT/overhead-$s.csv" | sed "s/^/$r,$s,/" >>"$OUT/overhead.csv"
    else
      sed "1s/^/round,row,/; 2,\$ s/^/$r,$s,/" "$OUT/overhead-$s.csv" >"$OUT/overhead.csv"
    fi
    rm -f "$OUT/overhead-$s.csv"
  done
done
# Per strategy: the median round's ratio (with that round's rate, CPU and
# wrk runs), the lowest and highest ratio of any round, and the median of
# its rounds' CPU ratios (wrk's CPU per request over the strategy's).
{
  echo "# $MACHINE; $ROUNDS rounds of $RUNS timed runs per strategy"
  printf "%-17s %10s %6s %11s %11s %9s %24s\n" strategy requests/s "x wrk" "min-max" CPU/request "CPU x wrk" "wrk before/after (req/s)"
  tail -n +2 "$OUT/rounds.txt" | sort -k2,2 -k4,4g | awk '
    {
      count[$2]++; line[$2, count[$2]] = $0
      # The CPU ratios, kept sorted per strategy (insertion).
      if ($9 != "-") {
        j = ++cpus[$2]
        while (j > 1 && cpu[$2, j - 1] > $9 + 0) { cpu[$2, j] = cpu[$2, j - 1]; j-- }
        cpu[$2, j] = $9 + 0
      }
    }
    END {
      for (s in count) {
        mid = int((count[s] + 1) / 2)
        split(line[s, 1], lo, " "); split(line[s, count[s]], hi, " "); split(line[s, mid], m, " ")
        c = cpus[s] ? sprintf("%.2f", cpu[s, int((cpus[s] + 1) / 2)]) : "-"
        printf "%-17s %10.0f %6.2f %5.2f-%-5.2f %8.1f us %9s %11.0f / %.0f\n", s, m[3], m[4], lo[4], hi[4], m[5], c, m[6], m[7]
      }
    }' | sort -k3,3gr
  awk '{ for (i = 2; i <= NF; i++) { sum += $i; k++ } }
    END { if (k) printf "wrk: %.1f us of CPU per request on average over its runs (wrk-cpu.txt)\n", sum / k }' \
    "$OUT/wrk-cpu.txt"
  # Syscalls per request: each strategy's median over its rounds, and wrk's
  # mean over its runs (the floor with keep-alive is 2: a write and a read).
  tail -n +2 "$OUT/rounds.txt" | awk '
    $10 != "-" && $10 != "" { n[$2]++; v[$2, n[$2]] = $10 + 0 }
    $11 != "-" && $11 != "" { wsum += $11; wk++ }
    END {
      line = "syscalls per request (counted by the kernel):"
      for (s in n) {
        # The median, by sorting the few rounds in place.
        for (i = 2; i <= n[s]; i++) for (j = i; j > 1 && v[s, j - 1] > v[s, j]; j--) {
          t = v[s, j]; v[s, j] = v[s, j - 1]; v[s, j - 1] = t
        }
        line = line sprintf(" %s %.2f,", s, v[s, int((n[s] + 1) / 2)])
      }
      if (wk) line = line sprintf(" wrk %.2f", wsum / wk)
      else line = line " wrk - (perf and tracefs needed: scripts/perf-setup.sh)"
      print line
    }' 
  for s in "${LIST[@]}"; do
    if [ -n "${SETTING[$s]}" ]; then
      echo "$s: ${BASE[$s]} with ${SETTING[$s]} (one executor thread, as wrk -t1 has one; the ${BASE[$s]} row is its default, one per core)"
    fi
  done
  echo "x wrk: a strategy's median run over the mean of the wrk runs (${WRK_SECONDS} s each) just before and after it, the median round's (min-max: every round's)"
  echo "CPU x wrk: the CPU per request of those wrk runs over the strategy's (its whole process tree, start-up included), the median over the rounds; 1 is as cheap as wrk"
  echo "every round in rounds.txt; results in $OUT"
} | tee "$OUT/vs-wrk.txt"
