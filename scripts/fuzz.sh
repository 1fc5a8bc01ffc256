#!/usr/bin/env bash
# Runs a cargo-fuzz target for a bounded time (default 60 s), seeded with the target's seeds:
# the weft-config fixtures for `load`, fuzz/seeds/TARGET for the others when it exists.
# Usage: scripts/fuzz.sh [TARGET] [SECONDS] [LIBFUZZER_ARGS...]. Installs cargo-fuzz if
# missing. cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the pinned stable toolchain
# accept them.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
target="${1:-load}"
secs="${2:-60}"
shift $(($# < 2 ? $# : 2))
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
mkdir -p "corpus/$target"
seeds=()
if [ "$target" = load ]; then
  seeds+=(../crates/weft-config/tests/fixtures/seeds)
elif [ -d "seeds/$target" ]; then
  seeds+=("seeds/$target")
fi
RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" "${seeds[@]}" \
  -- -max_total_time="$secs" -max_len=65536 "$@"
