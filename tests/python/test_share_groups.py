"""Share groups (KIP-932) with confluent-kafka's ShareConsumer (librdkafka's share consumer):
records of one partition split between members, acknowledgement types and modes, lock
timeouts, the delivery limit, commits, close with records in flight, and a broker restart that
keeps every acknowledgement; group configs (share.auto.offset.reset, ...) through the admin
client. The stress test kills share consumers (separate processes, kill
-9) while 100,000 records flow."""
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid

from confluent_kafka import AcknowledgeType, Producer, ShareConsumer
from confluent_kafka import KafkaException
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ConfigSource, NewTopic, ResourceType)

from conftest import sluice_bin

LOCK_MS = 3000
DELIVERY_LIMIT = 3
CONFIG = {
    "group.share.auto.offset.reset": "earliest",
    "group.share.record.lock.duration.ms": LOCK_MS,
    "group.share.delivery.count.limit": DELIVERY_LIMIT,
}
TIMEOUT_S = 30


def create_topic(bootstrap, name, partitions=1):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout=TIMEOUT_S)


def produce(bootstrap, topic, count, partition=0, start=0):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(start, start + count):
        p.produce(topic, value=b"v%d" % i, partition=partition)
    assert p.flush(TIMEOUT_S) == 0


def share_consumer(bootstrap, group, topic, explicit=False):
    config = {"bootstrap.servers": bootstrap, "group.id": group}
    if explicit:
        config["share.acknowledgement.mode"] = "explicit"
    c = ShareConsumer(config)
    c.subscribe([topic])
    return c


def poll_records(consumer, timeout_s=1.0):
    out = []
    for m in consumer.poll(timeout_s):
        assert m.error() is None, m.error()
        out.append(m)
    return out


def collect(consumer, want, timeout_s=TIMEOUT_S, ack=None):
    """Polls until `want` records came; in explicit mode `ack(m)` acknowledges each."""
    got = []
    deadline = time.monotonic() + timeout_s
    while len(got) < want and time.monotonic() < deadline:
        for m in poll_records(consumer):
            got.append(m)
            if ack is not None:
                ack(m)
    return got


def offsets(messages):
    return sorted(m.offset() for m in messages)


def group():
    return f"share-{uuid.uuid4().hex[:8]}"


def test_members_on_one_partition_get_disjoint_records(broker_factory):
    broker = broker_factory(cores=1, config=CONFIG)
    topic, g = "sq-disjoint", group()
    create_topic(broker.bootstrap, topic)
    members = [share_consumer(broker.bootstrap, g, topic) for _ in range(3)]
    produce(broker.bootstrap, topic, 3000)
    seen = {i: [] for i in range(len(members))}
    deadline = time.monotonic() + TIMEOUT_S
    while sum(len(v) for v in seen.values()) < 3000 and time.monotonic() < deadline:
        for i, c in enumerate(members):
            seen[i].extend(m.offset() for m in poll_records(c, 0.2))
    for c in members:
        c.close()
    everything = [o for v in seen.values() for o in v]
    assert sorted(everything) == list(range(3000)), "each record exactly once (implicit acks)"
    assert sum(1 for v in seen.values() if v) >= 2, f"one partition shared: {[len(v) for v in seen.values()]}"


def test_an_unacknowledged_record_comes_back_after_the_lock_timeout(broker_factory):
    broker = broker_factory(cores=1, config=CONFIG)
    topic, g = "sq-lock", group()
    create_topic(broker.bootstrap, topic)
    produce(broker.bootstrap, topic, 5)
    holder = share_consumer(broker.bootstrap, g, topic, explicit=True)
    held = collect(holder, 5)
    assert offsets(held) == list(range(5))
    assert all(m.delivery_count() == 1 for m in held)
    other = share_consumer(broker.bootstrap, g, topic, explicit=True)
    start = time.monotonic()
    again = collect(other, 5, ack=other.acknowledge)
    waited = time.monotonic() - start
    other.commit_sync()
    assert offsets(again) == list(range(5))
    assert all(m.delivery_count() == 2 for m in again)
    assert waited >= LOCK_MS / 1000 - 1.5, f"came back after {waited:.1f}s, before the lock ran out"
    other.close()
    holder.close()


