#!/usr/bin/env bash
# Produce-path A/B of two sluice binaries (issue 11: record validation on produce).
#
#   perf/validation_ab.sh BEFORE_BIN AFTER_BIN [OUT_DIR]
#
# ROUNDS times (default 3), alternating A, B, A, B, ...: a fresh one-shard broker on core 0
# (taskset -c 0, data dir on disk), sluice-perf produce unpaced on core 1 (1 KiB values,
# acks=all, COMPRESSION default none) for DURATION seconds after a 2 s warm-up. Records per
# run the produce throughput sluice-perf measured and the broker's CPU seconds (utime+stime
# from /proc over the whole client run) per GB of record values acknowledged in that run,
# plus the load average before the run, since other work shares the machine.
set -euo pipefail

A=${1:?before binary}
B=${2:?after binary}
OUT=${3:-$(mktemp -d /tmp/validation-ab.XXXXXX)}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-15}
COMPRESSION=${COMPRESSION:-none}
PERF=${PERF:-$(dirname "$0")/../target/release/sluice-perf}
mkdir -p "$OUT"
TICKS=$(getconf CLK_TCK)

free_port() {
    python3 - <<'EOF'
import socket, random
while True:
    p = random.randrange(20000, 32000)
    try:
        for q in (p, p + 1):
            s = socket.socket(); s.bind(("127.0.0.1", q)); s.close()
        print(p); break
    except OSError:
        pass
EOF
}

cpu_seconds() { awk -v t="$TICKS" '{print ($14 + $15) / t}' "/proc/$1/stat"; }

run_one() {
    local label=$1 bin=$2 round=$3
    local port dir pid load cpu0 cpu1
    port=$(free_port)
    dir=$(mktemp -d /tmp/validation-ab-data.XXXXXX)
    taskset -c 0 "$bin" serve --data-dir "$dir" --port "$port" --cores 1 \
        --metrics-addr off 2>"$OUT/broker-$label-$round.log" &
    pid=$!
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$((port + 1))") 2>/dev/null && break
        sleep 0.05
    done
    load=$(cut -d' ' -f1 /proc/loadavg)
    cpu0=$(cpu_seconds "$pid")
    taskset -c 1 "$PERF" --bootstrap-server "127.0.0.1:$port" --scenario produce --rate max \
        --message-size 1024 --acks all --compression "$COMPRESSION" --warmup-secs 2 \
        --duration-secs "$DURATION" --quiet --json "$OUT/perf-$label-$round.json" \
        >"$OUT/perf-$label-$round.txt" 2>&1
    cpu1=$(cpu_seconds "$pid")
    kill "$pid"
    wait "$pid" || true
    rm -rf "$dir"
    python3 - "$OUT/perf-$label-$round.json" "$label" "$round" "$load" "$cpu0" "$cpu1" <<'EOF' | tee -a "$OUT/results.tsv"
import json, sys
path, label, rnd, load, cpu0, cpu1 = sys.argv[1:]
report = json.load(open(path))
run = report["runs"][0]
p = run["produce"]
cpu = float(cpu1) - float(cpu0)
# Every message the client run sent and had acknowledged (warm-up and drain included, as
# the CPU time is), times the 1 KiB value: GB of record values the broker took.
gb = (run["sent"] - run["unacked"]) * 1024 / 1e9
print(f"{label}\t{rnd}\t{p['msgs_per_sec']:.0f}\t{p['mb_per_sec']:.1f}\t{cpu:.2f}\t{gb:.3f}\t{cpu / gb:.2f}\t{load}")
EOF
}

printf 'label\tround\tmsg/s\tMB/s\tbroker_cpu_s\tvalue_GB\tcpu_s_per_GB\tload1_before\n' | tee "$OUT/results.tsv"
for round in $(seq "$ROUNDS"); do
    run_one A "$A" "$round"
    run_one B "$B" "$round"
done
python3 - "$OUT/results.tsv" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
for label in ("A", "B"):
    mine = [r for r in rows if r["label"] == label]
    med = lambda k: statistics.median(float(r[k]) for r in mine)
    print(f"median {label}: {med('MB/s'):.1f} MB/s, {med('msg/s'):.0f} msg/s, "
          f"{med('cpu_s_per_GB'):.2f} broker CPU s/GB (n={len(mine)})")
EOF
echo "results in $OUT"
