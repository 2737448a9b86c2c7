"""One chaos run: start the cluster, create the topics, run the workloads under the nemesis,
heal, read everything back, check the history, write the report and the timeline.

    python3 tests/chaos/harness.py --duration 60 --seed 7 --out DIR [--planted-bug]

Files in DIR: history.jsonl (every operation), faults.jsonl (the run, faults, notes and
writes acknowledged without an offset), report.txt, report.json, timeline.svg,
logs/node*.log.gz; nodes/ holds each node's config, live log and (until the end) data.
Exit status 1 when the checker found violations (or the run itself failed).
"""
import argparse
import gzip
import json
import shutil
import signal
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from confluent_kafka.admin import NewTopic  # noqa: E402

import checker  # noqa: E402
import plot  # noqa: E402
import workload  # noqa: E402
from cluster import Cluster, sluice_bin  # noqa: E402
import logdump  # noqa: E402
from history import History, load  # noqa: E402
import net  # noqa: E402
from nemesis import ALL_KINDS, Nemesis, available  # noqa: E402

TOPIC, PARTITIONS = "chaos", 3
TXN_TOPIC, TXN_PARTITIONS = "chaos-txn", 2
CLIENT_OPS = {"write", "read", "final", "final-end", "list-offsets", "commit", "committed",
              "txn", "txn-final", "txn-final-end", "read-error"}
HEAL_WITHIN = 90  # seconds for every replica to be back in sync once the faults stop


def create_topics(cluster):
    admin = cluster.admin()
    futures = admin.create_topics([NewTopic(TOPIC, PARTITIONS, 3), NewTopic(TXN_TOPIC,
                                   TXN_PARTITIONS, 3)], request_timeout=30)
    for f in futures.values():
        f.result(30)
    cluster.wait_for(lambda: cluster.healthy([TOPIC, TXN_TOPIC]), 60, "topics in sync")


def run(out, seed, duration, planted=False, schedule=None, kinds=None, port=24100,
        rate=50, txns=True, keep_data=False, network="auto"):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env = {"SLUICE_TEST_ACK_BEFORE_REPLICATION": "1"} if planted else {}
    where = net.choose(network, port)
    cluster = Cluster(out / "nodes", port, env, where)
    if schedule is not None:
        schedule = available(schedule, where, cluster.own_disks)
    history = History(out / "history.jsonl")
    history.add(type="run", seed=seed, duration=duration, planted_bug=planted,
                schedule=schedule, kinds=available(kinds or ALL_KINDS, where, cluster.own_disks),
                network=where.kind, started=time.strftime("%FT%TZ", time.gmtime()))
    stop = threading.Event()
    workers = []
    final_read_done = False
    try:
        cluster.start()
        create_topics(cluster)
        workers = [workload.Producer(f"p{i}", cluster, history, stop, TOPIC, rate)
                   for i in range(2)]
        workers += [
            workload.Reader("r", cluster, history, stop, TOPIC, PARTITIONS),
            workload.OffsetsPoller("lo", cluster, history, stop, TOPIC, PARTITIONS),
            workload.Committer("c", cluster, history, stop, TOPIC, PARTITIONS),
        ]
        if txns:
            workers.append(workload.Transactions("t", cluster, history, stop, TXN_TOPIC, seed))
        for w in workers:
            w.start()
        time.sleep(3)
        nemesis = Nemesis(cluster, history, seed, TOPIC, kinds)
        nemesis.run(duration, schedule)
        nemesis.heal()
        history.add(type="note", text="healed")
        topics = [TOPIC, TXN_TOPIC] if txns else [TOPIC]
        try:
            cluster.wait_for(lambda: cluster.healthy(topics), HEAL_WITHIN, "healed")
        except TimeoutError:
            # A liveness failure (checked as such), not a reason to skip the safety checks:
            # every partition may still have a leader to read from.
            history.add(type="not-healed", within=HEAL_WITHIN, isr=cluster.isr_report(topics))
        time.sleep(2)
        stop.set()
        for w in workers:
            w.join(60)
        history.add(type="note", text="workloads stopped")
        workload.read_all(cluster, history, TOPIC, PARTITIONS, "final")
        final_read_done = True
        if txns:
            workload.read_all(cluster, history, TXN_TOPIC, TXN_PARTITIONS, "txn-final",
                              isolation="read_committed")
    finally:
        stop.set()
        try:
            cluster.stop()
            try:
                if final_read_done:
                    record_duplicate_identities(cluster, history)
                record_broken_nodes(cluster, history)
            except Exception as e:  # an analysis failure fails the run, it is not skipped
                history.add(type="harness-error", proc="analysis", error=repr(e))
            history.close()
            keep_logs(cluster, out)
        finally:
            for node in cluster.nodes.values():
                node.drop_data(keep_data)
    broken = [w.name + ": " + w.failure for w in workers if w.failure]
    return report(out, broken)


