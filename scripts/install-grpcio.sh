#!/usr/bin/env bash
# Installs grpcio (the C-core proxyless xDS client) and xds-protos (the Envoy/xDS Python
# messages, for reading the client's CSDS dump) into the project-local venv `.venv`,
# idempotently, and prints the venv's python. The proxyless gRPC tests of weft-control run
# their clients and backends with it.
set -euo pipefail
cd "$(dirname "$0")/.."
series="1.85"
check() {
  .venv/bin/python - "$series" <<'EOF' >/dev/null 2>&1
import sys
import grpc
from envoy.service.status.v3 import csds_pb2  # noqa: F401  (from xds-protos)
sys.exit(0 if grpc.__version__.startswith(sys.argv[1] + ".") else 1)
EOF
}
if [ -x .venv/bin/python ] && check; then
  echo "$PWD/.venv/bin/python"
  exit 0
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check \
  "grpcio==${series}.*" "xds-protos==${series}.*"
check || { echo "grpcio ${series} / xds-protos did not import after installing" >&2; exit 1; }
echo "$PWD/.venv/bin/python"