def test_release_redelivers_to_another_member_and_reject_never_does(broker_factory):
    broker = broker_factory(cores=1, config=CONFIG)
    topic, g = "sq-release", group()
    create_topic(broker.bootstrap, topic)
    produce(broker.bootstrap, topic, 4)
    first = share_consumer(broker.bootstrap, g, topic, explicit=True)
    got = collect(first, 4)
    for m in got:
        kind = {0: AcknowledgeType.RELEASE, 1: AcknowledgeType.REJECT}.get(m.offset(), AcknowledgeType.ACCEPT)
        first.acknowledge(m, kind)
    results = first.commit_sync()
    assert all(err is None for err in results.values()), results
    second = share_consumer(broker.bootstrap, g, topic, explicit=True)
    redelivered = collect(second, 1, timeout_s=10, ack=second.acknowledge)
    assert offsets(redelivered) == [0], "only the released record comes back, at once"
    assert redelivered[0].delivery_count() == 2
    second.commit_sync()
    assert collect(second, 1, timeout_s=LOCK_MS / 1000 + 3) == [], "the rejected record never returns"
    second.close()
    first.close()


def test_the_delivery_limit_archives_a_record(broker_factory):
    broker = broker_factory(cores=1, config=CONFIG)
    topic, g = "sq-limit", group()
    create_topic(broker.bootstrap, topic)
    produce(broker.bootstrap, topic, 1)
    c = share_consumer(broker.bootstrap, g, topic, explicit=True)
    counts = []
    for _ in range(DELIVERY_LIMIT):
        got = collect(c, 1, timeout_s=10)
        assert offsets(got) == [0]
        counts.append(got[0].delivery_count())
        c.acknowledge(got[0], AcknowledgeType.RELEASE)
        c.commit_sync()
    assert counts == list(range(1, DELIVERY_LIMIT + 1))
    assert collect(c, 1, timeout_s=4) == [], "archived after the last delivery"
    produce(broker.bootstrap, topic, 1, start=1)
    assert offsets(collect(c, 1, ack=c.acknowledge)) == [1], "the next record flows past it"
    c.close()


def test_implicit_mode_accepts_on_the_next_poll_and_commit_async_reports(broker_factory):
    broker = broker_factory(cores=1, config=CONFIG)
    topic, g = "sq-commit", group()
    create_topic(broker.bootstrap, topic)
    produce(broker.bootstrap, topic, 100)
    c = share_consumer(broker.bootstrap, g, topic, explicit=True)
    reported = []
    c.set_acknowledgement_commit_callback(lambda offs, err: reported.append((offs, err)))
    got = collect(c, 100, ack=c.acknowledge)
    assert offsets(got) == list(range(100))
    c.commit_async()
    deadline = time.monotonic() + 10
    while not reported and time.monotonic() < deadline:
        c.poll(0.2)
    assert reported and all(err is None for _, err in reported), reported
    acked = sorted(o for offs, _ in reported for s in offs.values() for o in s)
    assert acked == list(range(100))
    c.close()
    implicit = share_consumer(broker.bootstrap, g, topic)
    produce(broker.bootstrap, topic, 50, start=100)
    assert offsets(collect(implicit, 50)) == list(range(100, 150))
    implicit.commit_sync()
    implicit.close()
    late = share_consumer(broker.bootstrap, g, topic)
    assert collect(late, 1, timeout_s=LOCK_MS / 1000 + 2) == [], "everything was accepted"
    late.close()


def test_close_with_records_in_flight_hands_them_on_at_once(broker_factory):
    broker = broker_factory(cores=1, config={**CONFIG, "group.share.record.lock.duration.ms": 60000})
    topic, g = "sq-close", group()
    create_topic(broker.bootstrap, topic)
    produce(broker.bootstrap, topic, 10)
    first = share_consumer(broker.bootstrap, g, topic, explicit=True)
    got = collect(first, 10)
    for m in got[:4]:
        first.acknowledge(m)
    first.close()
    second = share_consumer(broker.bootstrap, g, topic, explicit=True)
    start = time.monotonic()
    rest = collect(second, 6, timeout_s=20, ack=second.acknowledge)
    assert time.monotonic() - start < 20, "not held for the 60 s lock"
    assert offsets(rest) == sorted(o for o in offsets(got) if o not in offsets(got[:4]))
    second.close()


