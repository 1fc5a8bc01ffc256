#!/usr/bin/env bash
# Benchmark (never a test): `weft control` serving a generated mesh (SERVICES services of
# ENDPOINTS pods each in NAMESPACES namespaces, a share of them with VirtualServices and
# DestinationRules) to PROXIES simulated Envoy sidecars (weft-fleet, one ADS stream each,
# one process). Measures the initial full push (time to full sync, control-plane CPU),
# an endpoint change and a VirtualService change (per-proxy convergence p50/p99/max),
# the control plane's peak RSS, and prints them next to the anchors of issue 5.
# See bench/control/README.md for the method and how to read the table.
#
# Usage: bench/control/run.sh                 (knobs: the environment variables below)
#        PROXIES=50 SERVICES=100 bench/control/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

PROXIES="${PROXIES:-1000}"
SERVICES="${SERVICES:-1000}"
ENDPOINTS="${ENDPOINTS:-10}"            # pods (endpoints) per service
NAMESPACES="${NAMESPACES:-10}"
VS_SHARE="${VS_SHARE:-0.3}"
DR_SHARE="${DR_SHARE:-0.3}"
SEED="${SEED:-1}"
MODE="${MODE:-sotw}"                    # sotw | delta
FLEET_THREADS="${FLEET_THREADS:-2}"
SYNC_TIMEOUT="${SYNC_TIMEOUT:-1800}"    # s: longest wait for the initial full push
CHANGE_TIMEOUT="${CHANGE_TIMEOUT:-60}"  # s: longest wait for one change to converge
ROUNDS="${ROUNDS:-3}"                   # rounds of (endpoint change, VS change)
SETTLE_MAX="${SETTLE_MAX:-60}"          # s: longest wait for the control plane to go quiet
START_TIMEOUT="${START_TIMEOUT:-300}"   # s: longest wait for weft control to load the mesh
MAX_CONTROL_RSS_MIB="${MAX_CONTROL_RSS_MIB:-8192}" # the run stops waiting above this RSS
OUT="${OUT:-$root/bench/out/control/$(date -u +%Y%m%dT%H%M%SZ)}"
KEEP_MESH="${KEEP_MESH:-0}"             # 1: keep the generated mesh (in OUT/mesh)
CONTROL_LOG="${CONTROL_LOG:-warn}"      # weft control --log-level (debug shows each push)
# WEFT_BIN / FLEET_BIN: binaries to use instead of building target/release/{weft,weft-fleet}.

case "$MODE" in
sotw) delta_flag=() ;;
delta) delta_flag=(--delta) ;;
*)
  echo "MODE must be sotw or delta, not $MODE" >&2
  exit 2
  ;;
esac

started=$SECONDS
mkdir -p "$OUT"
exec 3>&2
log() { printf '[%4ds] %s\n' "$((SECONDS - started))" "$*" >&3; }

