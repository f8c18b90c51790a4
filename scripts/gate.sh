#!/usr/bin/env bash
# The paired regression gate, as CI runs it: this checkout (B, the
# candidate) against the code it changes (A, the base), both built here, run
# against run in the same minutes (rates compare --against; docs/CI.md).
#
# Usage: scripts/gate.sh [BASE]
#   BASE is a commit; without it, RATES_GATE_BASE, else the commit named in
#   .ci/gate-base, else the parent commit (HEAD^).
#   GATE_ARGS   the gate's flags (default: --scenario gate --pin --max-time 2m)
#   GATE_OUT    a folder for each gate's results folder (GATE_OUT/gate-1, and
#               gate-2 for a re-run: PAIRED.md, SCENARIO-paired.json,
#               manifest.json); default: none written
# Exit codes: 0 no regression (or no base to gate against, said), 3 a
# regression in the run and in a second run that judges it, else a failure.
# Accepted regressions are read from .ci/gate-accept.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CARGO=${CARGO:-cargo}
GATE_ARGS=${GATE_ARGS:---scenario gate --pin --max-time 2m}
WORKTREE=$ROOT/target/gate-base/src
BASE_TARGET=$ROOT/target/gate-base/target

# The base: the argument, RATES_GATE_BASE, .ci/gate-base (its first word
# that is not a comment), or the parent commit.
base=${1:-${RATES_GATE_BASE:-}}
from="RATES_GATE_BASE"
[ -n "${1:-}" ] && from="the argument"
if [ -z "$base" ] && [ -f .ci/gate-base ]; then
  base=$(sed -e 's/#.*//' .ci/gate-base | awk 'NF { print $1; exit }')
  from=".ci/gate-base"
fi
if [ -z "$base" ]; then
  base=HEAD^
  from="the parent commit"
fi
if ! commit=$(git rev-parse --verify --quiet "$base^{commit}"); then
  echo "paired gate skipped: the base $base ($from) is not in this clone (a shallow clone, or the first commit): nothing to gate against"
  exit 0
fi
echo "paired gate: $(git rev-parse --short=12 HEAD) (B, this checkout) against $(git rev-parse --short=12 "$commit") (A, $from)"

cleanup() { git worktree remove --force "$WORKTREE" >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup
git worktree prune
mkdir -p "$(dirname "$WORKTREE")"
git worktree add --quiet --detach "$WORKTREE" "$commit"

started=$(date +%s)
echo "building A in $WORKTREE (its own target directory)"
if ! (cd "$WORKTREE" && CARGO_TARGET_DIR=$BASE_TARGET $CARGO build --release -q -p rates-cli); then
  echo "paired gate skipped: the base $commit does not build here, so there is nothing to compare with"
  exit 0
fi
echo "building B"
$CARGO build --release -q -p rates-cli
built=$(date +%s)
echo "builds took $((built - started)) s"

accept=()
[ -f .ci/gate-accept ] && accept=(--accept .ci/gate-accept)
out() {
  if [ -n "${GATE_OUT:-}" ]; then
    echo "--out $GATE_OUT/gate-$1"
  fi
}
gate() {
  # shellcheck disable=SC2046,SC2086
  target/release/rates compare $GATE_ARGS --against "$BASE_TARGET/release/rates" \
    "${accept[@]}" $(out "$1")
}

set +e
gate 1
code=$?
if [ "$code" -eq 3 ]; then
  echo "the gate found a regression: measuring once more, and judging on that run"
  gate 2
  code=$?
fi
set -e
echo "paired gate: exit $code; the gate step took $(($(date +%s) - built)) s, builds excluded"
exit "$code"
