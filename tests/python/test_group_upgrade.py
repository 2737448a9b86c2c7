"""KIP-848's online upgrade with confluent-kafka 2.16 (librdkafka 2.16): a Stable classic group
whose members use an eager (range) or the cooperative-sticky assignor gets a member of the
consumer protocol; the group becomes a consumer group, the classic members stay and are assigned
by the broker, no partition is ever owned by two members (checked from every member's
assignment callbacks), a classic member leaving hands its partitions on, and a new classic
member can join the upgraded group; committed offsets carry over; when the consumer-protocol
member leaves, the group turns classic again (the downgrade) and its members rebalance."""

import threading
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 6
BROKER_CONFIG = {
    "group.consumer.heartbeat.interval.ms": "500",
    "group.consumer.min.heartbeat.interval.ms": "500",
    "group.initial.rebalance.delay.ms": "0",
}


class Ownership:
    """Every member's assignment callbacks, timestamped, to check that a partition never has
    two owners at once. A member owns a partition from its assign callback until its revoke
    (or lost) callback."""

    def __init__(self):
        self.lock = threading.Lock()
        self.owner = {}
        self.violations = []

    def callbacks(self, name):
        def assign(consumer, partitions):
            with self.lock:
                for tp in partitions:
                    other = self.owner.get(tp.partition)
                    if other is not None and other != name:
                        self.violations.append((tp.partition, other, name))
                    self.owner[tp.partition] = name
            # The client (de)assigns itself after the callback (eagerly or incrementally, as
            # its protocol says).

        def revoke(consumer, partitions):
            with self.lock:
                for tp in partitions:
                    if self.owner.get(tp.partition) == name:
                        del self.owner[tp.partition]

        return {"on_assign": assign, "on_revoke": revoke, "on_lost": revoke}


def parts(consumer):
    return sorted(tp.partition for tp in consumer.assignment())


def poll_until(consumers, condition, what, timeout_s=30):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out: {what}: {[parts(c) for c in consumers]}"
        for c in consumers:
            c.poll(0.05)


def disjoint_and_complete(consumers):
    owned = [p for c in consumers for p in parts(c)]
    return (sorted(owned) == list(range(PARTITIONS))
            and all(c.assignment() for c in consumers))


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_classic_group_is_upgraded_online(broker_factory, strategy):
    broker = broker_factory(cores=2, config=BROKER_CONFIG)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for f in admin.create_topics([NewTopic("up", PARTITIONS, 1)]).values():
        f.result()
    base = {"bootstrap.servers": broker.bootstrap, "group.id": "upgrade",
            "auto.offset.reset": "earliest", "enable.auto.commit": False}
    classic_conf = {**base, "partition.assignment.strategy": strategy,
                    "heartbeat.interval.ms": 500, "session.timeout.ms": 6000}
    ownership = Ownership()
    classic = [Consumer(classic_conf) for _ in range(2)]
    for i, c in enumerate(classic):
        c.subscribe(["up"], **ownership.callbacks(f"classic-{i}"))
    poll_until(classic, lambda: disjoint_and_complete(classic), "classic group stable")
    # A classic member commits an offset before the upgrade; it must carry over.
    owner = next(c for c in classic if 0 in parts(c))
    owner.commit(offsets=[TopicPartition("up", 0, 7)], asynchronous=False)

    modern = Consumer({**base, "group.protocol": "consumer"})
    modern.subscribe(["up"], **ownership.callbacks("consumer"))
    members = classic + [modern]
    poll_until(members, lambda: disjoint_and_complete(members), "three members after upgrade")
    described = admin.describe_consumer_groups(["upgrade"])["upgrade"].result()
    assert str(described.type).endswith("CONSUMER"), described.type
    assert len(described.members) == 3

    # A classic member leaves: its partitions go to the other two.
    classic[0].close()
    members = members[1:]
    poll_until(members, lambda: disjoint_and_complete(members), "after a classic member left")
    # A new classic member joins the upgraded group.
    late = Consumer(classic_conf)
    late.subscribe(["up"], **ownership.callbacks("classic-late"))
    members.append(late)
    poll_until(members, lambda: disjoint_and_complete(members), "after a classic member joined")
    assert ownership.violations == [], ownership.violations

    committed = modern.committed([TopicPartition("up", 0)], timeout=10)
    assert committed[0].offset == 7

    # The downgrade: with the consumer-protocol member gone, the group is classic again and
    # its classic members rebalance among themselves.
    modern.close()
    members = [c for c in members if c is not modern]
    poll_until(members, lambda: disjoint_and_complete(members), "after the downgrade")
    described = admin.describe_consumer_groups(["upgrade"])["upgrade"].result()
    assert str(described.type).endswith("CLASSIC"), described.type
    assert ownership.violations == [], ownership.violations
    for c in members:
        c.close()


def test_upgraded_group_survives_a_restart(broker_factory):
    broker = broker_factory(cores=2, config=BROKER_CONFIG)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for f in admin.create_topics([NewTopic("up2", PARTITIONS, 1)]).values():
        f.result()
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(60):
        producer.produce("up2", value=b"%d" % i, partition=i % PARTITIONS)
    producer.flush()
    base = {"bootstrap.servers": broker.bootstrap, "group.id": "upgrade2",
            "auto.offset.reset": "earliest", "enable.auto.commit": False}
    classic = Consumer({**base, "heartbeat.interval.ms": 500, "session.timeout.ms": 6000})
    classic.subscribe(["up2"])
    poll_until([classic], lambda: len(parts(classic)) == PARTITIONS, "classic member stable")
    modern = Consumer({**base, "group.protocol": "consumer"})
    modern.subscribe(["up2"])
    members = [classic, modern]
    poll_until(members, lambda: disjoint_and_complete(members), "upgraded")
    for c in members:
        c.commit(offsets=[TopicPartition("up2", p, 5) for p in parts(c)], asynchronous=False)
    for c in members:
        c.close()
    broker.stop()
    broker.restart()
    # After the restart the group is still a consumer group with its offsets; a fresh
    # consumer-protocol member resumes from them.
    again = Consumer({**base, "group.protocol": "consumer"})
    again.subscribe(["up2"])
    seen = set()
    deadline = time.monotonic() + 30
    while len(seen) < 30 and time.monotonic() < deadline:
        m = again.poll(0.2)
        if m is not None and m.error() is None:
            seen.add((m.partition(), m.offset()))
    assert len(seen) == 30, sorted(seen)
    assert min(offset for _, offset in seen) == 5
    listed = admin.list_consumer_groups().result().valid
    assert any(g.group_id == "upgrade2" and str(g.type).endswith("CONSUMER") for g in listed)
    again.close()
