#!/usr/bin/env bash
# The dependency policy (deny.toml): every dependency's license is one the
# policy allows, every version is named, every crate comes from crates.io.
# Installs cargo-deny (from crates.io, about 2 minutes) when it is missing.
# The advisories check is not run: it downloads the RustSec database from
# GitHub, which CI's machines cannot reach.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
if ! $CARGO deny --version >/dev/null 2>&1; then
  echo "deny: installing cargo-deny (cargo install --locked cargo-deny)"
  $CARGO install --locked --quiet cargo-deny
fi
$CARGO deny --version
$CARGO deny check licenses bans sources
