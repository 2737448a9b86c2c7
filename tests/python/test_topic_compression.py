"""Broker-side compression (topic `compression.type`, Kafka's LogValidator rule): for each
codec, records produced uncompressed by confluent-kafka are stored in the topic's codec (read
from the segment files with `sluice dump-log`) and read back unchanged by confluent-kafka and
kafka-python; `compression.gzip.level` and `compression.zstd.level` change how hard the broker
compresses (level 9/19 stores less than level 1 for the same records); `producer` keeps the
producer's codec."""

import json
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer
from confluent_kafka import TopicPartition as ConfluentPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, TopicPartition

from conftest import sluice_bin

# Compressible, and not trivially so: the levels must make a difference.
VALUES = [f"record {i} of the stream, value {i * 7919 % 1000}".encode() * 8 for i in range(400)]


def create(broker, topic, **configs):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1, config=configs)])[topic].result(timeout=30)


def produce(broker, topic, codec="none"):
    p = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": codec,
                  "linger.ms": 50, "acks": "all"})
    for v in VALUES:
        p.produce(topic, v)
    assert p.flush(30) == 0


def stored(broker, topic):
    """(codecs of the stored data batches, bytes of the segment files)."""
    files = sorted(str(f) for f in (Path(broker.data_dir) / f"{topic}-0").glob("*.log"))
    out = subprocess.run([str(sluice_bin()), "dump-log", "--output", "json", *files],
                         capture_output=True, text=True, check=True)
    codecs = {b["compression"] for d in json.loads(out.stdout) for b in d.get("batches", [])}
    return codecs, sum(Path(f).stat().st_size for f in files)


def read_back(broker, topic):
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"g-{topic}",
                  "enable.auto.commit": False})
    c.assign([ConfluentPartition(topic, 0, OFFSET_BEGINNING)])
    got, deadline = [], time.monotonic() + 30
    while len(got) < len(VALUES) and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value())
    c.close()
    k = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                      auto_offset_reset="earliest", consumer_timeout_ms=5000)
    k.assign([TopicPartition(topic, 0)])
    via_kafka_python = [m.value for m in k]
    k.close()
    return got, via_kafka_python


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd", "uncompressed"])
def test_records_are_stored_in_the_topics_codec_and_read_back(broker, topic, codec):
    create(broker, topic, **{"compression.type": codec})
    produce(broker, topic, "none" if codec != "uncompressed" else "gzip")
    codecs, _ = stored(broker, topic)
    assert codecs == {"none" if codec == "uncompressed" else codec}, codecs
    confluent, kafka_python = read_back(broker, topic)
    assert confluent == VALUES
    assert kafka_python == VALUES


def test_producer_keeps_the_producers_codec(broker, topic):
    create(broker, topic)
    produce(broker, topic, "snappy")
    assert stored(broker, topic)[0] == {"snappy"}


@pytest.mark.parametrize("codec,fast,best", [("gzip", "1", "9"), ("zstd", "1", "19")])
def test_the_topics_level_decides_how_hard_the_broker_compresses(broker, topic, codec, fast,
                                                                  best):
    sizes = {}
    for level in (fast, best):
        name = f"{topic}-{level}"
        create(broker, name, **{"compression.type": codec, f"compression.{codec}.level": level})
        produce(broker, name)
        codecs, sizes[level] = stored(broker, name)
        assert codecs == {codec}
        assert read_back(broker, name)[0] == VALUES
    assert sizes[best] < sizes[fast], sizes
