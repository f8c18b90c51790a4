#!/usr/bin/env bash
# Measurements the criterion benches cannot make, because there the server
# shares the process: the server's own capacity (wrk), each strategy's request
# rate on `overhead` as a share of wrk's, and each strategy's wall time and
# peak memory on `scale` with the server in another process.
#
# Usage: scripts/measure.sh [OUT_DIR]   (default: results/<UTC date>-measure)
# Needs wrk (installed from Debian's packages if missing and apt-get exists).
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
OUT=${1:-results/$(date -u +%Y-%m-%dT%H%M)-measure}
PORT=${PORT:-18181}
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
STRATEGIES=$($RATES strategies | awk '{print $1}')

serve() { # serve LATENCY: start `rates serve` in the background on $PORT
  $RATES serve --port "$PORT" --latency "$1" --duration 600s --stats-every 3600s >/dev/null &
  SERVER=$!
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "rates serve did not start on port $PORT" >&2
  exit 1
}
stop() { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }
trap stop EXIT
ENDPOINT="http://127.0.0.1:$PORT/rates?base={base}&symbols={symbols}"

echo "== overhead: 20,000 bases, no latency, concurrency 64 (server in its own process)"
serve 0
wrk -t1 -c64 -d5s "http://127.0.0.1:$PORT/rates?base=USD&symbols=USD,EUR,PLN,NOK,CZK" | tee "$OUT/wrk.txt"
WRK=$(awk '/Requests\/sec/ {print $2}' "$OUT/wrk.txt")
printf '%-15s %10s %8s\n' strategy "bases/s" "x wrk" | tee "$OUT/overhead.txt"
for s in $STRATEGIES; do
  best=0
  for _ in 1 2 3; do
    t=$($RATES fetch --strategy "$s" --bases 20000 --concurrency 64 --endpoint "$ENDPOINT" 2>/dev/null \
        | awk '/time elapsed/ {sub("s","",$3); print $3}')
    rate=$(awk -v t="$t" 'BEGIN { if (t > 0) printf "%.0f", 20000 / t; else print 0 }')
    best=$(( rate > best ? rate : best ))
  done
  printf '%-15s %10s %8.2f\n' "$s" "$best" "$(awk -v r="$best" -v w="$WRK" 'BEGIN {print r / w}')" \
    | tee -a "$OUT/overhead.txt"
done
stop

echo "== scale: 10,000 bases, 50 ms latency, concurrency 1,000 (server in its own process)"
serve 50ms
printf '%-15s %8s %8s %10s %s\n' strategy wall "x ideal" "peak MiB" "cpu" | tee "$OUT/scale.txt"
for s in $STRATEGIES; do
  if [ "$s" = sync ]; then
    printf '%-15s skipped: one base after another would take 500 s\n' "$s" | tee -a "$OUT/scale.txt"
    continue
  fi
  line=$($RATES fetch --strategy "$s" --bases 10000 --concurrency 1000 --endpoint "$ENDPOINT" --resources 2>/dev/null || true)
  t=$(echo "$line" | awk '/time elapsed/ {sub("s","",$3); print $3}')
  mib=$(echo "$line" | awk '/resources:/ {for (i=1;i<=NF;i++) if ($i=="rss") print $(i+1)}')
  cpu=$(echo "$line" | sed -n 's/^resources: cpu \([^,]*\),.*/\1/p')
  workers=$(echo "$line" | sed -n 's/.*(+ \([0-9.]*\) MiB in worker processes).*/ + \1 MiB in workers/p')
  printf '%-15s %7ss %8.2f %10s %s%s\n' "$s" "$t" "$(awk -v t="$t" 'BEGIN {print t / 0.5}')" "$mib" "$cpu" "$workers" \
    | tee -a "$OUT/scale.txt"
done
stop
echo "== throttled: 200 bases, 5 ms, concurrency 16, rate limit 100/s: CPU of the client process"
serve 5ms
printf '%-15s %8s %s\n' strategy wall "cpu (whole client process, start-up included)" | tee "$OUT/throttled-cpu.txt"
for s in $STRATEGIES; do
  line=$($RATES fetch --strategy "$s" --bases 200 --concurrency 16 --rate-limit 100/s --endpoint "$ENDPOINT" --resources 2>/dev/null || true)
  t=$(echo "$line" | awk '/time elapsed/ {sub("s","",$3); print $3}')
  cpu=$(echo "$line" | sed -n 's/^resources: cpu \([^,]*\),.*/\1/p')
  printf '%-15s %7ss %s\n' "$s" "$t" "$cpu" | tee -a "$OUT/throttled-cpu.txt"
done
stop
echo "results in $OUT"
