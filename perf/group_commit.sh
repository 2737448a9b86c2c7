#!/usr/bin/env bash
# Group commit at work: a topic with flush.messages=1 makes every acks=all produce wait for an
# fdatasync. With several producers writing concurrently, one sync covers many requests.
# Prints produce requests/s, fdatasyncs/s and their ratio (from the broker's own counters on
# /metrics), next to sluice-perf's open-loop latency summary, for 1 and for 8 producers.
#
# Usage: perf/group_commit.sh [RATE] [DURATION_SECS]     (defaults 4000 msg/s, 10 s)
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${1:-4000}
DURATION=${2:-10}
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release -p sluice --bin sluice >&2
cargo build --release -p sluice-perf >&2
SLUICE=$TARGET/release/sluice
PERF=$TARGET/release/sluice-perf

DATA=$(mktemp -d)
PORT=$((20000 + RANDOM % 10000))
MPORT=$((PORT + 50))
"$SLUICE" serve --data-dir "$DATA" --port "$PORT" --cores 1 --metrics-addr "127.0.0.1:$MPORT" 2>"$DATA/broker.log" &
BROKER=$!
trap 'kill $BROKER 2>/dev/null; wait $BROKER 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$((PORT + 1))) 2>/dev/null && break; sleep 0.1; done

metric() { # metric NAME FILTER -> summed value
  curl -s "127.0.0.1:$MPORT/metrics" | awk -v n="$1" -v f="$2" '$1 ~ "^"n && $1 ~ f {s += $2} END {print s + 0}'
}

run() { # run PRODUCERS
  local producers=$1 topic="gc-$1"
  "$SLUICE" topics create --bootstrap-server "127.0.0.1:$PORT" --topic "$topic" --partitions 1 \
    --config flush.messages=1 >/dev/null
  local r0 s0 r1 s1
  r0=$(metric sluice_requests_total 'api="Produce"')
  s0=$(metric sluice_fsync_latency_seconds_count '')
  "$PERF" --bootstrap-server "127.0.0.1:$PORT" --scenario produce --topic "$topic" \
    --producers "$producers" --rate "$RATE" --acks all --linger-ms 0 --message-size 1024 \
    --warmup-secs 0 --duration-secs "$DURATION" --quiet 2>&1 | grep -E "msg/s|p50|p99" || true
  r1=$(metric sluice_requests_total 'api="Produce"')
  s1=$(metric sluice_fsync_latency_seconds_count '')
  awk -v p="$producers" -v r=$((r1 - r0)) -v s=$((s1 - s0)) -v d="$DURATION" 'BEGIN {
    printf "producers=%d produce_requests/s=%.0f fdatasyncs/s=%.0f requests_per_sync=%.2f\n",
      p, r / d, s / d, (s > 0 ? r / s : 0) }'
}

echo "# group commit, flush.messages=1, acks=all, 1 KiB records, rate $RATE msg/s, $DURATION s"
run 1
run 8
