#!/usr/bin/env bash
# Where one strategy's CPU goes on `overhead`'s work (20,000 bases, no
# latency, concurrency 64) against `rates serve --threads 1` in a process of
# its own: a perf profile of the client alone, summarised as text.
#
# Usage: scripts/profile.sh [STRATEGY...]   (default: tokio pool)
#   OUT=DIR  where the summaries go (default: results/<UTC date>-profile)
#
# Per strategy it writes STRATEGY.txt: CPU time split by where it ran
# (kernel, the rates binary, libc), the hottest functions with their callees
# included, and the hottest by their own time. Built with line tables in
# target/profile, so the normal release build is left alone. Needs perf
# (Debian: linux-perf), installed here if missing and apt-get exists; perf
# may need `sysctl kernel.perf_event_paranoid=1` when not root.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
OUT=${OUT:-results/$(date -u +%Y-%m-%dT%H%M)-profile}
PORT=${PORT:-18183}
BASES=${BASES:-20000}
STRATEGIES=("$@")
[ ${#STRATEGIES[@]} -gt 0 ] || STRATEGIES=(tokio pool)
mkdir -p "$OUT"

if ! command -v perf >/dev/null; then
  if command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq linux-perf >/dev/null
  else
    echo "perf is needed: install it (Debian: apt-get install linux-perf)" >&2
    exit 1
  fi
fi

TARGET=${PROFILE_TARGET:-target/profile}
CARGO_PROFILE_RELEASE_DEBUG=line-tables-only CARGO_TARGET_DIR="$TARGET" \
  $CARGO build --release -q -p rates-cli
RATES=$TARGET/release/rates

. scripts/serve.sh
serve_in_background "$RATES" --latency 0 --threads 1
ENDPOINT="http://127.0.0.1:$PORT/rates?base={base}&symbols={symbols}"

# The first N lines of a perf report (head closing the pipe early is fine).
report() {
  local n=$1
  shift
  { perf report -i "$data" --stdio -g none "$@" 2>/dev/null | grep '%' | head -n "$n"; } || true
}

for s in "${STRATEGIES[@]}"; do
  data="$OUT/$s.perf.data"
  # One untimed run first, so both sides are warm.
  $RATES fetch --strategy "$s" --bases 2000 --concurrency 64 --endpoint "$ENDPOINT" >/dev/null 2>&1
  if ! perf record -q -F 10000 -g -o "$data" -- \
    $RATES fetch --strategy "$s" --bases "$BASES" --concurrency 64 --endpoint "$ENDPOINT" \
    >/dev/null 2>"$OUT/$s.stderr"; then
    echo "profiling $s failed:" >&2
    cat "$OUT/$s.stderr" >&2
    exit 1
  fi
  rm -f "$OUT/$s.stderr"
  {
    echo "# $s: $BASES bases, concurrency 64, no latency, against rates serve --threads 1"
    echo "# $(uname -srm); $(nproc) CPUs; $(date -u +%FT%TZ)"
    echo
    echo "## Share of the client's CPU samples by where they ran"
    report 8 --no-children --sort dso
    echo
    echo "## Share by thread name (process: workers are 'rates' too, beside the parent's main thread)"
    report 8 --no-children --sort comm
    echo
    echo "## Hottest, callees included (top 40)"
    report 40 --children --sort symbol
    echo
    echo "## Hottest by own time (top 30)"
    report 30 --no-children --sort symbol
  } | cut -c1-150 | sed "s/[[:space:]]*$//" >"$OUT/$s.txt"
  rm -f "$data"
  echo "$s: $OUT/$s.txt"
done
