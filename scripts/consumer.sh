#!/usr/bin/env bash
# Builds and runs tests/consumer, a program outside the workspace, against
# the *packaged* crates: each target/package/rates-*.crate that
# `cargo package --workspace` made is unpacked into target/consumer/crates
# and handed to the consumer through [patch.crates-io] (on the command line:
# nothing in crates/ is reachable by path). Its other dependencies come from
# crates.io as a user's would, in a target directory of its own.
#
# Usage: scripts/consumer.sh   (after `cargo package --workspace`; it runs
#        that itself when no package is there)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CARGO=${CARGO:-cargo}
PKG=$ROOT/target/package
UNPACKED=$ROOT/target/consumer/crates

if ! ls "$PKG"/rates-tokio-*.crate >/dev/null 2>&1; then
  echo "consumer: no packaged crates in target/package: packaging the workspace first"
  $CARGO package --workspace --exclude rates-benches -q
fi
rm -rf "$UNPACKED"
mkdir -p "$UNPACKED"
patches=()
for crate in "$PKG"/rates-*.crate; do
  tar -xzf "$crate" -C "$UNPACKED"
  dir=$UNPACKED/$(basename "$crate" .crate)
  name=$(sed -n 's/^name = "\(.*\)"/\1/p' "$dir/Cargo.toml" | head -1)
  patches+=(--config "patch.crates-io.$name.path='$dir'")
done
echo "consumer: $((${#patches[@]} / 2)) packaged crates as patches; building tests/consumer"
cd tests/consumer
CARGO_TARGET_DIR=$ROOT/target/consumer/target $CARGO run --release -q "${patches[@]}"