# Everything long-running is started under `timeout` (so it dies even if this script is
# SIGKILLed) and stopped by pid on any exit; the temporary directory goes too.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/weft-control-bench.XXXXXX")
owned=()
stop_pids() {
  local pid
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}
cleanup() {
  stop_pids "${owned[@]}"
  owned=()
  if [ "$KEEP_MESH" = 1 ] && [ -d "$tmp/mesh" ]; then
    rm -rf "$OUT/mesh"
    mv "$tmp/mesh" "$OUT/mesh"
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# Two CPUs or more: the control plane gets CPU 1 to itself, the fleet CPU 0.
if [ "$(nproc)" -ge 2 ]; then
  CONTROL_CPU="${CONTROL_CPU:-1}"
  FLEET_CPU="${FLEET_CPU:-0}"
  pin_control=(taskset -c "$CONTROL_CPU")
  pin_fleet=(taskset -c "$FLEET_CPU")
else
  pin_control=()
  pin_fleet=()
fi

# One socket per proxy on each side, plus the mesh files being read.
need_fds=$((PROXIES + 4096))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need_fds" ]; then
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need_fds" ]; then
    log "warning: open-file limit $(ulimit -n) is below $need_fds; streams may fail"
  fi
fi

if [ -n "${WEFT_BIN:-}" ] && [ -n "${FLEET_BIN:-}" ]; then
  weft_bin=$WEFT_BIN
  fleet_bin=$FLEET_BIN
else
  log "building weft and weft-fleet (release)"
  cargo build --quiet --release -p weft -p weft-fleet
  weft_bin="${WEFT_BIN:-$root/target/release/weft}"
  fleet_bin="${FLEET_BIN:-$root/target/release/weft-fleet}"
fi

log "generating the mesh: $SERVICES services x $ENDPOINTS endpoints in $NAMESPACES namespaces"
"$fleet_bin" gen --dir "$tmp/mesh" --services "$SERVICES" --endpoints "$ENDPOINTS" \
  --namespaces "$NAMESPACES" --vs-share "$VS_SHARE" --dr-share "$DR_SHARE" --seed "$SEED" \
  2>&1 | tee "$OUT/gen.log" >&3

fleet_lifetime=$((SYNC_TIMEOUT + SETTLE_MAX + ROUNDS * (2 * CHANGE_TIMEOUT + 4 * SETTLE_MAX) + 120))
control_lifetime=$((START_TIMEOUT + fleet_lifetime + 60))

# `timeout` is the guard; the control plane is its child, found by parent pid.
timeout -s TERM "$control_lifetime" "${pin_control[@]}" "$weft_bin" control \
  --config-dir "$tmp/mesh" --log-level "$CONTROL_LOG" \
  --xds-address 127.0.0.1:0 --xds-address-path "$tmp/xds.addr" \
  --debug-address 127.0.0.1:0 --debug-address-path "$tmp/debug.addr" \
  >"$OUT/control.stdout" 2>"$OUT/control.stderr" &
guard=$!
owned+=("$guard")
control_pid=""
for _ in $(seq 200); do
  control_pid=$(ps -o pid= --ppid "$guard" 2>/dev/null | head -n 1 | tr -d ' ')
  [ -n "$control_pid" ] && break
  kill -0 "$guard" 2>/dev/null || break
  sleep 0.02
done
if [ -z "$control_pid" ]; then
  log "weft control did not start: $(tail -n 5 "$OUT/control.stderr")"
  exit 1
fi
log "weft control (pid $control_pid, CPU ${CONTROL_CPU:-any}) loading the mesh"
deadline=$((SECONDS + START_TIMEOUT))
while [ ! -s "$tmp/xds.addr" ]; do
  if ! kill -0 "$control_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
    log "weft control wrote no xDS address: $(tail -n 5 "$OUT/control.stderr")"
    exit 1
  fi
  sleep 0.1
done
xds=$(cat "$tmp/xds.addr")
log "serving ADS on $xds after $((SECONDS - started)) s"

# proc_usage PID: "CPU_SECONDS HWM_MIB" from /proc (utime + stime, VmHWM).
proc_usage() {
  local hz ticks hwm
  hz=$(getconf CLK_TCK)
  ticks=$(sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}')
  hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$1/status")
  awk -v t="$ticks" -v hz="$hz" -v h="$hwm" 'BEGIN {printf "%.2f %.1f\n", t / hz, h / 1024}'
}
read -r cpu_loaded hwm_loaded < <(proc_usage "$control_pid")
log "mesh loaded: control plane used ${cpu_loaded} CPU s, VmHWM ${hwm_loaded} MiB"

log "running $PROXIES proxies ($MODE, CPU ${FLEET_CPU:-any}); at most ${fleet_lifetime} s"
timeout -s TERM "$fleet_lifetime" "${pin_fleet[@]}" "$fleet_bin" run \
  --dir "$tmp/mesh" --xds "$xds" --proxies "$PROXIES" "${delta_flag[@]}" \
  --control-pid "$control_pid" --threads "$FLEET_THREADS" \
  --sync-timeout-s "$SYNC_TIMEOUT" --change-timeout-s "$CHANGE_TIMEOUT" \
  --rounds "$ROUNDS" --settle-max-s "$SETTLE_MAX" --max-control-rss-mib "$MAX_CONTROL_RSS_MIB" --out "$OUT" \
  >"$OUT/fleet.stdout" 2> >(tee "$OUT/fleet.stderr" >&3) &
fleet_guard=$!
owned+=("$fleet_guard")
fleet_rc=0
wait "$fleet_guard" || fleet_rc=$?

if kill -0 "$control_pid" 2>/dev/null; then
  read -r cpu_end hwm_end < <(proc_usage "$control_pid")
  if [ -s "$tmp/debug.addr" ]; then
    curl -s --max-time 5 "http://$(cat "$tmp/debug.addr")/metrics" >"$OUT/control-metrics.txt" || true
  fi
else
  cpu_end="n/a"
  hwm_end="n/a"
  log "weft control exited early: $(tail -n 5 "$OUT/control.stderr")"
fi
stop_pids "${owned[@]}"
owned=()

if [ "$fleet_rc" -ne 0 ] || [ ! -s "$OUT/results.json" ]; then
  log "weft-fleet failed (exit $fleet_rc); see $OUT/fleet.stderr"
  exit 1
fi
{
  "$fleet_bin" report "$OUT/results.json"
  echo "control plane over the whole run (from /proc): ${cpu_end} CPU s (${cpu_loaded} of them loading the mesh), VmHWM ${hwm_end} MiB"
  echo "results: $OUT/results.json, per-proxy ACK times: $OUT/acks.jsonl"
} | tee "$OUT/table.txt"
log "done in $((SECONDS - started)) s"
