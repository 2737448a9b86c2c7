#!/usr/bin/env bash
# A/B experiment: end-to-end latency with the kernel's default dirty-page writeback threshold
# (vm.dirty_background_ratio=10% of RAM) versus an early, smooth one
# (vm.dirty_background_bytes=128 MiB). Same binaries, same load, one run each, back to back.
# Needs root (sysctl); restores the original values on exit.
# Usage: tuning/experiments/dirty-writeback.sh [RATES] [DURATION_SECS]
set -euo pipefail
cd "$(dirname "$0")/../.."
RATES=${1:-50000,170000}
DURATION=${2:-15}
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release -p sluice --bin sluice >&2
cargo build --release -p sluice-perf >&2

orig_bytes=$(cat /proc/sys/vm/dirty_background_bytes)
orig_ratio=$(cat /proc/sys/vm/dirty_background_ratio)
restore() {
  if [ "$orig_bytes" != 0 ]; then sysctl -q vm.dirty_background_bytes="$orig_bytes"
  else sysctl -q vm.dirty_background_ratio="$orig_ratio"; fi
}
trap restore EXIT

run() { # run LABEL
  local data port
  data=$(mktemp -d); port=$((20000 + RANDOM % 10000))
  taskset -c 0 "$TARGET/release/sluice" serve --data-dir "$data" --port "$port" --cores 1 \
    --metrics-addr off 2>"$data/broker.log" &
  local broker=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$((port + 1))) 2>/dev/null && break; sleep 0.1; done
  echo "### $1"
  taskset -c 1 "$TARGET/release/sluice-perf" --bootstrap-server "127.0.0.1:$port" --scenario e2e \
    --sweep "$RATES" --message-size 1024 --acks all --warmup-secs 2 --duration-secs "$DURATION" \
    --quiet 2>&1 | grep -E "^== |consumed\)" || true
  kill "$broker"; wait "$broker" 2>/dev/null || true
  rm -rf "$data"
}

echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
sysctl -q vm.dirty_background_ratio=10
run "default: vm.dirty_background_ratio=10"
sysctl -q vm.dirty_background_bytes=134217728
run "tuned: vm.dirty_background_bytes=128MiB"
