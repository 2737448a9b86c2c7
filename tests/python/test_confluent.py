"""confluent-kafka (Confluent's Python client, librdkafka 2.16 inside: a newer librdkafka than
the rdkafka crate's) against a two-shard broker: every codec byte-identical, an idempotent
producer, a consumer group that commits and resumes, transactions seen by read_committed and
read_uncommitted consumers, and the admin API including dynamic broker configs."""

import uuid

from confluent_kafka import (Consumer, KafkaError, Producer, TopicPartition,
                             TopicCollection)
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ConfigSource, NewPartitions, NewTopic, ResourceType)

from kafka_helpers import codecs_on_disk

PARTITIONS = 4
TIMEOUT_S = 30


def _admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap})


def _wait_all(futures):
    return {key: f.result(timeout=TIMEOUT_S) for key, f in futures.items()}


def _create(bootstrap, topic, partitions=PARTITIONS, config=None):
    # The client must outlive its futures: a destroyed handle fails them with _DESTROY.
    admin = _admin(bootstrap)
    _wait_all(admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config or {})]))


def _produce(bootstrap, topic, records, **config):
    """Sends (partition, key, value, headers) tuples; returns the delivered (partition, offset)
    of each, in order, after asserting that every delivery succeeded."""
    delivered, errors = [], []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            delivered.append((msg.partition(), msg.offset()))

    prod = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **config})
    for partition, key, value, headers in records:
        prod.produce(topic, value=value, key=key, partition=partition, headers=headers,
                     on_delivery=on_delivery)
        prod.poll(0)
    assert prod.flush(TIMEOUT_S) == 0, "records still queued after flush"
    assert errors == [], errors
    assert len(delivered) == len(records)
    return delivered


def _consume(bootstrap, topic, count, partitions=range(PARTITIONS), **config):
    """Reads `count` records from the start of `partitions` (assigned, no group)."""
    cons = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex}",
                     "enable.auto.commit": False, "auto.offset.reset": "earliest",
                     "fetch.wait.max.ms": 100, **config})
    try:
        cons.assign([TopicPartition(topic, p, 0) for p in partitions])
        return _poll(cons, count)
    finally:
        cons.close()


def _poll(cons, count, limit_s=TIMEOUT_S):
    import time
    out, deadline = [], time.monotonic() + limit_s
    while len(out) < count and time.monotonic() < deadline:
        msg = cons.poll(0.2)
        if msg is None:
            continue
        assert msg.error() is None, msg.error()
        out.append(msg)
    return out


def test_every_codec_round_trips_byte_identical(broker, topic):
    _create(broker.bootstrap, topic, partitions=1)
    sent = []
    for codec in ("none", "gzip", "snappy", "lz4", "zstd"):
        batch = [(0, f"k-{codec}-{i}".encode(), f"{codec} value {i}".encode() * 20,
                  [("h", codec.encode())]) for i in range(50)]
        _produce(broker.bootstrap, topic, batch, **{"compression.type": codec})
        sent += batch
    got = _consume(broker.bootstrap, topic, len(sent), partitions=[0])
    assert [(m.key(), m.value(), m.headers()) for m in got] == \
        [(k, v, h) for _, k, v, h in sent]
    assert [m.offset() for m in got] == list(range(len(sent)))
    # Batches are stored as the producer compressed them.
    assert set(codecs_on_disk(broker.data_dir, topic)) == {0, 1, 2, 3, 4}


def test_idempotent_producer_writes_each_record_once(broker, topic):
    _create(broker.bootstrap, topic)
    records = [(i % PARTITIONS, None, f"idem-{i}".encode(), None) for i in range(400)]
    delivered = _produce(broker.bootstrap, topic, records, **{"enable.idempotence": True,
                                                               "acks": "all"})
    per_partition = {}
    for partition, offset in delivered:
        per_partition.setdefault(partition, []).append(offset)
    assert all(offsets == list(range(100)) for offsets in per_partition.values()), per_partition
    values = sorted(m.value() for m in _consume(broker.bootstrap, topic, 400))
    assert values == sorted(v for _, _, v, _ in records)


