"""Log lifecycle through kafka-python: retention moves the low watermark, compaction keeps the
latest value per key, delete_records, configs altered at run time, and kill -9 while the
cleaner and retention are at work."""

import time

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

from kafka_helpers import consumer, producer, send_all
from test_storage import segment_files

FAST_HOUSEKEEPING = {"log.retention.check.interval.ms": "100", "log.cleaner.backoff.ms": "100"}
HOUR_MS = 3_600_000


def admin(broker):
    return KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)


def create(broker, topic, configs, partitions=1):
    result = admin(broker).create_topics([NewTopic(topic, partitions, 1, topic_configs=configs)])
    assert all(t["error_code"] == 0 for t in result["topics"]), result


def low_high(broker, topic):
    c = consumer(broker.bootstrap)
    tp = TopicPartition(topic, 0)
    try:
        return c.beginning_offsets([tp])[tp], c.end_offsets([tp])[tp]
    finally:
        c.close()


def read_all(broker, topic, timeout_s=10):
    c = consumer(broker.bootstrap, consumer_timeout_ms=1500)
    c.assign([TopicPartition(topic, 0)])
    out, deadline = [], time.monotonic() + timeout_s
    try:
        for m in c:
            out.append(m)
            assert time.monotonic() < deadline
    finally:
        c.close()
    return out


def wait_until(condition, what, timeout_s=15):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def small_records(n, key=lambda i: b"k%d" % i, ts=None):
    return [(key(i), b"v" * 400 + b"%06d" % i, [], ts) for i in range(n)]


def test_time_retention_deletes_old_segments_and_moves_the_low_watermark(broker_factory, topic):
    broker = broker_factory(cores=1, config=FAST_HOUSEKEEPING)
    create(broker, topic, {"segment.bytes": "2000", "retention.ms": "60000"})
    prod = producer(broker.bootstrap, linger_ms=0, batch_size=1)
    hour_ago = int(time.time() * 1000) - HOUR_MS
    send_all(prod, topic, small_records(30, ts=hour_ago))      # already past retention
    send_all(prod, topic, small_records(10, ts=None))          # fresh
    wait_until(lambda: low_high(broker, topic)[0] > 0, "the low watermark to move")
    low, high = low_high(broker, topic)
    assert high == 40 and 0 < low <= 30, (low, high)
    assert min(segment_files(broker.data_dir, topic)) == low, "files below it are deleted"
    assert [m.offset for m in read_all(broker, topic)] == list(range(low, 40))


def test_size_retention_keeps_the_newest_bytes(broker_factory, topic):
    broker = broker_factory(cores=1, config=FAST_HOUSEKEEPING)
    create(broker, topic, {"segment.bytes": "2000", "retention.bytes": "4000"})
    prod = producer(broker.bootstrap, linger_ms=0, batch_size=1)
    send_all(prod, topic, small_records(40))
    wait_until(lambda: low_high(broker, topic)[0] >= 20, "size retention")
    # Retention keeps running: a segment listed here may be deleted before its size is read,
    # and a deleted segment keeps no bytes.
    def size_of(base):
        try:
            return (broker.data_dir / f"{topic}-0" / f"{base:020}.log").stat().st_size
        except FileNotFoundError:
            return 0
    total = sum(size_of(b) for b in segment_files(broker.data_dir, topic))
    assert total <= 4000 + 2000, f"{total} bytes kept"


def test_compaction_keeps_the_latest_value_per_key_and_drops_tombstones(broker_factory, topic):
    broker = broker_factory(cores=1, config=FAST_HOUSEKEEPING)
    create(broker, topic, {"cleanup.policy": "compact", "segment.bytes": "1500",
                           "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "0"})
    prod = producer(broker.bootstrap, linger_ms=0, batch_size=1)
    records = [(b"k%d" % (i % 4), b"%d" % i, []) for i in range(40)]
    records.append((b"k3", None, []))                           # tombstone for k3
    records += [(b"filler", b"f" * 700, []) for _ in range(6)]  # pushes the rest out of the active segment
    send_all(prod, topic, records)

    def compacted():
        keys = [m.key for m in read_all(broker, topic) if m.key != b"filler"]
        return keys == [b"k0", b"k1", b"k2"]
    wait_until(compacted, "compaction of the closed segments")
    latest = {m.key: (m.offset, m.value) for m in read_all(broker, topic) if m.key != b"filler"}
    assert latest == {b"k0": (36, b"36"), b"k1": (37, b"37"), b"k2": (38, b"38")}, latest
    assert low_high(broker, topic) == (0, 47), "offsets and watermarks are preserved"


def test_delete_records_moves_the_low_watermark(broker_factory, topic):
    broker = broker_factory(cores=1)
    create(broker, topic, {"segment.bytes": "2000"})
    prod = producer(broker.bootstrap, linger_ms=0, batch_size=1)
    send_all(prod, topic, small_records(20))
    result = admin(broker).delete_records({TopicPartition(topic, 0): 12})
    assert result[TopicPartition(topic, 0)]["low_watermark"] == 12
    assert low_high(broker, topic) == (12, 20)
    assert [m.offset for m in read_all(broker, topic)] == list(range(12, 20))


def test_altered_configs_take_effect_without_restart(broker_factory, topic):
    broker = broker_factory(cores=1)
    create(broker, topic, {})
    prod = producer(broker.bootstrap, linger_ms=0, batch_size=1)
    send_all(prod, topic, small_records(5))
    assert len(segment_files(broker.data_dir, topic)) == 1
    a = admin(broker)
    a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"segment.bytes": "1000"})])
    described = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    assert "1000" in str(described)
    # Shards pick the change up on their next housekeeping pass (every 50 ms): keep producing
    # until the smaller segments show, within a bound.
    deadline = time.monotonic() + 10
    while len(segment_files(broker.data_dir, topic)) < 4 and time.monotonic() < deadline:
        send_all(prod, topic, small_records(10))
    assert len(segment_files(broker.data_dir, topic)) >= 4, "new segment.bytes rolls segments"


