#!/usr/bin/env bash
# What replication costs (issue 14): throughput and broker CPU per GB of a one-partition
# topic with replication factor 1 against one with replication factor 3 (min.insync.replicas
# 2, acks=all: every record is on all three nodes before it is acknowledged), side by side in
# one run on one 3-node cluster.
#
#   perf/replication.sh [SLUICE_BIN] [OUT_DIR]
#
# Three release nodes on 127.0.0.1-3 (one shard each, ports 19092/19093 and CONTROLLER 19192,
# data dirs under OUT_DIR), configured like docs/cluster/. ROUNDS times (default 3),
# alternating rf1, rf3: sluice-perf produces unpaced (1 KiB incompressible values, acks=all,
# 2 s warm-up, then DURATION seconds, default 15) to the topic's leader. Per step: the
# throughput sluice-perf measured and the CPU seconds of all three broker processes
# (utime+stime from /proc over the whole client run) per GB of record values acknowledged,
# so the followers' fetching and appending is counted. The machine has 2 cores for three
# brokers and the client: the numbers are for comparing the two topics in this run, not a
# peak. Memory state: warm (each step starts with a 2 s warm-up of the same load; the data
# dirs grow across steps, so page cache is being filled, never re-touched after a release).
set -euo pipefail

BIN=${1:-$(dirname "$0")/../target/release/sluice}
OUT=${2:-$(mktemp -d /tmp/sluice-repl.XXXXXX)}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-15}
PERF=${PERF:-$(dirname "$0")/../target/release/sluice-perf}
PORT=19092
CONTROLLER=19192
TICKS=$(getconf CLK_TCK)
mkdir -p "$OUT"
pids=()

cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

node_file() {
    local n=$1
    cat <<EOF
node.id=$n
process.roles=broker,controller
controller.quorum.voters=1@127.0.0.1:$CONTROLLER,2@127.0.0.2:$CONTROLLER,3@127.0.0.3:$CONTROLLER
listeners=PLAINTEXT://127.0.0.$n:$PORT,CONTROLLER://127.0.0.$n:$CONTROLLER
advertised.listeners=PLAINTEXT://127.0.0.$n:$PORT
controller.listener.names=CONTROLLER
log.dirs=$OUT/data$n
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
EOF
}

for n in 1 2 3; do
    node_file "$n" >"$OUT/node$n.properties"
    "$BIN" serve --cores 1 --metrics-addr off --config "$OUT/node$n.properties" \
        >/dev/null 2>"$OUT/node$n.log" &
    pids+=($!)
done

for _ in $(seq 1 300); do
    if [ "$("$BIN" cluster brokers --bootstrap-server 127.0.0.1:$PORT 2>/dev/null | grep -c '^ *[0-9]000')" = 3 ]; then
        break
    fi
    sleep 0.1
done
"$BIN" cluster brokers --bootstrap-server 127.0.0.1:$PORT

# min.insync.replicas cannot exceed the replicas: with the cluster default of 2, acks=all to
# an RF=1 topic is refused with NOT_ENOUGH_REPLICAS (as in Kafka).
"$BIN" topics create --bootstrap-server 127.0.0.1:$PORT --topic rf1 --partitions 1 --replication-factor 1 \
    --config min.insync.replicas=1
"$BIN" topics create --bootstrap-server 127.0.0.1:$PORT --topic rf3 --partitions 1 --replication-factor 3
sleep 2
"$BIN" topics describe --bootstrap-server 127.0.0.1:$PORT --topic rf1 | tee "$OUT/topics.txt"
"$BIN" topics describe --bootstrap-server 127.0.0.1:$PORT --topic rf3 | tee -a "$OUT/topics.txt"

cpu_seconds() {
    local total=0
    for p in "${pids[@]}"; do
        total=$(awk -v t="$TICKS" -v s="$total" '{print s + ($14 + $15) / t}' "/proc/$p/stat")
    done
    echo "$total"
}

printf 'topic\tround\tmsgs_per_sec\tMB_per_sec\tbroker_cpu_s\tGB\tcpu_s_per_GB\terrors\tload\n' \
    | tee "$OUT/results.tsv"
for round in $(seq 1 "$ROUNDS"); do
    for topic in rf1 rf3; do
        name="$topic-$round"
        load=$(cut -d' ' -f1 /proc/loadavg)
        cpu0=$(cpu_seconds)
        "$PERF" --bootstrap-server "127.0.0.1:$PORT" --scenario produce --rate max \
            --message-size 1024 --acks all --topic "$topic" --warmup-secs 2 \
            --duration-secs "$DURATION" --quiet --json "$OUT/perf-$name.json" \
            >"$OUT/perf-$name.txt" 2>&1
        cpu1=$(cpu_seconds)
        python3 - "$OUT/perf-$name.json" "$topic" "$round" "$load" "$cpu0" "$cpu1" \
            <<'EOF' | tee -a "$OUT/results.tsv"
import json, sys
path, topic, rnd, load, cpu0, cpu1 = sys.argv[1:]
run = json.load(open(path))["runs"][0]
d = run["produce"]
cpu = float(cpu1) - float(cpu0)
if d["errors"]:
    sys.exit(f"{topic} round {rnd}: {d['errors']} produce errors; see the perf output")
gb = (run["sent"] - run["unacked"]) * 1024 / 1e9
# Unpaced: latencies only say how deep the client's queue was, so none are reported.
print(f"{topic}\t{rnd}\t{d['msgs_per_sec']:.0f}\t{d['mb_per_sec']:.1f}\t{cpu:.2f}\t{gb:.3f}\t"
      f"{cpu / gb:.2f}\t{d['errors']}\t{load}")
EOF
    done
done

python3 - "$OUT/results.tsv" <<'EOF' | tee "$OUT/summary.txt"
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
med = {}
for topic in ("rf1", "rf3"):
    rs = [r for r in rows if r["topic"] == topic]
    med[topic] = {k: statistics.median(float(r[k]) for r in rs)
                  for k in ("msgs_per_sec", "MB_per_sec", "cpu_s_per_GB")}
    print(f"{topic}: median {med[topic]['msgs_per_sec']:.0f} msg/s, "
          f"{med[topic]['MB_per_sec']:.1f} MB/s, {med[topic]['cpu_s_per_GB']:.2f} broker CPU s/GB")
print(f"rf3/rf1: throughput x{med['rf3']['msgs_per_sec'] / med['rf1']['msgs_per_sec']:.2f}, "
      f"CPU per GB x{med['rf3']['cpu_s_per_GB'] / med['rf1']['cpu_s_per_GB']:.2f}")
EOF
echo "results in $OUT"
