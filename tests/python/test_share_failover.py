"""Share groups across failovers, with confluent-kafka's ShareConsumer against a three-node
cluster (127.0.0.1-3, one shard each, everything replicated three times): the share state
lives on the replicated `__share_group_state` topic, so SIGKILL of the node leading the shared
partition, and then of the node leading the share state's own partition, loses no
acknowledgement: a record whose acknowledgement the broker confirmed is never delivered again,
and every record is acknowledged in the end."""
import os
import signal
import subprocess
import threading
import time
import uuid

from confluent_kafka import Producer, ShareConsumer
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   NewTopic, ResourceType)

from conftest import free_port_range, sluice_bin

RECORDS = 300
TIMEOUT_S = 90
STATE_TOPIC = "__share_group_state"
SETTINGS = [
    "default.replication.factor=3",
    "min.insync.replicas=2",
    "offsets.topic.replication.factor=3",
    "offsets.topic.num.partitions=3",
    "transaction.state.log.num.partitions=3",
    # One partition, so the test knows which node leads the share state.
    "share.coordinator.state.topic.num.partitions=1",
    "broker.heartbeat.interval.ms=500",
    "broker.session.timeout.ms=3000",
    "replica.lag.time.max.ms=4000",
    "group.share.record.lock.duration.ms=5000",
    "auto.create.topics.enable=false",
]


