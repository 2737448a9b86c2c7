#!/usr/bin/env python3
"""Rebalance time of the classic and the KIP-848 consumer group protocol, side by side.

One broker per settings profile, a 12-partition topic, and for each protocol (a fresh group per
repetition): three members join one after another, then the first one leaves. For each step the
time runs from the membership change (just before the joiner subscribes, or the leaver's
close() is called) until every remaining member's assignment is settled: from the members' own
on_assign / on_revoke / on_lost callbacks, every partition is owned by exactly one member and
the counts are balanced (12 / members each). Each member is a confluent-kafka Consumer polled
on its own thread.

Protocols: classic with librdkafka's default assignor (`range,roundrobin`: range is used, eager),
classic with `cooperative-sticky`, and consumer (`group.protocol=consumer`, the broker's
default `uniform` assignor).

Profiles:
  defaults  every broker and client setting at its default (Kafka's: classic
            group.initial.rebalance.delay.ms=3000, group.consumer.heartbeat.interval.ms=5000;
            librdkafka's classic heartbeat.interval.ms=3000)
  tuned     broker group.initial.rebalance.delay.ms=0 and group.consumer.heartbeat.interval.ms=500;
            clients at their defaults
  tuned-hb  tuned, and the classic clients also heartbeat every 500 ms
            (heartbeat.interval.ms=500: the classic counterpart of the broker's 500 ms)

Usage:
  SLUICE_BIN=/path/to/sluice python3 perf/rebalance.py [--reps 3] [--profiles defaults,tuned,tuned-hb]
      [--out perf/runs/<date>-rebalance]
Writes rebalance.csv (one row per step) and summary.md (medians) into --out.
"""

import argparse
import csv
import hashlib
import shutil
import datetime
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "python"))
from conftest import Broker  # noqa: E402  (the test harness: free ports, start, stop by pid)

PARTITIONS = 12
STEP_TIMEOUT_S = 90
PAUSE_S = 1.0  # a step counts as settled when nothing changes for this long after
# Before each change a random wait (fixed seed): heartbeats run on fixed intervals, and a fixed
# wait would put every change at the same point of the members' heartbeat cycle (with
# PAUSE_S alone, every classic join waited exactly 3 s - 1 s = 2 s for the next heartbeat).
GAP_S = (0.5, 5.5)

PROFILES = {
    "defaults": ({}, {}),
    "tuned": ({"group.initial.rebalance.delay.ms": "0",
               "group.consumer.heartbeat.interval.ms": "500",
               "group.consumer.min.heartbeat.interval.ms": "500"}, {}),
    "tuned-hb": ({"group.initial.rebalance.delay.ms": "0",
                  "group.consumer.heartbeat.interval.ms": "500",
                  "group.consumer.min.heartbeat.interval.ms": "500"},
                 {"heartbeat.interval.ms": "500"}),
}

PROTOCOLS = {
    "classic range,roundrobin (default)": {"group.protocol": "classic"},
    "classic cooperative-sticky": {"group.protocol": "classic",
                                   "partition.assignment.strategy": "cooperative-sticky"},
    "consumer uniform (default)": {"group.protocol": "consumer"},
}


class Group:
    """The members' owned partitions as their callbacks report them; `settled_at` is the time
    of the callback that made the assignment complete and balanced."""

    def __init__(self):
        self.lock = threading.Lock()
        self.owned = {}  # member -> set(partition)
        self.expect = 0  # members expected to share the partitions
        self.settled_at = None
        self.lost = 0

    def reset(self, members):
        with self.lock:
            self.expect = members
            self.settled_at = None
            self._check()

    def _check(self):
        live = [o for o in self.owned.values()]
        if len(live) != self.expect or self.expect == 0:
            return
        flat = sorted(p for o in live for p in o)
        if flat == list(range(PARTITIONS)) and {len(o) for o in live} == {PARTITIONS // self.expect}:
            if self.settled_at is None:
                self.settled_at = time.monotonic()
        else:
            self.settled_at = None

    def change(self, member, added=(), removed=(), lost=False):
        with self.lock:
            owned = self.owned.setdefault(member, set())
            owned |= set(added)
            owned -= set(removed)
            self.lost += bool(lost)
            self._check()

    def drop(self, member):
        with self.lock:
            self.owned.pop(member, None)
            self._check()


class Member:
    def __init__(self, name, bootstrap, group_id, topic, group, config):
        self.name, self.group = name, group
        group.change(name)
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id,
                                  "client.id": name, "enable.auto.commit": False,
                                  "auto.offset.reset": "earliest", **config})
        self.topic = topic
        self.stop = threading.Event()
        self.errors = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        g, n = self.group, self.name
        try:
            self.consumer.subscribe(
                [self.topic],
                on_assign=lambda c, ps: g.change(n, added=[tp.partition for tp in ps]),
                on_revoke=lambda c, ps: g.change(n, removed=[tp.partition for tp in ps]),
                on_lost=lambda c, ps: g.change(n, removed=[tp.partition for tp in ps],
                                               lost=True))
            while not self.stop.is_set():
                self.consumer.poll(0.05)
            self.consumer.close()
        except Exception as e:  # noqa: BLE001
            self.errors.append(repr(e))

    def close(self):
        self.stop.set()
        self.thread.join(timeout=60)
        self.group.drop(self.name)


