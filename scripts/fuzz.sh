#!/usr/bin/env bash
# Runs a cargo-fuzz target for a bounded time (default 60 s), seeded with the seed fixtures.
# Usage: scripts/fuzz.sh [TARGET] [SECONDS]. Installs cargo-fuzz if missing. cargo-fuzz needs
# nightly flags; RUSTC_BOOTSTRAP lets the pinned stable toolchain accept them.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
target="${1:-load}"
secs="${2:-60}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
mkdir -p "corpus/$target"
RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" ../crates/weft-config/tests/fixtures/seeds \
  -- -max_total_time="$secs" -max_len=65536