def test_kill_9_during_compaction_and_retention_loses_nothing_acknowledged(broker_factory, topic):
    broker = broker_factory(cores=1, config=FAST_HOUSEKEEPING | {"log.cleaner.backoff.ms": "20",
                                                                  "log.retention.check.interval.ms": "20"})
    compact_topic, retained_topic = topic + "-c", topic + "-r"
    create(broker, compact_topic, {"cleanup.policy": "compact", "segment.bytes": "1200",
                                   "min.cleanable.dirty.ratio": "0.01"})
    create(broker, retained_topic, {"segment.bytes": "1200", "retention.bytes": "6000"})
    latest = {}
    for round_ in range(4):
        prod = producer(broker.bootstrap, linger_ms=0, batch_size=1)
        batch = [(b"k%d" % (i % 7), b"r%d-%d" % (round_, i), []) for i in range(30)]
        send_all(prod, compact_topic, batch)
        send_all(prod, retained_topic, small_records(30))
        prod.close()
        latest.update({k: v for k, v, _ in batch})
        time.sleep(0.03 * (round_ + 1))   # let the cleaner and retention start, then kill
        broker.kill()
        broker.restart()
        # Every key's latest acknowledged value is still readable and every batch is valid
        # (the consumer checks CRCs), whether or not a clean finished before the kill.
        seen = {}
        for m in read_all(broker, compact_topic):
            seen[m.key] = m.value
        assert seen == latest, f"round {round_}"
        low, high = low_high(broker, retained_topic)
        assert high == 30 * (round_ + 1)
        assert [m.offset for m in read_all(broker, retained_topic)] == list(range(low, high))


def test_log_append_time_topics_stamp_the_broker_time(broker_factory, topic):
    broker = broker_factory(cores=1)
    create(broker, topic, {"message.timestamp.type": "LogAppendTime"})
    prod = producer(broker.bootstrap, linger_ms=0)
    before = int(time.time() * 1000)
    meta = send_all(prod, topic, [(b"k", b"v", [], 1_000)])    # an ancient CreateTime
    after = int(time.time() * 1000)
    assert before <= meta[0].timestamp <= after, "the produce response carries the append time"
    [record] = read_all(broker, topic)
    assert record.timestamp_type == 1 and before <= record.timestamp <= after
    c = consumer(broker.bootstrap)
    tp = TopicPartition(topic, 0)
    assert c.offsets_for_times({tp: before})[tp].offset == 0
    assert c.offsets_for_times({tp: after + 1})[tp] is None
    c.close()


def test_a_topic_recreated_right_after_delete_keeps_its_new_data(broker_factory, topic):
    broker = broker_factory(cores=2)
    a = admin(broker)
    for round_ in range(3):
        create(broker, topic, {}, partitions=2)
        prod = producer(broker.bootstrap, linger_ms=0)
        for p in range(2):
            send_all(prod, topic, [(b"k", b"round-%d" % round_, [])] * 3, partition=p)
        prod.close()
        if round_ < 2:
            a.delete_topics([topic])   # and re-create at once, before shards reconcile
    # The shards reconcile on their housekeeping passes: wait until the old rounds' files are
    # gone (bounded), then only the last round may be readable.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        leftovers = [p.name for p in broker.data_dir.iterdir() if p.name.endswith("-delete")]
        if not leftovers:
            break
        time.sleep(0.05)
    values = [m.value for m in read_all(broker, topic)]
    assert values == [b"round-2"] * 3, values
    assert not leftovers, leftovers
