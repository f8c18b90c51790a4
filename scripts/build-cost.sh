#!/usr/bin/env bash
# What an importer pays to build one strategy crate: the number of crates it
# pulls in (cargo tree, normal dependencies) and a cold release build's wall
# time (a fresh target directory, nothing cached but the downloaded sources),
# with and without its default `tls` feature.
#
# Usage: scripts/build-cost.sh [CRATE...]   (default: rates-tokio rates-sync)
# Measure on a quiet machine: the times are wall clock, on all cores.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
[ $# -gt 0 ] || set -- rates-tokio rates-sync
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
$CARGO fetch -q
echo "cold release builds on $(nproc) cores, $(rustc --version)"
printf '%-14s %-22s %7s %9s\n' crate features crates "build s"
for crate in "$@"; do
  for variant in default no-tls; do
    flags=()
    [ "$variant" = no-tls ] && flags=(--no-default-features)
    n=$($CARGO tree -q -p "$crate" "${flags[@]}" -e normal --prefix none | sort -u | wc -l)
    start=$(date +%s.%N)
    CARGO_TARGET_DIR=$scratch/$crate-$variant $CARGO build -q --release -p "$crate" "${flags[@]}"
    end=$(date +%s.%N)
    label=$([ "$variant" = default ] && echo "default (tls)" || echo "default-features=false")
    printf '%-14s %-22s %7s %9s\n' "$crate" "$label" "$n" "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')"
    rm -rf "${scratch:?}/$crate-$variant"
  done
done