def wait_settled(group, started):
    deadline = started + STEP_TIMEOUT_S
    while True:
        with group.lock:
            settled = group.settled_at
            owned = {m: sorted(o) for m, o in group.owned.items()}
        if settled is not None:
            time.sleep(PAUSE_S)  # still settled after a quiet second: that was the end
            with group.lock:
                if group.settled_at == settled:
                    return settled - started
            continue
        if time.monotonic() > deadline:
            raise RuntimeError(f"not settled after {STEP_TIMEOUT_S}s: {owned}")
        time.sleep(0.01)


def one_run(bootstrap, topic, protocol_config, rep, rng):
    """Three joins then one leave; returns [(step, members, seconds)]."""
    group = Group()
    group_id = f"rb-{uuid.uuid4().hex[:8]}"
    members, out = [], []
    try:
        for i in range(3):
            time.sleep(rng.uniform(*GAP_S))
            started = time.monotonic()
            group.reset(i + 1)
            members.append(Member(f"m{i}", bootstrap, group_id, topic, group, protocol_config))
            out.append((f"join {i + 1}", i + 1, wait_settled(group, started)))
        leaver = members.pop(0)
        time.sleep(rng.uniform(*GAP_S))
        started = time.monotonic()
        group.reset(2)
        leaver.close()
        out.append(("leave 1", 2, wait_settled(group, started)))
        errors = [e for m in members + [leaver] for e in m.errors]
        if errors or group.lost:
            raise RuntimeError(f"rep {rep}: errors {errors}, lost callbacks {group.lost}")
        return out
    finally:
        for m in members:
            m.close()


def machine_state():
    def sh(cmd):
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except Exception as e:  # noqa: BLE001
            return repr(e)
    return "\n".join([
        f"date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
        f"uptime/load: {sh('uptime')}",
        f"cpus: {os.cpu_count()}",
        f"memory: {sh('free -m | sed -n 2p')}",
        "top CPU processes at the start:",
        sh("ps -eo pcpu,comm --sort=-pcpu | head -8"),
    ])


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--profiles", default="defaults,tuned,tuned-hb")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    today = datetime.date.today().isoformat()
    out = Path(args.out or REPO / "perf" / "runs" / f"{today}-rebalance")
    out.mkdir(parents=True, exist_ok=True)
    import confluent_kafka
    from importlib.metadata import version
    sluice = Path(os.environ.get("SLUICE_BIN", REPO / "target" / "debug" / "sluice"))
    # A private copy: the binary behind SLUICE_BIN may be rebuilt during a long run.
    private = Path(tempfile.mkdtemp(prefix="rebalance-bin-")) / "sluice"
    shutil.copy2(sluice, private)
    os.environ["SLUICE_BIN"] = str(private)
    digest = hashlib.sha256(private.read_bytes()).hexdigest()
    header = [
        f"command: {' '.join(['perf/rebalance.py'] + sys.argv[1:])} (SLUICE_BIN={sluice})",
        f"broker: {sluice} copied at the start, sha256 {digest[:16]}, {private.stat().st_size} "
        f"bytes, mtime "
        f"{datetime.datetime.fromtimestamp(sluice.stat().st_mtime).isoformat(timespec='seconds')}",
        f"client: confluent-kafka {version('confluent-kafka')}, "
        f"librdkafka {confluent_kafka.libversion()[0]}",
        machine_state(),
    ]
    (out / "machine.txt").write_text("\n".join(header) + "\n")
    print("\n".join(header), flush=True)

    rows = []
    rng = random.Random(848)
    with open(out / "rebalance.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["profile", "protocol", "rep", "step", "members", "seconds"])
        for profile in args.profiles.split(","):
            broker_config, classic_client = PROFILES[profile]
            with tempfile.TemporaryDirectory(prefix="rebalance-") as tmp:
                broker = Broker(tmp, cores=2, config=broker_config).start()
                try:
                    topic = f"rebalance-{uuid.uuid4().hex[:6]}"
                    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
                    for fut in admin.create_topics([NewTopic(topic, PARTITIONS, 1)]).values():
                        fut.result(timeout=30)
                    for rep in range(args.reps):
                        # Interleaved: every protocol once per repetition.
                        for protocol, config in PROTOCOLS.items():
                            config = dict(config)
                            if config["group.protocol"] == "classic":
                                config.update(classic_client)
                            for step, members, seconds in one_run(broker.bootstrap, topic,
                                                                   config, rep, rng):
                                row = [profile, protocol, rep, step, members, f"{seconds:.3f}"]
                                writer.writerow(row)
                                f.flush()
                                rows.append(row)
                                print(",".join(map(str, row)), flush=True)
                finally:
                    broker.stop()

    steps = ["join 1", "join 2", "join 3", "leave 1"]
    lines = ["| profile | protocol | " + " | ".join(steps) + " |",
             "|---|---|" + "---:|" * len(steps)]
    for profile in args.profiles.split(","):
        for protocol in PROTOCOLS:
            cells = []
            for step in steps:
                vals = [float(r[5]) for r in rows
                        if r[0] == profile and r[1] == protocol and r[3] == step]
                cells.append(f"{statistics.median(vals):.2f}" if vals else "-")
            lines.append(f"| {profile} | {protocol} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    (out / "summary.md").write_text(f"Median seconds over {args.reps} repetitions\n\n{table}\n")
    print(table)
    shutil.rmtree(private.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