class Cluster:
    def __init__(self, workdir):
        self.port = free_port_range(11)
        self.workdir = workdir
        voters = ",".join(f"{n}@127.0.0.{n}:{self.port + 10}" for n in (1, 2, 3))
        self.procs = {}
        self.starts = {n: 0 for n in (1, 2, 3)}
        for n in (1, 2, 3):
            lines = [
                f"node.id={n}",
                "process.roles=broker,controller",
                f"controller.quorum.voters={voters}",
                f"listeners=PLAINTEXT://127.0.0.{n}:{self.port},"
                f"CONTROLLER://127.0.0.{n}:{self.port + 10}",
                f"advertised.listeners=PLAINTEXT://127.0.0.{n}:{self.port}",
                "controller.listener.names=CONTROLLER",
                f"log.dirs={workdir / f'data{n}'}",
            ] + SETTINGS
            (workdir / f"node{n}.properties").write_text("\n".join(lines) + "\n")
            self.start(n)

    @property
    def bootstrap(self):
        return ",".join(f"127.0.0.{n}:{self.port}" for n in (1, 2, 3))

    def start(self, n):
        self.starts[n] += 1
        log = open(self.workdir / f"node{n}-{self.starts[n]}.log", "wb")
        self.procs[n] = subprocess.Popen(
            [str(sluice_bin()), "serve", "--cores", "1", "--metrics-addr", "off",
             "--config", str(self.workdir / f"node{n}.properties")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def kill9(self, n):
        self.procs[n].send_signal(signal.SIGKILL)
        self.procs[n].wait()

    def stop_all(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()

    def logs(self):
        return "\n".join(f"--- {p.name} ---\n{p.read_text(errors='replace')[-4000:]}"
                         for p in sorted(self.workdir.glob("node*.log")))

    def admin(self):
        return AdminClient({"bootstrap.servers": self.bootstrap})

    def wait_for(self, what, check, timeout_s=TIMEOUT_S):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except Exception:  # a node still starting or just killed: look again
                pass
            time.sleep(0.2)
        raise AssertionError(f"{what} did not happen within {timeout_s}s\n{self.logs()}")

    def leader_node(self, topic):
        md = self.admin().list_topics(topic, timeout=5)
        leader = md.topics[topic].partitions[0].leader
        assert leader >= 0, f"{topic} has no leader"
        return leader // 1000

    def in_sync(self, topic):
        md = self.admin().list_topics(topic, timeout=5)
        parts = md.topics[topic].partitions
        return bool(parts) and all(len(p.isrs) == 3 and p.leader >= 0 for p in parts.values())


class Tally:
    """What the consumers got: offsets whose acknowledgement the broker confirmed, and every
    delivery after such a confirmation (which must never happen)."""

    def __init__(self):
        self.confirmed = set()
        self.after_confirmed = []

    def consume(self, consumer, until, timeout_s=TIMEOUT_S):
        deadline = time.monotonic() + timeout_s
        while not until() and time.monotonic() < deadline:
            polled = consumer.poll(1.0)
            batch = []
            for m in polled:
                if m.error() is not None:
                    continue
                if m.offset() in self.confirmed:
                    self.after_confirmed.append(m.offset())
                batch.append(m)
                consumer.acknowledge(m)
            if not batch:
                continue
            try:
                results = consumer.commit_sync(15)
            except Exception:
                continue  # not confirmed: these may come again
            if results and all(err is None for err in results.values()):
                self.confirmed.update(m.offset() for m in batch)


def produce(bootstrap, topic):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(RECORDS):
        p.produce(topic, value=b"v%d" % i, partition=0)
    assert p.flush(TIMEOUT_S) == 0


def share_consumer(bootstrap, group, topic):
    # Small polls, so acknowledgements are confirmed a few at a time across the failovers.
    c = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group,
                       "share.acknowledgement.mode": "explicit", "max.poll.records": 20, **({"debug": "cgrp,fetch,protocol,broker"} if os.environ.get("SHARE_DEBUG") else {})})
    c.subscribe([topic])
    return c


def test_failovers_of_the_partition_and_of_the_share_state_lose_no_acknowledgement(tmp_path):
    cluster = Cluster(tmp_path)
    try:
        cluster.wait_for("three brokers", lambda: len(
            cluster.admin().list_topics(timeout=5).brokers) == 3)
        topic, group = "share-failover", f"sf-{uuid.uuid4().hex[:8]}"
        admin = cluster.admin()
        admin.create_topics([NewTopic(topic, 1, 3)])[topic].result(timeout=TIMEOUT_S)
        cluster.wait_for("the topic in sync on three nodes", lambda: cluster.in_sync(topic))
        # The group starts at the earliest record: its own config, stored through the quorum.
        entry = ConfigEntry("share.auto.offset.reset", "earliest",
                            incremental_operation=AlterConfigOpType.SET)
        resource = ConfigResource(ResourceType.GROUP, group, incremental_configs=[entry])
        admin.incremental_alter_configs([resource])[resource].result(timeout=TIMEOUT_S)
        produce(cluster.bootstrap, topic)
        tally = Tally()

        # A first member acknowledges a third, then takes more and holds them.
        first = share_consumer(cluster.bootstrap, group, topic)
        tally.consume(first, lambda: len(tally.confirmed) >= RECORDS // 3)
        assert len(tally.confirmed) >= RECORDS // 3, cluster.logs()
        held = [m.offset() for m in first.poll(5.0) if m.error() is None]
        assert held, "the first member holds records when its partition's leader dies"
        assert len(tally.confirmed) < RECORDS // 2
        cluster.wait_for("the share state in sync", lambda: cluster.in_sync(STATE_TOPIC))

        # Failover 1: the node leading the shared partition dies with records in flight.
        victim = cluster.leader_node(topic)
        cluster.kill9(victim)
        second = share_consumer(cluster.bootstrap, group, topic)
        tally.consume(second, lambda: len(tally.confirmed) >= 2 * RECORDS // 3)
        assert len(tally.confirmed) >= 2 * RECORDS // 3, cluster.logs()
        cluster.start(victim)
        cluster.wait_for("the share state in sync again", lambda: cluster.in_sync(STATE_TOPIC))
        cluster.wait_for("the topic in sync again", lambda: cluster.in_sync(topic))

        # Failover 2: the node leading the share state's partition dies.
        coordinator = cluster.leader_node(STATE_TOPIC)
        assert len(tally.confirmed) < RECORDS
        cluster.kill9(coordinator)
        tally.consume(second, lambda: len(tally.confirmed) == RECORDS)

        assert tally.after_confirmed == [], (
            f"delivered again after a confirmed acknowledgement: {tally.after_confirmed[:20]}")
        assert tally.confirmed == set(range(RECORDS)), (
            f"never acknowledged: {sorted(set(range(RECORDS)) - tally.confirmed)[:20]}\n"
            f"{cluster.logs()}")
        print(f"held at failover 1: {len(held)}; killed node {victim} (partition leader), "
              f"then node {coordinator} (share-state leader); confirmed {len(tally.confirmed)}")
        second.close()
        # The first member still holds its records on a node that died; its close may wait
        # for that node, so it closes on the side.
        threading.Thread(target=first.close, daemon=True).start()
    finally:
        cluster.stop_all()
