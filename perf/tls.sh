#!/usr/bin/env bash
# perf/tls.sh: what TLS costs, plaintext and TLS side by side on ONE broker in one run.
#
# One release Sluice (--cores 1, taskset on BROKER_CPU) with two listeners, PLAINTEXT://P and
# SSL://Q (a test CA's certificate; TLS 1.3, rustls's default suite AES-256-GCM); librdkafka's
# rdkafka_performance (OpenSSL) on LOAD_CPU. ROUNDS times, alternating the listener first:
# produce RDK_COUNT x 1 KiB records acks=all to a fresh one-partition topic, then consume them
# all from the start. Memory is warmed before every produce step (a file as large as the step's
# data is written and deleted just before; this VM returns freed memory to its host and
# re-touching it costs ~10x). Consume reads what the produce step just wrote: page cache, warm.
# Records the broker's CPU seconds per step (utime+stime from /proc).
#
# Usage: perf/tls.sh   (env: ROUNDS RDK_COUNT BROKER_CPU LOAD_CPU RUN_DIR CARGO_TARGET_DIR SLUICE_BIN)
#
# Results: perf/runs/<date>-tls/ (results.tsv, summary.md, raw client output, broker log).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BROKER_CPU=${BROKER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
ROUNDS=${ROUNDS:-3}
RDK_COUNT=${RDK_COUNT:-1000000}
MSG_SIZE=1024
RUN_DIR=${RUN_DIR:-$HERE/runs/$(date -u +%Y-%m-%d)-tls}
if [[ -e $RUN_DIR ]]; then RUN_DIR=$RUN_DIR-$(date -u +%H%M%S); fi
mkdir -p "$RUN_DIR"
exec > >(tee -a "$RUN_DIR/output.txt") 2>&1
TICKS=$(getconf CLK_TCK)

source "$HERE/lib/rdkafka.sh"

say() { printf '\n### %s\n' "$*"; }

free_base() {
  python3 - <<'EOF'
import random, socket
while True:
    base = random.randrange(20000, 31000, 100)
    try:
        for p in (base, base + 1, base + 50, base + 51):
            s = socket.socket(); s.bind(("127.0.0.1", p)); s.close()
        print(base); break
    except OSError:
        pass
EOF
}

make_certs() {
  PYTHONPATH=$ROOT/tests/python python3 - "$RUN_DIR/pki" <<'EOF'
import sys, pathlib, tls_certs
d = pathlib.Path(sys.argv[1]); d.mkdir(exist_ok=True)
ca = tls_certs.Authority()
key, cert = ca.issue(tls_certs.subject("127.0.0.1", o="Sluice perf"), server=True)
ca.write_ca(d / "ca.pem")
tls_certs.write_keystore(d / "server.pem", key, cert, ca)
EOF
}

cpu_seconds() { awk -v t="$TICKS" '{print ($14 + $15) / t}' "/proc/$1/stat"; }

# Writes and deletes a file as large as a produce step's data, so the step starts on warm memory.
warm_memory() {
  local mb=$(((RDK_COUNT * MSG_SIZE) / 1000000 + 64))
  dd if=/dev/zero of="$RUN_DIR/warm.bin" bs=1M count="$mb" status=none
  rm -f "$RUN_DIR/warm.bin"
}

# One rdkafka_performance step; appends "listener step round MB/s msg/s broker_cpu_s" to
# results.tsv. The output file is named as compare.sh names its own, so summarize.py's parser
# reads it.
step() {
  local listener=$1 what=$2 round=$3 topic=$4 port=$5
  shift 5
  local before after
  before=$(cpu_seconds "$BROKER_PID")
  taskset -c "$LOAD_CPU" timeout 600 "$RDK" "$@" -t "$topic" -p 0 -b "127.0.0.1:$port" -u \
    >"$RUN_DIR/$listener$round-rk-$what.txt" 2>&1
  after=$(cpu_seconds "$BROKER_PID")
  PYTHONPATH=$HERE python3 - "$RUN_DIR" "$what" "$listener" "$round" "$before" "$after" \
    >>"$RUN_DIR/results.tsv" <<'EOF'
import sys
from summarize import rk_rate
run_dir, what, listener, rnd, before, after = sys.argv[1:]
rate = rk_rate(run_dir, f"{listener}{rnd}", what)
mb, msgs = rate if rate else ("failed", "failed")
print(f"{listener}\t{what}\t{rnd}\t{mb}\t{msgs}\t{float(after) - float(before):.2f}")
EOF
  tail -1 "$RUN_DIR/results.tsv"
}