def keep_logs(cluster, out):
    """Each node's log (gzipped) and config into DIR/logs."""
    (out / "logs").mkdir(exist_ok=True)
    for node in cluster.nodes.values():
        if node.log.exists():
            with open(node.log, "rb") as src, gzip.open(out / "logs" / f"node{node.n}.log.gz",
                                                        "wb") as dst:
                shutil.copyfileobj(src, dst)
        shutil.copy(node.config, out / "logs" / f"node{node.n}.properties")


def record_duplicate_identities(cluster, history):
    """For every value the final read found more than once: which producer id, epoch and
    sequence wrote each copy, from node 1's segment files (the cluster is stopped and whole),
    as `identity` events for the checker."""
    history.flush()
    places = defaultdict(list)
    for e in load(history.path):
        if e["type"] == "final":
            places[e["value"]].append((e["partition"], e["offset"]))
    wanted = {at: value for value, copies in places.items() if len(copies) > 1
              for at in copies}
    if not wanted:
        return
    found = logdump.identities(sluice_bin(), cluster.nodes[1].data, TOPIC, wanted)
    for (partition, offset), (pid, epoch, seq) in sorted(found.items()):
        history.add(type="identity", partition=partition, offset=offset, producer_id=pid,
                    producer_epoch=epoch, sequence=seq)


# Log lines that mean part of a node stopped for good while the process ran on: a panic, or
# openraft's fatal state (its Raft core gone, e.g. after a storage error), which leaves the
# node serving with metadata that never changes again.
BROKEN_NODE_MARKS = ("panicked at", "core_result=Err(", "openraft::error::Fatal")


def record_broken_nodes(cluster, history):
    """A `node-broken` event for each node whose log shows a panic or a fatal Raft error."""
    for node in cluster.nodes.values():
        if not node.log.exists():
            continue
        with open(node.log, errors="replace") as f:
            for line in f:
                if any(mark in line for mark in BROKEN_NODE_MARKS):
                    history.add(type="node-broken", node=node.n, line=line.strip()[:400])
                    break


def report(out, broken=()):
    """Checks DIR/history.jsonl; writes report.json, report.txt and timeline.svg there."""
    out = Path(out)
    events = load(out / "history.jsonl")
    result = checker.check(events)
    result["harness_errors"] = list(broken)
    # What a reader of the run needs beside the (large) history: the run, every fault and
    # every note, and the writes acknowledged without an offset.
    with open(out / "faults.jsonl", "w") as f:
        for e in events:
            if e["type"] not in CLIENT_OPS or (e["type"] == "write" and e["outcome"] == "ok"
                                               and e.get("offset") is None):
                f.write(json.dumps(e, separators=(",", ":")) + "\n")
    (out / "report.json").write_text(json.dumps(result, indent=1, sort_keys=True))
    text = checker.report_text(result)
    if broken:
        text += "\n  harness errors: " + "; ".join(broken)
    (out / "report.txt").write_text(text + "\n")
    plot.timeline(events, out / "timeline.svg")
    return result


def duration_s(text):
    units = {"s": 1, "m": 60, "h": 3600}
    if text and text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)


def main():
    # SIGTERM (a CI timeout, `kill`) ends the run through its `finally`: nodes stopped, disks
    # unmounted, namespaces removed, instead of leaving them behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=duration_s, default=60,
                        help="how long the nemesis runs: seconds, or 90s / 10m / 1h")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", required=True)
    parser.add_argument("--recheck", action="store_true",
                        help="only check OUT/history.jsonl again and rewrite the report")
    parser.add_argument("--port", type=int, default=24100)
    parser.add_argument("--rate", type=float, default=50, help="writes/s per producer")
    parser.add_argument("--faults", default=",".join(ALL_KINDS),
                        help="kinds the random nemesis picks from (nftables ones need netns)")
    parser.add_argument("--net", choices=["auto", "netns", "loopback"], default="auto",
                        help="network namespaces (root) or loopback addresses")
    parser.add_argument("--schedule", help="comma-separated fault kinds, run in order")
    parser.add_argument("--planted-bug", action="store_true",
                        help="nodes acknowledge acks=all before replicating (debug builds)")
    args = parser.parse_args()
    if args.recheck:
        result = report(args.out)
        print((Path(args.out) / "report.txt").read_text())
        sys.exit(0 if result["ok"] else 1)
    result = run(args.out, args.seed, args.duration, planted=args.planted_bug,
                 schedule=args.schedule.split(",") if args.schedule else None,
                 kinds=args.faults.split(","), port=args.port, rate=args.rate,
                 network=args.net)
    print((Path(args.out) / "report.txt").read_text())
    sys.exit(0 if result["ok"] and not result["harness_errors"] else 1)


if __name__ == "__main__":
    main()
