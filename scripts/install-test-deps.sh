#!/usr/bin/env bash
# Installs what the test suite needs, idempotently: the Rust toolchain components pinned in
# rust-toolchain.toml and a real Envoy 1.40 in .venv (the proxy's conformance tests run it).
# Later issues add grpcio, Prometheus and etcd here (never only on a developer's machine).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required (rustup toolchain from rust-toolchain.toml)" >&2
  exit 1
fi
# rustup reads rust-toolchain.toml; this makes sure rustfmt and clippy are present.
if command -v rustup >/dev/null 2>&1; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi

# Real Envoy for the conformance tests.
scripts/install-envoy.sh >/dev/null
