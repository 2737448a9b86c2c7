#!/usr/bin/env python3
"""Share-group consumption against a classic consumer group, on the same topic and broker,
with the same client library (confluent-kafka 2.16 over librdkafka: `ShareConsumer` in its
default implicit-acknowledgement mode, `Consumer.consume()` in batches of 500), side by side.

    python3 perf/share_vs_classic.py [--records 1000000] [--size 100] [--partitions 4]
                                      [--rounds 3] [--out DIR] [--broker PATH]

A fresh release broker (`target/release/sluice`, one shard, `taskset -c 0`) gets the topic
and the records first; then, ROUNDS times, alternating classic and share, a fresh group
(classic: auto.offset.reset=earliest; share: group.share.auto.offset.reset=earliest) reads all
of them from one client process on CPU 1. The data sits in the page cache the produce step
wrote (memory state: warm), so this measures the broker's fetch and share paths and the
client, not the disk. Reports records/s per run (from the client's first record to its
last), the broker's and the client's CPU seconds per run, the medians and share/classic;
writes results.json to --out. The client's CPU includes its start-up and group join.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PORT = 29092


def wait_port(port, timeout_s=30):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} not accepting")


def child(mode, records, group):
    """Runs in a client process pinned to CPU 1: reads `records` records, prints the rate."""
    from confluent_kafka import Consumer, ShareConsumer
    bootstrap = f"127.0.0.1:{PORT}"
    if mode == "share":
        c = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group})
        c.subscribe(["bench"])
        read = lambda: c.poll(1.0)  # noqa: E731
    else:
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
        c.subscribe(["bench"])
        read = lambda: c.consume(500, 1.0)  # noqa: E731
    got, start = 0, None
    deadline = time.monotonic() + 300
    while got < records and time.monotonic() < deadline:
        batch = read()
        if batch and start is None:
            start = time.monotonic()
        got += sum(1 for m in batch if m.error() is None)
    elapsed = time.monotonic() - start
    if mode == "share":
        c.commit_sync()
    c.close()
    print(json.dumps({"mode": mode, "records": got, "seconds": elapsed, "rate": got / elapsed}))


def cpu_seconds(pid):
    """utime + stime of process `pid`, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def produce(records, size, partitions):
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    bootstrap = f"127.0.0.1:{PORT}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("bench", partitions, 1)])["bench"].result(30)
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.num.messages": 10000,
                  "queue.buffering.max.messages": 1000000})
    value = b"x" * size
    for i in range(records):
        while True:
            try:
                p.produce("bench", value=value, partition=i % partitions)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(120) == 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=None)
    ap.add_argument("--broker", default=str(ROOT / "target/release/sluice"),
                    help="the sluice binary to measure (an A/B of two builds runs the script "
                         "once per binary, alternating)")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child[0], int(a.child[1]), a.child[2])
        return
    data = Path(tempfile.mkdtemp(prefix="sluice-share-bench-"))
    config = data / "server.properties"
    config.write_text("group.share.auto.offset.reset=earliest\n")
    broker = subprocess.Popen(["taskset", "-c", "0", a.broker, "serve",
                               "--data-dir", str(data / "d"), "--port", str(PORT), "--cores", "1",
                               "--config", str(config), "--metrics-addr", "off"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = []
    try:
        wait_port(PORT)
        wait_port(PORT + 1)
        produce(a.records, a.size, a.partitions)
        for r in range(a.rounds):
            for mode in ("classic", "share"):
                broker_before = cpu_seconds(broker.pid)
                client_before = os.times()
                out = subprocess.run(["taskset", "-c", "1", sys.executable, __file__, "--child", mode,
                                      str(a.records), f"bench-{mode}-{uuid.uuid4().hex[:6]}"],
                                     capture_output=True, text=True, check=True)
                client_after = os.times()
                run = json.loads(out.stdout.strip().splitlines()[-1])
                run["round"] = r
                run["broker_cpu_s"] = cpu_seconds(broker.pid) - broker_before
                run["client_cpu_s"] = ((client_after.children_user + client_after.children_system)
                                       - (client_before.children_user + client_before.children_system))
                runs.append(run)
                print(f"round {r} {mode:7s} {run['rate']:>12,.0f} records/s ({run['records']} in "
                      f"{run['seconds']:.2f} s) broker CPU {run['broker_cpu_s']:.2f} s, "
                      f"client CPU {run['client_cpu_s']:.2f} s")
    finally:
        broker.kill()
        broker.wait()
        shutil.rmtree(data, ignore_errors=True)
    med = {m: statistics.median(x["rate"] for x in runs if x["mode"] == m) for m in ("classic", "share")}
    cpu = {m: statistics.median(x["broker_cpu_s"] / x["records"] * 1e6 for x in runs if x["mode"] == m)
           for m in ("classic", "share")}
    ratio = med["share"] / med["classic"]
    print(f"median classic {med['classic']:,.0f}/s, share {med['share']:,.0f}/s, share/classic {ratio:.2f}")
    print(f"broker CPU per million records: classic {cpu['classic']:.2f} s, share {cpu['share']:.2f} s")
    if a.out:
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        result = {"records": a.records, "size": a.size, "partitions": a.partitions, "runs": runs,
                  "median": med, "broker_cpu_s_per_million": cpu, "share_over_classic": ratio,
                  "load_after": os.getloadavg()}
        (out / "results.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
