#!/usr/bin/env bash
# Instructions per request for each strategy, counted by valgrind's callgrind:
# a figure that does not drift with the machine's load (the same binary and
# input give the same count within a fraction of a percent), to read beside
# the timed figures, which do.
#
# Usage: scripts/instructions.sh [STRATEGY...]   (default: every built-in
#        strategy but `process`, see below)
#   OUT       a folder for instructions.csv and the callgrind files' totals
#             (default: none: the table is printed only)
#   REPEATS   runs of each size (default 3): their spread is the figure's
#   SMALL, LARGE  the two workload sizes in bases (default 200 and 600)
#   CONCURRENCY   requests in flight (default 16)
#
# Each strategy fetches SMALL and then LARGE bases with `rates fetch` under
# `valgrind --tool=callgrind` from one `rates serve` on loopback, started here
# in a process of its own (never counted). Instructions per request is
# (Ir(LARGE) - Ir(SMALL)) / (LARGE - SMALL): what each further request costs,
# start-up (argument parsing, runtime and pool start, TLS set-up) taken out by
# the difference. Every process and thread of the fetch is counted (user
# space only: callgrind sees no kernel instruction). Valgrind runs one thread
# at a time, so a multi-threaded runtime's count includes the spinning and
# stealing it does on a serialised machine, which can differ from a real one.
#
# `process` is left out by default: its workers end by a signal when the run
# is over, before callgrind can write their counts, so its figure would miss
# them.
set -euo pipefail
cd "$(dirname "$0")/.."

REPEATS=${REPEATS:-3}
SMALL=${SMALL:-200}
LARGE=${LARGE:-600}
CONCURRENCY=${CONCURRENCY:-16}
OUT=${OUT:-}

if ! command -v valgrind >/dev/null; then
  echo "instructions: valgrind is not installed: apt-get install valgrind (Debian's package)" >&2
  exit 2
fi
cargo build --release -q -p rates-cli
RATES=$PWD/target/release/rates

if [ $# -gt 0 ]; then
  STRATEGIES=("$@")
else
  mapfile -t STRATEGIES < <("$RATES" strategies | awk '{print $1}' | grep -vx process)
fi

work=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A free port on loopback, then the server on it (bounded: it stops by
# itself after an hour, and is killed on exit).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$RATES" serve --port "$port" --duration 3600s >"$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 50); do
  grep -q listening "$work/serve.log" 2>/dev/null && break
  sleep 0.1
done
grep -q listening "$work/serve.log" || { echo "instructions: the server did not start: $(cat "$work/serve.log")" >&2; exit 1; }
endpoint="http://127.0.0.1:$port/latest?base={base}"

# Instructions of one fetch of $2 bases with strategy $1: the sum over every
# process callgrind wrote a file for.
count() {
  local dir=$work/$1-$2-$3
  mkdir -p "$dir"
  if ! timeout 600 valgrind --tool=callgrind --trace-children=yes \
      --callgrind-out-file="$dir/cg.%p.out" \
      "$RATES" fetch --strategy "$1" --bases "$2" --concurrency "$CONCURRENCY" \
      --endpoint "$endpoint" >"$dir/log" 2>&1; then
    echo "instructions: $1 with $2 bases failed under valgrind: $(tail -3 "$dir/log")" >&2
    return 1
  fi
  grep -q "^$2 ok, 0 failed" "$dir/log" || { echo "instructions: $1: not every base succeeded: $(grep ' ok,' "$dir/log")" >&2; return 1; }
  awk '/^totals:/ { s += $2 } END { print s }' "$dir"/cg.*.out
}

echo "instructions per request: (Ir($LARGE bases) - Ir($SMALL bases)) / $((LARGE - SMALL)), $CONCURRENCY in flight, $REPEATS repeats, $(valgrind --version), $(nproc) cores"
printf '%-15s %12s %12s %12s %8s\n' strategy median min max spread
csv="strategy,repeat,ir_small,ir_large,per_request"
for s in "${STRATEGIES[@]}"; do
  per=()
  for r in $(seq "$REPEATS"); do
    small=$(count "$s" "$SMALL" "$r") || continue 2
    large=$(count "$s" "$LARGE" "$r") || continue 2
    p=$(( (large - small) / (LARGE - SMALL) ))
    per+=("$p")
    csv+=$'\n'"$s,$r,$small,$large,$p"
  done
  sorted=$(printf '%s\n' "${per[@]}" | sort -n)
  min=$(head -1 <<<"$sorted"); max=$(tail -1 <<<"$sorted")
  med=$(sed -n "$(( (${#per[@]} + 1) / 2 ))p" <<<"$sorted")
  spread=$(awk -v a="$min" -v b="$max" -v m="$med" 'BEGIN { printf "%.1f%%", (b - a) * 100 / m }')
  printf '%-15s %12s %12s %12s %8s\n' "$s" "$med" "$min" "$max" "$spread"
done
if [ -n "$OUT" ]; then
  mkdir -p "$OUT"
  printf '%s\n' "$csv" >"$OUT/instructions.csv"
  echo "wrote $OUT/instructions.csv"
fi
