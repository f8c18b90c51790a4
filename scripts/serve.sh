# Sourced by the scripts that measure against `rates serve` in a process of
# its own: starts it on $PORT with the given extra flags, stops it on exit,
# and waits (5 s at most) until it accepts connections.
#   serve_in_background RATES_BINARY [rates serve flags...]
serve_in_background() {
  local rates=$1
  shift
  "$rates" serve --port "$PORT" "$@" --duration 900s --stats-every 3600s >/dev/null &
  SERVER=$!
  trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "rates serve did not accept connections on port $PORT within 5 s (is the port taken? set PORT)" >&2
  exit 1
}
