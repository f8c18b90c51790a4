#!/usr/bin/env bash
# Model-checks rates-pool's queue and shutdown logic with loom: every
# interleaving of workers, caller and shutdown, up to LOOM_MAX_PREEMPTIONS
# preemptions per run, must deliver each result once and end every wait.
#
# Builds under --cfg loom in its own target dir, so it never invalidates the
# normal build. Usage: scripts/loom.sh [extra cargo test args]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

CARGO=${CARGO:-cargo}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/loom"
export RUSTFLAGS="${RUSTFLAGS:-} --cfg loom"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"

started=$SECONDS
"$CARGO" test -p rates-pool --lib --release "$@" -- loom --nocapture --test-threads 2
echo "loom: rates-pool models passed (LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS) in $((SECONDS - started))s"
