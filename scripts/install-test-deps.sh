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
scripts/install-grpcio.sh >/dev/null # grpcio + xds-protos for the proxyless gRPC tests

# promtool (Debian package prometheus) judges weft's /stats/prometheus in the admin tests.
if ! command -v promtool >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null
  # Only promtool is wanted; under systemd the package would also leave its server running.
  if [ -d /run/systemd/system ]; then
    $sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi

# iptables (Debian package iptables) sets up Istio-style traffic capture inside the network
# namespaces the proxy capture tests create.
if ! command -v iptables >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iptables >/dev/null
fi
