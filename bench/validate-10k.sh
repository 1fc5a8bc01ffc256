#!/usr/bin/env bash
# Benchmark (not a test): `weft validate` over a generated directory of 10,000 resources.
# Prints wall time, CPU time and peak RSS. Usage: bench/validate-10k.sh [COUNT]
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-10000}"
dir="bench/out/config-$count"
rm -rf "$dir"
python3 bench/gen_config.py "$count" "$dir"
cargo build -q --release -p weft
bin=target/release/weft
# Warm the page cache once, then measure three runs.
"$bin" validate -f "$dir" >/dev/null 2>&1 || true
for run in 1 2 3; do
  /usr/bin/time -f "run $run: wall %e s, user %U s, sys %S s, max RSS %M KB" \
    "$bin" validate -f "$dir" >/dev/null 2>bench/out/validate-stderr.txt || true
  tail -n 1 bench/out/validate-stderr.txt
  grep -v '^run' bench/out/validate-stderr.txt | tail -n 1
done
