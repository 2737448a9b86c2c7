#!/usr/bin/env bash
# A/B: end-to-end latency with early writeback off (`sluice.log.writeback.bytes=0`, the kernel's
# own thresholds decide) and on (the default, 1 MiB), same binaries, same load, same kernel
# settings, alternating ROUNDS times so both see the same machine noise. Each run starts from
# a clean page cache (`sync` first) and lasts long enough to dirty more than the kernel's
# background threshold, which is where the tails came from.
# Usage: perf/writeback.sh [RATE] [DURATION_SECS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-160000}
DURATION=${2:-30}
ROUNDS=${3:-2}
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release -p sluice --bin sluice >&2
cargo build --release -p sluice-perf >&2

run() { # run LABEL WRITEBACK_BYTES
  local data port conf
  data=$(mktemp -d); port=$((20000 + RANDOM % 10000)); conf=$data/server.properties
  printf 'sluice.log.writeback.bytes=%s\n' "$2" >"$conf"
  sync
  taskset -c 0 "$TARGET/release/sluice" serve --data-dir "$data/log" --port "$port" --cores 1 \
    --config "$conf" --metrics-addr off 2>"$data/broker.log" &
  local broker=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$((port + 1))) 2>/dev/null && break; sleep 0.1; done
  echo "### $1 (dirty before: $(awk '/^Dirty:/{print $2" "$3}' /proc/meminfo))"
  taskset -c 1 "$TARGET/release/sluice-perf" --bootstrap-server "127.0.0.1:$port" --scenario e2e \
    --rate "$RATE" --message-size 1024 --acks all --warmup-secs 2 --duration-secs "$DURATION" \
    --quiet 2>&1 | grep -E "^== |latency|produce" || true
  echo "dirty after: $(awk '/^Dirty:/{print $2" "$3}' /proc/meminfo)"
  kill "$broker"; wait "$broker" 2>/dev/null || true
  rm -rf "$data"
}

echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# vm.dirty_background_ratio=$(cat /proc/sys/vm/dirty_background_ratio)" \
  "vm.dirty_ratio=$(cat /proc/sys/vm/dirty_ratio)" \
  "vm.dirty_background_bytes=$(cat /proc/sys/vm/dirty_background_bytes)"
echo "# rate $RATE msg/s of 1 KiB, acks=all, ${DURATION}s measured, $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
  run "round $round: writeback off (sluice.log.writeback.bytes=0)" 0
  run "round $round: writeback on (sluice.log.writeback.bytes=1048576)" 1048576
done
