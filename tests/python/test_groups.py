"""Consumer groups with kafka-python (a second, independent client implementation): members
share partitions without overlap, a leaving member's partitions move, committed offsets
survive a restart and kill -9, and the admin group calls work."""

import time

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata

from kafka_helpers import producer, send_all

PARTITIONS = 6
GROUP_CONFIG = {"group.initial.rebalance.delay.ms": "100"}


def member(broker, group, **extra):
    return KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group,
                         enable_auto_commit=False, auto_offset_reset="earliest",
                         session_timeout_ms=6000, heartbeat_interval_ms=500,
                         request_timeout_ms=15000, **extra)


def six_partitions(broker, topic):
    KafkaAdminClient(bootstrap_servers=broker.bootstrap).create_topics(
        [NewTopic(topic, PARTITIONS, 1)])
    prod = producer(broker.bootstrap)
    for p in range(PARTITIONS):
        send_all(prod, topic, [(b"k", b"v%d" % i, []) for i in range(10)], partition=p)


def poll_until(members, condition, what, timeout_s=30):
    """Polls every member, each on its own thread as applications run consumers (polling is
    what drives a kafka-python member's group protocol), until `condition` holds."""
    import threading
    stop = threading.Event()

    def run(m):
        while not stop.is_set():
            m.poll(timeout_ms=100)

    threads = [threading.Thread(target=run, args=(m,), daemon=True) for m in members]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}: " + str(
                [sorted(tp.partition for tp in m.assignment()) for m in members])
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join()


def assignments(members):
    return [sorted(tp.partition for tp in m.assignment()) for m in members]


def disjoint_cover(members):
    parts = [p for a in assignments(members) for p in a]
    return sorted(parts) == list(range(PARTITIONS)) and all(assignments(members))


def test_three_members_share_and_a_leaver_is_replaced(broker_factory, topic):
    broker = broker_factory(cores=2, config=GROUP_CONFIG)
    six_partitions(broker, topic)
    members = [member(broker, "kp-share") for _ in range(3)]
    for m in members:
        m.subscribe([topic])
    started = time.monotonic()
    poll_until(members, lambda: disjoint_cover(members), "three-way split")
    print(f"three-member rebalance took {time.monotonic() - started:.2f}s")
    assert sorted(len(a) for a in assignments(members)) == [2, 2, 2]

    members[0].close()
    rest = members[1:]
    poll_until(rest, lambda: disjoint_cover(rest), "the leaver's partitions to move")
    assert sorted(len(a) for a in assignments(rest)) == [3, 3]
    for m in rest:
        m.close()


def commit_four_everywhere(broker, topic, group):
    m = member(broker, group)
    m.subscribe([topic])
    poll_until([m], lambda: len(m.assignment()) == PARTITIONS, "assignment")
    m.commit({TopicPartition(topic, p): OffsetAndMetadata(4, f"meta-{p}", -1)
              for p in range(PARTITIONS)})
    m.close()


def resumed_offsets(broker, topic, group):
    m = member(broker, group)
    m.subscribe([topic])
    first = {}
    deadline = time.monotonic() + 30
    while len(first) < PARTITIONS:
        assert time.monotonic() < deadline, f"only {first}"
        for tp, recs in m.poll(timeout_ms=200).items():
            first.setdefault(tp.partition, recs[0].offset)
    m.close()
    return first


def test_committed_offsets_survive_restart_and_kill_9(broker_factory, topic):
    broker = broker_factory(cores=2, config=GROUP_CONFIG)
    six_partitions(broker, topic)
    commit_four_everywhere(broker, topic, "kp-resume")
    assert broker.stop() == 0
    broker.restart()
    assert resumed_offsets(broker, topic, "kp-resume") == {p: 4 for p in range(PARTITIONS)}
    broker.kill()
    broker.restart()
    assert resumed_offsets(broker, topic, "kp-resume") == {p: 4 for p in range(PARTITIONS)}
    offsets = KafkaAdminClient(bootstrap_servers=broker.bootstrap).list_group_offsets("kp-resume")
    meta = {tp.partition: (o.offset, o.metadata) for tp, o in offsets["kp-resume"].items()}
    assert meta == {p: (4, f"meta-{p}") for p in range(PARTITIONS)}, "metadata strings round-trip"


def test_admin_lists_describes_and_deletes_groups(broker_factory, topic):
    broker = broker_factory(cores=2, config=GROUP_CONFIG)
    six_partitions(broker, topic)
    m = member(broker, "kp-admin")
    m.subscribe([topic])
    poll_until([m], lambda: len(m.assignment()) == PARTITIONS, "assignment")
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    assert "kp-admin" in str(admin.list_groups())
    described = str(admin.describe_groups(["kp-admin"]))
    assert "Stable" in described and "consumer" in described, described
    m.commit({TopicPartition(topic, 0): OffsetAndMetadata(7, "", -1)})
    m.close()
    assert admin.list_group_offsets("kp-admin")["kp-admin"][TopicPartition(topic, 0)].offset == 7
    admin.delete_groups(["kp-admin"])
    assert "kp-admin" not in str(admin.list_groups())