run_listener() {
  local listener=$1 round=$2 port
  local topic="tls-$listener-$round"
  if [[ $listener == ssl ]]; then
    port=$SSL_PORT
    TLS_ARGS=(-X security.protocol=SSL -X "ssl.ca.location=$RUN_DIR/pki/ca.pem")
  else
    port=$PLAIN_PORT
    TLS_ARGS=()
  fi
  warm_memory
  step "$listener" produce "$round" "$topic" "$port" -P -s "$MSG_SIZE" -a -1 -c "$RDK_COUNT" \
    "${TLS_ARGS[@]}"
  step "$listener" consume "$round" "$topic" "$port" -C -o beginning -e "${TLS_ARGS[@]}"
}

main() {
  say "build"
  if [[ -z ${SLUICE_BIN:-} ]]; then
    (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build --release --bin sluice) || exit 1
  fi
  SLUICE=${SLUICE_BIN:-$TARGET/release/sluice}
  build_rdkafka_performance
  make_certs
  local base
  base=$(free_base)
  PLAIN_PORT=$base
  SSL_PORT=$((base + 50))
  cat >"$RUN_DIR/server.properties" <<EOF
listeners=PLAINTEXT://127.0.0.1:$PLAIN_PORT,SSL://127.0.0.1:$SSL_PORT
ssl.keystore.location=$RUN_DIR/pki/server.pem
auto.create.topics.enable=true
EOF
  {
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "kernel: $(uname -srvm)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
    echo "sluice: $SLUICE ($("$SLUICE" --version 2>&1 | head -1)), source $(git -C "$ROOT" rev-parse HEAD)$(git -C "$ROOT" status --porcelain | grep -q . && echo ' (dirty)')"
    echo "rdkafka_performance: $RDK"
    echo "env: ROUNDS=$ROUNDS RDK_COUNT=$RDK_COUNT BROKER_CPU=$BROKER_CPU LOAD_CPU=$LOAD_CPU"
    echo "memory state: warm (a file as large as each produce step written and deleted just before it)"
  } | tee "$RUN_DIR/env.txt"
  local data
  data=$(mktemp -d "${TMPDIR:-/tmp}/sluice-tls-perf.XXXXXX")
  taskset -c "$BROKER_CPU" "$SLUICE" serve --data-dir "$data" --cores 1 --metrics-addr off \
    --config "$RUN_DIR/server.properties" >"$RUN_DIR/broker.log" 2>&1 &
  BROKER_PID=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$((SSL_PORT + 1))") 2>/dev/null && break
    sleep 0.1
  done
  printf 'listener\tstep\tround\tMB/s\tmsg/s\tbroker_cpu_s\n' >"$RUN_DIR/results.tsv"
  for round in $(seq "$ROUNDS"); do
    if ((round % 2)); then order=(plain ssl); else order=(ssl plain); fi
    for listener in "${order[@]}"; do
      say "round $round: $listener"
      run_listener "$listener" "$round"
    done
  done
  kill "$BROKER_PID"
  wait "$BROKER_PID"
  rm -rf "$data"
  # The throwaway CA and server key are not results.
  rm -rf "$RUN_DIR/pki"
  summarize
}

summarize() {
  python3 - "$RUN_DIR" "$RDK_COUNT" "$MSG_SIZE" <<'EOF' | tee "$RUN_DIR/summary.md"
import csv, statistics, sys
run_dir, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = list(csv.DictReader(open(f"{run_dir}/results.tsv"), delimiter="\t"))
gb = count * size / 1e9
def med(listener, step, col):
    vals = [float(r[col]) for r in rows
            if r["listener"] == listener and r["step"] == step and r[col] != "failed"]
    return statistics.median(vals) if vals else float("nan")
print(f"TLS against plaintext, one broker, medians of {len({r['round'] for r in rows})} rounds, "
      f"{count} x {size} B, acks=all, warm memory\n")
print("| step | plaintext MB/s | TLS MB/s | TLS/plaintext | broker CPU s/GB plaintext | TLS |")
print("|---|---|---|---|---|---|")
for step in ("produce", "consume"):
    p, t = med("plain", step, "MB/s"), med("ssl", step, "MB/s")
    pc, tc = med("plain", step, "broker_cpu_s") / gb, med("ssl", step, "broker_cpu_s") / gb
    print(f"| {step} | {p:.0f} | {t:.0f} | {t / p:.2f} | {pc:.2f} | {tc:.2f} |")
EOF
}

main "$@"
