#!/usr/bin/env bash
# A/B of two sluice binaries on the produce and fetch paths (issue 11: record validation;
# issue 12: the restructuring, which must cost nothing).
#
#   perf/ab.sh BEFORE_BIN AFTER_BIN [OUT_DIR]
#   A_CONFIG=a.properties B_CONFIG=b.properties perf/ab.sh BIN BIN [OUT_DIR]   # two settings
#   A_CORES=1 B_CORES=2 PARTITIONS=2 perf/ab.sh BIN BIN [OUT_DIR]               # shard counts
#   A_DATA_ROOT=/tmp B_DATA_ROOT=/mnt/xfs perf/ab.sh BIN BIN [OUT_DIR]            # filesystems
#
# A broker with N cores runs on CPUs 0..N-1 (the client stays on CPU 1, so with 2 cores it
# shares one); its topic has PARTITIONS partitions (default 1), spread over the shards.
#
# ROUNDS times (default 3), alternating A, B, A, B, ...: a fresh one-shard broker on core 0
# (taskset -c 0, data dir on disk), then each step of SCENARIOS (default "produce consume")
# with sluice-perf unpaced on core 1:
# - produce: 1 KiB values, acks=all, COMPRESSION (default none), DURATION seconds after a
#   2 s warm-up;
# - consume: from the start of what was just produced (both steps use the topic `ab`), no warm-up, until the end of the
#   data or DURATION seconds. The data is in the page cache: this measures the broker's
#   fetch path, not the disk.
# Records per step the throughput sluice-perf measured, the broker's CPU seconds
# (utime+stime from /proc over the whole client run) per GB of record values moved, and the
# load average before the step, since other work may share the machine. Memory state: each
# produce step writes into page cache that the previous run's deleted data dir just freed,
# so it is warm unless the host reclaimed it in the seconds between; say so with results.
set -euo pipefail

A=${1:?before binary}
B=${2:?after binary}
OUT=${3:-$(mktemp -d /tmp/sluice-ab.XXXXXX)}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-15}
COMPRESSION=${COMPRESSION:-none}
SCENARIOS=${SCENARIOS:-produce consume}
A_CONFIG=${A_CONFIG:-}
B_CONFIG=${B_CONFIG:-}
A_CORES=${A_CORES:-1}
B_CORES=${B_CORES:-1}
PARTITIONS=${PARTITIONS:-1}
# Where each side's data dir is made (a directory on the filesystem to measure).
A_DATA_ROOT=${A_DATA_ROOT:-/tmp}
B_DATA_ROOT=${B_DATA_ROOT:-/tmp}
PERF=${PERF:-$(dirname "$0")/../target/release/sluice-perf}
mkdir -p "$OUT"
TICKS=$(getconf CLK_TCK)

free_port() {
    python3 - <<'EOF'
import socket, random
while True:
    p = random.randrange(20000, 32000)
    try:
        for q in (p, p + 1, p + 2):
            s = socket.socket(); s.bind(("127.0.0.1", q)); s.close()
        print(p); break
    except OSError:
        pass
EOF
}

cpu_seconds() { awk -v t="$TICKS" '{print ($14 + $15) / t}' "/proc/$1/stat"; }

# One sluice-perf step against the running broker; appends a row to results.tsv.
step() {
    local label=$1 round=$2 scenario=$3 port=$4 pid=$5
    local load cpu0 cpu1 warmup=2 name="$scenario-$label-$round"
    [ "$scenario" = consume ] && warmup=0
    load=$(cut -d' ' -f1 /proc/loadavg)
    cpu0=$(cpu_seconds "$pid")
    taskset -c 1 "$PERF" --bootstrap-server "127.0.0.1:$port" --scenario "$scenario" \
        --rate max --message-size 1024 --acks all --compression "$COMPRESSION" \
        --topic ab --partitions "$PARTITIONS" --warmup-secs "$warmup" --duration-secs "$DURATION" --quiet \
        --json "$OUT/perf-$name.json" >"$OUT/perf-$name.txt" 2>&1
    cpu1=$(cpu_seconds "$pid")
    python3 - "$OUT/perf-$name.json" "$label" "$round" "$scenario" "$load" "$cpu0" "$cpu1" \
        <<'EOF' | tee -a "$OUT/results.tsv"
import json, sys
path, label, rnd, scenario, load, cpu0, cpu1 = sys.argv[1:]
run = json.load(open(path))["runs"][0]
d = run[scenario]
cpu = float(cpu1) - float(cpu0)
if scenario == "produce":
    # Every message the client run sent and had acknowledged (warm-up and drain included,
    # as the CPU time is), times the 1 KiB value: GB of record values the broker took.
    gb = (run["sent"] - run["unacked"]) * 1024 / 1e9
else:
    # No warm-up: the measured bytes are all the client read.
    gb = d["bytes"] / 1e9
print(f"{label}\t{rnd}\t{scenario}\t{d['msgs_per_sec']:.0f}\t{d['mb_per_sec']:.1f}\t"
      f"{cpu:.2f}\t{gb:.3f}\t{cpu / gb:.2f}\t{load}")
EOF
}

run_one() {
    local label=$1 bin=$2 round=$3 config=$4 cores=$5 root=$6
    local port dir pid
    local extra=()
    [ -n "$config" ] && extra=(--config "$config")
    port=$(free_port)
    dir=$(mktemp -d "$root/sluice-ab-data.XXXXXX")
    taskset -c "0-$((cores - 1))" "$bin" serve --data-dir "$dir" --port "$port" --cores "$cores" \
        --metrics-addr off "${extra[@]}" 2>"$OUT/broker-$label-$round.log" &
    pid=$!
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$((port + cores))") 2>/dev/null && break
        sleep 0.05
    done
    for scenario in $SCENARIOS; do
        step "$label" "$round" "$scenario" "$port" "$pid"
    done
    kill "$pid"
    wait "$pid" || true
    rm -rf "$dir"
}

printf 'label\tround\tscenario\tmsg/s\tMB/s\tbroker_cpu_s\tvalue_GB\tcpu_s_per_GB\tload1_before\n' \
    | tee "$OUT/results.tsv"
for round in $(seq "$ROUNDS"); do
    run_one A "$A" "$round" "$A_CONFIG" "$A_CORES" "$A_DATA_ROOT"
    run_one B "$B" "$round" "$B_CONFIG" "$B_CORES" "$B_DATA_ROOT"
done
python3 - "$OUT/results.tsv" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
for scenario in dict.fromkeys(r["scenario"] for r in rows):
    for label in ("A", "B"):
        mine = [r for r in rows if r["label"] == label and r["scenario"] == scenario]
        med = lambda k: statistics.median(float(r[k]) for r in mine)
        print(f"median {scenario} {label}: {med('MB/s'):.1f} MB/s, {med('msg/s'):.0f} msg/s, "
              f"{med('cpu_s_per_GB'):.2f} broker CPU s/GB (n={len(mine)})")
EOF
echo "results in $OUT"