def test_group_commits_and_a_new_member_resumes(broker, topic):
    _create(broker.bootstrap, topic)
    _produce(broker.bootstrap, topic,
             [(i % PARTITIONS, None, f"g-{i}".encode(), None) for i in range(80)])
    group = f"cg-{uuid.uuid4().hex[:8]}"
    config = {"bootstrap.servers": broker.bootstrap, "group.id": group,
              "enable.auto.commit": False, "auto.offset.reset": "earliest",
              "session.timeout.ms": 6000, "fetch.wait.max.ms": 100}
    first = Consumer(config)
    first.subscribe([topic])
    got = _poll(first, 40)
    assert len(got) == 40
    first.commit(asynchronous=False)
    committed = first.committed([TopicPartition(topic, p) for p in range(PARTITIONS)],
                                timeout=TIMEOUT_S)
    first.close()
    assert sum(max(tp.offset, 0) for tp in committed) >= 40

    second = Consumer(config)
    second.subscribe([topic])
    rest = _poll(second, 80 - sum(max(tp.offset, 0) for tp in committed))
    second.close()
    seen = {m.value() for m in got} | {m.value() for m in rest}
    assert seen == {f"g-{i}".encode() for i in range(80)}


def test_transactions_commit_and_abort(broker, topic):
    _create(broker.bootstrap, topic)
    prod = Producer({"bootstrap.servers": broker.bootstrap,
                     "transactional.id": f"tx-{uuid.uuid4().hex[:8]}", "linger.ms": 5})
    prod.init_transactions(TIMEOUT_S)
    for outcome in ("commit", "abort", "commit"):
        prod.begin_transaction()
        for p in range(PARTITIONS):
            prod.produce(topic, value=f"{outcome}-{p}".encode(), partition=p)
        if outcome == "commit":
            prod.commit_transaction(TIMEOUT_S)
        else:
            prod.flush(TIMEOUT_S)
            prod.abort_transaction(TIMEOUT_S)

    committed = _consume(broker.bootstrap, topic, 2 * PARTITIONS,
                         **{"isolation.level": "read_committed"})
    assert sorted(m.value() for m in committed) == \
        sorted(f"commit-{p}".encode() for p in range(PARTITIONS) for _ in range(2))
    # read_uncommitted also sees the aborted records (markers are not delivered).
    everything = _consume(broker.bootstrap, topic, 3 * PARTITIONS,
                          **{"isolation.level": "read_uncommitted"})
    assert sum(m.value().startswith(b"abort-") for m in everything) == PARTITIONS


def test_admin_topics_configs_and_dynamic_broker_configs(broker, topic):
    admin = _admin(broker.bootstrap)
    _create(broker.bootstrap, topic, partitions=2, config={"retention.ms": "60000"})
    described = _wait_all(admin.describe_topics(TopicCollection([topic])))[topic]
    assert len(described.partitions) == 2
    _wait_all(admin.create_partitions([NewPartitions(topic, 3)]))
    described = _wait_all(admin.describe_topics(TopicCollection([topic])))[topic]
    assert len(described.partitions) == 3

    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs = _wait_all(admin.describe_configs([resource]))[resource]
    assert configs["retention.ms"].value == "60000"
    assert configs["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value

    broker_0 = ConfigResource(ResourceType.BROKER, "0", incremental_configs=[
        ConfigEntry("log.retention.ms", "3600000",
                    incremental_operation=AlterConfigOpType.SET)])
    _wait_all(admin.incremental_alter_configs([broker_0]))
    seen = _wait_all(admin.describe_configs([ConfigResource(ResourceType.BROKER, "0")]))
    entry = next(iter(seen.values()))["log.retention.ms"]
    assert (entry.value, entry.source) == ("3600000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    # A topic without its own retention.ms now inherits the dynamic default.
    other = f"{topic}-inherits"
    _create(broker.bootstrap, other, partitions=1)
    other_res = ConfigResource(ResourceType.TOPIC, other)
    inherited = _wait_all(admin.describe_configs([other_res]))[other_res]["retention.ms"]
    assert (inherited.value, inherited.source) == \
        ("3600000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)

    refused = ConfigResource(ResourceType.BROKER, "0", incremental_configs=[
        ConfigEntry("num.partitions", "9", incremental_operation=AlterConfigOpType.SET)])
    future = admin.incremental_alter_configs([refused])[refused]
    try:
        future.result(timeout=TIMEOUT_S)
        raise AssertionError("num.partitions must not be dynamic")
    except Exception as e:  # KafkaException carrying INVALID_CONFIG
        assert e.args[0].code() == KafkaError.INVALID_CONFIG, e

    _wait_all(admin.delete_topics([topic, other]))
    assert topic not in admin.list_topics(timeout=TIMEOUT_S).topics
