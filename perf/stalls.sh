#!/usr/bin/env bash
# Where the e2e latency tail comes from: the broker's own view (its request latency and its
# shards' stall probe, `sluice_shard_stall*`) next to the client's, for each broker config.
#
#   perf/stalls.sh OUT_DIR CONFIG...      (each CONFIG a server.properties file; empty = defaults)
#
# For each config, ROUNDS times (default 3), alternating: a fresh one-shard broker on CPU 0
# (data dir on disk), SETTLE seconds of rest (default 30: this VM reclaims freed memory in
# the seconds after a run, which stalls the next one), then sluice-perf's e2e scenario on
# CPU 1 at RATE msg/s (default 200000) of 1 KiB records, acks=all, linger LINGER_MS (default 1),
# 3 s warm-up and DURATION s (default 15) measured, plus PERF_ARGS (e.g. `--client-prop
# socket.nagle.disable=true`); then a scrape of the broker's metrics.
# Memory state: settled (not warmed). Writes OUT_DIR/results.tsv and the raw outputs.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?output directory}
shift
ROUNDS=${ROUNDS:-3} SETTLE=${SETTLE:-30} RATE=${RATE:-200000} LINGER_MS=${LINGER_MS:-1}
DURATION=${DURATION:-15}
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release --bin sluice 2>/dev/null
cargo build --release -p sluice-perf --bins 2>/dev/null
mkdir -p "$OUT"
PORT=29700 METRICS=29650
metric() { # name, label filter -> value (sum)
  awk -v n="$1" -v f="$2" 'index($0, n "{") == 1 && index($0, f) {s += $NF} END {print s + 0}' "$3"
}
printf "config\tround\tclient_ack_p50_ms\tclient_ack_p99_ms\tclient_ack_max_ms\tclient_e2e_p99_ms\tbroker_produce_p99_ms\tbroker_fetch_p99_ms\tstalls_over_1ms\tstalls_over_20ms\tlongest_stall_ms\tbroker_cpu_s\n" >"$OUT/results.tsv"
for round in $(seq 1 "$ROUNDS"); do
  for config in "$@"; do
    name=$(basename "$config" .properties)
    data=$(mktemp -d "${TMPDIR:-/tmp}/sluice-stalls.XXXXXX")
    taskset -c 0 "$TARGET/release/sluice" serve --data-dir "$data" --port $PORT --cores 1 \
      --metrics-addr 127.0.0.1:$METRICS --config "$config" 2>"$OUT/broker-$name-$round.log" &
    broker=$!
    sleep "$SETTLE"
    c0=$(awk '{print $14 + $15}' /proc/$broker/stat)
    taskset -c 1 "$TARGET/release/sluice-perf" --bootstrap-server 127.0.0.1:$PORT --scenario e2e \
      --rate "$RATE" --acks all --linger-ms "$LINGER_MS" --warmup-secs 3 --duration-secs "$DURATION" \
      --from tail --topic stalls --quiet ${PERF_ARGS:-} >"$OUT/perf-$name-$round.txt" 2>&1
    c1=$(awk '{print $14 + $15}' /proc/$broker/stat)
    sleep 1.2 # the shard publishes its histograms once a second
    curl -s 127.0.0.1:$METRICS/metrics >"$OUT/metrics-$name-$round.txt"
    kill "$broker"; wait "$broker" || true
    rm -rf "$data"
    m="$OUT/metrics-$name-$round.txt"
    python3 - "$OUT/perf-$name-$round.txt" "$name" "$round" \
      "$(metric sluice_request_latency_seconds 'api="Produce",quantile="0.99"' "$m")" \
      "$(metric sluice_request_latency_seconds 'api="Fetch",quantile="0.99"' "$m")" \
      "$(metric sluice_shard_stalls_total 'shard="0"' "$m")" \
      "$(metric sluice_shard_long_stalls_total 'shard="0"' "$m")" \
      "$(metric sluice_shard_stall_seconds 'quantile="1"' "$m")" \
      "$(( c1 - c0 ))" "$(getconf CLK_TCK)" >>"$OUT/results.tsv" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
lat = re.findall(r"latency \(due send time -> (ack|consumed)\) ms: p50 (\S+)\s+p90 \S+\s+p99 (\S+).*max (\S+)", text)
ack = next(l for l in lat if l[0] == "ack")
e2e = next(l for l in lat if l[0] == "consumed")
name, rnd, prod99, fetch99, stalls, long_stalls, longest, ticks, hz = sys.argv[2:]
print("\t".join([name, rnd, ack[1], ack[2], ack[3], e2e[2],
                 f"{float(prod99) * 1e3:.2f}", f"{float(fetch99) * 1e3:.2f}",
                 stalls, long_stalls, f"{float(longest) * 1e3:.1f}", f"{int(ticks) / int(hz):.2f}"]))
PY
    tail -1 "$OUT/results.tsv"
  done
done