def test_group_configs_set_where_a_group_starts_and_are_described(broker_factory):
    # The broker-wide default is Kafka's `latest`; the group's own config says `earliest`.
    broker = broker_factory(cores=1, config={"group.share.record.lock.duration.ms": LOCK_MS})
    topic, g = "sq-group-config", group()
    create_topic(broker.bootstrap, topic)
    produce(broker.bootstrap, topic, 10)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})

    def alter(key, value):
        entry = ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
        resource = ConfigResource(ResourceType.GROUP, g, incremental_configs=[entry])
        admin.incremental_alter_configs([resource])[resource].result(timeout=TIMEOUT_S)

    alter("share.auto.offset.reset", "earliest")
    alter("share.record.lock.duration.ms", "15000")
    for key, value in [("share.auto.offset.reset", "sometimes"),
                       ("share.record.lock.duration.ms", "100"),
                       ("share.isolation.level", "read_committed")]:
        try:
            alter(key, value)
            raise AssertionError(f"{key}={value} was accepted")
        except KafkaException as e:
            assert e.args[0].name() == "INVALID_CONFIG", e
    resource = ConfigResource(ResourceType.GROUP, g)
    described = admin.describe_configs([resource])[resource].result(timeout=TIMEOUT_S)
    assert described["share.auto.offset.reset"].value == "earliest"
    assert described["share.auto.offset.reset"].source == ConfigSource.GROUP_CONFIG.value
    assert described["share.record.lock.duration.ms"].value == "15000"
    assert described["share.session.timeout.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    c = share_consumer(broker.bootstrap, g, topic)
    got = collect(c, 10)
    c.close()
    assert offsets(got) == list(range(10)), "the group started at the earliest record"


def test_a_broker_restart_keeps_every_acknowledgement(broker_factory):
    broker = broker_factory(cores=2, config=CONFIG)
    topic, g = "sq-restart", group()
    create_topic(broker.bootstrap, topic, partitions=2)
    for p in range(2):
        produce(broker.bootstrap, topic, 500, partition=p)
    c = share_consumer(broker.bootstrap, g, topic, explicit=True)
    accepted = set()
    deadline = time.monotonic() + TIMEOUT_S
    while len(accepted) < 400 and time.monotonic() < deadline:
        for m in poll_records(c):
            # Accept the even offsets, reject the odd ones below 100; leave the rest in flight.
            if m.offset() % 2 == 0:
                c.acknowledge(m)
                accepted.add((m.partition(), m.offset()))
            elif m.offset() < 100:
                c.acknowledge(m, AcknowledgeType.REJECT)
                accepted.add((m.partition(), m.offset()))
            else:
                c.acknowledge(m, AcknowledgeType.RELEASE)
        results = c.commit_sync()
        assert all(err is None for err in results.values()), results
    c.close()
    broker.kill()
    broker.restart()
    after = share_consumer(broker.bootstrap, g, topic)
    redelivered = set()
    deadline = time.monotonic() + TIMEOUT_S
    expected = 1000 - len(accepted)
    while len(redelivered) < expected and time.monotonic() < deadline:
        redelivered |= {(m.partition(), m.offset()) for m in poll_records(after)}
    after.close()
    assert not (redelivered & accepted), f"acknowledged records delivered again: {sorted(redelivered & accepted)[:10]}"
    assert len(redelivered) == expected


STRESS_WORKER = textwrap.dedent("""
    import sys, time
    from confluent_kafka import ShareConsumer
    bootstrap, group, topic, out = sys.argv[1:5]
    c = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group,
                       "share.acknowledgement.mode": "explicit"})
    log = open(out, "a", buffering=1)
    def done(offsets, err):
        for tp, offs in offsets.items():
            for o in offs:
                log.write(f"{'ok' if err is None else 'err'} {tp.partition} {o}\\n")
    c.set_acknowledgement_commit_callback(done)
    c.subscribe([topic])
    while True:
        batch = c.poll(0.5)
        time.sleep(0.1 if batch else 0)  # processing: a kill now leaves the batch in flight
        for m in batch:
            if m.error() is None:
                log.write(f"got {m.partition()} {m.offset()} {m.delivery_count()}\\n")
                c.acknowledge(m)
        c.commit_async()
""")


def test_stress_four_members_killed_at_random_lose_nothing(broker_factory, tmp_path):
    # Kafka's default delivery limit: a member killed while holding a record costs it one.
    broker = broker_factory(cores=2, config={**CONFIG, "group.share.delivery.count.limit": 5})
    topic, g = "sq-stress", group()
    partitions, total = 4, 100_000
    create_topic(broker.bootstrap, topic, partitions=partitions)
    script = tmp_path / "worker.py"
    script.write_text(STRESS_WORKER)
    logs = [tmp_path / f"worker-{i}.log" for i in range(4)]

    def spawn(i):
        return subprocess.Popen([sys.executable, str(script), broker.bootstrap, g, topic, str(logs[i])],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    workers = [spawn(i) for i in range(4)]
    # Records keep arriving for ~15 s while a member is killed every 2 s.
    feeder = threading.Thread(target=produce_paced, args=(broker.bootstrap, topic, partitions, total))
    feeder.start()
    rng = random.Random(7)
    kills = 0
    per_partition = total // partitions
    deadline = time.monotonic() + 150
    try:
        while time.monotonic() < deadline:
            time.sleep(2)
            victim = rng.randrange(4)
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait()
            kills += 1
            workers[victim] = spawn(victim)
            if not feeder.is_alive() and all_done(broker, g, topic, partitions, per_partition):
                break
        settle = time.monotonic() + 60
        while not all_done(broker, g, topic, partitions, per_partition) and time.monotonic() < settle:
            time.sleep(1)
    finally:
        feeder.join()
        for w in workers:
            w.kill()
            w.wait()
    starts = share_start_offsets(broker, g)
    deliveries = {}
    for log in logs:
        for line in log.read_text().splitlines():
            parts = line.split()
            if parts[0] == "got":
                key = (int(parts[1]), int(parts[2]))
                deliveries[key] = max(deliveries.get(key, 0), int(parts[3]))
    assert kills >= 5, "the test killed members while records flowed"
    assert any(n > 1 for n in deliveries.values()), "no killed member's record was redelivered"
    assert len(deliveries) == total, f"{total - len(deliveries)} records never delivered"
    # Every record is done with (below the start offset) ...
    assert starts == {(topic, p): per_partition for p in range(partitions)}, starts
    # ... and none was archived: a worker only accepts, so a record is archived only when its
    # delivery limit ran out, and none was delivered that often. The broker refuses an
    # acknowledgement of an archived record, so none was acknowledged after being archived.
    assert max(deliveries.values()) < 5, "a record reached its delivery limit"
    print(f"kills={kills} redelivered={sum(1 for n in deliveries.values() if n > 1)} "
          f"acknowledged-by-callback={len(accepted_offsets(logs))}")


def share_start_offsets(broker, group):
    out = subprocess.run([str(sluice_bin()), "groups", "describe", "--group", group, "--output", "json",
                          "--bootstrap-server", broker.bootstrap], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        return {}
    return {(r["topic"], r["partition"]): r["current_offset"] for r in json.loads(out.stdout)["partitions"]}


def all_done(broker, group, topic, partitions, per_partition):
    starts = share_start_offsets(broker, group)
    return all(starts.get((topic, p)) == per_partition for p in range(partitions))


def produce_paced(bootstrap, topic, partitions, total, chunks=25, pause_s=0.5):
    per_chunk = total // partitions // chunks
    for chunk in range(chunks):
        for p in range(partitions):
            produce(bootstrap, topic, per_chunk, partition=p, start=chunk * per_chunk)
        time.sleep(pause_s)


def accepted_offsets(logs):
    out = set()
    for log in logs:
        if log.exists():
            for line in log.read_text().splitlines():
                parts = line.split()
                if parts and parts[0] == "ok":
                    out.add((int(parts[1]), int(parts[2])))
    return out
